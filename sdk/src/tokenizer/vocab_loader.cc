// vocab_loader.cc — LoadVocab: tokenizer.ggml.* metadata of a GGUF file into
// VocabData, with every key's type and every length and id checked.
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/checked_alloc.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::tok {
namespace {

// Prefixes the file name (the gguf getters' own errors already carry it).
absl::Status InFile(const gguf::File& file, const absl::Status& s) {
  const std::string prefix = absl::StrCat(file.name(), ": ");
  if (absl::StartsWith(s.message(), prefix)) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

// Absent keys leave *out alone; a present key of the wrong type is an error.
template <typename T>
absl::Status ReadOptional(absl::StatusOr<T> r, T* out) {
  if (r.ok()) {
    *out = *std::move(r);
    return absl::OkStatus();
  }
  return absl::IsNotFound(r.status()) ? absl::OkStatus() : r.status();
}

absl::Status ReadId(const gguf::File& file, const char* key, int32_t* id) {
  int64_t v = -1;
  HEARTH_RETURN_IF_ERROR(ReadOptional(file.GetInt(key), &v));
  if (v < -1 || v > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(key, " = ", v, " is not a token id"));
  }
  *id = static_cast<int32_t>(v);
  return absl::OkStatus();
}

absl::Status ReadStrings(const gguf::File& file, const char* key, std::vector<std::string>* out) {
  std::vector<std::string_view> views;
  HEARTH_RETURN_IF_ERROR(ReadOptional(file.GetStringArray(key), &views));
  out->assign(views.begin(), views.end());
  return absl::OkStatus();
}

// What the vocabulary's copies will take: a std::string per token and
// merge (plus the bytes of those too long to be stored inline), a score, a
// type and its int64 staging per token.
uint64_t VocabBytes(const gguf::File& file) {
  uint64_t bytes = 0;
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"}) {
    const gguf::Value* v = file.Find(key);
    if (v == nullptr) continue;
    for (std::string_view s : v->array_strings) {
      bytes += sizeof(std::string) + (s.size() > 15 ? s.size() + 1 : 0);
    }
  }
  if (const gguf::Value* tokens = file.Find("tokenizer.ggml.tokens")) {
    bytes += tokens->array_strings.size() * (sizeof(float) + sizeof(int32_t) + sizeof(int64_t));
  }
  return bytes;
}

absl::StatusOr<VocabData> Load(const gguf::File& file) {
  VocabData v;
  absl::StatusOr<std::string> model = file.GetString("tokenizer.ggml.model");
  if (absl::IsNotFound(model.status())) {
    return absl::NotFoundError("tokenizer.ggml.model is missing: the file has no tokenizer");
  }
  HEARTH_RETURN_IF_ERROR(model.status());
  v.model = *std::move(model);
  v.pre = "default";
  HEARTH_RETURN_IF_ERROR(ReadOptional(file.GetString("tokenizer.ggml.pre"), &v.pre));

  if (file.Find("tokenizer.ggml.tokens") == nullptr) {
    return absl::NotFoundError("tokenizer.ggml.tokens is missing");
  }
  HEARTH_RETURN_IF_ERROR(CheckAllocatable(VocabBytes(file), "the vocabulary (tokenizer.ggml.*)"));
  HEARTH_RETURN_IF_ERROR(ReadStrings(file, "tokenizer.ggml.tokens", &v.tokens));
  HEARTH_RETURN_IF_ERROR(ReadOptional(file.GetFloatArray("tokenizer.ggml.scores"), &v.scores));
  std::vector<int64_t> types;
  HEARTH_RETURN_IF_ERROR(ReadOptional(file.GetIntArray("tokenizer.ggml.token_type"), &types));
  v.token_types.reserve(types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] < 0 || types[i] > kByte) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.ggml.token_type[", i, "] = ", types[i], " is not a token type (0..6)"));
    }
    v.token_types.push_back(static_cast<int32_t>(types[i]));
  }
  HEARTH_RETURN_IF_ERROR(ReadStrings(file, "tokenizer.ggml.merges", &v.merges));

  HEARTH_RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.bos_token_id", &v.bos));
  HEARTH_RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.eos_token_id", &v.eos));
  HEARTH_RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.unknown_token_id", &v.unk));
  HEARTH_RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.padding_token_id", &v.pad));
  HEARTH_RETURN_IF_ERROR(ReadId(file, "tokenizer.ggml.eot_token_id", &v.eot));

  // SentencePiece models add BOS and a space prefix unless told otherwise;
  // byte-level BPE models declare what they want.
  const bool spm = v.model == "llama";
  v.add_bos = spm && v.bos >= 0;
  v.add_eos = false;
  v.add_space_prefix = spm;
  HEARTH_RETURN_IF_ERROR(ReadOptional(file.GetBool("tokenizer.ggml.add_bos_token"), &v.add_bos));
  HEARTH_RETURN_IF_ERROR(ReadOptional(file.GetBool("tokenizer.ggml.add_eos_token"), &v.add_eos));
  HEARTH_RETURN_IF_ERROR(
      ReadOptional(file.GetBool("tokenizer.ggml.add_space_prefix"), &v.add_space_prefix));

  HEARTH_RETURN_IF_ERROR(ValidateVocab(v));
  return v;
}

}  // namespace

absl::StatusOr<VocabData> LoadVocab(const gguf::File& file) {
  absl::StatusOr<VocabData> v = Load(file);
  if (!v.ok()) return InFile(file, v.status());
  return v;
}

}  // namespace hearth::tok
