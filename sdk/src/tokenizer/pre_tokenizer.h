// pre_tokenizer.h — the named pre-tokenizers of byte-level BPE vocabularies
// (`tokenizer.ggml.pre`): each name stands for a sequence of regexes that cut
// text into the pieces BPE merges within.
#ifndef HEARTH_SDK_SRC_TOKENIZER_PRE_TOKENIZER_H_
#define HEARTH_SDK_SRC_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/tokenizer/codepoint_regex.h"

namespace hearth::tok {

class PreTokenizer {
 public:
  // INVALID_ARGUMENT naming `name` (and the key tokenizer.ggml.pre) if unknown.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(std::string_view name);

  // Cuts valid UTF-8 `text` into pieces (views into `text`, in order, covering
  // it exactly). Each regex of the sequence splits every piece the previous
  // one produced into its matches and the gaps between them.
  std::vector<std::string_view> Split(std::string_view text) const;

  // The canonical name (aliases resolve to it), e.g. "gpt2" for "gpt-2".
  const std::string& name() const { return name_; }
  // Llama 3 style: a piece that is itself a token is emitted whole, without
  // running merges (HF tokenizers' BPE `ignore_merges`).
  bool ignore_merges() const { return ignore_merges_; }

  // Every accepted `tokenizer.ggml.pre` value, for docs and error messages.
  static std::vector<std::string> KnownNames();

  // The canonical name of the pre-tokenizer that is exactly this regex
  // sequence (as a tokenizer.json spells it), or "" if none is; for
  // `hearth convert`. *ignore_merges gets that pre-tokenizer's setting.
  static std::string NameForRegexes(const std::vector<std::string>& regexes, bool* ignore_merges);

 private:
  PreTokenizer() = default;
  std::string name_;
  bool ignore_merges_ = false;
  std::vector<std::unique_ptr<CodepointRegex>> regexes_;
};

}  // namespace hearth::tok

#endif  // HEARTH_SDK_SRC_TOKENIZER_PRE_TOKENIZER_H_
