// gguf_writer.h — writes GGUF v3 files: metadata copied from a source File
// and edited, then tensors in the order they were added, each taken from
// memory (e.g. the source file's mapping) or produced on demand when the
// writer reaches it, so a merged model never has to exist in memory whole.
//
// The writer refuses to write what the reader (gguf.h) would refuse: keys and
// names are checked, every tensor's byte size must match its type's block
// geometry, and a producer must deliver exactly that many bytes. A file
// appears at its path only when complete: bytes go to `path.tmp-<pid>`, are
// flushed and fsync'ed, and the temp file is renamed over `path`; on any
// error it is removed and `path` is left as it was. Because the old file is
// replaced by rename, a source File mapped from `path` itself stays valid
// while its replacement is written.
//
// Typical use (`hearth export --merge`):
//
//   gguf::Writer w;
//   w.CopyMetadataFrom(*src);
//   w.SetString("general.name", "merged");
//   for (const gguf::TensorInfo& t : src->tensors()) {
//     if (IsMerged(t)) {
//       HEARTH_RETURN_IF_ERROR(w.AddTensor(t.name, gguf::kGgmlQ8_0, Dims(t), size,
//           gguf::TensorSource::Chunks([&](const gguf::ChunkSink& emit) { ... })));
//     } else {
//       HEARTH_RETURN_IF_ERROR(w.AddTensorFrom(t));
//     }
//   }
//   HEARTH_RETURN_IF_ERROR(w.WriteTo(out_path));
//
// Not thread-safe; one WriteTo per destination path at a time in a process
// (the temp name is per process).
#ifndef HEARTH_SDK_SRC_FORMAT_GGUF_WRITER_H_
#define HEARTH_SDK_SRC_FORMAT_GGUF_WRITER_H_

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/format/gguf.h"

namespace hearth::gguf {

// Takes the next piece of a tensor's bytes (pieces may be any size, are
// written in order) and returns an error when the file cannot be written or
// the pieces run past the tensor's size; a producer should return that error.
// Valid only during the producer's call.
using ChunkSink = std::function<absl::Status(absl::Span<const uint8_t> bytes)>;

// Where a tensor's bytes come from.
class TensorSource {
 public:
  // Bytes in memory that must stay valid until WriteTo returns.
  static TensorSource Memory(absl::Span<const uint8_t> bytes);
  // A callback run when the writer reaches the tensor; it fills `out` (which
  // arrives empty) with the whole tensor. Memory for one tensor at a time.
  static TensorSource Buffer(std::function<absl::Status(std::vector<uint8_t>* out)> fill);
  // A callback run when the writer reaches the tensor; it hands the bytes to
  // `emit` in pieces, so no more than one piece need exist at once.
  static TensorSource Chunks(std::function<absl::Status(const ChunkSink& emit)> produce);

 private:
  friend class Writer;
  enum class Kind { kMemory, kBuffer, kChunks };
  Kind kind_ = Kind::kMemory;
  absl::Span<const uint8_t> memory_;
  std::function<absl::Status(std::vector<uint8_t>*)> fill_;
  std::function<absl::Status(const ChunkSink&)> produce_;
};

class Writer {
 public:
  Writer() = default;
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // ---- metadata ------------------------------------------------------------
  // Keys keep the order they were first set in; setting an existing key
  // replaces its value (and type) in place. Values are copied, so `src` may
  // be closed afterwards. Invalid keys (empty, with a NUL byte, over 64 KiB)
  // are reported by WriteTo.

  // Every key of `src`, in file order, values copied verbatim (all types,
  // arrays of strings and of numbers, general.alignment included).
  void CopyMetadataFrom(const File& src);
  // One value as read from a File.
  void SetValue(std::string key, const Value& value);
  void SetString(std::string key, std::string value);
  void SetBool(std::string key, bool value);
  void SetUint8(std::string key, uint8_t value);
  void SetInt8(std::string key, int8_t value);
  void SetUint16(std::string key, uint16_t value);
  void SetInt16(std::string key, int16_t value);
  void SetUint32(std::string key, uint32_t value);
  void SetInt32(std::string key, int32_t value);
  void SetUint64(std::string key, uint64_t value);
  void SetInt64(std::string key, int64_t value);
  void SetFloat32(std::string key, float value);
  void SetFloat64(std::string key, double value);
  void SetStringArray(std::string key, std::vector<std::string> values);
  // Numeric arrays: T is one of u8/i8/u16/i16/u32/i32/u64/i64 and float/double.
  template <typename T>
  void SetArray(std::string key, const std::vector<T>& values);
  // Removes `key` if present.
  void Remove(std::string_view key);
  bool Has(std::string_view key) const;
  size_t metadata_count() const { return kv_.size(); }

  // ---- tensors -------------------------------------------------------------
  // Adds a tensor to be written after those added before it. `ne` holds 1..4
  // dimensions (ne[0] innermost, as in GGUF), each >= 1; `size_bytes` must be
  // what `ggml_type` and `ne` imply (checked with GgmlTypeGeometry), and a
  // Memory source must hold exactly that many bytes. Errors name the tensor;
  // nothing is added on error.
  absl::Status AddTensor(std::string name, uint32_t ggml_type, std::vector<int64_t> ne,
                         uint64_t size_bytes, TensorSource src);
  // Copies a tensor of a source File as it is (name, type, shape, bytes from
  // the mapping, which must outlive WriteTo).
  absl::Status AddTensorFrom(const TensorInfo& t);
  size_t tensor_count() const { return tensors_.size(); }

  // ---- output --------------------------------------------------------------
  // Writes GGUF v3 to `path`, with tensor data aligned to general.alignment
  // (a power-of-two u32 if set; otherwise 32, not written). Errors name
  // `path` and, where one is at fault, the tensor or key. Producers run in
  // tensor order, each once per call.
  absl::Status WriteTo(const std::string& path) const;

 private:
  // A metadata value owned by the writer: scalars as raw little-endian bits,
  // numeric arrays as raw little-endian elements.
  struct OwnedValue {
    ValueType type = ValueType::kUint8;
    uint64_t bits = 0;
    std::string str;
    ValueType array_type = ValueType::kUint8;
    uint64_t array_count = 0;
    std::vector<uint8_t> array_bytes;
    std::vector<std::string> array_strings;
  };
  struct PendingTensor {
    std::string name;
    uint32_t type = 0;
    std::vector<int64_t> ne;
    uint64_t size = 0;
    TensorSource src;
  };
  class Output;  // gguf_writer.cc: the temp file and its checked writes

  void Put(std::string key, OwnedValue v);
  void SetScalar(std::string key, ValueType type, uint64_t bits);
  void PutNumericArray(std::string key, ValueType elem, uint64_t count,
                       std::vector<uint8_t> le_bytes);
  absl::Status CheckMetadata(uint64_t* alignment) const;
  std::vector<uint8_t> EncodeHeader(uint64_t alignment, const std::vector<uint64_t>& offsets) const;
  absl::Status WriteFile(const std::string& path) const;  // WriteTo without the path prefix
  absl::Status WriteTensor(const PendingTensor& t, Output* out) const;

  std::vector<std::pair<std::string, OwnedValue>> kv_;
  StringMap<size_t> kv_index_;
  std::vector<PendingTensor> tensors_;
  StringMap<size_t> tensor_index_;
};

// ---- template implementation ------------------------------------------------

template <typename T>
void Writer::SetArray(std::string key, const std::vector<T>& values) {
  static_assert(std::is_integral_v<T> || std::is_same_v<T, float> || std::is_same_v<T, double>,
                "integer, float or double elements; see SetStringArray");
  static_assert(!std::is_same_v<T, bool>, "bool arrays are not supported");
  static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);
  constexpr unsigned kWidth = sizeof(T);
  ValueType elem;
  if constexpr (std::is_same_v<T, float>) {
    elem = ValueType::kFloat32;
  } else if constexpr (std::is_same_v<T, double>) {
    elem = ValueType::kFloat64;
  } else if constexpr (std::is_signed_v<T>) {
    elem = kWidth == 1   ? ValueType::kInt8
           : kWidth == 2 ? ValueType::kInt16
           : kWidth == 4 ? ValueType::kInt32
                         : ValueType::kInt64;
  } else {
    elem = kWidth == 1   ? ValueType::kUint8
           : kWidth == 2 ? ValueType::kUint16
           : kWidth == 4 ? ValueType::kUint32
                         : ValueType::kUint64;
  }
  // The element's bits through an unsigned integer of its width, then stored
  // little-endian byte by byte, so the file is the same on any host.
  using Bits =
      std::conditional_t<kWidth == 1, uint8_t,
                         std::conditional_t<kWidth == 2, uint16_t,
                                            std::conditional_t<kWidth == 4, uint32_t, uint64_t>>>;
  std::vector<uint8_t> bytes(values.size() * kWidth);
  for (size_t i = 0; i < values.size(); ++i) {
    Bits b;
    std::memcpy(&b, &values[i], kWidth);
    for (unsigned k = 0; k < kWidth; ++k) {
      bytes[i * kWidth + k] = static_cast<uint8_t>(static_cast<uint64_t>(b) >> (8 * k));
    }
  }
  PutNumericArray(std::move(key), elem, values.size(), std::move(bytes));
}

}  // namespace hearth::gguf

#endif  // HEARTH_SDK_SRC_FORMAT_GGUF_WRITER_H_
