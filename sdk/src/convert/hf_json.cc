// hf_json.cc — strict JSON files with file-and-key errors (see hf_json.h).
#include "sdk/src/convert/hf_json.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/regular_file.h"
#include "sdk/src/format/strict_json.h"

namespace hearth::convert {
namespace {

// tokenizer.json of a 256k-token vocabulary is about 35 MB.
constexpr uint64_t kMaxJsonBytes = uint64_t{512} << 20;

absl::StatusOr<const Json*> Member(const JsonFile& f, const Json& obj, const std::string& path,
                                   const char* key) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.name, ": '", path, "' is ", format::JsonKind(obj), ", expected an object"));
  }
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status WrongType(const JsonFile& f, const std::string& path, const char* key, const Json& v,
                       const char* expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(KeyRef(f, path, key), " is ", format::JsonKind(v), ", expected ", expected));
}

}  // namespace

std::string KeyRef(const JsonFile& f, const std::string& path, const char* key) {
  return absl::StrCat(f.name, ": '", path.empty() ? "" : path + ".", key, "'");
}

bool FileExists(const std::string& dir, const std::string& name) {
  struct stat st;
  return ::stat(absl::StrCat(dir, "/", name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<JsonFile> ReadJsonFile(const std::string& dir, const std::string& name) {
  const std::string path = absl::StrCat(dir, "/", name);
  std::string text, error;
  int err_no = 0;
  if (!format::ReadRegularFile(path, kMaxJsonBytes, &text, &error, &err_no)) {
    if (err_no == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InvalidArgumentError(error);
  }
  JsonFile f;
  f.name = name;
  HEARTH_ASSIGN_OR_RETURN(f.root, format::ParseStrictJson(text, path));
  if (!f.root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the top level is ", format::JsonKind(f.root), ", expected an object"));
  }
  return f;
}

absl::StatusOr<std::optional<int64_t>> OptionalInt(const JsonFile& f, const Json& obj,
                                                   const std::string& path, const char* key) {
  HEARTH_ASSIGN_OR_RETURN(const Json* v, Member(f, obj, path, key));
  if (v == nullptr) return std::optional<int64_t>();
  if (v->is_number_integer()) return std::optional<int64_t>(v->get<int64_t>());
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX))
      return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  return WrongType(f, path, key, *v, "an integer");
}

absl::StatusOr<int64_t> RequiredInt(const JsonFile& f, const Json& obj, const std::string& path,
                                    const char* key, int64_t lo, int64_t hi) {
  HEARTH_ASSIGN_OR_RETURN(std::optional<int64_t> v, OptionalInt(f, obj, path, key));
  if (!v) return absl::InvalidArgumentError(absl::StrCat(KeyRef(f, path, key), " is missing"));
  if (*v < lo || *v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(KeyRef(f, path, key), " = ", *v, " is outside [", lo, ", ", hi, "]"));
  }
  return *v;
}

absl::StatusOr<std::optional<double>> OptionalNumber(const JsonFile& f, const Json& obj,
                                                     const std::string& path, const char* key) {
  HEARTH_ASSIGN_OR_RETURN(const Json* v, Member(f, obj, path, key));
  if (v == nullptr) return std::optional<double>();
  if (!v->is_number()) return WrongType(f, path, key, *v, "a number");
  return std::optional<double>(v->get<double>());
}

absl::StatusOr<std::optional<std::string>> OptionalString(const JsonFile& f, const Json& obj,
                                                          const std::string& path,
                                                          const char* key) {
  HEARTH_ASSIGN_OR_RETURN(const Json* v, Member(f, obj, path, key));
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return WrongType(f, path, key, *v, "a string");
  return std::optional<std::string>(v->get<std::string>());
}

absl::StatusOr<std::optional<bool>> OptionalBool(const JsonFile& f, const Json& obj,
                                                 const std::string& path, const char* key) {
  HEARTH_ASSIGN_OR_RETURN(const Json* v, Member(f, obj, path, key));
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return WrongType(f, path, key, *v, "true or false");
  return std::optional<bool>(v->get<bool>());
}

}  // namespace hearth::convert
