// format_encode_test.cc — the host-side encoders (sdk/src/format/encode.h).
//
// Two independent references: the bytes the `gguf` Python package writes for
// the same inputs (tests/data/encode, made by
// scripts/fixtures/make_encode_fixture.py), compared bit for bit; and, for
// F16 and BF16, exhaustive properties from the IEEE definition: every
// finite value of the narrow format survives the round trip, and every
// midpoint between neighbours rounds to the even one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sdk/src/format/encode.h"

namespace hearth::encode {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "fixtures are little-endian");

const std::string kDir = std::string(HEARTH_TEST_DATA) + "/encode/";

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::vector<uint8_t> out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  uint8_t buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

template <typename T>
std::vector<T> ReadArray(const std::string& name) {
  const std::vector<uint8_t> bytes = ReadFile(kDir + name);
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

uint32_t Bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof(b));
  return b;
}
float FromBits(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof(x));
  return x;
}

// Decodes a half from the IEEE definition (not from any encoder under test).
double HalfValue(uint16_t h) {
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return s * std::ldexp(m, -24);
  if (e == 31) return m == 0 ? s * INFINITY : NAN;
  return s * std::ldexp(1024 + m, e - 25);
}

TEST(EncodeFixture, F16MatchesGgufBitForBit) {
  const std::vector<float> in = ReadArray<float>("float_in.f32");
  const std::vector<uint16_t> want = ReadArray<uint16_t>("f16.bin");
  ASSERT_EQ(in.size(), 2048u) << "missing fixture in " << kDir;
  ASSERT_EQ(want.size(), in.size());
  std::vector<uint16_t> got(in.size(), 0xdead);
  F32ToF16(in.data(), got.data(), static_cast<int64_t>(in.size()));
  int mismatches = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (got[i] != want[i] && ++mismatches <= 10) {
      ADD_FAILURE() << "element " << i << ": f32 bits 0x" << std::hex << Bits(in[i]) << " -> 0x"
                    << got[i] << ", gguf wrote 0x" << want[i];
    }
    EXPECT_EQ(F32ToF16Bits(in[i]), got[i]) << "scalar and array forms differ at " << i;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(EncodeFixture, BF16MatchesGgufBitForBit) {
  const std::vector<float> in = ReadArray<float>("float_in.f32");
  const std::vector<uint16_t> want = ReadArray<uint16_t>("bf16.bin");
  ASSERT_EQ(in.size(), 2048u) << "missing fixture in " << kDir;
  ASSERT_EQ(want.size(), in.size());
  std::vector<uint16_t> got(in.size(), 0xdead);
  F32ToBF16(in.data(), got.data(), static_cast<int64_t>(in.size()));
  int mismatches = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (got[i] != want[i] && ++mismatches <= 10) {
      ADD_FAILURE() << "element " << i << ": f32 bits 0x" << std::hex << Bits(in[i]) << " -> 0x"
                    << got[i] << ", gguf wrote 0x" << want[i];
    }
    EXPECT_EQ(F32ToBF16Bits(in[i]), got[i]) << "scalar and array forms differ at " << i;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(EncodeFixture, Q8_0MatchesGgufBitForBit) {
  const std::vector<float> in = ReadArray<float>("q8_0_in.f32");
  const std::vector<uint8_t> want = ReadFile(kDir + "q8_0.bin");
  ASSERT_EQ(in.size(), 64u * 32u) << "missing fixture in " << kDir;
  ASSERT_EQ(want.size(), 64u * 34u);
  std::vector<uint8_t> got(want.size(), 0xa5);
  ASSERT_TRUE(QuantizeQ8_0(in.data(), static_cast<int64_t>(in.size()), got.data()).ok());
  int mismatches = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i] && ++mismatches <= 10) {
      ADD_FAILURE() << "block " << i / 34 << " byte " << i % 34 << ": got " << int{got[i]}
                    << ", gguf wrote " << int{want[i]};
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// Every finite half decodes exactly to a float and must encode back to
// itself; the midpoint to the next half up must round to the even one of
// the two, and anything just past it to the upper one.
TEST(EncodeF16, ExhaustiveRoundTripAndTies) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hb = static_cast<uint16_t>(h);
    if ((hb & 0x7c00) == 0x7c00) continue;  // inf and NaN: below
    const double v = HalfValue(hb);
    ASSERT_EQ(F32ToF16Bits(static_cast<float>(v)), hb) << "half 0x" << std::hex << h;
    const uint16_t next = static_cast<uint16_t>(hb + 1);  // next magnitude, same sign
    // Past 65504 the "next half" is infinity; the tie sits at 65520, half a
    // step (16) above, so use 65536 for the step's far end.
    const double up = (next & 0x7c00) == 0x7c00 ? std::copysign(65536.0, v) : HalfValue(next);
    const auto mid = static_cast<float>((v + up) / 2);  // exact in f32
    ASSERT_EQ(static_cast<double>(mid), (v + up) / 2);
    const uint16_t even = (hb & 1) ? next : hb;
    ASSERT_EQ(F32ToF16Bits(mid), even) << "tie above half 0x" << std::hex << h;
    const float past = std::nextafter(mid, std::signbit(mid) ? -INFINITY : INFINITY);
    ASSERT_EQ(F32ToF16Bits(past), next) << "past the tie above half 0x" << std::hex << h;
    const float before = std::nextafter(mid, std::signbit(mid) ? INFINITY : -INFINITY);
    ASSERT_EQ(F32ToF16Bits(before), hb) << "below the tie, half 0x" << std::hex << h;
  }
}

TEST(EncodeF16, SpecialValues) {
  EXPECT_EQ(F32ToF16Bits(0.0f), 0x0000);
  EXPECT_EQ(F32ToF16Bits(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16Bits(INFINITY), 0x7c00);
  EXPECT_EQ(F32ToF16Bits(-INFINITY), 0xfc00);
  EXPECT_EQ(F32ToF16Bits(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(F32ToF16Bits(-1e30f), 0xfc00);
  EXPECT_EQ(F32ToF16Bits(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(F32ToF16Bits(-std::numeric_limits<float>::denorm_min()), 0x8000);
  // NaNs stay NaNs of the same sign, even when the kept payload bits are 0.
  for (uint32_t nan : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    const uint16_t h = F32ToF16Bits(FromBits(nan));
    EXPECT_EQ(h & 0x7c00, 0x7c00) << std::hex << nan;
    EXPECT_NE(h & 0x03ff, 0) << std::hex << nan;
    EXPECT_EQ(h >> 15, nan >> 31) << std::hex << nan;
  }
}

TEST(EncodeBF16, ExhaustiveRoundTripTiesAndNaN) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint32_t wide = h << 16;
    const bool nan = (wide & 0x7fffffffu) > 0x7f800000u;
    if (nan) {
      const uint16_t got = F32ToBF16Bits(FromBits(wide));
      ASSERT_TRUE((got & 0x7f80) == 0x7f80 && (got & 0x40) != 0 && (got >> 15) == (h >> 15))
          << "NaN 0x" << std::hex << h << " became 0x" << got;
      continue;
    }
    ASSERT_EQ(F32ToBF16Bits(FromBits(wide)), h) << "bf16 0x" << std::hex << h;
    if ((h & 0x7fff) >= 0x7f80) continue;  // inf: no next value
    // Midpoint to the next bf16 up in magnitude: bit 15 set, nothing below.
    const uint32_t mid = wide | 0x8000u;
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    ASSERT_EQ(F32ToBF16Bits(FromBits(mid)), even) << "tie above bf16 0x" << std::hex << h;
    ASSERT_EQ(F32ToBF16Bits(FromBits(mid + 1)), static_cast<uint16_t>(h + 1));
    ASSERT_EQ(F32ToBF16Bits(FromBits(mid - 1)), h);
  }
}

TEST(EncodeArrays, ZeroOrNegativeCountWritesNothing) {
  const float src[1] = {1.0f};
  uint16_t dst[1] = {0x1234};
  F32ToF16(src, dst, 0);
  F32ToBF16(src, dst, -5);
  EXPECT_EQ(dst[0], 0x1234);
  EXPECT_TRUE(QuantizeQ8_0(nullptr, 0, nullptr).ok());
}

// Independent of the fixture: dequantizing gives back every input to within
// half a step (d/2, with d the stored F16 scale, plus the scale's rounding).
TEST(EncodeQ8_0, DequantizesWithinHalfAStep) {
  std::vector<float> x(32 * 40);
  uint32_t state = 12345;
  for (size_t i = 0; i < x.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    const float u = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
    x[i] = u * std::ldexp(1.0f, static_cast<int>(i / 32) % 20 - 8);
  }
  std::vector<uint8_t> q(40 * 34);
  ASSERT_TRUE(QuantizeQ8_0(x.data(), static_cast<int64_t>(x.size()), q.data()).ok());
  for (size_t b = 0; b < 40; ++b) {
    const double d = HalfValue(static_cast<uint16_t>(q[b * 34] | (q[b * 34 + 1] << 8)));
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    // F16 keeps 11 significant bits, and subnormal scales are steps of 2^-24.
    const double d_exact = amax / 127.0;
    const double d_err = std::fabs(d - d_exact);
    ASSERT_LE(d_err, d_exact * std::ldexp(1.0, -11) + std::ldexp(1.0, -25)) << "block " << b;
    for (int j = 0; j < 32; ++j) {
      const auto qj = static_cast<int8_t>(q[b * 34 + 2 + j]);
      ASSERT_LE(std::abs(qj), 127);
      ASSERT_NEAR(d * qj, x[b * 32 + j], d_exact * 0.5001 + 127 * d_err)
          << "block " << b << " elem " << j;
    }
  }
}

TEST(EncodeQ8_0, RefusesBadInput) {
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> q(2 * 34);
  absl::Status s = QuantizeQ8_0(x.data(), 33, q.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("33"), absl::string_view::npos) << s;
  EXPECT_FALSE(QuantizeQ8_0(x.data(), -32, q.data()).ok());
  EXPECT_FALSE(QuantizeQ8_0(nullptr, 32, q.data()).ok());
  EXPECT_FALSE(QuantizeQ8_0(x.data(), 32, nullptr).ok());

  x[40] = NAN;
  s = QuantizeQ8_0(x.data(), 64, q.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("element 40"), absl::string_view::npos) << s;
  x[40] = -INFINITY;
  s = QuantizeQ8_0(x.data(), 64, q.data());
  EXPECT_NE(s.message().find("element 40"), absl::string_view::npos) << s;

  // max|x| / 127 rounds to 65520 or more: the F16 scale would be infinite.
  x[40] = 1.0f;
  x[35] = 65520.0f * 127.0f;
  s = QuantizeQ8_0(x.data(), 64, q.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("block 1"), absl::string_view::npos) << s;
  // The largest maximum whose scale still rounds to 65504 is accepted.
  x[35] = 65519.0f * 127.0f;
  ASSERT_TRUE(QuantizeQ8_0(x.data(), 64, q.data()).ok());
  EXPECT_EQ(q[34] | (q[35] << 8), 0x7bff);
  EXPECT_EQ(static_cast<int8_t>(q[34 + 2 + 3]), 127);
}

}  // namespace
}  // namespace hearth::encode
