// gguf_builder.h — builds GGUF images in memory for tests, valid or broken
// on purpose.
//
// Written from the GGUF spec and independent of the reader (its own type
// numbering and its own little-endian writer), so a test that builds with it
// and parses with hearth::gguf checks the reader against the spec rather than
// against itself. Typical use:
//
//   GgufBuilder b;                      // version 3, alignment 32
//   b.AddString("general.architecture", "llama").AddU32("llama.block_count", 2);
//   b.AddTensor("tok_embd.weight", GgufBuilder::kF32, {4, 3});  // 48 bytes, patterned
//   std::vector<uint8_t> img = b.Build();
//   GgufBuilder::PutU64(&img, b.layout().tensors[0].offset, 7);  // corrupt a field
//
// Tensors are laid out in order at multiples of the layout alignment, with
// no padding after the last one (so any truncation cuts real data).
#ifndef HEARTH_TESTS_UNIT_GGUF_BUILDER_H_
#define HEARTH_TESTS_UNIT_GGUF_BUILDER_H_

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hearth::testing {

class GgufBuilder {
 public:
  // GGUF metadata value types, numbered as in the spec.
  enum ValueType : uint32_t {
    kU8 = 0,
    kI8 = 1,
    kU16 = 2,
    kI16 = 3,
    kU32 = 4,
    kI32 = 5,
    kF32 = 6,
    kBool = 7,
    kString = 8,
    kArray = 9,
    kU64 = 10,
    kI64 = 11,
    kF64 = 12,
  };
  // ggml tensor types, numbered as in ggml.
  enum TensorType : uint32_t {
    kTF32 = 0,
    kTF16 = 1,
    kTQ4_0 = 2,
    kTQ4_1 = 3,
    kTQ5_0 = 6,
    kTQ5_1 = 7,
    kTQ8_0 = 8,
    kTQ8_1 = 9,
    kTQ2_K = 10,
    kTQ3_K = 11,
    kTQ4_K = 12,
    kTQ5_K = 13,
    kTQ6_K = 14,
    kTQ8_K = 15,
    kTI8 = 24,
    kTI16 = 25,
    kTI32 = 26,
    kTI64 = 27,
    kTF64 = 28,
    kTBF16 = 30,
  };

  // Where each field landed in the last Build(), for patching.
  struct KvFields {
    size_t key_len = 0;  // uint64 key length
    size_t type = 0;     // uint32 value type
    size_t value = 0;    // first byte of the value
  };
  struct TensorFields {
    size_t name_len = 0;
    size_t n_dims = 0;
    size_t dims = 0;  // first uint64 dimension
    size_t type = 0;
    size_t offset = 0;
    uint64_t data_offset = 0;  // relative offset written for the tensor
  };
  struct Layout {
    size_t magic = 0, version = 4, tensor_count = 8, kv_count = 16;
    std::vector<KvFields> kvs;
    std::vector<TensorFields> tensors;
    size_t end_of_infos = 0;
    size_t data = 0;  // absolute start of the data section
  };

  explicit GgufBuilder(uint32_t version = 3) : version_(version) {}

  // ---- header -------------------------------------------------------------
  GgufBuilder& Version(uint32_t v) {
    version_ = v;
    return *this;
  }
  GgufBuilder& Magic(std::string m) {
    magic_ = std::move(m);
    return *this;
  }
  GgufBuilder& TensorCount(uint64_t n) {
    tensor_count_ = n;
    return *this;
  }  // overrides
  GgufBuilder& KvCount(uint64_t n) {
    kv_count_ = n;
    return *this;
  }  // overrides
  // Adds `general.alignment` (u32) and lays tensors out at `a`.
  GgufBuilder& Alignment(uint32_t a) {
    AddU32("general.alignment", a);
    if (a != 0) layout_alignment_ = a;
    return *this;
  }
  // Layout only, no key: for images whose key and layout disagree.
  GgufBuilder& LayoutAlignment(uint64_t a) {
    layout_alignment_ = a;
    return *this;
  }
  // Without padding after the tensor infos (what vocab-only writers emit).
  GgufBuilder& NoPadding() {
    pad_ = false;
    return *this;
  }
  // Forces the data section to `n` bytes (cuts or zero-extends it).
  GgufBuilder& DataSectionSize(uint64_t n) {
    data_size_ = n;
    return *this;
  }

  // ---- metadata -----------------------------------------------------------
  GgufBuilder& AddU8(const std::string& k, uint8_t v) { return Scalar(k, kU8, v); }
  GgufBuilder& AddI8(const std::string& k, int8_t v) { return Scalar(k, kI8, v); }
  GgufBuilder& AddU16(const std::string& k, uint16_t v) { return Scalar(k, kU16, v); }
  GgufBuilder& AddI16(const std::string& k, int16_t v) { return Scalar(k, kI16, v); }
  GgufBuilder& AddU32(const std::string& k, uint32_t v) { return Scalar(k, kU32, v); }
  GgufBuilder& AddI32(const std::string& k, int32_t v) { return Scalar(k, kI32, v); }
  GgufBuilder& AddU64(const std::string& k, uint64_t v) { return Scalar(k, kU64, v); }
  GgufBuilder& AddI64(const std::string& k, int64_t v) { return Scalar(k, kI64, v); }
  GgufBuilder& AddF32(const std::string& k, float v) { return Scalar(k, kF32, v); }
  GgufBuilder& AddF64(const std::string& k, double v) { return Scalar(k, kF64, v); }
  GgufBuilder& AddBool(const std::string& k, bool v) { return Scalar(k, kBool, v ? 1 : 0); }
  GgufBuilder& AddString(const std::string& k, const std::string& v) {
    return AddRaw(k, kString, Str(v));
  }
  // Numeric array; each value is converted to `elem` (floats as IEEE bits).
  template <typename T>
  GgufBuilder& AddArray(const std::string& k, ValueType elem, const std::vector<T>& values) {
    static_assert(std::is_arithmetic_v<T>, "numeric arrays only; see AddStringArray");
    std::vector<uint8_t> v = Cat({U32(elem), U64(values.size())});
    for (const T& x : values) Append(&v, Encode(elem, x));
    return AddRaw(k, kArray, std::move(v));
  }
  GgufBuilder& AddStringArray(const std::string& k, const std::vector<std::string>& values) {
    std::vector<uint8_t> v = Cat({U32(kString), U64(values.size())});
    for (const std::string& s : values) Append(&v, Str(s));
    return AddRaw(k, kArray, std::move(v));
  }
  // Any type id followed by exactly `value` bytes: for corrupt values.
  GgufBuilder& AddRaw(const std::string& k, uint32_t type, std::vector<uint8_t> value) {
    kvs_.push_back({Str(k), type, std::move(value)});
    return *this;
  }
  // A key given as raw bytes (including its uint64 length): for corrupt keys.
  GgufBuilder& AddRawKey(std::vector<uint8_t> key_bytes, uint32_t type,
                         std::vector<uint8_t> value) {
    kvs_.push_back({std::move(key_bytes), type, std::move(value)});
    return *this;
  }

  // ---- tensors ------------------------------------------------------------
  // `data` is written as given; its size is not checked against the shape.
  GgufBuilder& AddTensor(const std::string& name, uint32_t type, std::vector<uint64_t> dims,
                         std::vector<uint8_t> data) {
    tensors_.push_back({name, type, std::move(dims), std::move(data), std::nullopt});
    return *this;
  }
  // Fills the data with a pattern; the byte size follows from type and dims.
  GgufBuilder& AddTensor(const std::string& name, uint32_t type, std::vector<uint64_t> dims) {
    const uint64_t n = ByteSize(type, dims);
    std::vector<uint8_t> data(n);
    for (uint64_t i = 0; i < n; ++i)
      data[i] = static_cast<uint8_t>(i * 31 + tensors_.size() * 7 + 1);
    return AddTensor(name, type, std::move(dims), std::move(data));
  }
  // At an explicit offset (relative to the data section); data written there
  // unless the offset is beyond kMaxWrittenOffset.
  GgufBuilder& AddTensorAt(const std::string& name, uint32_t type, std::vector<uint64_t> dims,
                           uint64_t offset, std::vector<uint8_t> data = {}) {
    tensors_.push_back({name, type, std::move(dims), std::move(data), offset});
    return *this;
  }

  // ---- output -------------------------------------------------------------
  std::vector<uint8_t> Build() {
    layout_ = Layout();
    std::vector<uint8_t> out(magic_.begin(), magic_.end());
    layout_.version = out.size();
    Append(&out, U32(version_));
    layout_.tensor_count = out.size();
    Append(&out, U64(tensor_count_ ? *tensor_count_ : tensors_.size()));
    layout_.kv_count = out.size();
    Append(&out, U64(kv_count_ ? *kv_count_ : kvs_.size()));
    for (const Kv& kv : kvs_) {
      KvFields f;
      f.key_len = out.size();
      Append(&out, kv.key);
      f.type = out.size();
      Append(&out, U32(kv.type));
      f.value = out.size();
      Append(&out, kv.value);
      layout_.kvs.push_back(f);
    }
    // Assign relative offsets, then write the infos.
    std::vector<uint64_t> offsets;
    uint64_t cursor = 0;
    for (const Tensor& t : tensors_) {
      if (t.offset) {
        offsets.push_back(*t.offset);
      } else {
        cursor = AlignUp(cursor, layout_alignment_);
        offsets.push_back(cursor);
        cursor += t.data.size();
      }
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      TensorFields f;
      f.name_len = out.size();
      Append(&out, Str(t.name));
      f.n_dims = out.size();
      Append(&out, U32(static_cast<uint32_t>(t.dims.size())));
      f.dims = out.size();
      for (uint64_t d : t.dims) Append(&out, U64(d));
      f.type = out.size();
      Append(&out, U32(t.type));
      f.offset = out.size();
      Append(&out, U64(offsets[i]));
      f.data_offset = offsets[i];
      layout_.tensors.push_back(f);
    }
    layout_.end_of_infos = out.size();
    if (pad_) out.resize(AlignUp(out.size(), layout_alignment_), 0);
    layout_.data = out.size();
    std::vector<uint8_t> data;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const std::vector<uint8_t>& d = tensors_[i].data;
      // Far-away offsets (tests of offset checks) get no data written.
      if (d.empty() || offsets[i] > kMaxWrittenOffset) continue;
      const uint64_t end = offsets[i] + d.size();
      if (end > data.size()) data.resize(end, 0);
      std::copy(d.begin(), d.end(), data.begin() + static_cast<ptrdiff_t>(offsets[i]));
    }
    if (data_size_) data.resize(*data_size_, 0);
    Append(&out, data);
    return out;
  }
  const Layout& layout() const { return layout_; }

  // ---- byte helpers -------------------------------------------------------
  static std::vector<uint8_t> LE(uint64_t v, unsigned n) {
    std::vector<uint8_t> b(n);
    for (unsigned i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    return b;
  }
  static std::vector<uint8_t> U32(uint32_t v) { return LE(v, 4); }
  static std::vector<uint8_t> U64(uint64_t v) { return LE(v, 8); }
  static std::vector<uint8_t> Str(const std::string& s) {
    // Sized once: GCC 12 misreads insert() after an 8-byte vector (-Warray-bounds).
    std::vector<uint8_t> b(8 + s.size());
    for (unsigned i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(uint64_t{s.size()} >> (8 * i));
    std::copy(s.begin(), s.end(), b.begin() + 8);
    return b;
  }
  static std::vector<uint8_t> Cat(std::initializer_list<std::vector<uint8_t>> parts) {
    std::vector<uint8_t> out;
    for (const auto& p : parts) Append(&out, p);
    return out;
  }
  static void PutU32(std::vector<uint8_t>* img, size_t at, uint32_t v) { Put(img, at, v, 4); }
  static void PutU64(std::vector<uint8_t>* img, size_t at, uint64_t v) { Put(img, at, v, 8); }
  static bool WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    return std::fclose(f) == 0 && ok;
  }
  // Bytes of a tensor per ggml's block geometry (0 for unknown types).
  static uint64_t ByteSize(uint32_t type, const std::vector<uint64_t>& dims) {
    uint64_t block_elems = 1, block_bytes = 0;
    switch (type) {
      case kTF32:
      case kTI32:
        block_bytes = 4;
        break;
      case kTF16:
      case kTBF16:
      case kTI16:
        block_bytes = 2;
        break;
      case kTI8:
        block_bytes = 1;
        break;
      case kTI64:
      case kTF64:
        block_bytes = 8;
        break;
      case kTQ4_0:
        block_elems = 32;
        block_bytes = 18;
        break;
      case kTQ4_1:
        block_elems = 32;
        block_bytes = 20;
        break;
      case kTQ5_0:
        block_elems = 32;
        block_bytes = 22;
        break;
      case kTQ5_1:
        block_elems = 32;
        block_bytes = 24;
        break;
      case kTQ8_0:
        block_elems = 32;
        block_bytes = 34;
        break;
      case kTQ8_1:
        block_elems = 32;
        block_bytes = 36;
        break;
      case kTQ2_K:
        block_elems = 256;
        block_bytes = 84;
        break;
      case kTQ3_K:
        block_elems = 256;
        block_bytes = 110;
        break;
      case kTQ4_K:
        block_elems = 256;
        block_bytes = 144;
        break;
      case kTQ5_K:
        block_elems = 256;
        block_bytes = 176;
        break;
      case kTQ6_K:
        block_elems = 256;
        block_bytes = 210;
        break;
      case kTQ8_K:
        block_elems = 256;
        block_bytes = 292;
        break;
      default:
        return 0;
    }
    uint64_t n = 1;
    for (uint64_t d : dims) n *= d;
    return n / block_elems * block_bytes;
  }

 private:
  struct Kv {
    std::vector<uint8_t> key;  // with its length prefix
    uint32_t type;
    std::vector<uint8_t> value;
  };
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> data;
    std::optional<uint64_t> offset;
  };

  static void Append(std::vector<uint8_t>* out, const std::vector<uint8_t>& b) {
    out->insert(out->end(), b.begin(), b.end());
  }
  static void Put(std::vector<uint8_t>* img, size_t at, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n && at + i < img->size(); ++i) {
      (*img)[at + i] = static_cast<uint8_t>(v >> (8 * i));
    }
  }
  static uint64_t AlignUp(uint64_t x, uint64_t a) { return a == 0 ? x : (x + a - 1) / a * a; }
  static unsigned Width(ValueType t) {
    switch (t) {
      case kU8:
      case kI8:
      case kBool:
        return 1;
      case kU16:
      case kI16:
        return 2;
      case kU32:
      case kI32:
      case kF32:
        return 4;
      default:
        return 8;
    }
  }
  template <typename T>
  static std::vector<uint8_t> Encode(ValueType t, T x) {
    if (t == kF32) {
      const float f = static_cast<float>(x);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      return LE(bits, 4);
    }
    if (t == kF64) {
      const double d = static_cast<double>(x);
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      return LE(bits, 8);
    }
    if constexpr (std::is_unsigned_v<T>) {
      return LE(static_cast<uint64_t>(x), Width(t));
    } else {
      return LE(static_cast<uint64_t>(static_cast<int64_t>(x)), Width(t));
    }
  }
  template <typename T>
  GgufBuilder& Scalar(const std::string& k, ValueType t, T x) {
    return AddRaw(k, t, Encode(t, x));
  }

  static constexpr uint64_t kMaxWrittenOffset = uint64_t{1} << 30;

  std::string magic_ = "GGUF";
  uint32_t version_;
  std::optional<uint64_t> tensor_count_, kv_count_, data_size_;
  uint64_t layout_alignment_ = 32;
  bool pad_ = true;
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  Layout layout_;
};

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_UNIT_GGUF_BUILDER_H_
