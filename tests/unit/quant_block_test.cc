// quant_block_test.cc — the block quantizers against the `gguf` Python
// package (tests/data/quant, scripts/fixtures/make_quant_fixtures.py):
// Q8_0, Q4_0 and Q5_0 bit for bit; Q4_K and Q6_K, which gguf-py cannot
// quantize, through a reading of their layout that is itself checked
// against gguf-py's dequantizer, with round-trip error bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sdk/src/format/gguf.h"
#include "sdk/src/quant/block_quantize.h"
#include "sdk/src/quant/type_plan.h"

namespace hearth::quant {
namespace {

const std::string kDir = std::string(HEARTH_TEST_DATA) + "/quant/";

std::vector<uint8_t> ReadBytes(const std::string& name) {
  std::ifstream in(kDir + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::vector<float> ReadFloats(const std::string& name) {
  const std::vector<uint8_t> b = ReadBytes(name);
  std::vector<float> f(b.size() / 4);
  std::memcpy(f.data(), b.data(), f.size() * 4);
  return f;
}

float Half(const uint8_t* p) {
  float out = 0;
  const std::vector<uint8_t> two = {p[0], p[1]};
  ToFloat(gguf::kGgmlF16, two.data(), 1, &out);
  return out;
}

// Q4_K and Q6_K decoded as gguf-py's numpy code reads them.
std::vector<float> DequantQ4_K(const std::vector<uint8_t>& q) {
  std::vector<float> out;
  for (size_t b = 0; b + 144 <= q.size(); b += 144) {
    const uint8_t* blk = q.data() + b;
    const float d = Half(blk), dmin = Half(blk + 2);
    const uint8_t* s = blk + 4;
    uint8_t sc[8], m[8];
    for (int j = 0; j < 4; ++j) {
      sc[j] = s[j] & 63;
      m[j] = s[j + 4] & 63;
      sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 2) & 0x30);
      m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
    }
    const uint8_t* qs = blk + 16;
    for (int sub = 0; sub < 8; ++sub) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[(sub / 2) * 32 + l];
        const int v = (sub % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
        out.push_back(d * sc[sub] * v - dmin * m[sub]);
      }
    }
  }
  return out;
}

std::vector<float> DequantQ6_K(const std::vector<uint8_t>& q) {
  std::vector<float> out;
  for (size_t b = 0; b + 210 <= q.size(); b += 210) {
    const uint8_t* blk = q.data() + b;
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = Half(blk + 208);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, r = e % 128;
      const int lo = (r < 64) ? (ql[h * 64 + r] & 0x0f) : (ql[h * 64 + r - 64] >> 4);
      const int hi = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
      out.push_back(d * sc[e / 16] * static_cast<float>((lo | (hi << 4)) - 32));
    }
  }
  return out;
}

std::vector<uint8_t> Quantize(uint32_t type, const std::vector<float>& x) {
  int64_t block = 0, bytes = 0;
  gguf::GgmlTypeGeometry(type, &block, &bytes);
  std::vector<uint8_t> out(x.size() / block * bytes);
  EXPECT_TRUE(QuantizeRow("test", type, x.data(), static_cast<int64_t>(x.size()), out.data()).ok());
  return out;
}

TEST(QuantBlockTest, MatchesGgufPyBitForBit) {
  const std::vector<float> x = ReadFloats("in.f32");
  ASSERT_EQ(x.size(), 16u * 256);
  EXPECT_EQ(Quantize(gguf::kGgmlQ8_0, x), ReadBytes("q8_0.bin"));
  EXPECT_EQ(Quantize(gguf::kGgmlQ4_0, x), ReadBytes("q4_0.bin"));
  EXPECT_EQ(Quantize(gguf::kGgmlQ5_0, x), ReadBytes("q5_0.bin"));
}

TEST(QuantBlockTest, LayoutReadingMatchesGgufPyDequantizer) {
  const std::vector<float> q4 = DequantQ4_K(ReadBytes("q4_k_rand.bin"));
  const std::vector<float> q6 = DequantQ6_K(ReadBytes("q6_k_rand.bin"));
  EXPECT_EQ(q4, ReadFloats("q4_k_rand.f32"));
  EXPECT_EQ(q6, ReadFloats("q6_k_rand.f32"));
}

// sqrt(mean((x - y)^2)) / sqrt(mean(x^2)) over one block of 256.
double RelRms(const float* x, const float* y) {
  double e = 0, s = 0;
  for (int i = 0; i < 256; ++i) {
    e += (x[i] - y[i]) * static_cast<double>(x[i] - y[i]);
    s += x[i] * static_cast<double>(x[i]);
  }
  return s == 0 ? std::sqrt(e) : std::sqrt(e / s);
}

TEST(QuantBlockTest, KQuantsRoundTrip) {
  std::vector<float> x = ReadFloats("in.f32");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int i = 0; i < 64 * 256; ++i) x.push_back(normal(rng) * 0.02f);  // weight-like blocks
  const std::vector<float> q4 = DequantQ4_K(Quantize(gguf::kGgmlQ4_K, x));
  const std::vector<float> q6 = DequantQ6_K(Quantize(gguf::kGgmlQ6_K, x));
  std::vector<float> q40(x.size());
  {
    const std::vector<uint8_t> b = Quantize(gguf::kGgmlQ4_0, x);
    for (size_t blk = 0; blk < b.size() / 18; ++blk) {
      const float d = Half(&b[blk * 18]);
      for (int j = 0; j < 16; ++j) {
        q40[blk * 32 + j] = d * ((b[blk * 18 + 2 + j] & 0x0f) - 8);
        q40[blk * 32 + j + 16] = d * ((b[blk * 18 + 2 + j] >> 4) - 8);
      }
    }
  }
  ASSERT_EQ(q4.size(), x.size());
  ASSERT_EQ(q6.size(), x.size());
  double sum4 = 0, sum6 = 0, sum40 = 0;
  int n = 0;
  for (size_t b = 0; b < x.size() / 256; ++b) {
    const float* xb = x.data() + b * 256;
    const double e4 = RelRms(xb, q4.data() + b * 256), e6 = RelRms(xb, q6.data() + b * 256);
    if (b == 0) {  // all zeros stay zeros
      EXPECT_EQ(e4, 0);
      EXPECT_EQ(e6, 0);
      continue;
    }
    // Values of 1e-6 need scales below F16's smallest subnormal: the
    // K-quants (llama.cpp's too) flush such a block to zero or its minimum.
    if (b == 4) continue;
    EXPECT_LT(e4, 0.15) << "Q4_K block " << b;
    EXPECT_LT(e6, 0.03) << "Q6_K block " << b;
    if (b >= 8) {  // the Gaussian blocks
      sum4 += e4;
      sum6 += e6;
      sum40 += RelRms(xb, q40.data() + b * 256);
      ++n;
    }
  }
  std::printf("relative RMS error over %d Gaussian blocks: Q4_0 %.4f, Q4_K %.4f, Q6_K %.4f\n", n,
              sum40 / n, sum4 / n, sum6 / n);
  EXPECT_LT(sum4 / n, 0.09);
  EXPECT_LT(sum6 / n, 0.02);
  EXPECT_LT(sum4, sum40);  // the K-quant search beats plain Q4_0
}

TEST(QuantBlockTest, RefusesWhatItCannotWrite) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(1024);
  x[3] = NAN;
  absl::Status s = QuantizeRow("blk.0.w", gguf::kGgmlQ4_K, x.data(), 256, out.data());
  EXPECT_NE(s.message().find("blk.0.w: element 3"), std::string::npos) << s;
  x[3] = 1e9f;  // a Q4_0 scale of 1.25e8 does not fit F16
  s = QuantizeRow("w", gguf::kGgmlQ4_0, x.data(), 256, out.data());
  EXPECT_NE(s.message().find("beyond the largest F16"), std::string::npos) << s;
  s = QuantizeRow("w", gguf::kGgmlQ4_K, x.data(), 128, out.data());
  EXPECT_NE(s.message().find("not a multiple of Q4_K's block of 256"), std::string::npos) << s;
  s = QuantizeRow("w", gguf::kGgmlQ2_K, x.data(), 256, out.data());
  EXPECT_FALSE(s.ok());
}

TEST(QuantTypePlanTest, Q4_K_MMixesLikeLlamaCpp) {
  std::vector<std::string> names = {"token_embd.weight", "output_norm.weight", "output.weight"};
  for (int l = 0; l < 16; ++l) {
    for (const char* t : {"attn_v", "ffn_down", "attn_q", "attn_norm"}) {
      names.push_back("blk." + std::to_string(l) + "." + t + ".weight");
    }
  }
  absl::StatusOr<ModelType> t = ParseModelType("q4_k_m");
  ASSERT_TRUE(t.ok());
  TypePlan plan(*t, names);
  const std::vector<int64_t> mat = {512, 512};
  EXPECT_EQ(plan.TypeFor("output.weight", mat), gguf::kGgmlQ6_K);
  EXPECT_EQ(plan.TypeFor("token_embd.weight", mat), gguf::kGgmlQ4_K);
  EXPECT_EQ(plan.TypeFor("output_norm.weight", {512}), gguf::kGgmlF32);
  // use_more_bits(i, 16): i < 2, i >= 14, or (i - 2) % 3 == 2.
  std::string q6;
  for (int l = 0; l < 16; ++l) {
    const bool v =
        plan.TypeFor("blk." + std::to_string(l) + ".attn_v.weight", mat) == gguf::kGgmlQ6_K;
    const bool d =
        plan.TypeFor("blk." + std::to_string(l) + ".ffn_down.weight", mat) == gguf::kGgmlQ6_K;
    EXPECT_EQ(v, d);
    if (v) q6 += std::to_string(l) + " ";
    EXPECT_EQ(plan.TypeFor("blk." + std::to_string(l) + ".attn_q.weight", mat), gguf::kGgmlQ4_K);
  }
  EXPECT_EQ(q6, "0 1 4 7 10 13 14 15 ");
  // Rows that are no multiple of 256 fall back as llama.cpp's do.
  EXPECT_EQ(plan.TypeFor("blk.3.attn_q.weight", {64, 64}), gguf::kGgmlQ5_0);
  EXPECT_EQ(plan.TypeFor("output.weight", {64, 300}), gguf::kGgmlQ8_0);
  // Tied output: token_embd is the output layer.
  TypePlan tied(*t, {"token_embd.weight", "blk.0.attn_v.weight"});
  EXPECT_EQ(tied.TypeFor("token_embd.weight", mat), gguf::kGgmlQ6_K);
  EXPECT_FALSE(ParseModelType("q3_k").ok());
}

}  // namespace
}  // namespace hearth::quant
