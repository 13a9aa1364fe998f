// hf_vocab.h — a Hugging Face tokenizer (tokenizer.json, with
// tokenizer_config.json and the chat template) as GGUF tokenizer.ggml.*
// metadata, in llama.cpp's convert_hf_to_gguf.py conventions:
//
//   byte-level BPE (a ByteLevel pre-tokenizer: GPT-2, Llama 3, Qwen2,
//   SmolLM2)      -> model "gpt2", tokens, token_type, merges, and `pre`
//                    named by matching the pre-tokenizer's regexes against
//                    hearth's table (tokenizer/pre_tokenizer.cc);
//   SentencePiece-style BPE (byte_fallback: Llama 2, Gemma)
//                 -> model "llama", tokens, token_type, scores (from the
//                    merge ranks, so merges happen in the same order) and
//                    add_space_prefix.
//
// Anything else (Unigram, WordPiece, an unknown pre-tokenizer) is refused
// naming the file and key: a guessed tokenizer gives plausible, wrong ids.
#ifndef HEARTH_SDK_SRC_CONVERT_HF_VOCAB_H_
#define HEARTH_SDK_SRC_CONVERT_HF_VOCAB_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "sdk/src/convert/hf_json.h"
#include "sdk/src/format/gguf_writer.h"

namespace hearth::convert {

struct VocabSummary {
  std::string model;  // "gpt2" or "llama"
  std::string pre;    // gpt2 only
  int64_t n_tokens = 0;
  bool has_chat_template = false;
};

// `config` is config.json (fallback bos/eos/pad ids); `n_rows` the rows of
// the token embedding: the token list is padded to it with "[PAD<id>]"
// unused tokens, and more tokens than rows is an error.
absl::Status AddVocabMetadata(const std::string& dir, const JsonFile& config, int64_t n_rows,
                              gguf::Writer* w, VocabSummary* summary);

}  // namespace hearth::convert

#endif  // HEARTH_SDK_SRC_CONVERT_HF_VOCAB_H_
