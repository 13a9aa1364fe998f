// format_gguf_writer_test.cc — the GGUF writer (sdk/src/format/gguf_writer.h).
//
// Files written are read back with the validating reader and compared key
// by key, type by type and byte by byte against what was put in: values set
// one by one, an image with every value type built by GgufBuilder (written
// from the spec, independent of the writer), and a real model fixture copied
// whole. The error cases check that the message names the tensor or key and
// that nothing is left at the path (no temp file either) after a failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "sdk/src/common/status.h"
#include "sdk/src/format/encode.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/gguf_internal.h"
#include "sdk/src/format/gguf_writer.h"
#include "tests/unit/gguf_builder.h"

namespace hearth::gguf {
namespace {

namespace fs = std::filesystem;
using B = ::hearth::testing::GgufBuilder;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "raw array bytes are compared as LE");

// A fresh directory per test (ctest runs tests in parallel), removed after.
class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "hearth-writer-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  // Every entry of the directory, for "nothing was left behind" checks.
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    return out;
  }
  fs::path dir_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool Contains(const absl::Status& s, const std::string& part) {
  return std::string(s.message()).find(part) != std::string::npos;
}

// Compares two parsed values field by field; floats by their bits (NaN too).
void ExpectSameValue(const std::string& key, const Value& a, const Value& b) {
  SCOPED_TRACE("key " + key);
  ASSERT_EQ(a.type, b.type);
  switch (a.type) {
    case ValueType::kString:
      EXPECT_EQ(a.str, b.str);
      break;
    case ValueType::kArray:
      ASSERT_EQ(a.array_type, b.array_type);
      ASSERT_EQ(a.array_count, b.array_count);
      if (a.array_type == ValueType::kString) {
        EXPECT_EQ(a.array_strings, b.array_strings);
      } else if (a.array_count > 0) {
        EXPECT_EQ(
            std::memcmp(a.array_data, b.array_data, a.array_count * ScalarBytes(a.array_type)), 0);
      }
      break;
    case ValueType::kFloat32:
    case ValueType::kFloat64:
      EXPECT_EQ(std::memcmp(&a.f, &b.f, sizeof(double)), 0) << a.f << " vs " << b.f;
      break;
    default:
      EXPECT_EQ(a.u, b.u);
      EXPECT_EQ(a.i, b.i);
  }
}

void ExpectSameMetadata(const File& want, const File& got) {
  ASSERT_EQ(want.metadata().size(), got.metadata().size());
  for (size_t i = 0; i < want.metadata().size(); ++i) {
    EXPECT_EQ(want.metadata()[i].first, got.metadata()[i].first) << "pair #" << i;
    ExpectSameValue(want.metadata()[i].first, want.metadata()[i].second, got.metadata()[i].second);
  }
}

void ExpectSameTensors(const File& want, const File& got) {
  ASSERT_EQ(want.tensors().size(), got.tensors().size());
  for (size_t i = 0; i < want.tensors().size(); ++i) {
    const TensorInfo& a = want.tensors()[i];
    const TensorInfo& b = got.tensors()[i];
    SCOPED_TRACE("tensor " + a.name);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.n_dims, b.n_dims);
    for (int d = 0; d < 4; ++d) EXPECT_EQ(a.ne[d], b.ne[d]) << "ne[" << d << "]";
    ASSERT_EQ(a.size, b.size);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.size), 0);
    EXPECT_EQ((b.offset - got.data_offset()) % got.alignment(), 0u);
  }
}

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + seed);
  return v;
}

// ---- round trips ------------------------------------------------------------

// Every setter, checked against the same values encoded by GgufBuilder
// (independent of the writer) and parsed by the reader; then the four kinds
// of tensor source.
TEST_F(WriterTest, SettersAndTensorSourcesRoundTrip) {
  const std::string nul_string("h\xc3\xa9llo \xe2\x9c\x93 with a \0 inside", 25);
  Writer w;
  B b;
  w.SetString("general.architecture", "llama");
  b.AddString("general.architecture", "llama");
  w.SetString("s.empty", "");
  b.AddString("s.empty", "");
  w.SetString("s.nul", nul_string);
  b.AddString("s.nul", nul_string);
  w.SetBool("b.true", true);
  b.AddBool("b.true", true);
  w.SetBool("b.false", false);
  b.AddBool("b.false", false);
  w.SetUint8("u8", 255);
  b.AddU8("u8", 255);
  w.SetInt8("i8", -128);
  b.AddI8("i8", -128);
  w.SetUint16("u16", 65535);
  b.AddU16("u16", 65535);
  w.SetInt16("i16", -32768);
  b.AddI16("i16", -32768);
  w.SetUint32("u32", 4000000000u);
  b.AddU32("u32", 4000000000u);
  w.SetInt32("i32", -2000000000);
  b.AddI32("i32", -2000000000);
  w.SetUint64("u64", std::numeric_limits<uint64_t>::max());
  b.AddU64("u64", std::numeric_limits<uint64_t>::max());
  w.SetInt64("i64", std::numeric_limits<int64_t>::min());
  b.AddI64("i64", std::numeric_limits<int64_t>::min());
  w.SetFloat32("f32", -1.5e-3f);
  b.AddF32("f32", -1.5e-3f);
  w.SetFloat64("f64", 6.02214076e23);
  b.AddF64("f64", 6.02214076e23);
  w.SetStringArray("a.str", {"<s>", "", "\xe2\x96\x81the"});
  b.AddStringArray("a.str", {"<s>", "", "\xe2\x96\x81the"});
  w.SetArray<uint8_t>("a.u8", {0, 1, 255});
  b.AddArray<int>("a.u8", B::kU8, {0, 1, 255});
  w.SetArray<int8_t>("a.i8", {-128, 0, 127});
  b.AddArray<int>("a.i8", B::kI8, {-128, 0, 127});
  w.SetArray<uint16_t>("a.u16", {1, 65535});
  b.AddArray<int>("a.u16", B::kU16, {1, 65535});
  w.SetArray<int16_t>("a.i16", {-32768, 7});
  b.AddArray<int>("a.i16", B::kI16, {-32768, 7});
  w.SetArray<uint32_t>("a.u32", {1, 4000000000u});
  b.AddArray<uint32_t>("a.u32", B::kU32, {1, 4000000000u});
  w.SetArray<int32_t>("a.i32", {-5, 2147483647});
  b.AddArray<int32_t>("a.i32", B::kI32, {-5, 2147483647});
  w.SetArray<uint64_t>("a.u64", {std::numeric_limits<uint64_t>::max()});
  b.AddArray<uint64_t>("a.u64", B::kU64, {std::numeric_limits<uint64_t>::max()});
  w.SetArray<int64_t>("a.i64", {std::numeric_limits<int64_t>::min(), 3});
  b.AddArray<int64_t>("a.i64", B::kI64, {std::numeric_limits<int64_t>::min(), 3});
  w.SetArray<float>("a.f32", {0.5f, -0.0f, 1e30f});
  b.AddArray<float>("a.f32", B::kF32, {0.5f, -0.0f, 1e30f});
  w.SetArray<double>("a.f64", {1e-300, -2.0});
  b.AddArray<double>("a.f64", B::kF64, {1e-300, -2.0});
  w.SetArray<int32_t>("a.empty", {});
  b.AddArray<int32_t>("a.empty", B::kI32, {});
  EXPECT_EQ(w.metadata_count(), 27u);

  // F32 from memory, F16 and Q8_0 made by the encoders and handed over by
  // the two callback kinds, I32 as a 1-D tensor; odd sizes force padding.
  std::vector<float> f32(8 * 3), f16src(32 * 3), q8src(64 * 3);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<float>(i) * 0.25f - 2.0f;
  for (size_t i = 0; i < f16src.size(); ++i) f16src[i] = std::sin(static_cast<float>(i));
  for (size_t i = 0; i < q8src.size(); ++i) q8src[i] = std::cos(static_cast<float>(i) * 0.3f);
  std::vector<uint8_t> f16(f16src.size() * 2), q8(3 * 2 * 34);
  encode::F32ToF16(f16src.data(), reinterpret_cast<uint16_t*>(f16.data()), 96);
  ASSERT_TRUE(encode::QuantizeQ8_0(q8src.data(), 64 * 3, q8.data()).ok());
  const std::vector<uint8_t> i32 = Pattern(5 * 4, 9);
  const auto f32_bytes = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(f32.data()), 96);

  ASSERT_TRUE(w.AddTensor("f32", kGgmlF32, {8, 3}, 96, TensorSource::Memory(f32_bytes)).ok());
  int buffer_calls = 0;
  ASSERT_TRUE(w.AddTensor("f16", kGgmlF16, {32, 3}, 192,
                          TensorSource::Buffer([&](std::vector<uint8_t>* out) {
                            ++buffer_calls;
                            *out = f16;
                            return absl::OkStatus();
                          }))
                  .ok());
  ASSERT_TRUE(w.AddTensor("blk.0.q8", kGgmlQ8_0, {64, 3, 1}, q8.size(),
                          TensorSource::Chunks([&](const ChunkSink& emit) {
                            for (size_t at = 0; at < q8.size(); at += 7) {
                              const size_t n = std::min<size_t>(7, q8.size() - at);
                              HEARTH_RETURN_IF_ERROR(emit(absl::MakeConstSpan(q8.data() + at, n)));
                            }
                            return absl::OkStatus();
                          }))
                  .ok());
  ASSERT_TRUE(
      w.AddTensor("i32", kGgmlI32, {5}, 20, TensorSource::Memory(absl::MakeConstSpan(i32))).ok());
  EXPECT_EQ(w.tensor_count(), 4u);
  // The builder lays the same tensors out the same way, for the comparison.
  b.AddTensor("f32", B::kTF32, {8, 3}, std::vector<uint8_t>(f32_bytes.begin(), f32_bytes.end()));
  b.AddTensor("f16", B::kTF16, {32, 3}, f16);
  b.AddTensor("blk.0.q8", B::kTQ8_0, {64, 3, 1}, q8);
  b.AddTensor("i32", B::kTI32, {5}, i32);

  const std::string path = Path("all.gguf");
  ASSERT_TRUE(w.WriteTo(path).ok());
  EXPECT_EQ(buffer_calls, 1);
  EXPECT_EQ(Entries(), std::vector<std::string>{"all.gguf"});

  absl::StatusOr<std::unique_ptr<File>> got = File::Open(path);
  ASSERT_TRUE(got.ok()) << got.status();
  const std::vector<uint8_t> img = b.Build();
  absl::StatusOr<std::unique_ptr<File>> want = File::FromMemory(img.data(), img.size(), "want");
  ASSERT_TRUE(want.ok()) << want.status();
  ExpectSameMetadata(**want, **got);
  ExpectSameTensors(**want, **got);

  const File& r = **got;
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.alignment(), 32u);
  EXPECT_EQ(r.Find("general.alignment"), nullptr) << "the default alignment is not written";
  EXPECT_EQ(r.data_offset() % 32, 0u);
  EXPECT_EQ(r.file_size() % 32, 0u) << "the last tensor is padded too";
  // Spot checks through the typed getters, independent of ExpectSame*.
  EXPECT_EQ(*r.GetString("s.nul"), nul_string);
  EXPECT_EQ(r.Find("u64")->u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*r.GetInt("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*r.GetIntArray("a.i16"), (std::vector<int64_t>{-32768, 7}));
  EXPECT_EQ(r.Find("a.empty")->array_count, 0u);
  EXPECT_EQ(r.tensors()[2].name, "blk.0.q8");
  EXPECT_EQ(r.tensors()[2].n_dims, 3u);
  EXPECT_EQ(std::memcmp(r.tensors()[2].data, q8.data(), q8.size()), 0);
  // The padding between tensors is zeros.
  const TensorInfo& t0 = r.tensors()[0];
  for (uint64_t p = t0.offset + t0.size; p < r.tensors()[1].offset; ++p) {
    ASSERT_EQ(r.data()[p], 0) << p;
  }
}

// Every value type, arrays of every element type included (bool too), made
// by the independent GgufBuilder and copied verbatim.
TEST_F(WriterTest, CopiesEveryValueTypeFromAnotherFile) {
  B b;
  b.AddU8("u8", 200).AddI8("i8", -100).AddU16("u16", 60000).AddI16("i16", -30000);
  b.AddU32("u32", 3000000000u).AddI32("i32", -7).AddU64("u64", 1ull << 63).AddI64("i64", -1);
  b.AddF32("f32", std::nanf("")).AddF64("f64", -0.0).AddBool("bool", true);
  b.AddString("str", "tokenizer \xe2\x96\x81");
  b.AddArray<int>("a.u8", B::kU8, {1, 2, 3}).AddArray<int>("a.i8", B::kI8, {-1, 2});
  b.AddArray<int>("a.u16", B::kU16, {65535}).AddArray<int>("a.i16", B::kI16, {-2, -3});
  b.AddArray<uint32_t>("a.u32", B::kU32, {7, 8}).AddArray<int>("a.i32", B::kI32, {-9});
  b.AddArray<uint64_t>("a.u64", B::kU64, {1ull << 40}).AddArray<int64_t>("a.i64", B::kI64, {-4});
  b.AddArray<float>("a.f32", B::kF32, {0.1f, -2.5f}).AddArray<double>("a.f64", B::kF64, {1e100});
  b.AddArray<int>("a.bool", B::kBool, {1, 0, 1});
  b.AddArray<int>("a.empty", B::kF32, {});
  b.AddStringArray("a.str", {"a", "", "ccc"});
  b.AddTensor("w", B::kTQ4_K, {256, 2});
  b.AddTensor("v", B::kTBF16, {3});
  const std::vector<uint8_t> img = b.Build();
  absl::StatusOr<std::unique_ptr<File>> src = File::FromMemory(img.data(), img.size(), "src");
  ASSERT_TRUE(src.ok()) << src.status();

  Writer w;
  w.CopyMetadataFrom(**src);
  for (const TensorInfo& t : (*src)->tensors()) ASSERT_TRUE(w.AddTensorFrom(t).ok());
  const std::string path = Path("copy.gguf");
  ASSERT_TRUE(w.WriteTo(path).ok());
  absl::StatusOr<std::unique_ptr<File>> got = File::Open(path);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameMetadata(**src, **got);
  ExpectSameTensors(**src, **got);
  EXPECT_TRUE(std::isnan((*got)->Find("f32")->f));
  EXPECT_TRUE(std::signbit((*got)->Find("f64")->f));
}

// The real fixture, with tokenizer arrays and Q4_K/Q6_K tensors, copied whole.
TEST_F(WriterTest, CopiesAModelFixtureWhole) {
  const std::string src_path = std::string(HEARTH_TEST_DATA) + "/models/tiny-llama256-q4_k_m.gguf";
  absl::StatusOr<std::unique_ptr<File>> src = File::Open(src_path);
  ASSERT_TRUE(src.ok()) << src.status();
  ASSERT_GT((*src)->tensors().size(), 5u);
  Writer w;
  w.CopyMetadataFrom(**src);
  for (const TensorInfo& t : (*src)->tensors()) ASSERT_TRUE(w.AddTensorFrom(t).ok()) << t.name;
  const std::string path = Path("copy.gguf");
  ASSERT_TRUE(w.WriteTo(path).ok());
  absl::StatusOr<std::unique_ptr<File>> got = File::Open(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->alignment(), (*src)->alignment());
  ExpectSameMetadata(**src, **got);
  ExpectSameTensors(**src, **got);
}

// export --merge may write over the model it reads: the source stays mapped
// (rename replaces the directory entry, not the bytes under the mapping).
TEST_F(WriterTest, ReplacesItsOwnSourceSafely) {
  const std::string path = Path("model.gguf");
  B b;
  b.AddString("general.name", "before").AddTensor("t", B::kTF32, {16, 2});
  {
    const std::vector<uint8_t> img = b.Build();
    ASSERT_TRUE(B::WriteFile(path, img));
  }
  absl::StatusOr<std::unique_ptr<File>> src = File::Open(path);
  ASSERT_TRUE(src.ok()) << src.status();
  Writer w;
  w.CopyMetadataFrom(**src);
  w.SetString("general.name", "after");
  ASSERT_TRUE(w.AddTensorFrom((*src)->tensors()[0]).ok());
  ASSERT_TRUE(w.WriteTo(path).ok());
  absl::StatusOr<std::unique_ptr<File>> got = File::Open(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*(*got)->GetString("general.name"), "after");
  EXPECT_EQ(*(*src)->GetString("general.name"), "before");
  ExpectSameTensors(**src, **got);
  EXPECT_EQ(Entries(), std::vector<std::string>{"model.gguf"});
}

TEST_F(WriterTest, EditsKeepOrderAndAlignmentIsHonoured) {
  B b;
  b.AddString("general.architecture", "llama").AddU32("llama.block_count", 2);
  b.AddF32("llama.rope.freq_base", 10000.0f).AddString("general.name", "x");
  const std::vector<uint8_t> img = b.Build();
  absl::StatusOr<std::unique_ptr<File>> src = File::FromMemory(img.data(), img.size(), "src");
  ASSERT_TRUE(src.ok()) << src.status();

  Writer w;
  w.CopyMetadataFrom(**src);
  w.SetString("llama.block_count", "two");     // existing key, new type, same place
  w.SetFloat32("llama.rope.freq_base", 5e5f);  // existing key, same type
  w.Remove("general.name");
  w.Remove("no.such.key");           // a no-op
  w.SetBool("hearth.merged", true);  // new keys go last
  w.SetUint32("general.alignment", 64);
  EXPECT_TRUE(w.Has("hearth.merged"));
  EXPECT_FALSE(w.Has("general.name"));
  const std::vector<uint8_t> t1 = Pattern(34 * 3, 1);  // 102 bytes: misaligned end
  const std::vector<uint8_t> t2 = Pattern(4 * 10, 2);
  ASSERT_TRUE(
      w.AddTensor("a", kGgmlQ8_0, {96}, t1.size(), TensorSource::Memory(absl::MakeConstSpan(t1)))
          .ok());
  ASSERT_TRUE(
      w.AddTensor("b", kGgmlF32, {10}, t2.size(), TensorSource::Memory(absl::MakeConstSpan(t2)))
          .ok());
  const std::string path = Path("edited.gguf");
  ASSERT_TRUE(w.WriteTo(path).ok());

  absl::StatusOr<std::unique_ptr<File>> got = File::Open(path);
  ASSERT_TRUE(got.ok()) << got.status();
  const File& r = **got;
  std::vector<std::string> keys;
  for (const auto& kv : r.metadata()) keys.push_back(kv.first);
  EXPECT_EQ(keys, (std::vector<std::string>{"general.architecture", "llama.block_count",
                                            "llama.rope.freq_base", "hearth.merged",
                                            "general.alignment"}));
  EXPECT_EQ(*r.GetString("llama.block_count"), "two");
  EXPECT_EQ(*r.GetFloat("llama.rope.freq_base"), 5e5);
  EXPECT_EQ(*r.GetBool("hearth.merged"), true);
  EXPECT_EQ(r.alignment(), 64u);
  EXPECT_EQ(r.data_offset() % 64, 0u);
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[1].offset - r.data_offset(), 128u);  // 102 padded to 64
  EXPECT_EQ(std::memcmp(r.tensors()[0].data, t1.data(), t1.size()), 0);
  EXPECT_EQ(std::memcmp(r.tensors()[1].data, t2.data(), t2.size()), 0);
  EXPECT_EQ(r.file_size() % 64, 0u);
}

TEST_F(WriterTest, MetadataOnlyFileIsReadable) {
  Writer w;
  w.SetString("general.architecture", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", {"a", "b"});
  const std::string path = Path("vocab.gguf");
  ASSERT_TRUE(w.WriteTo(path).ok());
  absl::StatusOr<std::unique_ptr<File>> got = File::Open(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE((*got)->tensors().empty());
  EXPECT_EQ((*got)->GetStringArray("tokenizer.ggml.tokens")->size(), 2u);
}

// ---- errors -------------------------------------------------------------------

TEST_F(WriterTest, AddTensorRefusesInconsistentTensorsByName) {
  Writer w;
  const std::vector<uint8_t> buf(4096);
  auto mem = [&](size_t n) { return TensorSource::Memory(absl::MakeConstSpan(buf.data(), n)); };
  struct Case {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    uint64_t size;
    size_t mem_size;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"blk.3.attn_q.weight", kGgmlQ8_0, {64, 2}, 100, 100, {"blk.3.attn_q.weight", "100", "136"}},
      {"blk.0.ffn_up.weight", kGgmlQ8_0, {48, 2}, 102, 102, {"blk.0.ffn_up.weight", "ne[0] = 48"}},
      {"t.unknown", 4, {32}, 18, 18, {"t.unknown", "type 4"}},
      {"t.zero", kGgmlF32, {4, 0}, 0, 0, {"t.zero", "ne[1] is 0"}},
      {"t.neg", kGgmlF32, {-4}, 16, 16, {"t.neg", "ne[0] is -4"}},
      {"t.5d", kGgmlF32, {1, 1, 1, 1, 1}, 4, 4, {"t.5d", "5 dimensions"}},
      {"t.0d", kGgmlF32, {}, 4, 4, {"t.0d", "0 dimensions"}},
      {"t.mem", kGgmlF32, {4}, 16, 12, {"t.mem", "12", "16"}},
      {"", kGgmlF32, {4}, 16, 16, {"is empty"}},
      {std::string("a\0b", 3), kGgmlF32, {4}, 16, 16, {"NUL"}},
      {"t.huge", kGgmlF32, {1ll << 40, 1ll << 40}, 0, 0, {"t.huge", "overflows"}},
  };
  for (const Case& c : cases) {
    absl::Status s = w.AddTensor(c.name, c.type, c.ne, c.size, mem(c.mem_size));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << s;
    for (const std::string& part : c.parts) EXPECT_TRUE(Contains(s, part)) << part << ": " << s;
  }
  EXPECT_EQ(w.tensor_count(), 0u);

  ASSERT_TRUE(w.AddTensor("dup", kGgmlF32, {4}, 16, mem(16)).ok());
  absl::Status s = w.AddTensor("dup", kGgmlF16, {8}, 16, mem(16));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_TRUE(Contains(s, "'dup'")) << s;
  EXPECT_EQ(w.tensor_count(), 1u);
  s = w.AddTensor("cb", kGgmlF32, {4}, 16, TensorSource::Buffer(nullptr));
  EXPECT_FALSE(s.ok());
  s = w.AddTensor("cb", kGgmlF32, {4}, 16, TensorSource::Chunks(nullptr));
  EXPECT_FALSE(s.ok());
}

// A callback that gives the wrong number of bytes, or fails, stops the write:
// the error names the path and tensor, an existing file at the path is left
// untouched, and no temp file remains.
TEST_F(WriterTest, BadProducersLeaveNothingBehind) {
  const std::string path = Path("out.gguf");
  const std::string old_content = "previous file";
  { std::ofstream(path, std::ios::binary) << old_content; }
  const std::vector<uint8_t> good = Pattern(64, 3);
  struct Case {
    std::string what;
    TensorSource src;
    absl::StatusCode code;
    std::vector<std::string> parts;
  };
  std::vector<Case> cases;
  cases.push_back({"buffer short",
                   TensorSource::Buffer([](std::vector<uint8_t>* out) {
                     out->assign(63, 1);
                     return absl::OkStatus();
                   }),
                   absl::StatusCode::kInvalidArgument,
                   {"63", "64"}});
  cases.push_back({"buffer long",
                   TensorSource::Buffer([](std::vector<uint8_t>* out) {
                     out->assign(65, 1);
                     return absl::OkStatus();
                   }),
                   absl::StatusCode::kInvalidArgument,
                   {"65", "64"}});
  cases.push_back({"buffer error",
                   TensorSource::Buffer([](std::vector<uint8_t>*) {
                     return absl::DataLossError("adapter B matrix unreadable");
                   }),
                   absl::StatusCode::kDataLoss,
                   {"adapter B matrix unreadable"}});
  cases.push_back({"chunks short",
                   TensorSource::Chunks([&](const ChunkSink& emit) {
                     return emit(absl::MakeConstSpan(good.data(), 40));
                   }),
                   absl::StatusCode::kInvalidArgument,
                   {"gave 40 bytes", "64"}});
  // Too long, and the producer ignores the sink's error: still refused.
  cases.push_back({"chunks long",
                   TensorSource::Chunks([&](const ChunkSink& emit) {
                     (void)emit(absl::MakeConstSpan(good.data(), 40));
                     (void)emit(absl::MakeConstSpan(good.data(), 40));
                     return absl::OkStatus();
                   }),
                   absl::StatusCode::kInvalidArgument,
                   {"more than", "64"}});
  cases.push_back({"chunks error",
                   TensorSource::Chunks([&](const ChunkSink& emit) {
                     (void)emit(absl::MakeConstSpan(good.data(), 8));
                     return absl::CancelledError("stopped by the user");
                   }),
                   absl::StatusCode::kCancelled,
                   {"stopped by the user"}});
  for (Case& c : cases) {
    Writer w;
    w.SetString("general.architecture", "llama");
    ASSERT_TRUE(
        w.AddTensor("first", kGgmlF32, {16}, 64, TensorSource::Memory(absl::MakeConstSpan(good)))
            .ok());
    ASSERT_TRUE(w.AddTensor("blk.1.bad", kGgmlF32, {16}, 64, std::move(c.src)).ok()) << c.what;
    absl::Status s = w.WriteTo(path);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s;
    EXPECT_TRUE(Contains(s, path + ": tensor 'blk.1.bad'")) << c.what << ": " << s;
    for (const std::string& part : c.parts) EXPECT_TRUE(Contains(s, part)) << c.what << ": " << s;
    EXPECT_EQ(ReadAll(path), old_content) << c.what;
    EXPECT_EQ(Entries(), std::vector<std::string>{"out.gguf"}) << c.what;
  }
}

TEST_F(WriterTest, UnwritablePathsFailCleanly) {
  Writer w;
  w.SetString("general.architecture", "llama");
  const std::vector<uint8_t> data = Pattern(16, 1);
  ASSERT_TRUE(
      w.AddTensor("t", kGgmlF32, {4}, 16, TensorSource::Memory(absl::MakeConstSpan(data))).ok());

  // A missing directory: the temp file cannot even be created.
  const std::string missing = Path("no/such/dir/out.gguf");
  absl::Status s = w.WriteTo(missing);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_TRUE(Contains(s, missing)) << s;

  // The destination is a directory: everything is written, the rename fails,
  // and the temp file must be removed.
  const std::string as_dir = Path("taken.gguf");
  fs::create_directory(as_dir);
  s = w.WriteTo(as_dir);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s, as_dir)) << s;
  EXPECT_TRUE(Contains(s, "rename")) << s;
  EXPECT_EQ(Entries(), std::vector<std::string>{"taken.gguf"});
  EXPECT_TRUE(fs::is_directory(as_dir));
}

// A full disk, simulated with a file-size limit: a write, the flush or the
// close fails with EFBIG, and the partial temp file is removed.
TEST_F(WriterTest, FullDiskIsReportedAndCleanedUp) {
  const std::vector<uint8_t> big = Pattern(256 * 1024, 5);
  Writer w;
  w.SetString("general.architecture", "llama");
  ASSERT_TRUE(w.AddTensor("big", kGgmlF32, {64 * 1024}, big.size(),
                          TensorSource::Memory(absl::MakeConstSpan(big)))
                  .ok());
  const std::string path = Path("full.gguf");

  struct sigaction ignore = {}, old_action = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit old_limit = {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status s = w.WriteTo(path);
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::sigaction(SIGXFSZ, &old_action, nullptr);

  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s, path)) << s;
  EXPECT_TRUE(Contains(s, std::strerror(EFBIG))) << s;
  EXPECT_TRUE(Entries().empty());
  // With the limit lifted the same writer succeeds.
  ASSERT_TRUE(w.WriteTo(path).ok());
  absl::StatusOr<std::unique_ptr<File>> got = File::Open(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::memcmp((*got)->tensors()[0].data, big.data(), big.size()), 0);
}

TEST_F(WriterTest, RefusesMetadataTheReaderWouldRefuse) {
  const std::string path = Path("bad.gguf");
  struct Case {
    std::function<void(Writer*)> edit;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {[](Writer* w) { w->SetString("general.alignment", "32"); }, {"general.alignment", "u32"}},
      {[](Writer* w) { w->SetUint64("general.alignment", 32); }, {"general.alignment", "u32"}},
      {[](Writer* w) { w->SetUint32("general.alignment", 48); }, {"48", "power of two"}},
      {[](Writer* w) { w->SetUint32("general.alignment", 0); }, {"power of two"}},
      {[](Writer* w) { w->SetBool("", true); }, {"empty"}},
      {[](Writer* w) { w->SetBool(std::string("k\0y", 3), true); }, {"NUL"}},
      {[](Writer* w) { w->SetBool(std::string(70000, 'k'), true); }, {"70000"}},
  };
  for (const Case& c : cases) {
    Writer w;
    w.SetString("general.architecture", "llama");
    c.edit(&w);
    absl::Status s = w.WriteTo(path);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(Contains(s, path + ": metadata key")) << s;
    for (const std::string& part : c.parts) EXPECT_TRUE(Contains(s, part)) << part << ": " << s;
    EXPECT_TRUE(Entries().empty());
  }
}

}  // namespace
}  // namespace hearth::gguf
