// strict_json.cc — the duplicate-refusing, depth-bounded DOM builder over
// nlohmann's SAX parser, and the message helpers (see strict_json.h).
#include "sdk/src/format/strict_json.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/common/tables.h"

namespace hearth::format {
namespace {

using Json = nlohmann::ordered_json;

// Builds an ordered_json from SAX events. nlohmann's own parser is
// iterative, so only our stack bounds the depth. Children are appended
// straight to the parent's storage: a pointer to an open container stays
// valid because its parent gets no new element until it is closed.
class DomBuilder {
 public:
  DomBuilder(std::string_view what, int max_depth) : what_(what), max_depth_(max_depth) {}
  DomBuilder(const DomBuilder&) = delete;
  DomBuilder& operator=(const DomBuilder&) = delete;
  ~DomBuilder() { ReleaseJson(root_); }  // whatever was built and not taken

  bool null() { return Put(Json(nullptr)) != nullptr; }
  bool boolean(bool v) { return Put(Json(v)) != nullptr; }
  bool number_integer(Json::number_integer_t v) { return Put(Json(v)) != nullptr; }
  bool number_unsigned(Json::number_unsigned_t v) { return Put(Json(v)) != nullptr; }
  bool number_float(Json::number_float_t v, const Json::string_t&) {
    return Put(Json(v)) != nullptr;
  }
  bool string(Json::string_t& v) { return Put(Json(std::move(v))) != nullptr; }
  bool binary(Json::binary_t&) {  // never produced by JSON text
    error_ = absl::InvalidArgumentError(absl::StrCat(Absl(what_), ": unexpected binary value"));
    return false;
  }
  bool start_object(std::size_t) { return Open(Json::object()); }
  bool start_array(std::size_t) { return Open(Json::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(Json::string_t& k) {
    Frame& f = stack_.back();
    if (!f.keys.insert(k).second) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat(Absl(what_), ": duplicate key \"", ShowText(k), "\" ", Where()));
      return false;
    }
    pending_key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = absl::InvalidArgumentError(absl::StrCat(Absl(what_), ": invalid JSON at byte ",
                                                     position, ": ", JsonErrorText(e.what())));
    return false;
  }

  absl::Status error() const { return error_; }
  Json TakeRoot() { return std::move(root_); }

 private:
  struct Frame {
    Json* value;
    std::string name;                       // key or [index] under which it sits in its parent
    StringSet keys;                         // objects only
  };

  // Adds `v` to the open container (or makes it the root); returns it.
  Json* Put(Json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json* parent = stack_.back().value;
    if (parent->is_array()) {
      auto& arr = parent->get_ref<Json::array_t&>();
      arr.push_back(std::move(v));
      return &arr.back();
    }
    // ordered_map is a vector of pairs; its own emplace searches linearly
    // for the key, which the duplicate check above has already done.
    auto& obj = parent->get_ref<Json::object_t&>();
    using Base = std::vector<std::pair<const std::string, Json>>;
    Base& pairs = obj;
    pairs.emplace_back(std::move(pending_key_), std::move(v));
    return &pairs.back().second;
  }

  bool Open(Json&& container) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      error_ = absl::InvalidArgumentError(absl::StrCat(Absl(what_), ": JSON is nested deeper than ",
                                                       max_depth_, " levels ", Where()));
      return false;
    }
    std::string name;
    if (!stack_.empty()) {
      const Json* parent = stack_.back().value;
      name = parent->is_array() ? absl::StrCat("[", parent->size(), "]") : pending_key_;
    }
    Json* slot = Put(std::move(container));
    stack_.push_back(Frame{slot, std::move(name), {}});
    return true;
  }

  bool Close() {
    stack_.pop_back();
    return true;
  }

  // "in \"rank_pattern\"" or "at the top level", for messages.
  std::string Where() const {
    if (stack_.size() <= 1) return "at the top level";
    std::string path;
    for (size_t i = 1; i < stack_.size(); ++i) {
      const std::string& n = stack_[i].name;
      if (!path.empty() && n[0] != '[') path += '.';
      path += n;
    }
    return absl::StrCat("in \"", ShowText(path), "\"");
  }

  std::string_view what_;
  int max_depth_;
  Json root_;
  std::vector<Frame> stack_;
  std::string pending_key_;
  absl::Status error_;
};

constexpr size_t kMaxShown = 120;

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, at most U+10FFFF) that starts `s`, or 0 if there is none.
size_t Utf8SequenceLength(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  size_t len = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < len || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
  }
  return len;
}

}  // namespace

absl::StatusOr<nlohmann::ordered_json> ParseStrictJson(std::string_view text, std::string_view what,
                                                       int max_depth) {
  // nlohmann's lexer takes a NUL byte for the end of the input, so
  // `{"a":1}\0junk` would pass as `{"a":1}`. JSON text never holds a raw NUL
  // (control bytes in strings must be escaped), so any NUL is an error.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(Absl(what), ": invalid JSON at byte ", nul + 1,
                     ": a NUL byte (JSON text cannot contain one, and nothing but whitespace "
                     "may follow the value)"));
  }
  DomBuilder builder(what, max_depth);
  const char* begin = text.data();
  const bool ok = Json::sax_parse(begin, begin + text.size(), &builder, Json::input_format_t::json,
                                  /*strict=*/true,
                                  /*ignore_comments=*/false);
  if (!ok) {
    if (!builder.error().ok()) return builder.error();
    return absl::InvalidArgumentError(absl::StrCat(Absl(what), ": invalid JSON"));
  }
  return builder.TakeRoot();
}

void ReleaseJson(nlohmann::ordered_json& j) noexcept {
  // A value whose conversion from null to a container failed to allocate
  // says array or object with no container behind it: nothing to release.
  if (Json::array_t* a = j.get_ptr<Json::array_t*>(); a != nullptr) {
    for (Json& e : *a) ReleaseJson(e);
    a->clear();
  } else if (Json::object_t* o = j.get_ptr<Json::object_t*>(); o != nullptr) {
    for (auto& kv : *o) ReleaseJson(kv.second);
    o->clear();
  }
}

void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out->append(esc, sizeof esc);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

const char* JsonKind(const nlohmann::ordered_json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a bool";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a non-integer number";
    default:
      return "a binary value";
  }
}

std::string ShowText(std::string_view s) {
  size_t n = s.size();
  if (n > kMaxShown) {
    n = kMaxShown;
    // Back up over (at most 3) UTF-8 continuation bytes so the cut keeps
    // whole characters.
    for (int k = 0; k < 3 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80; ++k) --n;
  }
  std::string out;
  out.reserve(n + 8);
  for (size_t i = 0; i < n;) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
      ++i;
    } else if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (const size_t len = Utf8SequenceLength(s.substr(i, n - i)); len > 0) {
      out.append(s.data() + i, len);
      i += len;
    } else {  // not UTF-8: messages must stay valid UTF-8 for every client
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
      ++i;
    }
  }
  if (n < s.size()) absl::StrAppend(&out, "... (", s.size(), " bytes)");
  return out;
}

std::string JsonErrorText(const char* what) {
  std::string_view msg(what);
  // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
  if (!msg.empty() && msg[0] == '[') {
    const size_t close = msg.find("] ");
    if (close != std::string_view::npos) msg.remove_prefix(close + 2);
  }
  return ShowText(msg);
}

}  // namespace hearth::format
