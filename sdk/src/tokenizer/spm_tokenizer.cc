// spm_tokenizer.cc — the "llama" kind: SentencePiece BPE as llama-family
// GGUFs carry it (Llama 2, Mistral, Gemma). Text is normalized (spaces become
// U+2581, one is prefixed when add_space_prefix), then adjacent symbols merge
// while their concatenation is a token, highest score first, leftmost on
// ties. Characters that end up in no token become <0xNN> byte tokens.
#include <array>
#include <queue>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/checked_alloc.h"
#include "sdk/src/common/status.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/tokenizer/fragment_tokenizer.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Parses "<0xNN>" (the SentencePiece byte-piece spelling); -1 otherwise.
int ParseBytePiece(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  int v = 0;
  for (char c : t.substr(3, 2)) {
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

class SpmTokenizer final : public FragmentTokenizer {
 public:
  explicit SpmTokenizer(VocabData vocab) : FragmentTokenizer(std::move(vocab)) {
    decode_strips_leading_space_ = vocab_.add_space_prefix;
    byte_ids_.fill(-1);
    piece_of_byte_id_.assign(vocab_.tokens.size(), -1);
    ids_.reserve(vocab_.tokens.size());
    for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
      const int32_t id = static_cast<int32_t>(i);
      const std::string& t = vocab_.tokens[i];
      const int32_t type = vocab_.token_types.empty() ? kNormal : vocab_.token_types[i];
      const int b = ParseBytePiece(t);
      if (b >= 0 && (type == kByte || vocab_.token_types.empty())) {
        if (byte_ids_[b] < 0) byte_ids_[b] = id;
        piece_of_byte_id_[i] = b;
        continue;
      }
      if (IsPlainTokenType(id)) ids_.try_emplace(t, id);
    }
  }

  std::string TokenToPiece(int32_t id, bool render_special) const override {
    if (id < 0 || id >= n_vocab()) return "";
    const std::string& text = vocab_.tokens[id];
    const int32_t type = vocab_.token_types.empty() ? kNormal : vocab_.token_types[id];
    if (piece_of_byte_id_[id] >= 0) return std::string(1, static_cast<char>(piece_of_byte_id_[id]));
    switch (type) {
      case kControl:
      case kUnknown:
        return render_special ? text : "";
      case kUserDefined:
        return text;
      default: {
        std::string out;
        out.reserve(text.size());
        for (size_t i = 0; i < text.size();) {
          if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
            out.push_back(' ');
            i += kSpaceMark.size();
          } else {
            out.push_back(text[i++]);
          }
        }
        return out;
      }
    }
  }

  std::string Describe() const override {
    int n_bytes = 0;
    for (int32_t b : byte_ids_) n_bytes += b >= 0;
    return absl::StrCat("llama (SentencePiece BPE): ", n_vocab(), " tokens, ",
                        n_bytes == 256 ? "byte fallback" : "no byte fallback",
                        ", add_space_prefix=", vocab_.add_space_prefix ? "true" : "false",
                        ", add_bos=", vocab_.add_bos ? "true" : "false",
                        ", add_eos=", vocab_.add_eos ? "true" : "false");
  }

 protected:
  absl::Status EncodeFragment(std::string_view text, bool after_special,
                              std::vector<int32_t>* out) const override {
    std::string norm;
    norm.reserve(text.size() + 8);
    if (vocab_.add_space_prefix && after_special) norm.append(kSpaceMark);
    for (char c : text) {
      if (c == ' ') {
        norm.append(kSpaceMark);
      } else {
        norm.push_back(c);
      }
    }

    // One symbol per character, in a doubly linked list; merged symbols
    // live on in their leftmost slot.
    struct Symbol {
      uint32_t start, end;
      int32_t prev, next;
    };
    std::vector<Symbol> syms;
    syms.reserve(norm.size());
    for (size_t pos = 0; pos < norm.size();) {
      const size_t start = pos;
      NextCodepoint(norm, &pos);
      const int32_t i = static_cast<int32_t>(syms.size());
      syms.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(pos), i - 1, i + 1});
    }
    syms.back().next = -1;

    struct Pair {
      float score;
      int32_t left, right;
      uint32_t size;
    };
    auto worse = [](const Pair& a, const Pair& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> queue(worse);
    auto consider = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const std::string_view joined(norm.data() + syms[l].start, syms[r].end - syms[l].start);
      auto it = ids_.find(joined);
      if (it == ids_.end()) return;
      const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[it->second];
      queue.push({score, l, r, static_cast<uint32_t>(joined.size())});
    };
    for (size_t i = 1; i < syms.size(); ++i)
      consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

    while (!queue.empty()) {
      const Pair p = queue.top();
      queue.pop();
      Symbol& l = syms[p.left];
      Symbol& r = syms[p.right];
      // Stale if either side has merged since: the left slot no longer
      // neighbours the right one, or the right one grew.
      if (l.start == l.end || r.start == r.end || l.next != p.right || r.end - l.start != p.size) {
        continue;
      }
      l.end = r.end;
      r.start = r.end;  // dead
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = p.left;
      consider(l.prev, p.left);
      consider(p.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = syms[i].next) {
      const std::string_view piece(norm.data() + syms[i].start, syms[i].end - syms[i].start);
      auto it = ids_.find(piece);
      if (it != ids_.end()) {
        out->push_back(it->second);
        continue;
      }
      bool all_bytes = true;
      for (unsigned char c : piece) all_bytes = all_bytes && byte_ids_[c] >= 0;
      if (all_bytes) {
        for (unsigned char c : piece) out->push_back(byte_ids_[c]);
      } else if (vocab_.unk >= 0) {
        out->push_back(vocab_.unk);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", Absl(piece),
            "\" has no token, no byte tokens and the vocabulary has no unknown token"));
      }
    }
    return absl::OkStatus();
  }

 private:
  std::unordered_map<std::string_view, int32_t> ids_;  // views into vocab_.tokens
  std::array<int32_t, 256> byte_ids_;
  std::vector<int16_t> piece_of_byte_id_;  // byte a <0xNN> token stands for, or -1
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizer(VocabData vocab) {
  // The token table (each entry a node) and the byte-piece index.
  const uint64_t n_tok = vocab.tokens.size();
  HEARTH_RETURN_IF_ERROR(CheckAllocatable(
      n_tok * (sizeof(std::pair<std::string_view, int32_t>) + kHashEntryOverhead + sizeof(int32_t)),
      absl::StrCat("the tokenizer's table (", n_tok, " tokens)")));
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab)));
}

}  // namespace hearth::tok
