// codepoint_regex_internal.h — the parsed and compiled forms of a
// CodepointRegex, shared by its parser (codepoint_regex_parse.cc) and its
// compiler and matcher (codepoint_regex.cc). Not for use elsewhere.
#ifndef HEARTH_SDK_SRC_TOKENIZER_CODEPOINT_REGEX_INTERNAL_H_
#define HEARTH_SDK_SRC_TOKENIZER_CODEPOINT_REGEX_INTERNAL_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/tokenizer/codepoint_regex.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {
namespace regex_internal {

struct CharClass {
  bool negated = false;
  uint32_t any_mask = 0;             // matches if the code point has any of these bits
  std::vector<uint32_t> none_masks;  // matches if it has none of one of these (\S, \P{L})
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  uint64_t ascii[2] = {0, 0};  // the final answer for code points < 128

  bool MatchesSlow(uint32_t cp, uint32_t mask) const {
    bool hit = (mask & any_mask) != 0;
    for (uint32_t m : none_masks) hit = hit || (mask & m) == 0;
    for (const auto& r : ranges) hit = hit || (cp >= r.first && cp <= r.second);
    return hit != negated;
  }
  void Finalize() {
    for (uint32_t cp = 0; cp < 128; ++cp) {
      if (MatchesSlow(cp, ClassMask(cp))) ascii[cp >> 6] |= uint64_t{1} << (cp & 63);
    }
  }
  bool Matches(uint32_t cp, uint32_t mask) const {
    if (cp < 128) return (ascii[cp >> 6] >> (cp & 63)) & 1;
    return MatchesSlow(cp, mask);
  }
  // ASCII case folding for (?i:...): adds the other case of every letter.
  void FoldAsciiCase() {
    std::vector<std::pair<uint32_t, uint32_t>> extra;
    for (const auto& r : ranges) {
      for (uint32_t base : {uint32_t{'A'}, uint32_t{'a'}}) {
        const uint32_t lo = std::max(r.first, base), hi = std::min(r.second, base + 25);
        if (lo <= hi) extra.emplace_back(lo ^ 0x20, hi ^ 0x20);
      }
    }
    ranges.insert(ranges.end(), extra.begin(), extra.end());
  }
};

struct Node {
  enum Kind { kClass, kCat, kAlt, kRepeat, kLook, kBol, kEol } kind = kCat;
  int cls = -1;
  std::vector<Node> kids;
  int min = 0, max = 0;  // kRepeat; max < 0 means unbounded
  bool greedy = true;
  bool negative = false;  // kLook
};

enum Op : uint8_t { kOpClass, kOpSplit, kOpJmp, kOpMatch, kOpBol, kOpEol, kOpLook, kOpNegLook };
struct Inst {
  Op op;
  int32_t x = 0;  // class, preferred branch, jump target or lookahead program
  int32_t y = 0;  // alternative branch of a split
};

// Parses `pattern` (code points) into a tree; character classes go to
// `classes` and nodes refer to them by index.
absl::StatusOr<Node> ParsePattern(std::vector<uint32_t> pattern, std::vector<CharClass>* classes);

}  // namespace regex_internal

struct CodepointRegex::Program {
  std::vector<regex_internal::CharClass> classes;
  // [0] is the pattern, the rest are lookahead bodies.
  std::vector<std::vector<regex_internal::Inst>> codes;
};

}  // namespace hearth::tok

#endif  // HEARTH_SDK_SRC_TOKENIZER_CODEPOINT_REGEX_INTERNAL_H_
