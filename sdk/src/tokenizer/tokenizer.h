// tokenizer.h — text <-> token ids for the tokenizers GGUF files declare.
//
// Kinds register themselves by `tokenizer.ggml.model` name ("llama" =
// SentencePiece BPE, "gpt2" = byte-level BPE with a named pre-tokenizer).
// A Tokenizer is immutable after creation and safe to share between threads.
#ifndef HEARTH_SDK_SRC_TOKENIZER_TOKENIZER_H_
#define HEARTH_SDK_SRC_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/format/gguf.h"

namespace hearth::tok {

// How Tokenizer::EncodeLayout treats parts of one text. A chat or training
// text mixes markup the model was trained on (`<start_of_turn>`, parsed as
// control tokens) with what a user wrote (plain text, even where it spells a
// control token), and a training example must know which ids came from which
// part.
struct TextLayout {
  // Byte ranges [first, second) where control and unknown token texts become
  // their ids; elsewhere they are plain text. Sorted, not overlapping. A
  // token text is parsed only if it lies wholly inside one range.
  std::vector<std::pair<size_t, size_t>> special;
  // Byte offsets, sorted, where encoding starts afresh: no id spans one, and
  // a SentencePiece space prefix is not added there (the text goes on). Each
  // must fall on a UTF-8 character boundary.
  std::vector<size_t> cuts;
};

// Token types as GGUF stores them (tokenizer.ggml.token_type).
enum TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Everything a tokenizer needs, read from GGUF metadata (or built by tests).
struct VocabData {
  std::string model;  // tokenizer.ggml.model: "llama", "gpt2", …
  std::string pre;    // tokenizer.ggml.pre: "llama-bpe", "qwen2", … ("default" if absent)
  std::vector<std::string> tokens;
  std::vector<float> scores;         // may be empty (BPE)
  std::vector<int32_t> token_types;  // may be empty (all normal)
  std::vector<std::string> merges;   // BPE only: "a b" per line
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // SPM: tokenizer.ggml.add_space_prefix
};

// Reads tokenizer.ggml.* from `file`; errors name the key that is bad
// (missing tokens, scores of the wrong length or type, special ids out of range).
absl::StatusOr<VocabData> LoadVocab(const gguf::File& file);

// Checks what every kind relies on: tokens present, scores/token_type as long
// as tokens, token types known, special ids in range, add_bos/add_eos backed
// by an id. Errors name the GGUF key the field comes from.
absl::Status ValidateVocab(const VocabData& vocab);

class Tokenizer {
 public:
  // Validates `vocab`, then builds the kind registered under vocab.model;
  // an unknown kind is INVALID_ARGUMENT naming tokenizer.ggml.model.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(VocabData vocab);
  virtual ~Tokenizer() = default;

  // add_special: BOS/EOS per the vocab's add_bos/add_eos.
  // parse_special: control (and unknown) token texts in `text` map to their
  // ids; without it they are plain text. User-defined tokens map to their ids
  // either way, as in SentencePiece, HF tokenizers and llama.cpp (they are
  // pieces of the vocabulary, not markup). Longest match first.
  // Invalid UTF-8 in `text` is INVALID_ARGUMENT naming the byte offset.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special,
                                                      bool parse_special) const = 0;

  // Encode with per-range special parsing and forced cuts (see TextLayout).
  // With no cuts and one range over the whole text this is Encode(text,
  // add_special, true); with no ranges, Encode(text, add_special, false).
  // (*ids_at_cut)[i], when asked for, is the number of ids before cut i
  // (BOS included). A cut or range past the end, out of order, or inside a
  // UTF-8 character is INVALID_ARGUMENT.
  virtual absl::StatusOr<std::vector<int32_t>> EncodeLayout(
      std::string_view text, bool add_special, const TextLayout& layout,
      std::vector<size_t>* ids_at_cut) const = 0;

  // The raw bytes a token stands for once decoded: SPM "▁" becomes " ",
  // <0xNN> byte tokens become that byte, GPT-2 byte-level chars become bytes.
  // Control tokens give "" unless render_special. An id out of range gives ""
  // (Decode reports it as an error).
  virtual std::string TokenToPiece(int32_t id, bool render_special) const = 0;

  // Concatenated pieces (raw bytes: ids that split a character give invalid
  // UTF-8; StreamDecoder is the sanitizing path). SPM drops the leading space
  // the encoder added (once, from the first piece that renders to something).
  // An id out of range is INVALID_ARGUMENT naming the id and position.
  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids, bool render_special) const;

  const VocabData& vocab() const { return vocab_; }
  int32_t n_vocab() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  // End of generation: eos, eot, and control tokens such as <|im_end|>, <end_of_turn>.
  bool IsEog(int32_t id) const;
  // "llama (SentencePiece BPE)" etc., for `hearth info`.
  virtual std::string Describe() const = 0;

 protected:
  explicit Tokenizer(VocabData vocab);
  VocabData vocab_;
  std::vector<int32_t> eog_ids_;
  // Set by kinds whose encoder prefixes a space (SPM with add_space_prefix).
  bool decode_strips_leading_space_ = false;
};

// The registry of kinds, keyed by tokenizer.ggml.model. The built-in kinds
// ("llama", "gpt2") are listed in tokenizer.cc; RegisterTokenizerKind adds
// others at run time (returns false if the name is taken).
using TokenizerFactory = absl::StatusOr<std::unique_ptr<Tokenizer>> (*)(VocabData vocab);
bool RegisterTokenizerKind(std::string name, TokenizerFactory factory);
std::vector<std::string> RegisteredTokenizerKinds();

// Turns a stream of token ids into UTF-8 text that never splits a code point:
// bytes of an incomplete sequence are held until the next token completes them.
// Pieces are rendered as TokenToPiece(id, false): no leading-space stripping,
// since generated text continues a prompt.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  // Returns the complete UTF-8 text that this token made available. Bytes
  // that can never become valid UTF-8 come out as U+FFFD at once.
  std::string Push(int32_t id);
  // Whatever is still held (invalid sequences become U+FFFD).
  std::string Flush();

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

}  // namespace hearth::tok

#endif  // HEARTH_SDK_SRC_TOKENIZER_TOKENIZER_H_
