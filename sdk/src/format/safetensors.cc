// safetensors.cc — parsing and validating a safetensors file (see
// safetensors.h): the streaming header parser that enforces the schema, and
// the checks of every tensor's dtype, shape and byte range against the file.
#include "sdk/src/format/safetensors.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/common/status.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/format/strict_json.h"

namespace hearth::safetensors {
namespace {

using Json = nlohmann::json;
using format::ShowText;

struct DtypeRow {
  const char* name;
  int64_t bytes;
  uint32_t hearth;
};

// The dtypes of the safetensors spec with a whole number of bytes each.
constexpr DtypeRow kDtypes[] = {
    {"BOOL", 1, kNoHearthDtype},    {"U8", 1, kNoHearthDtype},      {"I8", 1, kNoHearthDtype},
    {"F8_E5M2", 1, kNoHearthDtype}, {"F8_E4M3", 1, kNoHearthDtype}, {"F8_E8M0", 1, kNoHearthDtype},
    {"I16", 2, kNoHearthDtype},     {"U16", 2, kNoHearthDtype},     {"F16", 2, HEARTH_DTYPE_F16},
    {"BF16", 2, HEARTH_DTYPE_BF16}, {"I32", 4, HEARTH_DTYPE_I32},   {"U32", 4, kNoHearthDtype},
    {"F32", 4, HEARTH_DTYPE_F32},   {"I64", 8, kNoHearthDtype},     {"U64", 8, kNoHearthDtype},
    {"F64", 8, kNoHearthDtype},     {"C64", 8, kNoHearthDtype},
};
constexpr const char* kSubByteDtypes[] = {"F4", "F6_E2M3", "F6_E3M2"};

// One tensor entry of the header as written, before the checks that need
// the file size.
struct RawEntry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t offsets[2] = {0, 0};
  size_t n_offsets = 0;
  bool has_dtype = false, has_shape = false, has_offsets = false;
};

// SAX handler that accepts exactly the header schema. Anything else fails at
// the first event that cannot belong to it, so nesting never goes deeper
// than the schema's three levels and memory holds only the entries.
class HeaderSax {
 public:
  explicit HeaderSax(const std::string& file) : file_(file) {}

  bool null() { return Scalar("null"); }
  bool boolean(bool v) { return Scalar(v ? "a bool (true)" : "a bool (false)"); }
  bool number_integer(Json::number_integer_t v) {
    if (v >= 0) return Unsigned(static_cast<uint64_t>(v));
    return Scalar(absl::StrCat("a negative integer (", v, ")"));
  }
  bool number_unsigned(Json::number_unsigned_t v) { return Unsigned(v); }
  bool number_float(Json::number_float_t, const Json::string_t& text) {
    return Scalar(absl::StrCat("a non-integer number (", ShowText(text), ")"));
  }
  bool binary(Json::binary_t&) { return Scalar("a binary value"); }

  bool string(Json::string_t& s) {
    if (at_ == At::kMeta) {
      metadata_.emplace(std::move(meta_key_), std::move(s));
      return true;
    }
    if (at_ == At::kEntry && field_ == Field::kDtype) {
      entry_.dtype = std::move(s);
      return true;
    }
    return Scalar(absl::StrCat("a string (\"", ShowText(s), "\")"));
  }

  bool start_object(std::size_t) {
    if (at_ == At::kStart) {
      at_ = At::kTop;
      return true;
    }
    if (at_ == At::kTop) {
      if (key_ == "__metadata__") {
        at_ = At::kMeta;
      } else {
        at_ = At::kEntry;
        entry_ = RawEntry();
        entry_.name = key_;
      }
      return true;
    }
    return Scalar("an object");
  }

  bool end_object() {
    switch (at_) {
      case At::kTop:
        at_ = At::kEnd;
        return true;
      case At::kMeta:
        at_ = At::kTop;
        return true;
      case At::kEntry:
        for (auto [has, what] :
             {std::pair{entry_.has_dtype, "dtype"}, std::pair{entry_.has_shape, "shape"},
              std::pair{entry_.has_offsets, "data_offsets"}}) {
          if (!has) return Fail(absl::StrCat(Tensor(), ": '", what, "' is missing"));
        }
        entries_.push_back(std::move(entry_));
        at_ = At::kTop;
        return true;
      default:
        return Fail("unbalanced JSON object");  // the parser rules this out
    }
  }

  bool start_array(std::size_t) {
    if (at_ == At::kEntry && field_ == Field::kShape) {
      at_ = At::kShape;
      return true;
    }
    if (at_ == At::kEntry && field_ == Field::kOffsets) {
      at_ = At::kOffsets;
      return true;
    }
    return Scalar("an array");
  }

  bool end_array() {
    if (at_ == At::kOffsets && entry_.n_offsets != 2) {
      return Fail(absl::StrCat(Tensor(), ": data_offsets has ", entry_.n_offsets,
                               " element(s), expected 2 ([begin, end])"));
    }
    if (at_ != At::kShape && at_ != At::kOffsets) return Fail("unbalanced JSON array");
    at_ = At::kEntry;
    return true;
  }

  bool key(Json::string_t& k) {
    if (at_ == At::kTop) {
      if (k.empty()) return Fail("a tensor has an empty name");
      if (k.find('\0') != std::string::npos) {
        return Fail(absl::StrCat("tensor '", ShowText(k), "': name contains a NUL byte"));
      }
      if (!top_keys_.insert(k).second) {
        return Fail(k == "__metadata__"
                        ? std::string("'__metadata__' appears twice in the header")
                        : absl::StrCat("tensor '", ShowText(k), "' appears twice in the header"));
      }
      key_ = std::move(k);
      return true;
    }
    if (at_ == At::kMeta) {
      if (metadata_.count(k) != 0) {
        return Fail(absl::StrCat("__metadata__: key '", ShowText(k), "' appears twice"));
      }
      meta_key_ = std::move(k);
      return true;
    }
    // At::kEntry (the only other state in which the parser reports keys).
    bool* has = nullptr;
    if (k == "dtype") {
      field_ = Field::kDtype;
      has = &entry_.has_dtype;
    } else if (k == "shape") {
      field_ = Field::kShape;
      has = &entry_.has_shape;
    } else if (k == "data_offsets") {
      field_ = Field::kOffsets;
      has = &entry_.has_offsets;
    } else {
      return Fail(absl::StrCat(Tensor(), ": unknown key '", ShowText(k),
                               "' (expected dtype, shape, data_offsets)"));
    }
    if (*has) return Fail(absl::StrCat(Tensor(), ": '", k, "' appears twice"));
    *has = true;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    return Fail(absl::StrCat("header is not valid JSON (at byte ", position,
                             " of the header): ", format::JsonErrorText(e.what())));
  }

  const absl::Status& error() const { return error_; }
  std::vector<RawEntry>& entries() { return entries_; }
  std::map<std::string, std::string>& metadata() { return metadata_; }

 private:
  enum class At { kStart, kTop, kMeta, kEntry, kShape, kOffsets, kEnd };
  enum class Field { kDtype, kShape, kOffsets };

  bool Fail(std::string_view message) {
    if (error_.ok()) {
      error_ = absl::InvalidArgumentError(absl::StrCat(file_, ": ", Absl(message)));
    }
    return false;
  }

  std::string Tensor() const { return absl::StrCat("tensor '", ShowText(entry_.name), "'"); }

  bool Unsigned(uint64_t v) {
    if (at_ == At::kShape) {
      const size_t i = entry_.shape.size();
      if (i == kMaxDims) {
        return Fail(absl::StrCat(Tensor(), ": shape has more than ", kMaxDims, " dimensions"));
      }
      if (v > kMaxDim) {
        return Fail(absl::StrCat(Tensor(), ": shape[", i, "] = ", v, " is larger than 2^53"));
      }
      entry_.shape.push_back(v);
      return true;
    }
    if (at_ == At::kOffsets) {
      if (entry_.n_offsets == 2) {
        return Fail(absl::StrCat(Tensor(),
                                 ": data_offsets has more than 2 elements, "
                                 "expected 2 ([begin, end])"));
      }
      entry_.offsets[entry_.n_offsets++] = v;
      return true;
    }
    return Scalar(absl::StrCat("an integer (", v, ")"));
  }

  // A value of kind `kind` arrived where the schema wants something else.
  bool Scalar(std::string_view kind) {
    const std::string k(kind);
    switch (at_) {
      case At::kStart:
        return Fail(absl::StrCat("header is ", k, ", expected a JSON object"));
      case At::kTop:
        if (key_ == "__metadata__") {
          if (k == "null") return true;  // an absent metadata map
          return Fail(absl::StrCat("'__metadata__' is ", k, ", expected an object of strings"));
        }
        return Fail(absl::StrCat("tensor '", ShowText(key_), "': entry is ", k,
                                 ", expected an object with dtype, shape and data_offsets"));
      case At::kMeta:
        return Fail(absl::StrCat("__metadata__: value of '", ShowText(meta_key_), "' is ", k,
                                 ", expected a string"));
      case At::kEntry:
        if (field_ == Field::kDtype) {
          return Fail(absl::StrCat(Tensor(), ": dtype is ", k, ", expected a string"));
        }
        if (field_ == Field::kShape) {
          return Fail(absl::StrCat(Tensor(), ": shape is ", k,
                                   ", expected an array of non-negative integers"));
        }
        return Fail(absl::StrCat(Tensor(), ": data_offsets is ", k,
                                 ", expected an array of 2 non-negative integers"));
      case At::kShape:
        return Fail(absl::StrCat(Tensor(), ": shape[", entry_.shape.size(), "] is ", k,
                                 ", expected a non-negative integer"));
      case At::kOffsets:
        return Fail(absl::StrCat(Tensor(), ": data_offsets[", entry_.n_offsets, "] is ", k,
                                 ", expected a non-negative integer"));
      case At::kEnd:
        break;
    }
    return Fail(absl::StrCat("unexpected ", k, " after the header object"));
  }

  const std::string& file_;
  At at_ = At::kStart;
  Field field_ = Field::kDtype;
  std::string key_;       // current top-level key
  std::string meta_key_;  // current __metadata__ key
  RawEntry entry_;
  StringSet top_keys_;
  std::vector<RawEntry> entries_;
  std::map<std::string, std::string> metadata_;
  absl::Status error_;
};

std::string ShapeText(const std::vector<uint64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

uint64_t LoadLE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

bool DtypeInfo(std::string_view dtype, int64_t* elem_bytes, uint32_t* hearth_dtype) {
  for (const DtypeRow& row : kDtypes) {
    if (dtype == row.name) {
      *elem_bytes = row.bytes;
      *hearth_dtype = row.hearth;
      return true;
    }
  }
  return false;
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  for (int64_t d : shape) n *= d;  // validated: fits, since the bytes lie in the file
  return n;
}

absl::StatusOr<std::unique_ptr<File>> File::Open(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(format::MappedFile mapping, format::MappedFile::Map(path));
  std::unique_ptr<File> f(new File());
  f->name_ = path;
  f->base_ = mapping.data();
  f->size_ = mapping.size();
  f->mapping_ = std::move(mapping);
  HEARTH_RETURN_IF_ERROR(f->Parse());
  return f;
}

absl::StatusOr<std::unique_ptr<File>> File::FromMemory(const uint8_t* bytes, size_t size,
                                                       std::string name) {
  if (bytes == nullptr && size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": null buffer of ", size, " bytes"));
  }
  std::unique_ptr<File> f(new File());
  f->name_ = std::move(name);
  f->base_ = bytes;
  f->size_ = size;
  HEARTH_RETURN_IF_ERROR(f->Parse());
  return f;
}

const TensorInfo* File::Find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

absl::Status File::Parse() {
  const auto invalid = [&](std::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", Absl(message)));
  };
  if (size_ < 8) {
    return invalid(
        absl::StrCat("file is ", size_, " bytes, shorter than the 8-byte header length field"));
  }
  const uint64_t header_len = LoadLE64(base_);
  if (header_len == 0) return invalid("header length is 0 (the header must be a JSON object)");
  if (header_len > kMaxHeaderBytes) {
    return invalid(absl::StrCat("header length ", header_len, " is over the limit of ",
                                kMaxHeaderBytes, " bytes (100 MiB)"));
  }
  if (header_len > size_ - 8) {
    return invalid(absl::StrCat("header length ", header_len, " is past the end of the file (",
                                size_ - 8, " bytes after the length field)"));
  }
  data_offset_ = 8 + header_len;
  const uint64_t data_size = size_ - data_offset_;

  HeaderSax sax(name_);
  const char* text = reinterpret_cast<const char*>(base_ + 8);
  // The spec lets a header be padded with spaces, which the parser skips. A
  // NUL would end nlohmann's input early and hide whatever follows it; JSON
  // text never holds one (not even in a string), so any NUL is an error.
  if (const size_t nul = std::string_view(text, header_len).find('\0');
      nul != std::string_view::npos) {
    return invalid(absl::StrCat("header is not valid JSON (at byte ", nul + 1,
                                ": a NUL byte; only spaces may pad a header)"));
  }
  if (!Json::sax_parse(text, text + header_len, &sax, Json::input_format_t::json,
                       /*strict=*/true, /*ignore_comments=*/false)) {
    if (!sax.error().ok()) return sax.error();
    return invalid("header is not valid JSON");
  }
  metadata_ = std::move(sax.metadata());

  tensors_.clear();
  tensors_.reserve(sax.entries().size());
  for (RawEntry& e : sax.entries()) {
    const std::string who = absl::StrCat("tensor '", ShowText(e.name), "'");
    TensorInfo t;
    if (!DtypeInfo(e.dtype, &t.elem_bytes, &t.hearth_dtype)) {
      for (const char* sub : kSubByteDtypes) {
        if (e.dtype == sub) {
          return absl::UnimplementedError(absl::StrCat(
              name_, ": ", who, ": dtype ", sub,
              " packs several elements per byte; hearth does not read sub-byte dtypes"));
        }
      }
      std::vector<std::string> known;
      for (const DtypeRow& row : kDtypes) known.emplace_back(row.name);
      return invalid(absl::StrCat(who, ": unknown dtype '", ShowText(e.dtype),
                                  "' (expected one of ", absl::StrJoin(known, ", "), ")"));
    }
    // Bytes the shape needs, with every multiplication checked.
    uint64_t elements = 1;
    bool overflow = false;
    const bool empty = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
    if (!empty) {
      for (uint64_t d : e.shape) overflow |= __builtin_mul_overflow(elements, d, &elements);
    } else {
      elements = 0;
    }
    uint64_t bytes = 0;
    overflow |= __builtin_mul_overflow(elements, static_cast<uint64_t>(t.elem_bytes), &bytes);
    if (overflow) {
      return invalid(absl::StrCat(who, ": shape ", ShapeText(e.shape), " of ", e.dtype,
                                  " needs more than 2^64 bytes"));
    }
    const uint64_t begin = e.offsets[0], end = e.offsets[1];
    if (begin > end) {
      return invalid(
          absl::StrCat(who, ": data_offsets [", begin, ", ", end, "]: begin is after end"));
    }
    if (end - begin != bytes) {
      return invalid(absl::StrCat(who, ": data_offsets [", begin, ", ", end, "] hold ", end - begin,
                                  " bytes but shape ", ShapeText(e.shape), " of ", e.dtype,
                                  " needs ", bytes));
    }
    if (end > data_size) {
      return invalid(absl::StrCat(
          who, ": data_offsets end ", end, " is past the end of the data section (", data_size,
          " bytes from file offset ", data_offset_, "; the file is ", size_, " bytes)"));
    }
    t.name = std::move(e.name);
    t.dtype_name = std::move(e.dtype);
    t.shape.assign(e.shape.begin(), e.shape.end());  // each <= 2^53: fits in int64
    t.offset = data_offset_ + begin;
    t.size = bytes;
    t.data = bytes == 0 ? nullptr : base_ + t.offset;
    tensors_.push_back(std::move(t));
  }

  // No two non-empty byte ranges may overlap: sort by start and compare each
  // range with the furthest-reaching one before it.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors_) {
    if (t.size != 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->name < b->name;
  });
  const TensorInfo* reach = nullptr;
  for (const TensorInfo* t : by_offset) {
    if (reach != nullptr && t->offset < reach->offset + reach->size) {
      const auto range = [&](const TensorInfo* x) {
        return absl::StrCat("'", ShowText(x->name), "' (bytes [", x->offset - data_offset_, ", ",
                            x->offset - data_offset_ + x->size, "))");
      };
      return invalid(absl::StrCat("tensors ", range(reach), " and ", range(t), " overlap"));
    }
    if (reach == nullptr || t->offset + t->size > reach->offset + reach->size) reach = t;
  }

  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return absl::OkStatus();
}

}  // namespace hearth::safetensors
