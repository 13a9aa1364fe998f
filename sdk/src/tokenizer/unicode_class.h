// unicode_class.h — the Unicode facts the tokenizers need: strict UTF-8
// decoding/encoding and per-code-point classes (general category, White_Space)
// from the generated table unicode_tables.inc.
#ifndef HEARTH_SDK_SRC_TOKENIZER_UNICODE_CLASS_H_
#define HEARTH_SDK_SRC_TOKENIZER_UNICODE_CLASS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::tok {

// General categories, numbered as scripts/gen_unicode_tables.py numbers them.
enum GeneralCategory : uint8_t {
  kLu,
  kLl,
  kLt,
  kLm,
  kLo,
  kMn,
  kMc,
  kMe,
  kNd,
  kNl,
  kNo,
  kPc,
  kPd,
  kPs,
  kPe,
  kPi,
  kPf,
  kPo,
  kSm,
  kSc,
  kSk,
  kSo,
  kZs,
  kZl,
  kZp,
  kCc,
  kCf,
  kCs,
  kCo,
  kCn,
  kCategoryCount,
};

// A code point's classes as one bit mask: bit `category` plus kWhiteSpaceBit.
// Regex classes such as \p{L} or \s are masks tested against it.
constexpr uint32_t kWhiteSpaceBit = 1u << 31;
constexpr uint32_t CategoryBit(GeneralCategory c) { return 1u << c; }
constexpr uint32_t kLetterMask =
    CategoryBit(kLu) | CategoryBit(kLl) | CategoryBit(kLt) | CategoryBit(kLm) | CategoryBit(kLo);
constexpr uint32_t kMarkMask = CategoryBit(kMn) | CategoryBit(kMc) | CategoryBit(kMe);
constexpr uint32_t kNumberMask = CategoryBit(kNd) | CategoryBit(kNl) | CategoryBit(kNo);
constexpr uint32_t kPunctMask = CategoryBit(kPc) | CategoryBit(kPd) | CategoryBit(kPs) |
                                CategoryBit(kPe) | CategoryBit(kPi) | CategoryBit(kPf) |
                                CategoryBit(kPo);
constexpr uint32_t kSymbolMask =
    CategoryBit(kSm) | CategoryBit(kSc) | CategoryBit(kSk) | CategoryBit(kSo);
constexpr uint32_t kSeparatorMask = CategoryBit(kZs) | CategoryBit(kZl) | CategoryBit(kZp);
constexpr uint32_t kOtherMask =
    CategoryBit(kCc) | CategoryBit(kCf) | CategoryBit(kCs) | CategoryBit(kCo) | CategoryBit(kCn);

GeneralCategory CategoryOf(uint32_t cp);
bool IsWhiteSpace(uint32_t cp);
uint32_t ClassMask(uint32_t cp);

// Mask for a property name as written in \p{...}: "L", "Lu", "N", "P", ...
// Returns 0 for names we do not know.
uint32_t PropertyMask(std::string_view name);

// Length of the longest prefix of `s` that is valid UTF-8 (no overlongs,
// surrogates or code points past U+10FFFF).
size_t ValidUtf8Prefix(std::string_view s);

// How many bytes at the end of `s` form the start of a valid UTF-8 sequence
// that is not complete yet (0..3). Used to hold back bytes while streaming.
size_t IncompleteUtf8Suffix(std::string_view s);

// Decodes valid UTF-8 (check with ValidUtf8Prefix first). `offsets` gets the
// byte offset of each code point plus one final entry, s.size().
void DecodeUtf8(std::string_view s, std::vector<uint32_t>* cps, std::vector<uint32_t>* offsets);

// Decodes one code point of valid UTF-8 at `*pos` and advances it.
uint32_t NextCodepoint(std::string_view s, size_t* pos);

// Byte length of the UTF-8 sequence that starts with `lead` (1 for bytes that
// cannot start one, so callers always advance).
size_t Utf8SequenceLength(unsigned char lead);

void AppendUtf8(uint32_t cp, std::string* out);

// Replaces each maximal invalid sequence with U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace hearth::tok

#endif  // HEARTH_SDK_SRC_TOKENIZER_UNICODE_CLASS_H_
