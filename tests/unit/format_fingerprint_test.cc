// XXH64 against the reference implementation's published values, and the
// weights fingerprint: stable, sensitive to a weight byte, blind to metadata.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "sdk/src/format/fingerprint.h"
#include "sdk/src/format/gguf.h"

namespace hearth::format {
namespace {

TEST(Xxh64, MatchesTheReference) {
  // xxhsum -H1 / Python xxhash.xxh64(...).hexdigest().
  EXPECT_EQ(Xxh64("", 0), 0xef46db3751d8e999ull);
  EXPECT_EQ(Xxh64("a", 1), 0xd24ec4f1a98c6e5bull);
  EXPECT_EQ(Xxh64("abc", 3), 0x44bc2cf5ad770999ull);
  const std::string spam = "Nobody inspects the spammish repetition";  // 39 bytes: stripes
  EXPECT_EQ(Xxh64(spam.data(), spam.size()), 0xfbcea83c8a378bf1ull);
  EXPECT_EQ(Xxh64Text(0xfbcea83c8a378bf1ull), "xxh64:fbcea83c8a378bf1");
}

TEST(Xxh64, Throughput) {  // prints GB/s; the bound holds even in sanitizer builds
  std::vector<uint8_t> buf(256u << 20);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 131);
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t h = Xxh64(buf.data(), buf.size());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("xxh64: %.2f GB/s (h %016llx)\n", buf.size() / s / 1e9,
              static_cast<unsigned long long>(h));
  EXPECT_GT(buf.size() / s, 1e8);
}

TEST(WeightsFingerprint, StableAndSensitiveToWeights) {
  const std::string path = std::string(HEARTH_TEST_DATA) + "/models/tiny-llama-f32.gguf";
  auto f = gguf::File::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const std::string fp = WeightsFingerprint(**f);
  EXPECT_EQ(fp.size(), 6u + 16u);
  EXPECT_EQ(fp.rfind("xxh64:", 0), 0u);
  auto again = gguf::File::Open(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(WeightsFingerprint(**again), fp);
  auto other = gguf::File::Open(std::string(HEARTH_TEST_DATA) + "/models/tiny-qwen2-f32.gguf");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(WeightsFingerprint(**other), fp);
  // One weight byte changed: another fingerprint. A metadata byte is not
  // covered (the file's own bytes copied unchanged give the same one).
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  auto same = gguf::File::FromMemory(image.data(), image.size(), "copy");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(WeightsFingerprint(**same), fp);
  const gguf::TensorInfo& t = (*f)->tensors().back();
  image[t.offset + t.size / 2] ^= 0x01;
  auto changed = gguf::File::FromMemory(image.data(), image.size(), "changed");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(WeightsFingerprint(**changed), fp);
}

}  // namespace
}  // namespace hearth::format
