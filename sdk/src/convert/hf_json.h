// hf_json.h — the JSON files of a Hugging Face model directory (config.json,
// tokenizer.json, tokenizer_config.json, model.safetensors.index.json), read
// strictly (format/strict_json.h) and queried with errors that name the file
// and the key: "config.json: 'num_attention_heads' is a string, expected an
// integer".
#ifndef HEARTH_SDK_SRC_CONVERT_HF_JSON_H_
#define HEARTH_SDK_SRC_CONVERT_HF_JSON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sdk/src/format/strict_json.h"

namespace hearth::convert {

using Json = nlohmann::ordered_json;

// A parsed file and the name errors use for it ("config.json").
struct JsonFile {
  JsonFile() = default;
  JsonFile(JsonFile&&) = default;
  JsonFile& operator=(JsonFile&&) = default;
  ~JsonFile() { format::ReleaseJson(root); }  // see ReleaseJson

  std::string name;
  Json root;
};

// Reads and parses `dir`/`name`. NOT_FOUND (naming the file) when absent.
absl::StatusOr<JsonFile> ReadJsonFile(const std::string& dir, const std::string& name);

// Whether `dir`/`name` exists.
bool FileExists(const std::string& dir, const std::string& name);

// Typed members of an object `obj` found at `path` (a key path for
// messages, e.g. "rope_scaling"; "" for the root). Absent or null keys give
// std::nullopt from the Optional getters and INVALID_ARGUMENT naming file
// and key from the Required ones; a value of the wrong type is always an
// error.
absl::StatusOr<std::optional<int64_t>> OptionalInt(const JsonFile& f, const Json& obj,
                                                   const std::string& path, const char* key);
absl::StatusOr<int64_t> RequiredInt(const JsonFile& f, const Json& obj, const std::string& path,
                                    const char* key, int64_t lo, int64_t hi);
absl::StatusOr<std::optional<double>> OptionalNumber(const JsonFile& f, const Json& obj,
                                                     const std::string& path, const char* key);
absl::StatusOr<std::optional<std::string>> OptionalString(const JsonFile& f, const Json& obj,
                                                          const std::string& path, const char* key);
absl::StatusOr<std::optional<bool>> OptionalBool(const JsonFile& f, const Json& obj,
                                                 const std::string& path, const char* key);

// "config.json: 'rope_scaling.factor'" — the prefix of a message about a key.
std::string KeyRef(const JsonFile& f, const std::string& path, const char* key);

}  // namespace hearth::convert

#endif  // HEARTH_SDK_SRC_CONVERT_HF_JSON_H_
