// gguf_writer.cc — the GGUF v3 writer: owned metadata, the checks that keep
// the output readable by gguf.h, the header encoding, and the temp-file
// protocol that leaves either the complete file or nothing at the path.
#include "sdk/src/format/gguf_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/gguf_internal.h"

namespace hearth::gguf {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr size_t kMaxDims = 4;
// The reader's limit on key and tensor-name length (gguf.cc): what it would
// refuse is not written.
constexpr size_t kMaxNameBytes = 64 * 1024;
constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(INT64_MAX);
// Zeros for alignment padding; alignments above this are padded in pieces.
constexpr size_t kZeroBlock = 4096;

template <typename... A>
absl::Status Invalid(const A&... a) {
  return absl::InvalidArgumentError(absl::StrCat(a...));
}

// Why `name` cannot be a key or tensor name, or "" if it can.
std::string NameProblem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (name.size() > kMaxNameBytes) {
    return absl::StrCat("is ", name.size(), " bytes long; the limit is ", kMaxNameBytes);
  }
  return "";
}

std::string DimsString(const std::vector<int64_t>& ne) {
  return absl::StrCat("[", absl::StrJoin(ne, ", "), "]");
}

void PutLE(std::vector<uint8_t>* out, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PutString(std::vector<uint8_t>* out, std::string_view s) {
  PutLE(out, s.size(), 8);
  out->insert(out->end(), s.begin(), s.end());
}

uint64_t PadTo(uint64_t pos, uint64_t alignment) {
  return (alignment - pos % alignment) % alignment;
}

}  // namespace

// ---- TensorSource -------------------------------------------------------------

TensorSource TensorSource::Memory(absl::Span<const uint8_t> bytes) {
  TensorSource s;
  s.kind_ = Kind::kMemory;
  s.memory_ = bytes;
  return s;
}

TensorSource TensorSource::Buffer(std::function<absl::Status(std::vector<uint8_t>*)> fill) {
  TensorSource s;
  s.kind_ = Kind::kBuffer;
  s.fill_ = std::move(fill);
  return s;
}

TensorSource TensorSource::Chunks(std::function<absl::Status(const ChunkSink&)> produce) {
  TensorSource s;
  s.kind_ = Kind::kChunks;
  s.produce_ = std::move(produce);
  return s;
}

// ---- metadata -----------------------------------------------------------------

void Writer::Put(std::string key, OwnedValue v) {
  if (auto it = kv_index_.find(key); it != kv_index_.end()) {
    kv_[it->second].second = std::move(v);
    return;
  }
  kv_index_.emplace(key, kv_.size());
  kv_.emplace_back(std::move(key), std::move(v));
}

void Writer::SetScalar(std::string key, ValueType type, uint64_t bits) {
  OwnedValue v;
  v.type = type;
  v.bits = bits;
  Put(std::move(key), std::move(v));
}

void Writer::PutNumericArray(std::string key, ValueType elem, uint64_t count,
                             std::vector<uint8_t> le_bytes) {
  OwnedValue v;
  v.type = ValueType::kArray;
  v.array_type = elem;
  v.array_count = count;
  v.array_bytes = std::move(le_bytes);
  Put(std::move(key), std::move(v));
}

void Writer::CopyMetadataFrom(const File& src) {
  for (const auto& [key, value] : src.metadata()) SetValue(key, value);
}

void Writer::SetValue(std::string key, const Value& value) {
  OwnedValue v;
  v.type = value.type;
  switch (value.type) {
    case ValueType::kUint8:
    case ValueType::kUint16:
    case ValueType::kUint32:
    case ValueType::kUint64:
    case ValueType::kBool:
      v.bits = value.u;
      break;
    case ValueType::kInt8:
    case ValueType::kInt16:
    case ValueType::kInt32:
    case ValueType::kInt64:
      v.bits = static_cast<uint64_t>(value.i);
      break;
    case ValueType::kFloat32: {
      // The reader widened an f32 to double; narrowing it back is exact.
      const auto f = static_cast<float>(value.f);
      uint32_t b;
      std::memcpy(&b, &f, sizeof(b));
      v.bits = b;
      break;
    }
    case ValueType::kFloat64:
      std::memcpy(&v.bits, &value.f, sizeof(v.bits));
      break;
    case ValueType::kString:
      v.str = std::string(value.str);
      break;
    case ValueType::kArray:
      v.array_type = value.array_type;
      v.array_count = value.array_count;
      if (value.array_type == ValueType::kString) {
        v.array_strings.assign(value.array_strings.begin(), value.array_strings.end());
      } else if (value.array_data != nullptr) {
        const size_t n = value.array_count * ScalarBytes(value.array_type);
        v.array_bytes.assign(value.array_data, value.array_data + n);
      }
      break;
  }
  Put(std::move(key), std::move(v));
}

void Writer::SetString(std::string key, std::string value) {
  OwnedValue v;
  v.type = ValueType::kString;
  v.str = std::move(value);
  Put(std::move(key), std::move(v));
}

void Writer::SetBool(std::string key, bool value) {
  SetScalar(std::move(key), ValueType::kBool, value ? 1 : 0);
}
void Writer::SetUint8(std::string key, uint8_t value) {
  SetScalar(std::move(key), ValueType::kUint8, value);
}
void Writer::SetInt8(std::string key, int8_t value) {
  SetScalar(std::move(key), ValueType::kInt8, static_cast<uint64_t>(int64_t{value}));
}
void Writer::SetUint16(std::string key, uint16_t value) {
  SetScalar(std::move(key), ValueType::kUint16, value);
}
void Writer::SetInt16(std::string key, int16_t value) {
  SetScalar(std::move(key), ValueType::kInt16, static_cast<uint64_t>(int64_t{value}));
}
void Writer::SetUint32(std::string key, uint32_t value) {
  SetScalar(std::move(key), ValueType::kUint32, value);
}
void Writer::SetInt32(std::string key, int32_t value) {
  SetScalar(std::move(key), ValueType::kInt32, static_cast<uint64_t>(int64_t{value}));
}
void Writer::SetUint64(std::string key, uint64_t value) {
  SetScalar(std::move(key), ValueType::kUint64, value);
}
void Writer::SetInt64(std::string key, int64_t value) {
  SetScalar(std::move(key), ValueType::kInt64, static_cast<uint64_t>(value));
}
void Writer::SetFloat32(std::string key, float value) {
  uint32_t b;
  std::memcpy(&b, &value, sizeof(b));
  SetScalar(std::move(key), ValueType::kFloat32, b);
}
void Writer::SetFloat64(std::string key, double value) {
  uint64_t b;
  std::memcpy(&b, &value, sizeof(b));
  SetScalar(std::move(key), ValueType::kFloat64, b);
}

void Writer::SetStringArray(std::string key, std::vector<std::string> values) {
  OwnedValue v;
  v.type = ValueType::kArray;
  v.array_type = ValueType::kString;
  v.array_count = values.size();
  v.array_strings = std::move(values);
  Put(std::move(key), std::move(v));
}

void Writer::Remove(std::string_view key) {
  auto it = kv_index_.find(key);
  if (it == kv_index_.end()) return;
  const size_t at = it->second;
  kv_index_.erase(it);
  kv_.erase(kv_.begin() + static_cast<ptrdiff_t>(at));
  for (auto& [k, index] : kv_index_) {
    if (index > at) --index;
  }
}

bool Writer::Has(std::string_view key) const { return kv_index_.count(key) != 0; }

// ---- tensors ------------------------------------------------------------------

absl::Status Writer::AddTensor(std::string name, uint32_t ggml_type, std::vector<int64_t> ne,
                               uint64_t size_bytes, TensorSource src) {
  if (std::string problem = NameProblem(name); !problem.empty()) {
    return Invalid("tensor name '", Printable(name), "' ", problem);
  }
  const std::string what = absl::StrCat("tensor '", Printable(name), "'");
  if (auto it = tensor_index_.find(name); it != tensor_index_.end()) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, " was already added (as tensor #", it->second, ")"));
  }
  int64_t block_elems = 0, block_bytes = 0;
  if (!GgmlTypeGeometry(ggml_type, &block_elems, &block_bytes)) {
    return Invalid(what, ": ggml type ", ggml_type, " is unknown to hearth");
  }
  if (ne.empty() || ne.size() > kMaxDims) {
    return Invalid(what, ": ", ne.size(), " dimensions; a tensor has 1..", kMaxDims);
  }
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 1) return Invalid(what, ": ne[", d, "] is ", ne[d], "; it must be at least 1");
  }
  if (ne[0] % block_elems != 0) {
    return Invalid(what, ": ne[0] = ", ne[0], " is not a multiple of the ", GgmlTypeName(ggml_type),
                   " block size (", block_elems, " elements)");
  }
  // Same arithmetic as the reader: blocks per row x block bytes x outer dims.
  uint64_t elements = static_cast<uint64_t>(ne[0]);
  uint64_t expected = 0;
  bool fits = !__builtin_mul_overflow(static_cast<uint64_t>(ne[0] / block_elems),
                                      static_cast<uint64_t>(block_bytes), &expected);
  for (size_t d = 1; d < ne.size() && fits; ++d) {
    const auto n = static_cast<uint64_t>(ne[d]);
    fits = !__builtin_mul_overflow(elements, n, &elements) && elements <= kMaxInt64 &&
           !__builtin_mul_overflow(expected, n, &expected);
  }
  if (!fits) {
    return Invalid(what, ": shape ", DimsString(ne), " overflows 64-bit element or byte counts");
  }
  if (size_bytes != expected) {
    return Invalid(what, ": size ", size_bytes, " bytes does not match ", GgmlTypeName(ggml_type),
                   " ", DimsString(ne), ", which is ", expected, " bytes (", block_bytes,
                   " bytes per ", block_elems, " elements)");
  }
  switch (src.kind_) {
    case TensorSource::Kind::kMemory:
      if (src.memory_.size() != size_bytes) {
        return Invalid(what, ": the memory source holds ", src.memory_.size(),
                       " bytes; the tensor is ", size_bytes);
      }
      if (src.memory_.data() == nullptr) return Invalid(what, ": the memory source is null");
      break;
    case TensorSource::Kind::kBuffer:
      if (!src.fill_) return Invalid(what, ": the buffer callback is empty");
      break;
    case TensorSource::Kind::kChunks:
      if (!src.produce_) return Invalid(what, ": the chunk producer is empty");
      break;
  }
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back(
      PendingTensor{std::move(name), ggml_type, std::move(ne), size_bytes, std::move(src)});
  return absl::OkStatus();
}

absl::Status Writer::AddTensorFrom(const TensorInfo& t) {
  if (t.n_dims < 1 || t.n_dims > kMaxDims) {
    return Invalid("tensor '", Printable(t.name), "': n_dims ", t.n_dims, " is not 1..", kMaxDims);
  }
  std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
  return AddTensor(t.name, t.type, std::move(ne), t.size,
                   TensorSource::Memory(absl::MakeConstSpan(t.data, t.size)));
}

// ---- output -------------------------------------------------------------------

// The temp file behind WriteTo. Every write is checked (a full disk shows up
// in fwrite, fflush, fsync or fclose); unless Commit succeeds, the destructor
// closes and removes the temp file.
class Writer::Output {
 public:
  explicit Output(const std::string& path)
      : path_(path), tmp_(absl::StrCat(path, ".tmp-", ::getpid())) {}
  ~Output() {
    if (f_ != nullptr) std::fclose(f_);
    if (created_ && !committed_) std::remove(tmp_.c_str());
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  absl::Status Open() {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (f_ == nullptr) return Errno("cannot create the temp file");
    created_ = true;
    // Large writes: fewer syscalls for the many small header fields.
    std::setvbuf(f_, nullptr, _IOFBF, size_t{1} << 20);
    return absl::OkStatus();
  }

  absl::Status Write(const uint8_t* p, size_t n) {
    if (n == 0) return absl::OkStatus();
    errno = 0;
    if (std::fwrite(p, 1, n, f_) != n) return Errno("write failed");
    pos_ += n;
    return absl::OkStatus();
  }

  absl::Status Zeros(uint64_t n) {
    static const uint8_t kZeros[kZeroBlock] = {};
    while (n > 0) {
      const size_t k = n < kZeroBlock ? static_cast<size_t>(n) : kZeroBlock;
      HEARTH_RETURN_IF_ERROR(Write(kZeros, k));
      n -= k;
    }
    return absl::OkStatus();
  }

  absl::Status Commit() {
    errno = 0;
    if (std::fflush(f_) != 0) return Errno("flush failed");
    // Data reaches the disk before the rename makes it visible, so a crash
    // cannot leave a truncated file under the final name.
    if (::fsync(::fileno(f_)) != 0) return Errno("fsync failed");
    FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) return Errno("close failed");
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return Errno("cannot rename the temp file onto the destination");
    }
    committed_ = true;
    return absl::OkStatus();
  }

  uint64_t pos() const { return pos_; }

 private:
  absl::Status Errno(std::string_view what) const {
    const int err = errno != 0 ? errno : EIO;
    if (!created_) return absl::ErrnoToStatus(err, absl::StrCat(Absl(what), " ", tmp_));
    return absl::ErrnoToStatus(
        err, absl::StrCat(Absl(what), " (temp file ", tmp_, ", ", pos_, " bytes written)"));
  }

  std::string path_;
  std::string tmp_;
  FILE* f_ = nullptr;
  bool created_ = false;
  bool committed_ = false;
  uint64_t pos_ = 0;
};

absl::Status Writer::CheckMetadata(uint64_t* alignment) const {
  *alignment = kDefaultAlignment;
  for (const auto& [key, v] : kv_) {
    if (std::string problem = NameProblem(key); !problem.empty()) {
      return Invalid("metadata key '", Printable(key), "' ", problem);
    }
    if (v.type == ValueType::kArray && v.array_type == ValueType::kArray) {
      return absl::UnimplementedError(
          absl::StrCat("metadata key '", Printable(key), "': arrays of arrays are not supported"));
    }
    if (key != "general.alignment") continue;
    if (v.type != ValueType::kUint32) {
      return Invalid("metadata key 'general.alignment' has type ", ValueTypeName(v.type),
                     "; it must be u32");
    }
    if (v.bits == 0 || (v.bits & (v.bits - 1)) != 0) {
      return Invalid("metadata key 'general.alignment' is ", v.bits,
                     "; it must be a nonzero power of two");
    }
    *alignment = v.bits;
  }
  return absl::OkStatus();
}

std::vector<uint8_t> Writer::EncodeHeader(uint64_t alignment,
                                          const std::vector<uint64_t>& offsets) const {
  std::vector<uint8_t> h = {'G', 'G', 'U', 'F'};
  PutLE(&h, kVersion, 4);
  PutLE(&h, tensors_.size(), 8);
  PutLE(&h, kv_.size(), 8);
  for (const auto& [key, v] : kv_) {
    PutString(&h, key);
    PutLE(&h, static_cast<uint32_t>(v.type), 4);
    if (v.type == ValueType::kString) {
      PutString(&h, v.str);
    } else if (v.type == ValueType::kArray) {
      PutLE(&h, static_cast<uint32_t>(v.array_type), 4);
      PutLE(&h, v.array_count, 8);
      if (v.array_type == ValueType::kString) {
        for (const std::string& s : v.array_strings) PutString(&h, s);
      } else {
        h.insert(h.end(), v.array_bytes.begin(), v.array_bytes.end());
      }
    } else {
      PutLE(&h, v.bits, ScalarBytes(v.type));
    }
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    PutString(&h, t.name);
    PutLE(&h, t.ne.size(), 4);
    for (int64_t d : t.ne) PutLE(&h, static_cast<uint64_t>(d), 8);
    PutLE(&h, t.type, 4);
    PutLE(&h, offsets[i], 8);
  }
  h.resize(h.size() + PadTo(h.size(), alignment), 0);
  return h;
}

absl::Status Writer::WriteTensor(const PendingTensor& t, Output* out) const {
  switch (t.src.kind_) {
    case TensorSource::Kind::kMemory:
      return out->Write(t.src.memory_.data(), t.src.memory_.size());
    case TensorSource::Kind::kBuffer: {
      std::vector<uint8_t> buf;
      HEARTH_RETURN_IF_ERROR(t.src.fill_(&buf));
      if (buf.size() != t.size) {
        return Invalid("the buffer callback produced ", buf.size(), " bytes; ",
                       GgmlTypeName(t.type), " ", DimsString(t.ne), " is ", t.size, " bytes");
      }
      return out->Write(buf.data(), buf.size());
    }
    case TensorSource::Kind::kChunks: {
      uint64_t written = 0;
      absl::Status sink_error;
      const ChunkSink emit = [&](absl::Span<const uint8_t> bytes) -> absl::Status {
        if (!sink_error.ok()) return sink_error;
        if (bytes.size() > t.size - written) {
          sink_error = Invalid("the producer gave more than the tensor's ", t.size, " bytes (",
                               written, " + a piece of ", bytes.size(), ")");
          return sink_error;
        }
        sink_error = out->Write(bytes.data(), bytes.size());
        if (sink_error.ok()) written += bytes.size();
        return sink_error;
      };
      const absl::Status s = t.src.produce_(emit);
      // The sink's own error wins: a producer may have swallowed or replaced it.
      HEARTH_RETURN_IF_ERROR(sink_error);
      HEARTH_RETURN_IF_ERROR(s);
      if (written != t.size) {
        return Invalid("the producer gave ", written, " bytes; ", GgmlTypeName(t.type), " ",
                       DimsString(t.ne), " is ", t.size, " bytes");
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown tensor source kind");
}

absl::Status Writer::WriteTo(const std::string& path) const {
  absl::Status s = WriteFile(path);
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

absl::Status Writer::WriteFile(const std::string& path) const {
  uint64_t alignment = 0;
  HEARTH_RETURN_IF_ERROR(CheckMetadata(&alignment));
  std::vector<uint64_t> offsets;
  offsets.reserve(tensors_.size());
  uint64_t end = 0;
  for (const PendingTensor& t : tensors_) {
    uint64_t at = 0;
    if (__builtin_add_overflow(end, PadTo(end, alignment), &at) ||
        __builtin_add_overflow(at, t.size, &end)) {
      return Invalid("tensor '", Printable(t.name), "': the tensor data section overflows 64 bits");
    }
    offsets.push_back(at);
  }
  const std::vector<uint8_t> header = EncodeHeader(alignment, offsets);

  Output out(path);
  HEARTH_RETURN_IF_ERROR(out.Open());
  HEARTH_RETURN_IF_ERROR(out.Write(header.data(), header.size()));
  const uint64_t data_start = out.pos();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    absl::Status s = out.Zeros(data_start + offsets[i] - out.pos());
    if (s.ok()) s = WriteTensor(t, &out);
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("tensor '", Printable(t.name), "': ", s.message()));
    }
  }
  // Pad the last tensor too, as ggml does: the file ends on the alignment.
  HEARTH_RETURN_IF_ERROR(out.Zeros(PadTo(out.pos() - data_start, alignment)));
  return out.Commit();
}

}  // namespace hearth::gguf
