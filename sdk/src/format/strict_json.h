// strict_json.h — JSON for hearth's readers, on nlohmann::json without
// exceptions: a DOM parser for small config files (adapter_config.json) that
// refuses duplicate keys and deep nesting, and the helpers that quote
// file-supplied text in error messages (shared with the streaming
// safetensors header parser).
//
// Why not json::parse: it keeps the last of two equal keys silently (a file
// could then mean different things to hearth and to Python), and a document
// of a million '[' builds a million nested values.
#ifndef HEARTH_SDK_SRC_FORMAT_STRICT_JSON_H_
#define HEARTH_SDK_SRC_FORMAT_STRICT_JSON_H_

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace hearth::format {

inline constexpr int kMaxJsonDepth = 64;

// Parses `text` as exactly one JSON value (RFC 8259: UTF-8, no comments, no
// NaN) and nothing after it but whitespace. Objects keep file order.
// INVALID_ARGUMENT on a syntax error (with line and column), a NUL byte
// anywhere, a duplicate key (named, with the object it is in) or nesting
// deeper than `max_depth`; every message starts with `what`.
absl::StatusOr<nlohmann::ordered_json> ParseStrictJson(std::string_view text, std::string_view what,
                                                       int max_depth = kMaxJsonDepth);

// Empties `j` from the leaves up, so that destroying it allocates nothing.
// nlohmann's ~basic_json (3.11) moves the children of a non-empty array or
// object onto a heap-allocated stack first; a std::bad_alloc there, in a
// noexcept destructor, ends the process (std::terminate) when memory is
// short. Destroying an empty container or a scalar allocates nothing.
// Recursive: for documents no deeper than ParseStrictJson allows.
void ReleaseJson(nlohmann::ordered_json& j) noexcept;

// Appends `s` as a JSON string literal (quotes, backslashes and control
// characters escaped; other bytes as they are). For JSON that hearth writes
// as text: building an nlohmann::ordered_json allocates in places where a
// failure ends the process (its destructor; its object's vector of pairs,
// which copies values when it grows).
void AppendJsonString(std::string* out, std::string_view s);

// Calls ReleaseJson on a document when it goes out of scope: declare it
// right after the document (or the StatusOr holding it).
class JsonReleaser {
 public:
  explicit JsonReleaser(nlohmann::ordered_json* j) : j_(j) {}
  explicit JsonReleaser(absl::StatusOr<nlohmann::ordered_json>* j) : j_(j->ok() ? &**j : nullptr) {}
  JsonReleaser(const JsonReleaser&) = delete;
  JsonReleaser& operator=(const JsonReleaser&) = delete;
  ~JsonReleaser() {
    if (j_ != nullptr) ReleaseJson(*j_);
  }

 private:
  nlohmann::ordered_json* j_;
};

// "a string", "an integer", "null", … for "x is <kind>, expected …".
const char* JsonKind(const nlohmann::ordered_json& v);

// File-supplied text for an error message: control bytes escaped, capped at
// 120 bytes (cut at a UTF-8 boundary, with the full length noted).
std::string ShowText(std::string_view s);

// A syntax error from nlohmann without its "[json.exception.parse_error.101]"
// prefix, capped like ShowText.
std::string JsonErrorText(const char* what);

}  // namespace hearth::format

#endif  // HEARTH_SDK_SRC_FORMAT_STRICT_JSON_H_
