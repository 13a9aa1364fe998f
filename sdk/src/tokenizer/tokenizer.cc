// tokenizer.cc — the kind registry, vocabulary validation, and what all kinds
// share on the way out: Decode, end-of-generation ids, StreamDecoder.
#include "sdk/src/tokenizer/tokenizer.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/status.h"
#include "sdk/src/tokenizer/fragment_tokenizer.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {
namespace {

// A std::mutex, not an absl::Mutex: Debian's Abseil runs deadlock detection
// on every lock, whose first use mmaps an arena and aborts the process when
// that fails (docs/reliability.md, "Out of memory").
struct Registry {
  std::mutex mu;
  std::map<std::string, TokenizerFactory> kinds;  // guarded by mu
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry();
    std::lock_guard<std::mutex> lock(r->mu);
    // The built-in kinds. A new kind adds its file and one line here.
    r->kinds["llama"] = &CreateSpmTokenizer;  // SentencePiece BPE
    r->kinds["gpt2"] = &CreateBpeTokenizer;   // byte-level BPE
    return r;
  }();
  return *registry;
}

// Control-token texts that end a turn in common chat formats; generation
// stops on them even when the GGUF names only one EOS id.
constexpr const char* kEogTexts[] = {
    "<|eot_id|>",    "<|eom_id|>",    "<|im_end|>",
    "<end_of_turn>", "<|endoftext|>", "<｜end▁of▁sentence｜>",
};

absl::Status CheckId(int32_t id, const char* key, size_t n) {
  if (id < -1 || id >= static_cast<int64_t>(n)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " = ", id, " is out of range: the vocabulary has ", n, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace

bool RegisterTokenizerKind(std::string name, TokenizerFactory factory) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.kinds.emplace(std::move(name), factory).second;
}

std::vector<std::string> RegisteredTokenizerKinds() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& kv : r.kinds) names.push_back(kv.first);
  return names;
}

absl::Status ValidateVocab(const VocabData& v) {
  const size_t n = v.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer.ggml.tokens: the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("tokenizer.ggml.tokens: more than 2^31 tokens");
  }
  if (!v.scores.empty() && v.scores.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.scores has ", v.scores.size(),
                                                   " entries but tokenizer.ggml.tokens has ", n));
  }
  if (!v.token_types.empty() && v.token_types.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.token_type has ",
                                                   v.token_types.size(),
                                                   " entries but tokenizer.ggml.tokens has ", n));
  }
  for (size_t i = 0; i < v.token_types.size(); ++i) {
    // 0 is llama.cpp's "undefined"; treated as normal.
    if (v.token_types[i] < 0 || v.token_types[i] > kByte) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.token_type[", i,
                                                     "] = ", v.token_types[i],
                                                     " is not a token type (0..6)"));
    }
  }
  HEARTH_RETURN_IF_ERROR(CheckId(v.bos, "tokenizer.ggml.bos_token_id", n));
  HEARTH_RETURN_IF_ERROR(CheckId(v.eos, "tokenizer.ggml.eos_token_id", n));
  HEARTH_RETURN_IF_ERROR(CheckId(v.unk, "tokenizer.ggml.unknown_token_id", n));
  HEARTH_RETURN_IF_ERROR(CheckId(v.pad, "tokenizer.ggml.padding_token_id", n));
  HEARTH_RETURN_IF_ERROR(CheckId(v.eot, "tokenizer.ggml.eot_token_id", n));
  if (v.add_bos && v.bos < 0) {
    return absl::InvalidArgumentError(
        "tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id");
  }
  if (v.add_eos && v.eos < 0) {
    return absl::InvalidArgumentError(
        "tokenizer.ggml.add_eos_token is true but there is no tokenizer.ggml.eos_token_id");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(VocabData vocab) {
  HEARTH_RETURN_IF_ERROR(ValidateVocab(vocab));
  TokenizerFactory factory = nullptr;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.kinds.find(vocab.model);
    if (it != r.kinds.end()) factory = it->second;
  }
  if (factory == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer.ggml.model: unknown tokenizer kind \"", vocab.model,
                     "\" (known: ", absl::StrJoin(RegisteredTokenizerKinds(), ", "), ")"));
  }
  return factory(std::move(vocab));
}

Tokenizer::Tokenizer(VocabData vocab) : vocab_(std::move(vocab)) {
  auto add = [&](int32_t id) {
    if (id >= 0 && std::find(eog_ids_.begin(), eog_ids_.end(), id) == eog_ids_.end()) {
      eog_ids_.push_back(id);
    }
  };
  add(vocab_.eos);
  add(vocab_.eot);
  for (size_t id = 0; id < vocab_.token_types.size(); ++id) {
    if (vocab_.token_types[id] != kControl) continue;
    for (const char* text : kEogTexts) {
      if (vocab_.tokens[id] == text) add(static_cast<int32_t>(id));
    }
  }
}

bool Tokenizer::IsEog(int32_t id) const {
  return id >= 0 && std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end();
}

absl::StatusOr<std::string> Tokenizer::Decode(const std::vector<int32_t>& ids,
                                              bool render_special) const {
  std::string out;
  bool at_start = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= n_vocab()) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " at position ", i,
                                                     " is out of range: the vocabulary has ",
                                                     n_vocab(), " tokens"));
    }
    std::string piece = TokenToPiece(id, render_special);
    if (at_start && !piece.empty()) {
      at_start = false;
      if (decode_strips_leading_space_ && piece[0] == ' ') piece.erase(0, 1);
    }
    out += piece;
  }
  return out;
}

std::string StreamDecoder::Push(int32_t id) {
  pending_ += tok_.TokenToPiece(id, /*render_special=*/false);
  const size_t hold = IncompleteUtf8Suffix(pending_);
  std::string ready = SanitizeUtf8(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamDecoder::Flush() {
  std::string rest = SanitizeUtf8(pending_);
  pending_.clear();
  return rest;
}

}  // namespace hearth::tok
