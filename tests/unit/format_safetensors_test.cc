// format_safetensors_test.cc — the safetensors reader: a file written by the
// reference `safetensors` package, images built by safetensors_builder.h,
// and one test per hostile-input rule (each checks that the message names
// the problem), plus every truncation and byte mutation of a valid image.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "hearth/hearth_plugin.h"
#include "sdk/src/format/safetensors.h"
#include "tests/unit/safetensors_builder.h"

namespace hearth::safetensors {
namespace {

using ::hearth::testing::SafetensorsBuilder;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<File>> Parse(const std::vector<uint8_t>& img) {
  return File::FromMemory(img.data(), img.size(), "t.safetensors");
}

// Parses `header` (with `data` after it) and expects INVALID_ARGUMENT whose
// message contains every one of `parts`.
void ExpectInvalid(const std::string& header, const std::vector<std::string>& parts,
                   const std::vector<uint8_t>& data = std::vector<uint8_t>(64)) {
  SCOPED_TRACE(header.substr(0, 200));
  auto f = Parse(SafetensorsBuilder::Image(header, data));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("t.safetensors: "));
  for (const std::string& p : parts) {
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(p));
  }
}

float LoadF32(const uint8_t* p) {
  uint32_t bits = 0;
  for (int k = 0; k < 4; ++k) bits |= uint32_t{p[k]} << (8 * k);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// IEEE half to float, written out (no F16C) so the check is independent.
float HalfToFloat(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    v = man ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(man + 1024), exp - 25);
  }
  return sign ? -v : v;
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

TEST(SafetensorsTest, ReadsTheReferenceWritersFile) {
  auto f = File::Open(HEARTH_TEST_DATA "/safetensors/small.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  const File& file = **f;
  EXPECT_EQ(file.file_size(), 561u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("source"), "hearth fixture");

  std::vector<std::string> names;
  for (const TensorInfo& t : file.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.f32", "b.f16", "c.bf16", "d.i64", "e.u8", "empty",
                                             "scalar"}));

  const TensorInfo* a = file.Find("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype_name, "F32");
  EXPECT_EQ(a->hearth_dtype, static_cast<uint32_t>(HEARTH_DTYPE_F32));
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->size, 24u);
  EXPECT_EQ(a->data, file.data() + a->offset);
  const float want_a[] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(LoadF32(a->data + 4 * i), want_a[i]) << i;

  const TensorInfo* b = file.Find("b.f16");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->hearth_dtype, static_cast<uint32_t>(HEARTH_DTYPE_F16));
  EXPECT_EQ(b->elem_bytes, 2);
  const float want_b[] = {1.0f, -2.0f, 0.5f, 65504.0f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(HalfToFloat(LoadU16(b->data + 2 * i)), want_b[i]) << i;

  const TensorInfo* c = file.Find("c.bf16");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->hearth_dtype, static_cast<uint32_t>(HEARTH_DTYPE_BF16));
  const float want_c[] = {1.0f, -1.5f, 256.0f, 0.0078125f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Bf16ToFloat(LoadU16(c->data + 2 * i)), want_c[i]) << i;

  const TensorInfo* d = file.Find("d.i64");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->hearth_dtype, kNoHearthDtype);
  EXPECT_EQ(d->elem_bytes, 8);
  int64_t d2;
  std::memcpy(&d2, d->data + 16, 8);
  EXPECT_EQ(d2, int64_t{1} << 40);

  const TensorInfo* e = file.Find("e.u8");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->hearth_dtype, kNoHearthDtype);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(e->data[i], i);

  const TensorInfo* s = file.Find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->n_elements(), 1);
  EXPECT_EQ(LoadF32(s->data), 7.25f);

  const TensorInfo* z = file.Find("empty");
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z->n_elements(), 0);
  EXPECT_EQ(z->size, 0u);
  EXPECT_EQ(z->data, nullptr);
  EXPECT_EQ(file.Find("nope"), nullptr);
}

TEST(SafetensorsTest, BuiltImageRoundTrip) {
  SafetensorsBuilder b;
  b.AddF32("z.last", {2}, {1.5f, -2.5f})
      .Add("m.half", "F16", {1, 3}, {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x00})  // 1, -2, 0
      .Add("a.bytes", "BOOL", {3}, {1, 0, 1})
      .Metadata("k", "v\n\"quoted\"")
      .HeaderPadding(5);  // the data then starts at an odd offset: allowed
  const std::vector<uint8_t> img = b.Build();
  auto f = Parse(img);
  ASSERT_TRUE(f.ok()) << f.status();
  const File& file = **f;
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.tensors()[0].name, "a.bytes");
  EXPECT_EQ(file.tensors()[2].name, "z.last");
  EXPECT_EQ(file.metadata().at("k"), "v\n\"quoted\"");
  EXPECT_EQ(file.data_offset(), 8 + b.Header().size());
  const TensorInfo* z = file.Find("z.last");
  EXPECT_EQ(z->offset, file.data_offset());
  EXPECT_EQ(LoadF32(z->data + 4), -2.5f);
  const TensorInfo* m = file.Find("m.half");
  EXPECT_EQ(m->offset, file.data_offset() + 8);
  EXPECT_EQ(HalfToFloat(LoadU16(m->data + 2)), -2.0f);
  EXPECT_EQ(file.Find("a.bytes")->elem_bytes, 1);
}

TEST(SafetensorsTest, AcceptsEmptyHeaderObjectAndNullMetadata) {
  auto f = Parse(SafetensorsBuilder::Image("{}", {}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->tensors().empty());
  f = Parse(SafetensorsBuilder::Image(R"({"__metadata__": null})", {}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->metadata().empty());
}

TEST(SafetensorsTest, OpenNamesThePath) {
  auto f = File::Open("/nonexistent/x.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("/nonexistent/x.safetensors"));
  f = File::Open(HEARTH_TEST_DATA "/safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("not a regular file"));

  const std::string path =
      ::testing::TempDir() + "/st_open_" + std::to_string(::getpid()) + ".safetensors";
  ASSERT_TRUE(SafetensorsBuilder::WriteFile(path, SafetensorsBuilder::Image("{\"x\": 1}", {})));
  f = File::Open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(path + ": tensor 'x'"));
  ::unlink(path.c_str());
}

TEST(SafetensorsTest, RejectsBadLengthField) {
  for (size_t n : {0, 1, 7}) {
    const std::vector<uint8_t> img(n, 0);
    auto f = File::FromMemory(n == 0 ? nullptr : img.data(), n, "t.safetensors");
    ASSERT_FALSE(f.ok());
    EXPECT_THAT(std::string(f.status().message()),
                HasSubstr("shorter than the 8-byte header length field"));
  }
  std::vector<uint8_t> img = SafetensorsBuilder::Image("{}", {});
  img[0] = 0;  // length 0
  auto f = Parse(img);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("header length is 0"));

  img = SafetensorsBuilder::Image("{}", {});
  img[0] = 3;  // 3 > 2 bytes left
  f = Parse(img);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()),
              HasSubstr("header length 3 is past the end of the file (2 bytes"));

  img = SafetensorsBuilder::Image("{}", {});
  img[3] = 0x06;  // 0x06000000 + 2 = 96 MiB + 2: under the limit, past the end
  f = Parse(img);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("is past the end of the file"));

  for (uint64_t len : {(uint64_t{100} << 20) + 1, ~uint64_t{0}}) {
    img = SafetensorsBuilder::Image("{}", {});
    for (int k = 0; k < 8; ++k) img[k] = static_cast<uint8_t>(len >> (8 * k));
    f = Parse(img);
    ASSERT_FALSE(f.ok());
    EXPECT_THAT(std::string(f.status().message()),
                HasSubstr("is over the limit of 104857600 bytes (100 MiB)"));
  }
}

TEST(SafetensorsTest, RejectsInvalidJson) {
  ExpectInvalid("{", {"header is not valid JSON", "at byte"});
  ExpectInvalid(R"({"a": })", {"header is not valid JSON"});
  ExpectInvalid(R"({"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}} x)",
                {"header is not valid JSON"});
  ExpectInvalid(R"({"a": NaN})", {"header is not valid JSON"});
  ExpectInvalid(std::string("{\"\xff\": 1}"), {"header is not valid JSON"});  // not UTF-8
  ExpectInvalid(std::string("{\"a\0b\": 1}", 10), {"header is not valid JSON"});
}

// Only spaces may pad a header (the spec); a NUL would end nlohmann's input
// and hide whatever follows it (issue 17, class 8).
TEST(SafetensorsTest, RejectsNulAndJunkAfterTheHeader) {
  ExpectInvalid("{}" + std::string(1, '\0') + "junk",
                {"header is not valid JSON (at byte 3: a NUL"});
  ExpectInvalid("{}" + std::string(5, '\0'), {"header is not valid JSON (at byte 3: a NUL"});
  ExpectInvalid("{} x", {"header is not valid JSON"});
  auto padded = Parse(SafetensorsBuilder::Image("{}      ", {}));
  EXPECT_TRUE(padded.ok()) << padded.status();
}

TEST(SafetensorsTest, DeepNestingFailsFastWithoutRecursion) {
  const std::string deep(1 << 20, '[');
  ExpectInvalid(deep, {"header is an array, expected a JSON object"});
  ExpectInvalid("{\"t\": {\"shape\": " + deep, {"tensor 't': shape[0] is an array"});
  ExpectInvalid("{\"t\": {\"dtype\": " + std::string(1 << 20, '{'),
                {"tensor 't': dtype is an object"});
}

TEST(SafetensorsTest, RejectsTopLevelThatIsNotAnObject) {
  ExpectInvalid("[]", {"header is an array, expected a JSON object"});
  ExpectInvalid("3", {"header is an integer (3), expected a JSON object"});
  ExpectInvalid("\"x\"", {"header is a string"});
  ExpectInvalid("null", {"header is null"});
}

TEST(SafetensorsTest, RejectsEntriesThatAreNotObjects) {
  ExpectInvalid(R"({"w": 3})", {"tensor 'w': entry is an integer (3), expected an object"});
  ExpectInvalid(R"({"w": [1]})", {"tensor 'w': entry is an array"});
  ExpectInvalid(R"({"w": null})", {"tensor 'w': entry is null"});
}

TEST(SafetensorsTest, RejectsUnknownAndSubByteDtypes) {
  ExpectInvalid(R"({"w": {"dtype": "Q4_0", "shape": [1], "data_offsets": [0, 1]}})",
                {"tensor 'w': unknown dtype 'Q4_0'", "F32"});
  ExpectInvalid(R"({"w": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}})",
                {"unknown dtype 'f32'"});
  ExpectInvalid(R"({"w": {"dtype": 1, "shape": [1], "data_offsets": [0, 4]}})",
                {"tensor 'w': dtype is an integer (1), expected a string"});
  auto f = Parse(SafetensorsBuilder::Image(
      R"({"w": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}})", {0}));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("tensor 'w': dtype F4"));
}

TEST(SafetensorsTest, RejectsMissingDuplicateAndExtraKeys) {
  ExpectInvalid(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})",
                {"tensor 'w': 'dtype' is missing"});
  ExpectInvalid(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})",
                {"tensor 'w': 'shape' is missing"});
  ExpectInvalid(R"({"w": {"dtype": "F32", "shape": [1]}})",
                {"tensor 'w': 'data_offsets' is missing"});
  ExpectInvalid(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}})",
                {"tensor 'w': unknown key 'x' (expected dtype, shape, data_offsets)"});
  ExpectInvalid(R"({"w": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}})",
                {"tensor 'w': 'dtype' appears twice"});
}

TEST(SafetensorsTest, RejectsBadShapes) {
  const auto with_shape = [](const std::string& shape) {
    return R"({"w": {"dtype": "U8", "shape": )" + shape + R"(, "data_offsets": [0, 1]}})";
  };
  ExpectInvalid(with_shape("3"), {"tensor 'w': shape is an integer (3), expected an array"});
  ExpectInvalid(with_shape("[-1]"),
                {"tensor 'w': shape[0] is a negative integer (-1), expected a non-negative"});
  ExpectInvalid(with_shape("[1, 2.5]"), {"tensor 'w': shape[1] is a non-integer number (2.5)"});
  ExpectInvalid(with_shape("[1.0]"), {"shape[0] is a non-integer number (1.0)"});
  ExpectInvalid(with_shape("[\"1\"]"), {"shape[0] is a string"});
  ExpectInvalid(with_shape("[[1]]"), {"shape[0] is an array"});
  ExpectInvalid(with_shape("[9007199254740993]"),
                {"shape[0] = 9007199254740993 is larger than 2^53"});
  ExpectInvalid(with_shape("[1,1,1,1,1,1,1,1,1]"),
                {"tensor 'w': shape has more than 8 dimensions"});
  ExpectInvalid(with_shape("[18446744073709551616]"), {"shape[0] is a non-integer number"});
  ExpectInvalid(with_shape("[9007199254740992, 9007199254740992, 9007199254740992]"),
                {"tensor 'w': shape [9007199254740992, 9007199254740992, 9007199254740992] of U8 "
                 "needs more than 2^64 bytes"});
  // Zero in a shape makes the tensor empty, whatever the other dimensions.
  auto f = Parse(SafetensorsBuilder::Image(
      R"({"w": {"dtype": "F32", "shape": [9007199254740992, 9007199254740992, 0],
                "data_offsets": [0, 0]}})",
      {}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors()[0].n_elements(), 0);
}

TEST(SafetensorsTest, RejectsBadDataOffsets) {
  const auto with_offsets = [](const std::string& offsets) {
    return R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": )" + offsets + "}}";
  };
  ExpectInvalid(with_offsets("8"),
                {"tensor 'w': data_offsets is an integer (8), expected an array"});
  ExpectInvalid(with_offsets("[0]"), {"tensor 'w': data_offsets has 1 element(s), expected 2"});
  ExpectInvalid(with_offsets("[]"), {"data_offsets has 0 element(s)"});
  ExpectInvalid(with_offsets("[0, 8, 8]"), {"data_offsets has more than 2 elements"});
  ExpectInvalid(with_offsets("[-8, 0]"), {"data_offsets[0] is a negative integer (-8)"});
  ExpectInvalid(with_offsets("[0, 8.0]"), {"data_offsets[1] is a non-integer number (8.0)"});
  ExpectInvalid(with_offsets("[16, 8]"), {"tensor 'w': data_offsets [16, 8]: begin is after end"});
  ExpectInvalid(with_offsets("[0, 12]"),
                {"tensor 'w': data_offsets [0, 12] hold 12 bytes but shape [2] of F32 needs 8"});
  ExpectInvalid(with_offsets("[60, 68]"),
                {"tensor 'w': data_offsets end 68 is past the end of the data section (64 bytes"});
  ExpectInvalid(with_offsets("[18446744073709551608, 18446744073709551615]"), {"hold 7 bytes"});
  ExpectInvalid(with_offsets("[18446744073709551607, 18446744073709551615]"),
                {"data_offsets end 18446744073709551615 is past the end of the data section"});
}

TEST(SafetensorsTest, RejectsOverlappingTensors) {
  ExpectInvalid(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                {"tensors 'a' (bytes [0, 16)) and 'b' (bytes [8, 16)) overlap"});
  // Contained in an earlier, longer range but not overlapping its neighbour.
  ExpectInvalid(R"({"a": {"dtype": "U8", "shape": [32], "data_offsets": [0, 32]},
                    "b": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]},
                    "c": {"dtype": "U8", "shape": [4], "data_offsets": [20, 24]}})",
                {"tensors 'a' (bytes [0, 32)) and 'b' (bytes [4, 8)) overlap"});
  // Gaps, adjacency and empty tensors at any offset are fine.
  auto f = Parse(SafetensorsBuilder::Image(
      R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
          "b": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]},
          "e": {"dtype": "U8", "shape": [0], "data_offsets": [2, 2]},
          "c": {"dtype": "U8", "shape": [4], "data_offsets": [16, 20]}})",
      std::vector<uint8_t>(32)));
  ASSERT_TRUE(f.ok()) << f.status();
}

TEST(SafetensorsTest, RejectsDuplicateNames) {
  ExpectInvalid(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                    "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                {"tensor 'w' appears twice in the header"});
  ExpectInvalid(R"({"__metadata__": {}, "__metadata__": {}})",
                {"'__metadata__' appears twice in the header"});
  ExpectInvalid(R"({"__metadata__": {"a": "1", "a": "2"}})",
                {"__metadata__: key 'a' appears twice"});
}

TEST(SafetensorsTest, RejectsBadMetadata) {
  ExpectInvalid(R"({"__metadata__": {"a": 1}})",
                {"__metadata__: value of 'a' is an integer (1), expected a string"});
  ExpectInvalid(R"({"__metadata__": {"a": {"b": "c"}}})", {"value of 'a' is an object"});
  ExpectInvalid(R"({"__metadata__": {"a": null}})", {"value of 'a' is null"});
  ExpectInvalid(R"({"__metadata__": ["a"]})",
                {"'__metadata__' is an array, expected an object of strings"});
  ExpectInvalid(R"({"__metadata__": "x"})", {"'__metadata__' is a string"});
}

TEST(SafetensorsTest, RejectsBadNamesAndQuotesThem) {
  ExpectInvalid(R"({"": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})",
                {"a tensor has an empty name"});
  ExpectInvalid(R"({"a\u0000b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})",
                {"tensor 'a\\x00b': name contains a NUL byte"});
  ExpectInvalid(R"({"a\nb": {"dtype": "Q", "shape": [1], "data_offsets": [0, 1]}})",
                {"tensor 'a\\x0ab': unknown dtype"});
  const std::string long_name(500, 'n');
  ExpectInvalid("{\"" + long_name + "\": 1}", {"... (500 bytes)"});
  // Non-ASCII names are shown as they are (the header is valid UTF-8).
  ExpectInvalid("{\"caf\xc3\xa9\": 1}", {"tensor 'caf\xc3\xa9'"});
}

// Every prefix of a valid image is either rejected cleanly or (for prefixes
// that only cut trailing bytes no tensor uses) accepted; never a crash.
TEST(SafetensorsTest, EveryTruncationIsHandled) {
  SafetensorsBuilder b;
  b.AddF32Pattern("a", {2, 2}).Add("b", "BF16", {3}, {1, 2, 3, 4, 5, 6}).Metadata("m", "v");
  const std::vector<uint8_t> img = b.Build();
  for (size_t n = 0; n < img.size(); ++n) {
    std::vector<uint8_t> cut(img.begin(), img.begin() + static_cast<ptrdiff_t>(n));
    auto f = File::FromMemory(cut.data(), cut.size(), "t.safetensors");
    EXPECT_FALSE(f.ok()) << n;
  }
  EXPECT_TRUE(Parse(img).ok());
}

TEST(SafetensorsTest, EverySingleByteMutationIsHandled) {
  SafetensorsBuilder b;
  b.AddF32Pattern("a", {2, 2}).Add("b", "I32", {1}, {1, 2, 3, 4});
  const std::vector<uint8_t> img = b.Build();
  int accepted = 0;
  for (size_t i = 0; i < img.size(); ++i) {
    for (uint8_t v : {0x00, 0x01, 0x22, 0x5B, 0x7B, 0x7D, 0x30, 0x39, 0xFF}) {
      std::vector<uint8_t> m = img;
      m[i] = v;
      auto f = Parse(m);
      if (!f.ok()) continue;
      ++accepted;
      for (const TensorInfo& t : (*f)->tensors()) {
        ASSERT_LE(t.offset + t.size, m.size());
        ASSERT_EQ(t.size, static_cast<uint64_t>(t.n_elements()) * t.elem_bytes);
      }
    }
  }
  EXPECT_GT(accepted, 0);  // data bytes and harmless header digits still parse
}

}  // namespace
}  // namespace hearth::safetensors
