// fragment_tokenizer.h — what every kind shares on the way in: UTF-8
// validation, cutting the input at special-token texts, BOS/EOS. A kind only
// encodes the plain-text fragments in between.
//
// Which token texts are cut out: user-defined tokens always (SentencePiece,
// HF tokenizers and llama.cpp all treat them as atomic pieces of the input);
// control and unknown tokens only with parse_special, so user text cannot
// smuggle in <|im_end|> and the like. Among tokens starting at the same
// position the longest wins.
#ifndef HEARTH_SDK_SRC_TOKENIZER_FRAGMENT_TOKENIZER_H_
#define HEARTH_SDK_SRC_TOKENIZER_FRAGMENT_TOKENIZER_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::tok {

// A byte trie over the texts of control, unknown and user-defined tokens.
class SpecialTokenMatcher {
 public:
  explicit SpecialTokenMatcher(const VocabData& vocab);
  // The id of the longest eligible token whose text starts at text[pos]
  // (its length in *len), or -1.
  int32_t Match(std::string_view text, size_t pos, bool parse_special, size_t* len) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
    int32_t token = -1;
    bool always = false;  // user-defined: matched without parse_special
  };
  std::vector<Node> nodes_;
};

class FragmentTokenizer : public Tokenizer {
 public:
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special,
                                              bool parse_special) const final;
  absl::StatusOr<std::vector<int32_t>> EncodeLayout(std::string_view text, bool add_special,
                                                    const TextLayout& layout,
                                                    std::vector<size_t>* ids_at_cut) const final;

 protected:
  explicit FragmentTokenizer(VocabData vocab);

  // Appends the ids of `text`: valid UTF-8, not empty, no special tokens.
  // `after_special` is true for the first fragment and after a special token.
  virtual absl::Status EncodeFragment(std::string_view text, bool after_special,
                                      std::vector<int32_t>* out) const = 0;

  // Whether a token of this type may come out of merging plain text.
  bool IsPlainTokenType(int32_t id) const;

 private:
  // The one encoding loop: `layout` null means special parsing everywhere
  // (parse_special) or nowhere, with no cuts.
  absl::StatusOr<std::vector<int32_t>> EncodeImpl(std::string_view text, bool add_special,
                                                  bool parse_special, const TextLayout* layout,
                                                  std::vector<size_t>* ids_at_cut) const;

  SpecialTokenMatcher specials_;
};

// Built-in kinds (registered in tokenizer.cc).
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizer(VocabData vocab);
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateBpeTokenizer(VocabData vocab);

}  // namespace hearth::tok

#endif  // HEARTH_SDK_SRC_TOKENIZER_FRAGMENT_TOKENIZER_H_
