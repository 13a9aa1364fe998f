// codepoint_regex.h — a small backtracking regex engine over Unicode code
// points, for the pre-tokenizer patterns that GGUF tokenizers imply.
//
// std::regex cannot test \p{L} or \p{N}, so pre-tokenizer patterns are
// compiled here. Matching follows Perl/Oniguruma semantics (leftmost match,
// ordered alternation, greedy quantifiers with backtracking), which is what
// the reference tokenizers (HF tokenizers on Oniguruma) use.
//
// Supported: literals (UTF-8), `.`, classes `[...]` with ranges and negation,
// \s \S \d \D \w \W \p{X} \P{X} (X a general category or its one-letter
// group), \r \n \t \f \v \xHH \x{H..} \uHHHH, escaped punctuation, groups
// `(...)` `(?:...)` `(?i:...)` (ASCII case folding), lookahead `(?=...)`
// `(?!...)`, anchors `^` `$` (Oniguruma: `$` also matches before a final
// '\n'), quantifiers ? * + {n} {n,} {n,m} and their lazy `?` forms.
// Patterns that can match the empty string, or loop over something that can,
// are rejected: a pre-tokenizer piece is never empty.
#ifndef HEARTH_SDK_SRC_TOKENIZER_CODEPOINT_REGEX_H_
#define HEARTH_SDK_SRC_TOKENIZER_CODEPOINT_REGEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace hearth::tok {

// Text prepared for matching: code points and their class masks (ClassMask).
struct CodepointText {
  std::vector<uint32_t> cps;
  std::vector<uint32_t> masks;
  std::vector<uint32_t> offsets;  // byte offset of each code point, plus the end

  // `utf8` must be valid UTF-8.
  void Assign(std::string_view utf8);
};

class CodepointRegex {
 public:
  static absl::StatusOr<std::unique_ptr<CodepointRegex>> Compile(std::string_view pattern);
  ~CodepointRegex();

  // Splits text[begin, end) into its matches and the gaps between them, in
  // order, appending [start, stop) code-point ranges to `out` (the HF
  // "Isolated" split behaviour). The range is matched as if it were the whole
  // subject: lookahead and `$` do not see past `end`.
  void SplitIsolated(const CodepointText& text, size_t begin, size_t end,
                     std::vector<std::pair<size_t, size_t>>* out) const;

  const std::string& pattern() const { return pattern_; }

  struct Program;

 private:
  CodepointRegex() = default;
  std::string pattern_;
  std::unique_ptr<Program> program_;
};

}  // namespace hearth::tok

#endif  // HEARTH_SDK_SRC_TOKENIZER_CODEPOINT_REGEX_H_
