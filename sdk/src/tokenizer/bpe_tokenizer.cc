// bpe_tokenizer.cc — the "gpt2" kind: byte-level BPE (GPT-2, Llama 3, Qwen2,
// DeepSeek). Text is cut by the named pre-tokenizer; each piece's bytes become
// GPT-2's printable stand-in characters, one symbol per byte; adjacent
// symbols merge by the rank of their pair in tokenizer.ggml.merges (lowest
// first, leftmost on ties) until no ranked pair is left.
#include <array>
#include <queue>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/checked_alloc.h"
#include "sdk/src/common/status.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/tokenizer/fragment_tokenizer.h"
#include "sdk/src/tokenizer/pre_tokenizer.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {
namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
// the other 68 bytes take U+0100 onwards, in byte order.
std::array<uint32_t, 256> ByteToCodepoint() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    map[b] = printable ? b : next++;
  }
  return map;
}

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class BpeTokenizer final : public FragmentTokenizer {
 public:
  explicit BpeTokenizer(VocabData vocab) : FragmentTokenizer(std::move(vocab)) {}

  absl::Status Init() {
    HEARTH_ASSIGN_OR_RETURN(pre_, PreTokenizer::Create(vocab_.pre));
    const std::array<uint32_t, 256> b2c = ByteToCodepoint();
    byte_of_cp_.fill(-1);
    for (int b = 0; b < 256; ++b) byte_of_cp_[b2c[b]] = static_cast<int16_t>(b);

    // Two token tables and the merge table, each entry a node.
    const uint64_t n_tok = vocab_.tokens.size(), n_merge = vocab_.merges.size();
    HEARTH_RETURN_IF_ERROR(CheckAllocatable(
        n_tok * 2 * (sizeof(std::pair<std::string_view, int32_t>) + kHashEntryOverhead) +
            n_merge * (sizeof(std::pair<uint64_t, Merge>) + kHashEntryOverhead),
        absl::StrCat("the tokenizer's tables (", n_tok, " tokens, ", n_merge, " merges)")));
    std::unordered_map<std::string_view, int32_t> all;  // views into vocab_.tokens
    all.reserve(vocab_.tokens.size());
    for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
      const int32_t id = static_cast<int32_t>(i);
      all.try_emplace(vocab_.tokens[i], id);
      if (IsPlainTokenType(id)) ids_.try_emplace(vocab_.tokens[i], id);
    }
    unk_is_unknown_ = vocab_.unk >= 0 &&
                      (vocab_.token_types.empty() ||
                       vocab_.token_types[static_cast<size_t>(vocab_.unk)] != kControl);
    for (int b = 0; b < 256; ++b) {
      std::string s;
      AppendUtf8(b2c[b], &s);
      auto it = ids_.find(s);
      byte_ids_[b] = it == ids_.end() ? -1 : it->second;
    }

    merges_.reserve(vocab_.merges.size());
    for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
      const std::string& line = vocab_.merges[rank];
      const size_t sp = line.find(' ');
      auto bad = [&](absl::string_view why) {
        return absl::InvalidArgumentError(
            absl::StrCat("tokenizer.ggml.merges[", rank, "] \"", line, "\": ", why));
      };
      if (sp == std::string::npos || sp == 0 || sp + 1 == line.size()) {
        return bad("expected two tokens separated by one space");
      }
      const std::string_view a(line.data(), sp), b(line.data() + sp + 1, line.size() - sp - 1);
      const std::string ab = std::string(a) + std::string(b);
      auto ia = all.find(a), ib = all.find(b), iab = all.find(ab);
      if (ia == all.end()) return bad(absl::StrCat("\"", Absl(a), "\" is not a token"));
      if (ib == all.end()) return bad(absl::StrCat("\"", Absl(b), "\" is not a token"));
      if (iab == all.end()) return bad(absl::StrCat("\"", ab, "\" is not a token"));
      merges_.try_emplace(PairKey(ia->second, ib->second),
                          Merge{static_cast<int32_t>(rank), iab->second});
    }
    return absl::OkStatus();
  }

  std::string TokenToPiece(int32_t id, bool render_special) const override {
    if (id < 0 || id >= n_vocab()) return "";
    const std::string& text = vocab_.tokens[id];
    const int32_t type = vocab_.token_types.empty() ? kNormal : vocab_.token_types[id];
    if (type == kControl || type == kUnknown) return render_special ? text : "";
    // User-defined tokens are matched in raw input text, so they stand for
    // their own UTF-8, not for byte-level characters.
    if (type == kUserDefined) return text;
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      const size_t start = pos;
      const uint32_t cp = NextCodepoint(text, &pos);
      if (cp < byte_of_cp_.size() && byte_of_cp_[cp] >= 0) {
        out.push_back(static_cast<char>(byte_of_cp_[cp]));
      } else {
        out.append(text, start, pos - start);  // not a byte-level character: keep it
      }
    }
    return out;
  }

  std::string Describe() const override {
    return absl::StrCat("gpt2 (byte-level BPE, pre-tokenizer ", pre_->name(),
                        pre_->ignore_merges() ? ", ignore_merges" : "", "): ", n_vocab(),
                        " tokens, ", vocab_.merges.size(),
                        " merges, add_bos=", vocab_.add_bos ? "true" : "false",
                        ", add_eos=", vocab_.add_eos ? "true" : "false");
  }

 protected:
  absl::Status EncodeFragment(std::string_view text, bool /*after_special*/,
                              std::vector<int32_t>* out) const override {
    struct Symbol {
      int32_t id, prev, next;
    };
    struct Pair {
      int32_t rank, left, right, left_id, right_id, result;
    };
    auto worse = [](const Pair& a, const Pair& b) {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    };
    std::vector<Symbol> syms;
    std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> queue(worse);
    std::string mapped;
    for (std::string_view piece : pre_->Split(text)) {
      if (pre_->ignore_merges()) {
        mapped.clear();
        for (unsigned char c : piece) AppendUtf8(ByteCodepoint(c), &mapped);
        auto it = ids_.find(mapped);
        if (it != ids_.end()) {
          out->push_back(it->second);
          continue;
        }
      }
      syms.clear();
      for (size_t i = 0; i < piece.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(piece[i]);
        int32_t id = byte_ids_[c];
        if (id < 0) {
          // A byte the vocabulary has no token for (SmolLM2 lacks 21) is
          // dropped, as Hugging Face's and llama.cpp's byte-level BPE do;
          // only a real unknown token stands in for it, never a control
          // token a converter recorded as "unknown" (<|endoftext|>).
          if (!unk_is_unknown_) continue;
          id = vocab_.unk;
        }
        const int32_t k = static_cast<int32_t>(syms.size());
        syms.push_back({id, k - 1, k + 1});
      }
      if (syms.empty()) continue;
      syms.back().next = -1;
      auto consider = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        auto it = merges_.find(PairKey(syms[l].id, syms[r].id));
        if (it != merges_.end()) {
          queue.push({it->second.rank, l, r, syms[l].id, syms[r].id, it->second.result});
        }
      };
      for (size_t i = 1; i < syms.size(); ++i) {
        consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
      }
      while (!queue.empty()) {
        const Pair p = queue.top();
        queue.pop();
        Symbol& l = syms[p.left];
        Symbol& r = syms[p.right];
        // Token texts only grow, so matching ids and adjacency prove the
        // pair is current.
        if (l.id < 0 || r.id < 0 || l.next != p.right || l.id != p.left_id || r.id != p.right_id) {
          continue;
        }
        l.id = p.result;
        r.id = -1;
        l.next = r.next;
        if (r.next >= 0) syms[r.next].prev = p.left;
        consider(l.prev, p.left);
        consider(p.left, l.next);
      }
      for (int32_t i = 0; i >= 0; i = syms[i].next) out->push_back(syms[i].id);
    }
    return absl::OkStatus();
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  uint32_t ByteCodepoint(unsigned char c) const { return byte_cp_[c]; }

  std::unique_ptr<PreTokenizer> pre_;
  std::unordered_map<std::string_view, int32_t> ids_;  // views into vocab_.tokens
  std::unordered_map<uint64_t, Merge> merges_;         // (left id, right id) -> merge
  std::array<int32_t, 256> byte_ids_;
  bool unk_is_unknown_ = false;  // vocab_.unk may stand in for a byte with no token
  std::array<int16_t, 324> byte_of_cp_;  // inverse of bytes_to_unicode (codes < 324)
  const std::array<uint32_t, 256> byte_cp_ = ByteToCodepoint();
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateBpeTokenizer(VocabData vocab) {
  auto tok = std::unique_ptr<BpeTokenizer>(new BpeTokenizer(std::move(vocab)));
  HEARTH_RETURN_IF_ERROR(tok->Init());
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

}  // namespace hearth::tok
