// fragment_tokenizer.cc — special-token splitting and the shared Encode flow.
#include "sdk/src/tokenizer/fragment_tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {

SpecialTokenMatcher::SpecialTokenMatcher(const VocabData& vocab) {
  nodes_.emplace_back();
  for (size_t id = 0; id < vocab.token_types.size() && id < vocab.tokens.size(); ++id) {
    const int32_t type = vocab.token_types[id];
    if (type != kControl && type != kUnknown && type != kUserDefined) continue;
    const std::string& text = vocab.tokens[id];
    if (text.empty()) continue;
    int32_t node = 0;
    for (unsigned char c : text) {
      auto& next = nodes_[node].next;
      auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(c, int32_t{-1}));
      if (it != next.end() && it->first == c) {
        node = it->second;
        continue;
      }
      const int32_t child = static_cast<int32_t>(nodes_.size());
      next.insert(it, {c, child});
      nodes_.emplace_back();  // invalidates `next`; not used again
      node = child;
    }
    if (nodes_[node].token < 0) {  // the first of duplicate texts wins
      nodes_[node].token = static_cast<int32_t>(id);
      nodes_[node].always = type == kUserDefined;
    }
  }
}

int32_t SpecialTokenMatcher::Match(std::string_view text, size_t pos, bool parse_special,
                                   size_t* len) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& next = nodes_[node].next;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(c, int32_t{-1}));
    if (it == next.end() || it->first != c) break;
    node = it->second;
    const Node& n = nodes_[node];
    if (n.token >= 0 && (parse_special || n.always)) {
      best = n.token;
      *len = i + 1 - pos;
    }
  }
  return best;
}

FragmentTokenizer::FragmentTokenizer(VocabData vocab)
    : Tokenizer(std::move(vocab)), specials_(vocab_) {}

bool FragmentTokenizer::IsPlainTokenType(int32_t id) const {
  if (vocab_.token_types.empty()) return true;
  const int32_t t = vocab_.token_types[id];
  return t != kControl && t != kUnknown && t != kByte && t != kUnused;
}

absl::StatusOr<std::vector<int32_t>> FragmentTokenizer::Encode(std::string_view text,
                                                               bool add_special,
                                                               bool parse_special) const {
  return EncodeImpl(text, add_special, parse_special, nullptr, nullptr);
}

absl::StatusOr<std::vector<int32_t>> FragmentTokenizer::EncodeLayout(
    std::string_view text, bool add_special, const TextLayout& layout,
    std::vector<size_t>* ids_at_cut) const {
  size_t prev = 0;
  for (const auto& [begin, end] : layout.special) {
    if (begin < prev || end < begin || end > text.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("special range [", begin, ", ", end,
                       ") is out of order or past the end of the text (", text.size(), " bytes)"));
    }
    prev = end;
  }
  prev = 0;
  for (size_t cut : layout.cuts) {
    if (cut < prev || cut > text.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cut at byte ", cut, " is out of order or past the end of the text (",
                       text.size(), " bytes)"));
    }
    if (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
      return absl::InvalidArgumentError(
          absl::StrCat("cut at byte ", cut, " is inside a UTF-8 character"));
    }
    prev = cut;
  }
  return EncodeImpl(text, add_special, false, &layout, ids_at_cut);
}

absl::StatusOr<std::vector<int32_t>> FragmentTokenizer::EncodeImpl(
    std::string_view text, bool add_special, bool parse_special, const TextLayout* layout,
    std::vector<size_t>* ids_at_cut) const {
  const size_t valid = ValidUtf8Prefix(text);
  if (valid != text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("text is not valid UTF-8: byte 0x",
                     absl::Hex(static_cast<unsigned char>(text[valid]), absl::kZeroPad2),
                     " at offset ", valid, " does not continue a valid sequence"));
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  if (ids_at_cut != nullptr) ids_at_cut->clear();
  static const std::vector<size_t> kNoCuts;
  const std::vector<size_t>& cuts = layout != nullptr ? layout->cuts : kNoCuts;
  size_t next_cut = 0;  // index into cuts
  size_t range = 0;     // index into layout->special: the first not ending before pos
  bool after_special = true;
  size_t fragment = 0;
  size_t pos = 0;
  // Plain text up to `end` becomes ids; what follows a cut continues the text.
  auto flush = [&](size_t end) -> absl::Status {
    if (fragment < end) {
      HEARTH_RETURN_IF_ERROR(
          EncodeFragment(text.substr(fragment, end - fragment), after_special, &out));
      after_special = false;
    }
    fragment = end;
    return absl::OkStatus();
  };
  const bool scan = !specials_.empty() || !cuts.empty();
  while (scan && pos < text.size()) {
    while (next_cut < cuts.size() && cuts[next_cut] <= pos) {
      HEARTH_RETURN_IF_ERROR(flush(pos));
      if (ids_at_cut != nullptr) ids_at_cut->push_back(out.size());
      ++next_cut;
    }
    size_t len = 0;
    int32_t id = -1;
    if (!specials_.empty() && layout == nullptr) {
      id = specials_.Match(text, pos, parse_special, &len);
    } else if (!specials_.empty()) {
      // No token text may reach past a cut. User-defined tokens match
      // anywhere else, as in Encode; control tokens only inside a range.
      const size_t limit = next_cut < cuts.size() ? cuts[next_cut] : text.size();
      id = specials_.Match(text.substr(0, limit), pos, /*parse_special=*/false, &len);
      const auto& ranges = layout->special;
      while (range < ranges.size() && ranges[range].second <= pos) ++range;
      if (range < ranges.size() && ranges[range].first <= pos) {
        size_t control_len = 0;
        const int32_t control = specials_.Match(
            text.substr(0, std::min(limit, ranges[range].second)), pos, true, &control_len);
        if (control >= 0 && (id < 0 || control_len > len)) {
          id = control;
          len = control_len;
        }
      }
    }
    if (id < 0) {
      pos += Utf8SequenceLength(static_cast<unsigned char>(text[pos]));
      continue;
    }
    HEARTH_RETURN_IF_ERROR(flush(pos));
    out.push_back(id);
    after_special = true;
    pos += len;
    fragment = pos;
  }
  HEARTH_RETURN_IF_ERROR(flush(text.size()));
  for (; next_cut < cuts.size(); ++next_cut) {
    if (ids_at_cut != nullptr) ids_at_cut->push_back(out.size());
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

}  // namespace hearth::tok
