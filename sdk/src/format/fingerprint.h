// fingerprint.h — stable content hashes for provenance records: XXH64
// (Collet's xxHash, 64-bit, seed 0; the reference algorithm, so `xxhsum -H1`
// and Python's xxhash.xxh64 give the same values) and, built on it, the
// fingerprint of a GGUF model's weights.
#ifndef HEARTH_SDK_SRC_FORMAT_FINGERPRINT_H_
#define HEARTH_SDK_SRC_FORMAT_FINGERPRINT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "sdk/src/format/gguf.h"

namespace hearth::format {

uint64_t Xxh64(const void* data, size_t size, uint64_t seed = 0);

// "xxh64:" and 16 lowercase hex digits.
std::string Xxh64Text(uint64_t h);

// The fingerprint of a model's weights: for each tensor in name order, its
// name, a NUL, its ggml type (u32 LE) and ne[0..3] (i64 LE) and the XXH64 of
// its data bytes (u64 LE) are concatenated, and the result is the XXH64 of
// that record list, as Xxh64Text. Metadata (names, chat templates, …) and
// the file layout do not enter it; any change to a weight byte, a tensor's
// type or shape does. Reads every weight byte once (single thread).
std::string WeightsFingerprint(const gguf::File& file);

}  // namespace hearth::format

#endif  // HEARTH_SDK_SRC_FORMAT_FINGERPRINT_H_
