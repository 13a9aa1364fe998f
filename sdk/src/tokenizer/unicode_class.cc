// unicode_class.cc — UTF-8 and Unicode class lookups for the tokenizers.
#include "sdk/src/tokenizer/unicode_class.h"

#include <algorithm>
#include <iterator>

namespace hearth::tok {
namespace {

#include "sdk/src/tokenizer/unicode_tables.inc"

enum class Seq { kValid, kIncomplete, kInvalid };

// Classifies the UTF-8 sequence at p[0..avail). For kValid, *len is its
// length; for kInvalid, the length of the maximal ill-formed prefix (>= 1),
// which is what gets one U+FFFD (the Unicode "maximal subpart" practice).
Seq CheckSequence(const unsigned char* p, size_t avail, size_t* len) {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *len = 1;
    return Seq::kValid;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    *len = 1;
    return Seq::kInvalid;
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= avail) {
      *len = i;
      return Seq::kIncomplete;
    }
    const unsigned char b = p[i];
    const unsigned char l = i == 1 ? lo : 0x80;
    const unsigned char h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      *len = i;
      return Seq::kInvalid;
    }
  }
  *len = need;
  return Seq::kValid;
}

}  // namespace

GeneralCategory CategoryOf(uint32_t cp) {
  if (cp > 0x10FFFF) return kCn;
  const uint32_t key = (cp << 5) | 31;
  const uint32_t* it = std::upper_bound(std::begin(kCategoryRuns), std::end(kCategoryRuns), key);
  // kCategoryRuns[0] starts at 0, so `it` is never the first element.
  return static_cast<GeneralCategory>(*(it - 1) & 31);
}

bool IsWhiteSpace(uint32_t cp) {
  for (const auto& r : kWhiteSpaceRanges) {
    if (cp >= r[0] && cp <= r[1]) return true;
  }
  return false;
}

uint32_t ClassMask(uint32_t cp) {
  return CategoryBit(CategoryOf(cp)) | (IsWhiteSpace(cp) ? kWhiteSpaceBit : 0);
}

uint32_t PropertyMask(std::string_view name) {
  static constexpr const char* kNames[kCategoryCount] = {
      "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
      "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};
  if (name == "L") return kLetterMask;
  if (name == "M") return kMarkMask;
  if (name == "N") return kNumberMask;
  if (name == "P") return kPunctMask;
  if (name == "S") return kSymbolMask;
  if (name == "Z") return kSeparatorMask;
  if (name == "C") return kOtherMask;
  for (int i = 0; i < kCategoryCount; ++i) {
    if (name == kNames[i]) return CategoryBit(static_cast<GeneralCategory>(i));
  }
  return 0;
}

size_t ValidUtf8Prefix(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t pos = 0;
  while (pos < s.size()) {
    if (p[pos] < 0x80) {  // fast path for ASCII
      ++pos;
      continue;
    }
    size_t len = 0;
    if (CheckSequence(p + pos, s.size() - pos, &len) != Seq::kValid) return pos;
    pos += len;
  }
  return pos;
}

size_t IncompleteUtf8Suffix(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  // An incomplete sequence is at most 3 bytes: look for its lead byte.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t start = s.size() - back;
    if ((p[start] & 0xC0) == 0x80) continue;  // continuation byte: keep looking
    size_t len = 0;
    return CheckSequence(p + start, back, &len) == Seq::kIncomplete ? back : 0;
  }
  return 0;
}

size_t Utf8SequenceLength(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 1;
}

uint32_t NextCodepoint(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t i = *pos;
  const unsigned char b0 = p[i];
  size_t len = std::min(Utf8SequenceLength(b0), s.size() - i);
  uint32_t cp;
  switch (len) {
    case 2:
      cp = ((b0 & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
      break;
    case 3:
      cp = ((b0 & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu);
      break;
    case 4:
      cp = ((b0 & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) | ((p[i + 2] & 0x3Fu) << 6) |
           (p[i + 3] & 0x3Fu);
      break;
    default:
      len = 1;
      cp = b0;
      break;
  }
  *pos = i + len;
  return cp;
}

void DecodeUtf8(std::string_view s, std::vector<uint32_t>* cps, std::vector<uint32_t>* offsets) {
  cps->clear();
  offsets->clear();
  cps->reserve(s.size());
  offsets->reserve(s.size() + 1);
  size_t pos = 0;
  while (pos < s.size()) {
    offsets->push_back(static_cast<uint32_t>(pos));
    cps->push_back(NextCodepoint(s, &pos));
  }
  offsets->push_back(static_cast<uint32_t>(s.size()));
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string SanitizeUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 0;
    if (CheckSequence(p + pos, s.size() - pos, &len) == Seq::kValid) {
      out.append(s.substr(pos, len));
    } else {
      out.append("\xEF\xBF\xBD");
    }
    pos += len;
  }
  return out;
}

}  // namespace hearth::tok
