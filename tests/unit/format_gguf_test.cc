// format_gguf_test.cc — the GGUF reader. Valid images built by GgufBuilder
// (written from the spec, independent of the reader) round-trip; the shared
// tokenizer files parse; and every validation rule rejects a crafted image
// with its own status code and a message naming the bad field. Images are
// parsed from exact-size heap copies, so under ASan any read past the end
// of the buffer fails the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "hearth/hearth_plugin.h"
#include "sdk/src/format/gguf.h"
#include "tests/unit/gguf_builder.h"

namespace hearth::gguf {
namespace {

using B = ::hearth::testing::GgufBuilder;
using absl::StatusCode;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

struct Parsed {
  std::unique_ptr<uint8_t[]> buf;  // must outlive `file`
  absl::StatusOr<std::unique_ptr<File>> file;
};

Parsed Parse(const std::vector<uint8_t>& img) {
  Parsed p;
  p.buf.reset(new uint8_t[img.size()]);
  if (!img.empty()) std::memcpy(p.buf.get(), img.data(), img.size());
  p.file = File::FromMemory(p.buf.get(), img.size(), "test.gguf");
  return p;
}

std::vector<uint8_t> Prefix(const std::vector<uint8_t>& img, size_t n) {
  return std::vector<uint8_t>(img.begin(), img.begin() + static_cast<ptrdiff_t>(n));
}

void ExpectRejected(const std::vector<uint8_t>& img, StatusCode code,
                    std::initializer_list<std::string> parts) {
  Parsed p = Parse(img);
  ASSERT_FALSE(p.file.ok()) << "image of " << img.size() << " bytes was accepted";
  const absl::Status& s = p.file.status();
  EXPECT_EQ(s.code(), code) << s;
  const std::string msg(s.message());
  EXPECT_EQ(msg.rfind("test.gguf: ", 0), 0u) << msg;
  for (const std::string& part : parts) {
    EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
  }
}

#define EXPECT_REJECTED(img, code, ...)           \
  do {                                            \
    SCOPED_TRACE(#img);                           \
    ExpectRejected((img), (code), {__VA_ARGS__}); \
  } while (0)

// ---------------------------------------------------------------------------
// Valid images.

class GgufRoundTrip : public ::testing::TestWithParam<std::tuple<uint32_t, uint32_t>> {};

TEST_P(GgufRoundTrip, EveryValueTypeArraysAndSeveralTensorTypes) {
  const auto [version, alignment] = GetParam();
  B b(version);
  if (alignment != 32) b.Alignment(alignment);
  b.AddU8("t.u8", 255).AddI8("t.i8", -128).AddU16("t.u16", 65535).AddI16("t.i16", -32768);
  b.AddU32("t.u32", 0xffffffffu).AddI32("t.i32", std::numeric_limits<int32_t>::min());
  b.AddF32("t.f32", 1.5f).AddBool("t.yes", true).AddBool("t.no", false);
  b.AddString("t.str", "h\xc3\xa9llo").AddString("t.empty", "");
  b.AddU64("t.u64", kU64Max).AddI64("t.i64", std::numeric_limits<int64_t>::min());
  b.AddF64("t.f64", 3.141592653589793);
  b.AddStringArray("t.strs", {"<unk>", "", "\xe2\x96\x81the"});
  b.AddArray<int32_t>("t.i32s", B::kI32, {-1, 0, 2147483647});
  b.AddArray<uint16_t>("t.u16s", B::kU16, {0, 65535});
  b.AddArray<int8_t>("t.i8s", B::kI8, {-128, 127});
  b.AddArray<uint64_t>("t.u64s", B::kU64, {0, uint64_t{1} << 40});
  b.AddArray<float>("t.f32s", B::kF32, {0.5f, -2.25f, 1e-30f});
  b.AddArray<double>("t.f64s", B::kF64, {0.1});
  b.AddArray<int>("t.bools", B::kBool, {1, 0, 1});
  b.AddArray<int>("t.none", B::kI32, {});
  struct Want {
    const char* name;
    uint32_t type;
    std::vector<uint64_t> dims;
    uint64_t bytes;  // from the block structs of ggml-common.h
  };
  const std::vector<Want> want = {
      {"f32", B::kTF32, {4, 3}, 48},
      {"f16", B::kTF16, {8}, 16},
      {"q4_0", B::kTQ4_0, {64, 2}, 4 * 18},
      {"q8_0", B::kTQ8_0, {32}, 34},
      {"q4_k", B::kTQ4_K, {256, 2}, 2 * 144},
      {"q6_k", B::kTQ6_K, {512}, 2 * 210},
      {"i32", B::kTI32, {5}, 20},
      {"bf16.4d", B::kTBF16, {2, 3, 1, 2}, 24},
  };
  for (const Want& w : want) b.AddTensor(w.name, w.type, w.dims);
  const std::vector<uint8_t> img = b.Build();

  Parsed p = Parse(img);
  ASSERT_TRUE(p.file.ok()) << p.file.status();
  const File& f = **p.file;
  EXPECT_EQ(f.version(), version);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.file_size(), img.size());
  EXPECT_EQ(f.data(), p.buf.get());
  EXPECT_EQ(f.data_offset(), b.layout().data);
  EXPECT_EQ(f.data_offset() % alignment, 0u);

  // Metadata keeps file order; scalars are widened as documented.
  const size_t first = alignment != 32 ? 1 : 0;
  ASSERT_EQ(f.metadata().size(), first + 23);
  EXPECT_EQ(f.metadata()[first].first, "t.u8");
  EXPECT_EQ(f.metadata().back().first, "t.none");
  EXPECT_EQ(f.Find("t.u8")->type, ValueType::kUint8);
  EXPECT_EQ(f.Find("t.u8")->u, 255u);
  EXPECT_EQ(f.Find("t.i8")->i, -128);
  EXPECT_EQ(f.Find("t.u64")->u, kU64Max);
  EXPECT_EQ(f.Find("missing"), nullptr);
  EXPECT_EQ(*f.GetInt("t.u8"), 255);
  EXPECT_EQ(*f.GetInt("t.i8"), -128);
  EXPECT_EQ(*f.GetInt("t.u16"), 65535);
  EXPECT_EQ(*f.GetInt("t.i16"), -32768);
  EXPECT_EQ(*f.GetInt("t.u32"), 4294967295);
  EXPECT_EQ(*f.GetInt("t.i32"), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(*f.GetInt("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*f.GetFloat("t.f32"), 1.5);
  EXPECT_EQ(*f.GetFloat("t.f64"), 3.141592653589793);
  EXPECT_TRUE(*f.GetBool("t.yes"));
  EXPECT_FALSE(*f.GetBool("t.no"));
  EXPECT_EQ(*f.GetString("t.str"), "h\xc3\xa9llo");
  EXPECT_EQ(*f.GetString("t.empty"), "");
  EXPECT_EQ(*f.GetStringArray("t.strs"),
            (std::vector<std::string_view>{"<unk>", "", "\xe2\x96\x81the"}));
  EXPECT_EQ(*f.GetIntArray("t.i32s"), (std::vector<int64_t>{-1, 0, 2147483647}));
  EXPECT_EQ(*f.GetIntArray("t.u16s"), (std::vector<int64_t>{0, 65535}));
  EXPECT_EQ(*f.GetIntArray("t.i8s"), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(*f.GetIntArray("t.u64s"), (std::vector<int64_t>{0, int64_t{1} << 40}));
  EXPECT_EQ(*f.GetFloatArray("t.f32s"), (std::vector<float>{0.5f, -2.25f, 1e-30f}));
  EXPECT_TRUE(f.GetIntArray("t.none")->empty());
  const Value* bools = f.Find("t.bools");
  ASSERT_EQ(bools->array_type, ValueType::kBool);
  ASSERT_EQ(bools->array_count, 3u);
  EXPECT_EQ(std::vector<uint8_t>(bools->array_data, bools->array_data + 3),
            (std::vector<uint8_t>{1, 0, 1}));
  double f64 = 0;
  std::memcpy(&f64, f.Find("t.f64s")->array_data, 8);
  EXPECT_EQ(f64, 0.1);

  // Tensors: shape, type, size, and data pointing into the caller's buffer
  // where the builder put it.
  ASSERT_EQ(f.tensors().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(t.name, want[i].name);
    EXPECT_EQ(t.type, want[i].type);
    EXPECT_EQ(t.n_dims, want[i].dims.size());
    for (size_t d = 0; d < 4; ++d) {
      EXPECT_EQ(t.ne[d], d < want[i].dims.size() ? static_cast<int64_t>(want[i].dims[d]) : 1);
    }
    EXPECT_EQ(t.size, want[i].bytes);
    const uint64_t at = b.layout().data + b.layout().tensors[i].data_offset;
    EXPECT_EQ(t.offset, at);
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_EQ(t.data, p.buf.get() + at);
    EXPECT_EQ(std::memcmp(t.data, img.data() + at, t.size), 0);
    EXPECT_EQ(f.FindTensor(want[i].name), &t);
  }
  EXPECT_EQ(f.FindTensor("nope"), nullptr);
  EXPECT_EQ(f.tensors()[7].n_elements(), 12);
}

INSTANTIATE_TEST_SUITE_P(VersionsAndAlignments, GgufRoundTrip,
                         ::testing::Combine(::testing::Values(2u, 3u),
                                            ::testing::Values(32u, 64u)));

TEST(Gguf, AdjacentTensorsAndVocabOnlyFilesWithoutPadding) {
  B adj;
  adj.AddTensorAt("a", B::kTF32, {8}, 0, std::vector<uint8_t>(32, 1));
  adj.AddTensorAt("b", B::kTF32, {8}, 32, std::vector<uint8_t>(32, 2));
  Parsed p = Parse(adj.Build());
  ASSERT_TRUE(p.file.ok()) << p.file.status();
  EXPECT_EQ((*p.file)->tensors()[1].data[0], 2);

  B vocab;
  vocab.AddString("general.architecture", "llama").NoPadding();
  const std::vector<uint8_t> img = vocab.Build();
  ASSERT_NE(img.size() % 32, 0u);
  Parsed q = Parse(img);
  ASSERT_TRUE(q.file.ok()) << q.file.status();
  EXPECT_EQ((*q.file)->data_offset(), img.size());
}

TEST(Gguf, GettersNameTheKeyAndTheType) {
  B b;
  b.AddU32("k.u32", 7).AddU64("k.big", kU64Max).AddF32("k.f32", 2.0f).AddU8("k.u8", 1);
  b.AddArray<double>("k.f64s", B::kF64, {1.0});
  b.AddArray<float>("k.f32s", B::kF32, {1.0f});
  b.AddArray<uint64_t>("k.u64s", B::kU64, {1, kU64Max});
  b.AddArray<int32_t>("k.i32s", B::kI32, {1});
  Parsed p = Parse(b.Build());
  ASSERT_TRUE(p.file.ok()) << p.file.status();
  const File& f = **p.file;
  auto expect = [](const absl::Status& s, StatusCode code, const std::string& key,
                   const std::string& detail) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_NE(s.message().find("'" + key + "'"), std::string::npos) << s;
    EXPECT_NE(s.message().find(detail), std::string::npos) << s;
  };
  expect(f.GetInt("absent").status(), StatusCode::kNotFound, "absent", "not found");
  expect(f.GetString("k.u32").status(), StatusCode::kInvalidArgument, "k.u32", "is u32");
  expect(f.GetInt("k.big").status(), StatusCode::kInvalidArgument, "k.big", "does not fit");
  expect(f.GetInt("k.f32").status(), StatusCode::kInvalidArgument, "k.f32", "is f32");
  expect(f.GetFloat("k.u32").status(), StatusCode::kInvalidArgument, "k.u32", "f32 or f64");
  expect(f.GetBool("k.u8").status(), StatusCode::kInvalidArgument, "k.u8", "a bool");
  expect(f.GetFloatArray("k.f64s").status(), StatusCode::kInvalidArgument, "k.f64s",
         "array of f64");
  expect(f.GetIntArray("k.f32s").status(), StatusCode::kInvalidArgument, "k.f32s", "array of f32");
  expect(f.GetIntArray("k.u64s").status(), StatusCode::kInvalidArgument, "k.u64s", "element #1");
  expect(f.GetStringArray("k.i32s").status(), StatusCode::kInvalidArgument, "k.i32s",
         "array of i32");
  expect(f.GetStringArray("k.u32").status(), StatusCode::kInvalidArgument, "k.u32", "is u32");
}

TEST(Gguf, OpenMapsAFileAndNamesThePathInErrors) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/hearth_format_gguf_test.gguf";
  B b;
  b.AddString("general.name", "tiny").AddTensor("w", B::kTQ8_0, {64});
  const std::vector<uint8_t> img = b.Build();
  ASSERT_TRUE(B::WriteFile(path, img));
  {
    auto f = File::Open(path);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->name(), path);
    const TensorInfo* w = (*f)->FindTensor("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->size, 68u);
    EXPECT_EQ(std::memcmp(w->data, img.data() + w->offset, w->size), 0);
  }
  std::vector<uint8_t> bad = img;
  bad[0] = 'X';
  ASSERT_TRUE(B::WriteFile(path, bad));
  auto corrupt = File::Open(path);
  EXPECT_EQ(corrupt.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(corrupt.status().message().rfind(path + ": bad magic", 0), 0u) << corrupt.status();

  ASSERT_TRUE(B::WriteFile(path, {}));
  EXPECT_EQ(File::Open(path).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(File::Open(dir).status().code(), StatusCode::kInvalidArgument);
  auto missing = File::Open(dir + "/no_such_file.gguf");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no_such_file.gguf"), std::string::npos);
  std::remove(path.c_str());
}

struct Vocab {
  const char* file;
  size_t n_tokens;
  const char* first_token;
  int64_t bos_id;
  const char* model;
};
class GgufSharedVocab : public ::testing::TestWithParam<Vocab> {};

// Expected values were read with gguf-py (an independent reader).
TEST_P(GgufSharedVocab, ParsesAndExposesTokens) {
  const Vocab& v = GetParam();
  auto f = File::Open(std::string(HEARTH_SHARED_DATA "/tokenizers/") + v.file);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_TRUE((*f)->tensors().empty());
  auto tokens = (*f)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), v.n_tokens);
  EXPECT_EQ((*tokens)[0], v.first_token);
  EXPECT_EQ(*(*f)->GetInt("tokenizer.ggml.bos_token_id"), v.bos_id);
  EXPECT_EQ(*(*f)->GetString("tokenizer.ggml.model"), v.model);
  auto types = (*f)->GetIntArray("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(types->size(), v.n_tokens);
}

INSTANTIATE_TEST_SUITE_P(
    Tokenizers, GgufSharedVocab,
    ::testing::Values(Vocab{"ggml-vocab-llama-spm.gguf", 32000, "<unk>", 1, "llama"},
                      Vocab{"ggml-vocab-gpt-2.gguf", 50257, "!", 50256, "gpt2"},
                      Vocab{"ggml-vocab-deepseek-llm.gguf", 102400, "!", 100000, "gpt2"}));

// ---------------------------------------------------------------------------
// ggml type table.

TEST(GgmlTypes, GeometryAndNamesOfEveryKnownType) {
  struct Row {
    uint32_t id;
    const char* name;
    int64_t elems, bytes;
  };
  // Block layouts from ggml-common.h (e.g. Q2_K: 16 scales + 64 quants +
  // f16 d + f16 dmin = 84 bytes per 256).
  const Row rows[] = {
      {0, "F32", 1, 4},       {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},
      {3, "Q4_1", 32, 20},    {6, "Q5_0", 32, 22},    {7, "Q5_1", 32, 24},
      {8, "Q8_0", 32, 34},    {9, "Q8_1", 32, 36},    {10, "Q2_K", 256, 84},
      {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
      {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {24, "I8", 1, 1},
      {25, "I16", 1, 2},      {26, "I32", 1, 4},      {27, "I64", 1, 8},
      {28, "F64", 1, 8},      {30, "BF16", 1, 2},
  };
  for (const Row& r : rows) {
    int64_t elems = 0, bytes = 0;
    ASSERT_TRUE(GgmlTypeGeometry(r.id, &elems, &bytes)) << r.name;
    EXPECT_EQ(elems, r.elems) << r.name;
    EXPECT_EQ(bytes, r.bytes) << r.name;
    EXPECT_EQ(GgmlTypeName(r.id), r.name);
    // The builder's independent table agrees on one block.
    EXPECT_EQ(B::ByteSize(r.id, {static_cast<uint64_t>(r.elems)}), static_cast<uint64_t>(r.bytes));
  }
}

TEST(GgmlTypes, GapsRemovedAndOutOfRangeIdsAreUnknown) {
  for (uint32_t id : {4u, 5u, 16u, 17u, 23u, 29u, 31u, 39u, 40u, 64u, 99u, 0xffffffffu}) {
    int64_t elems = -7, bytes = -7;
    EXPECT_FALSE(GgmlTypeGeometry(id, &elems, &bytes)) << id;
    EXPECT_EQ(elems, -7);
    EXPECT_EQ(GgmlTypeName(id), "type " + std::to_string(id));
    EXPECT_EQ(GgmlTypeToHearthDtype(id), -1);
  }
}

TEST(GgmlTypes, HearthDtypeMappingAgreesWithThePluginAbi) {
  const std::pair<uint32_t, int32_t> mapped[] = {
      {kGgmlF32, HEARTH_DTYPE_F32},   {kGgmlF16, HEARTH_DTYPE_F16},
      {kGgmlBF16, HEARTH_DTYPE_BF16}, {kGgmlI32, HEARTH_DTYPE_I32},
      {kGgmlQ8_0, HEARTH_DTYPE_Q8_0}, {kGgmlQ4_0, HEARTH_DTYPE_Q4_0},
      {kGgmlQ5_0, HEARTH_DTYPE_Q5_0}, {kGgmlQ4_K, HEARTH_DTYPE_Q4_K},
      {kGgmlQ6_K, HEARTH_DTYPE_Q6_K}, {kGgmlQ4_1, HEARTH_DTYPE_Q4_1},
  };
  for (const auto& [ggml, dtype] : mapped) {
    EXPECT_EQ(GgmlTypeToHearthDtype(ggml), dtype) << GgmlTypeName(ggml);
    int64_t elems = 0, bytes = 0;
    ASSERT_TRUE(GgmlTypeGeometry(ggml, &elems, &bytes));
    EXPECT_EQ(elems, hearth_dtype_block_elems(static_cast<uint32_t>(dtype)));
    EXPECT_EQ(bytes, hearth_dtype_block_bytes(static_cast<uint32_t>(dtype)));
  }
  int n_mapped = 0;
  for (uint32_t id = 0; id < 64; ++id) n_mapped += GgmlTypeToHearthDtype(id) >= 0;
  EXPECT_EQ(n_mapped, 10);
}

// ---------------------------------------------------------------------------
// Rejections: one test per rule, each on a crafted image.

TEST(GgufReject, BadMagic) {
  EXPECT_REJECTED(B().Magic("GGUG").Build(), StatusCode::kInvalidArgument, "bad magic",
                  "47 47 55 47", "47 47 55 46");
  EXPECT_REJECTED(B().Magic(std::string(4, '\0')).Build(), StatusCode::kInvalidArgument,
                  "bad magic", "00 00 00 00");
}

TEST(GgufReject, Versions) {
  EXPECT_REJECTED(B(0).Build(), StatusCode::kInvalidArgument, "version 0");
  EXPECT_REJECTED(B(1).Build(), StatusCode::kUnimplemented, "version 1", "not supported");
  EXPECT_REJECTED(B(4).Build(), StatusCode::kUnimplemented, "version 4", "2 and 3");
  EXPECT_REJECTED(B(0x03000000).Build(), StatusCode::kUnimplemented, "byte-swapped", "big-endian",
                  "version 3");
  EXPECT_REJECTED(B(0x02000000).Build(), StatusCode::kUnimplemented, "big-endian");
}

// A valid image with every section populated, used by the truncation and
// mutation sweeps.
B RichBuilder() {
  B b;
  b.AddString("general.architecture", "llama").AddU32("llama.block_count", 2);
  b.AddStringArray("tokenizer.ggml.tokens", {"a", "bc", ""});
  b.AddArray<float>("tokenizer.ggml.scores", B::kF32, {0.f, -1.f, 2.f});
  b.AddBool("x.flag", true).AddF64("x.f64", 0.25);
  b.AddTensor("a", B::kTF32, {8}).AddTensor("b", B::kTQ8_0, {32, 2});
  return b;
}

TEST(GgufReject, EveryTruncationIsAnErrorNeverACrash) {
  B b = RichBuilder();
  const std::vector<uint8_t> img = b.Build();
  ASSERT_TRUE(Parse(img).file.ok()) << Parse(img).file.status();
  for (size_t n = 0; n < img.size(); ++n) {
    Parsed p = Parse(Prefix(img, n));
    ASSERT_FALSE(p.file.ok()) << "truncated to " << n << " of " << img.size() << " bytes";
    EXPECT_EQ(p.file.status().code(), StatusCode::kInvalidArgument) << p.file.status();
  }
  // Cut right after each header field, the message names the next field.
  const B::Layout& l = b.layout();
  EXPECT_REJECTED(Prefix(img, 0), StatusCode::kInvalidArgument, "truncated", "magic");
  EXPECT_REJECTED(Prefix(img, 4), StatusCode::kInvalidArgument, "truncated", "version");
  EXPECT_REJECTED(Prefix(img, 8), StatusCode::kInvalidArgument, "truncated", "tensor_count");
  EXPECT_REJECTED(Prefix(img, 16), StatusCode::kInvalidArgument, "truncated", "kv_count");
  EXPECT_REJECTED(Prefix(img, l.data - 1), StatusCode::kInvalidArgument,
                  "tensor data section would start");
  EXPECT_REJECTED(Prefix(img, l.data + 4), StatusCode::kInvalidArgument, "tensor 'a'", "size 32",
                  "past the end");
}

TEST(GgufReject, TruncatedFieldsInsidePairsAndInfosNameTheKeyOrTensor) {
  // The first pair is longer than the minimum the count bound assumes, so
  // these cuts pass the bound and fail on the field itself.
  B b;
  b.AddString("k.pad", std::string(64, 'p')).AddU64("k", 1).AddTensor("w", B::kTF32, {8});
  std::vector<uint8_t> img = b.Build();
  const B::Layout& l = b.layout();
  // Claim fewer tensors so the count bound passes, then cut inside pair 0.
  std::vector<uint8_t> v = Prefix(img, l.kvs[1].value + 3);
  B::PutU64(&v, l.tensor_count, 0);
  EXPECT_REJECTED(v, StatusCode::kInvalidArgument, "truncated", "u64 value of metadata key 'k'");
  std::vector<uint8_t> t = Prefix(img, l.tensors[0].type + 2);
  EXPECT_REJECTED(t, StatusCode::kInvalidArgument, "truncated", "tensor 'w' type");
  std::vector<uint8_t> o = Prefix(img, l.tensors[0].offset + 7);
  EXPECT_REJECTED(o, StatusCode::kInvalidArgument, "truncated", "tensor 'w' offset");
}

TEST(GgufReject, EverySingleByteMutationIsHandled) {
  const std::vector<uint8_t> img = RichBuilder().Build();
  for (size_t i = 0; i < img.size(); ++i) {
    for (uint8_t m : {uint8_t{0x00}, uint8_t{0xff}, static_cast<uint8_t>(img[i] ^ 0x80)}) {
      std::vector<uint8_t> v = img;
      v[i] = m;
      Parsed p = Parse(v);
      if (!p.file.ok()) continue;
      for (const TensorInfo& t : (*p.file)->tensors()) {
        ASSERT_LE(t.offset + t.size, v.size()) << "byte " << i;
        ASSERT_EQ(t.data, p.buf.get() + t.offset);
      }
    }
  }
}

TEST(GgufReject, Counts) {
  B b;
  b.AddU32("k", 1).AddTensor("w", B::kTF32, {8});
  const std::vector<uint8_t> img = b.Build();
  for (uint64_t bad : {kU64Max, uint64_t{1} << 40}) {
    std::vector<uint8_t> t = img;
    B::PutU64(&t, b.layout().tensor_count, bad);
    EXPECT_REJECTED(t, StatusCode::kInvalidArgument, "tensor_count " + std::to_string(bad),
                    "cannot fit");
    std::vector<uint8_t> k = img;
    B::PutU64(&k, b.layout().kv_count, bad);
    EXPECT_REJECTED(k, StatusCode::kInvalidArgument, "kv_count " + std::to_string(bad),
                    "cannot fit");
  }
}

TEST(GgufReject, StringLengthsPastTheEnd) {
  const uint64_t huge = uint64_t{1} << 40;
  B key;
  key.AddU32("general.x", 1);
  std::vector<uint8_t> k = key.Build();
  B::PutU64(&k, key.layout().kvs[0].key_len, huge);
  EXPECT_REJECTED(k, StatusCode::kInvalidArgument, "key of metadata pair #0",
                  "string length 1099511627776", "past the end");

  B val;
  val.AddString("general.name", "abc");
  std::vector<uint8_t> v = val.Build();
  B::PutU64(&v, val.layout().kvs[0].value, huge);
  EXPECT_REJECTED(v, StatusCode::kInvalidArgument, "string value of metadata key 'general.name'",
                  "past the end");

  B arr;
  arr.AddStringArray("tokenizer.ggml.tokens", {"ab", "cd"});
  std::vector<uint8_t> a = arr.Build();
  B::PutU64(&a, arr.layout().kvs[0].value + 4 + 8 + 8 + 2, huge);  // element #1's length
  EXPECT_REJECTED(a, StatusCode::kInvalidArgument, "'tokenizer.ggml.tokens' element #1",
                  "past the end");

  B name;
  name.AddTensor("w", B::kTF32, {8});
  std::vector<uint8_t> n = name.Build();
  B::PutU64(&n, name.layout().tensors[0].name_len, kU64Max);
  EXPECT_REJECTED(n, StatusCode::kInvalidArgument, "name of tensor #0", "past the end");
}

TEST(GgufReject, ArrayCountsAndElementTypes) {
  B ovf;
  ovf.AddArray<uint64_t>("a.u64s", B::kU64, {1, 2});
  std::vector<uint8_t> o = ovf.Build();
  B::PutU64(&o, ovf.layout().kvs[0].value + 4, uint64_t{1} << 62);  // x 8 bytes overflows
  EXPECT_REJECTED(o, StatusCode::kInvalidArgument, "'a.u64s'", "4611686018427387904", "overflows");

  B big;
  big.AddArray<uint32_t>("a.u32s", B::kU32, {1, 2});
  std::vector<uint8_t> g = big.Build();
  B::PutU64(&g, big.layout().kvs[0].value + 4, uint64_t{1} << 40);  // 4 TiB: fits in uint64
  EXPECT_REJECTED(g, StatusCode::kInvalidArgument, "'a.u32s'", "1099511627776",
                  "4398046511104 bytes", "past the end");

  B strs;
  strs.AddStringArray("a.strs", {"x"});
  std::vector<uint8_t> s = strs.Build();
  B::PutU64(&s, strs.layout().kvs[0].value + 4, kU64Max);
  EXPECT_REJECTED(s, StatusCode::kInvalidArgument, "'a.strs'", "strings cannot fit");

  B et;
  et.AddRaw("a.bad", B::kArray, B::Cat({B::U32(13), B::U64(0)}));
  EXPECT_REJECTED(et.Build(), StatusCode::kInvalidArgument, "'a.bad'",
                  "array element type 13 is out of range");

  B nested;
  nested.AddRaw("a.nested", B::kArray,
                B::Cat({B::U32(B::kArray), B::U64(1), B::U32(B::kU8), B::U64(1), {7}}));
  EXPECT_REJECTED(nested.Build(), StatusCode::kUnimplemented, "'a.nested'", "arrays of arrays");
}

TEST(GgufReject, ValueTypesAndBools) {
  B vt;
  vt.AddRaw("k.bad", 13, B::U32(0));
  EXPECT_REJECTED(vt.Build(), StatusCode::kInvalidArgument, "'k.bad'", "value type 13");
  B vt2;
  vt2.AddRaw("k.bad", 0xffffffffu, {});
  EXPECT_REJECTED(vt2.Build(), StatusCode::kInvalidArgument, "'k.bad'", "value type 4294967295");

  B b;
  b.AddRaw("k.flag", B::kBool, {2});
  EXPECT_REJECTED(b.Build(), StatusCode::kInvalidArgument, "'k.flag'", "bool value is 2");
  B ba;
  ba.AddArray<int>("k.flags", B::kBool, {1, 0, 5});
  EXPECT_REJECTED(ba.Build(), StatusCode::kInvalidArgument, "'k.flags'", "element #2 is 5");
}

TEST(GgufReject, Alignment) {
  B zero;
  zero.AddU32("general.alignment", 0);
  EXPECT_REJECTED(zero.Build(), StatusCode::kInvalidArgument, "'general.alignment' is 0",
                  "power of two");
  B three;
  three.AddU32("general.alignment", 3);
  EXPECT_REJECTED(three.Build(), StatusCode::kInvalidArgument, "'general.alignment' is 3",
                  "power of two");
  B type;
  type.AddU64("general.alignment", 32);
  EXPECT_REJECTED(type.Build(), StatusCode::kInvalidArgument, "'general.alignment' has type u64",
                  "u32");
}

TEST(GgufReject, Keys) {
  B dup;
  dup.AddU32("x.key", 1).AddString("x.key", "again");
  EXPECT_REJECTED(dup.Build(), StatusCode::kInvalidArgument, "'x.key' appears twice", "#0", "#1");
  B empty;
  empty.AddU32("", 1);
  EXPECT_REJECTED(empty.Build(), StatusCode::kInvalidArgument, "pair #0", "key is empty");
  B nul;
  nul.AddU32(std::string("a\0z", 3), 1);
  EXPECT_REJECTED(nul.Build(), StatusCode::kInvalidArgument, "'a\\x00z' (pair #0)", "NUL");
  B lng;
  lng.AddU32(std::string(64 * 1024 + 1, 'k'), 1);
  EXPECT_REJECTED(lng.Build(), StatusCode::kInvalidArgument, "key of metadata pair #0", "65537",
                  "limit of 65536");
  B ok;
  ok.AddU32(std::string(64 * 1024, 'k'), 1);
  EXPECT_TRUE(Parse(ok.Build()).file.ok());
}

TEST(GgufReject, Dims) {
  EXPECT_REJECTED(B().AddTensor("t", B::kTF32, {}, {}).Build(), StatusCode::kInvalidArgument,
                  "tensor 't'", "n_dims is 0");
  EXPECT_REJECTED(B().AddTensor("t", B::kTF32, {1, 1, 1, 1, 1}, {0, 0, 0, 0}).Build(),
                  StatusCode::kInvalidArgument, "tensor 't'", "n_dims is 5");
  EXPECT_REJECTED(B().AddTensor("t", B::kTF32, {4, 0}, {}).Build(), StatusCode::kInvalidArgument,
                  "tensor 't'", "ne[1] is 0");
  const uint64_t two32 = uint64_t{1} << 32;
  EXPECT_REJECTED(B().AddTensor("t", B::kTF32, {two32, two32}, {}).Build(),
                  StatusCode::kInvalidArgument, "tensor 't'", "ne[1] = 4294967296", "overflow");
  EXPECT_REJECTED(B().AddTensor("t", B::kTF32, {uint64_t{1} << 63}, {}).Build(),
                  StatusCode::kInvalidArgument, "tensor 't'", "ne[0] = 9223372036854775808");
  // 2^62 elements fit in int64, their 2^64 bytes do not.
  EXPECT_REJECTED(B().AddTensor("t", B::kTF32, {uint64_t{1} << 31, uint64_t{1} << 31}, {}).Build(),
                  StatusCode::kInvalidArgument, "tensor 't'", "byte size", "overflows");
}

TEST(GgufReject, TypesAndBlocks) {
  EXPECT_REJECTED(B().AddTensor("blk.0.q", B::kTQ4_K, {100, 2}, std::vector<uint8_t>(144)).Build(),
                  StatusCode::kInvalidArgument, "tensor 'blk.0.q'", "ne[0] = 100", "Q4_K",
                  "(256 elements)");
  EXPECT_REJECTED(B().AddTensor("t", 4, {32}, std::vector<uint8_t>(32)).Build(),
                  StatusCode::kUnimplemented, "tensor 't'", "ggml type 4");
  EXPECT_REJECTED(B().AddTensor("t", 16, {256}, std::vector<uint8_t>(66)).Build(),
                  StatusCode::kUnimplemented, "tensor 't'", "ggml type 16");
  EXPECT_REJECTED(B().AddTensor("t", 99, {32}, std::vector<uint8_t>(32)).Build(),
                  StatusCode::kInvalidArgument, "tensor 't'", "ggml type 99", "out of range");
  EXPECT_REJECTED(B().AddTensor("t", 64, {32}, std::vector<uint8_t>(32)).Build(),
                  StatusCode::kInvalidArgument, "ggml type 64", "out of range");
  // Ids newer ggml defines (40 NVFP4, 41 Q1_0) are known-unsupported, not garbage.
  EXPECT_REJECTED(B().AddTensor("t", 40, {32}, std::vector<uint8_t>(32)).Build(),
                  StatusCode::kUnimplemented, "ggml type 40");
}

TEST(GgufReject, Offsets) {
  const std::vector<uint8_t> d32(32, 9);
  EXPECT_REJECTED(B().AddTensorAt("t", B::kTF32, {8}, 16, d32).Build(),
                  StatusCode::kInvalidArgument, "tensor 't'", "offset 16", "alignment (32)");
  B a64;
  a64.Alignment(64).AddTensorAt("t", B::kTF32, {8}, 32, d32);
  EXPECT_REJECTED(a64.Build(), StatusCode::kInvalidArgument, "offset 32", "alignment (64)");

  B over;
  over.AddTensorAt("a", B::kTF32, {16}, 0, std::vector<uint8_t>(64))
      .AddTensorAt("b", B::kTF32, {8}, 32, d32);
  EXPECT_REJECTED(over.Build(), StatusCode::kInvalidArgument, "tensor 'b'", "overlaps",
                  "tensor 'a'");
  // 'big' covers both later tensors; file order differs from offset order.
  B cover;
  cover.AddTensorAt("c", B::kTF32, {8}, 128, d32)
      .AddTensorAt("big", B::kTF32, {64}, 0, std::vector<uint8_t>(256))
      .AddTensorAt("b", B::kTF32, {8}, 64, d32);
  EXPECT_REJECTED(cover.Build(), StatusCode::kInvalidArgument, "tensor 'b'", "overlaps",
                  "tensor 'big'");

  B past;
  past.AddTensorAt("t", B::kTF32, {8}, 64, d32).DataSectionSize(32);
  EXPECT_REJECTED(past.Build(), StatusCode::kInvalidArgument, "tensor 't'", "offset 64", "size 32",
                  "past the end");
  B wrap;  // offset + size would wrap around 2^64
  wrap.AddTensorAt("t", B::kTF32, {8}, kU64Max - 31, d32).DataSectionSize(32);
  EXPECT_REJECTED(wrap.Build(), StatusCode::kInvalidArgument, "tensor 't'",
                  "offset 18446744073709551584", "past the end");

  B nodata;
  nodata.AddTensor("t", B::kTF32, {8}, {}).NoPadding().DataSectionSize(0);
  const std::vector<uint8_t> img = nodata.Build();
  ASSERT_NE(nodata.layout().end_of_infos % 32, 0u);
  EXPECT_REJECTED(img, StatusCode::kInvalidArgument, "tensor data section would start",
                  "past the end of the file");
}

TEST(GgufReject, TensorNames) {
  const std::vector<uint8_t> d32(32);
  B dup;
  dup.AddTensor("w", B::kTF32, {8}, d32).AddTensor("w", B::kTF32, {8}, d32);
  EXPECT_REJECTED(dup.Build(), StatusCode::kInvalidArgument, "tensor 'w' appears twice", "#0",
                  "#1");
  EXPECT_REJECTED(B().AddTensor(std::string("w\0x", 3), B::kTF32, {8}, d32).Build(),
                  StatusCode::kInvalidArgument, "tensor #0", "NUL");
  EXPECT_REJECTED(B().AddTensor("", B::kTF32, {8}, d32).Build(), StatusCode::kInvalidArgument,
                  "tensor #0", "name is empty");
  EXPECT_REJECTED(B().AddTensor(std::string(64 * 1024 + 1, 'n'), B::kTF32, {8}, d32).Build(),
                  StatusCode::kInvalidArgument, "name of tensor #0", "limit of 65536");
}

}  // namespace
}  // namespace hearth::gguf
