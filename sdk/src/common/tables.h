// tables.h — the lookup tables the core builds from its inputs (GGUF
// indexes, JSON key sets, tokenizer tables, weight and LoRA maps).
//
// They are standard containers on purpose. When memory runs out, the
// std::bad_alloc that reaches the C ABI (HEARTH_CAPI_TRY turns it into
// RESOURCE_EXHAUSTED) unwinds through every table being built, and the
// standard containers leave a consistent table behind when an insertion's
// allocation throws (strong guarantee). Abseil's Swiss tables (20220623, the
// version Debian ships) do not: raw_hash_set::resize stores the new capacity
// before allocating the new slots, so a throwing allocation leaves a table
// whose destructor walks and frees memory it does not own.
// docs/reliability.md, "Out of memory".
#ifndef HEARTH_SDK_SRC_COMMON_TABLES_H_
#define HEARTH_SDK_SRC_COMMON_TABLES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

namespace hearth {

// Ordered by name, looked up by std::string or std::string_view without a
// copy (std::less<> is transparent). For the small tables built at load:
// names of tensors, metadata keys, JSON object keys.
template <class V>
using StringMap = std::map<std::string, V, std::less<>>;
using StringSet = std::set<std::string, std::less<>>;

// The large tables looked up per token (the tokenizers') are
// std::unordered_map. Bytes one entry of such a table costs besides its
// key and value, for sizing a table before it is built (CheckAllocatable):
// the node's next pointer and cached hash, the allocator's header and
// rounding, and its bucket pointer at a load factor of one.
inline constexpr uint64_t kHashEntryOverhead = 5 * sizeof(void*);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_COMMON_TABLES_H_
