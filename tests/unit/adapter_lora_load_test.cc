// adapter_lora_load_test.cc — LoadLoraFile on real files: the PEFT
// directories and GGUF files of tests/data/lora (written by peft and gguf-py,
// scripts/fixtures/make_lora_fixtures.py) checked against the targets listed
// in their ref.json, the same adapter read from both formats byte for byte,
// the defective fixtures, and every way of naming an adapter by path.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sdk/src/lora/lora_file.h"
#include "tests/unit/gguf_builder.h"
#include "tests/unit/safetensors_builder.h"

namespace hearth {
namespace {

using ::hearth::testing::GgufBuilder;
using ::hearth::testing::SafetensorsBuilder;
using ::testing::HasSubstr;

const std::string kDir = HEARTH_TEST_DATA "/lora";

nlohmann::json Ref() {
  std::ifstream in(kDir + "/ref.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
}

// Checks `f` against one adapter entry of ref.json.
void ExpectMatchesRef(const LoraFile& f, const nlohmann::json& ref, bool gguf) {
  EXPECT_EQ(f.format, gguf ? LoraFormat::kGguf : LoraFormat::kPeft);
  EXPECT_EQ(f.rank, gguf ? ref["rank_max"].get<int64_t>() : ref["r"].get<int64_t>());
  EXPECT_EQ(f.alpha, ref["lora_alpha"].get<float>());
  EXPECT_EQ(f.use_rslora, ref["use_rslora"].get<bool>());
  EXPECT_EQ(f.base_arch, gguf ? ref["arch"].get<std::string>() : "");
  EXPECT_EQ(f.n_params, ref["n_params"].get<uint64_t>());
  ASSERT_EQ(f.targets.size(), ref["n_targets"].get<size_t>());
  ASSERT_EQ(f.targets.size(), ref["targets"].size());
  for (size_t i = 0; i < f.targets.size(); ++i) {
    const LoraTarget& t = f.targets[i];
    const nlohmann::json& r = ref["targets"][i];
    SCOPED_TRACE(r.dump());
    EXPECT_EQ(t.weight, r["weight"].get<std::string>());
    if (!gguf) {
      EXPECT_EQ(t.source_module, r["source"].get<std::string>());
    }
    EXPECT_EQ(t.rank, r["rank"].get<int64_t>());
    EXPECT_EQ(t.alpha, r["alpha"].get<float>());
    EXPECT_NEAR(t.scale, r["scale"].get<double>(), 1e-6 * r["scale"].get<double>());
    EXPECT_EQ(t.a.ne[0], r["n_in"].get<int64_t>());
    EXPECT_EQ(t.a.ne[1], t.rank);
    EXPECT_EQ(t.b.ne[0], t.rank);
    EXPECT_EQ(t.b.ne[1], r["n_out"].get<int64_t>());
    EXPECT_EQ(t.hf_row_order, !gguf);
  }
}

TEST(LoraLoadTest, FixturesMatchTheirReference) {
  const nlohmann::json ref = Ref();
  ASSERT_TRUE(ref.is_object()) << "tests/data/lora/ref.json missing or invalid";
  ASSERT_FALSE(ref["adapters"].empty());
  for (const auto& [name, a] : ref["adapters"].items()) {
    SCOPED_TRACE(name);
    const std::string dir = kDir + "/" + a["peft"].get<std::string>();
    // The directory, its config and its weights all name the same adapter.
    for (const std::string& path :
         {dir, dir + "/adapter_config.json", dir + "/adapter_model.safetensors"}) {
      auto f = LoadLoraFile(path);
      ASSERT_TRUE(f.ok()) << f.status();
      EXPECT_EQ((*f)->path, path);
      ExpectMatchesRef(**f, a, /*gguf=*/false);
    }
    if (a["gguf"].is_string()) {
      auto g = LoadLoraFile(kDir + "/" + a["gguf"].get<std::string>());
      ASSERT_TRUE(g.ok()) << g.status();
      ExpectMatchesRef(**g, a, /*gguf=*/true);
    }
  }
}

// llama.cpp's converter permutes the rows of a llama q/k weight (and so of
// its lora_b) per head: GGUF row h*hd + 2*i + j is HF row h*hd + j*hd/2 + i.
// Everything else, every lora_a and every qwen2 matrix, is the same bytes.
TEST(LoraLoadTest, PeftAndGgufFilesHoldTheSameMatrices) {
  struct Case {
    const char* name;
    int n_head, n_head_kv;  // 0: no permutation (qwen2)
  };
  for (const Case& c : {Case{"llama-all", 4, 2}, Case{"qwen2-all", 0, 0}}) {
    SCOPED_TRACE(c.name);
    auto peft = LoadLoraFile(kDir + "/" + c.name);
    auto gguf = LoadLoraFile(kDir + "/" + c.name + ".gguf");
    ASSERT_TRUE(peft.ok()) << peft.status();
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    ASSERT_EQ((*peft)->targets.size(), (*gguf)->targets.size());
    for (size_t i = 0; i < (*peft)->targets.size(); ++i) {
      const LoraTarget& p = (*peft)->targets[i];
      const LoraTarget& g = (*gguf)->targets[i];
      SCOPED_TRACE(p.weight);
      ASSERT_EQ(p.weight, g.weight);
      ASSERT_EQ(p.a.dtype, g.a.dtype);
      ASSERT_EQ(p.a.bytes, g.a.bytes);
      EXPECT_EQ(std::memcmp(p.a.data, g.a.data, p.a.bytes), 0);
      ASSERT_EQ(p.b.bytes, g.b.bytes);
      const bool q = p.weight.find("attn_q") != std::string::npos;
      const bool k = p.weight.find("attn_k") != std::string::npos;
      const int heads = q ? c.n_head : k ? c.n_head_kv : 0;
      if (heads == 0) {
        EXPECT_EQ(std::memcmp(p.b.data, g.b.data, p.b.bytes), 0);
        continue;
      }
      const int64_t rows = p.b.ne[1], row_bytes = static_cast<int64_t>(p.b.bytes) / rows;
      const int64_t hd = rows / heads;
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t h = row / hd, i2 = (row % hd) / 2, j = row % 2;
        const int64_t hf = h * hd + j * (hd / 2) + i2;
        EXPECT_EQ(std::memcmp(g.b.data + row * row_bytes, p.b.data + hf * row_bytes, row_bytes), 0)
            << "row " << row;
      }
    }
  }
}

TEST(LoraLoadTest, DefectiveFixturesAreRefusedOnTheirOwn) {
  const std::pair<const char*, std::vector<std::string>> cases[] = {
      {"bad/missing-lora-b",
       {"model.layers.1.self_attn.q_proj (blk.1.attn_q.weight): lora_B is missing"}},
      {"bad/rank-mismatch", {"have rank 4 but the config says 8 (r)"}},
      {"bad/alpha-zero", {"adapter_config.json: 'lora_alpha' is 0"}},
      {"bad/missing-lora-b.gguf", {"blk.1.attn_q.weight.lora_b is missing"}},
      {"bad/alpha-zero.gguf", {"adapter.lora.alpha is 0"}},
      {"bad/transposed-lora-a.gguf", {"lora_a has rank 64", "but lora_b has rank"}},
  };
  for (const auto& [path, parts] : cases) {
    SCOPED_TRACE(path);
    auto f = LoadLoraFile(kDir + "/" + path);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
    for (const std::string& s : parts) EXPECT_THAT(std::string(f.status().message()), HasSubstr(s));
  }
  // Consistent on its own; only a model with hidden size 64 refuses it.
  auto f = LoadLoraFile(kDir + "/bad/hidden-32");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->targets[0].a.ne[0], 32);
}

class LoraLoadPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/lora_load_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : written_) ::unlink(f.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    written_.push_back(path);
    return path;
  }
  std::string WriteBytes(const std::string& name, const std::vector<uint8_t>& bytes) {
    return Write(name, std::string(bytes.begin(), bytes.end()));
  }
  static std::vector<uint8_t> Weights() {
    SafetensorsBuilder b;
    b.AddF32Pattern("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {2, 4});
    b.AddF32Pattern("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", {4, 2});
    return b.Build();
  }
  void ExpectError(const std::string& path, absl::StatusCode code,
                   const std::vector<std::string>& parts) {
    auto f = LoadLoraFile(path);
    ASSERT_FALSE(f.ok()) << path;
    EXPECT_EQ(f.status().code(), code) << f.status();
    for (const std::string& s : parts) EXPECT_THAT(std::string(f.status().message()), HasSubstr(s));
  }

  std::string dir_;
  std::vector<std::string> written_;
};

TEST_F(LoraLoadPathTest, FindsTheOtherFileBesideTheOneGiven) {
  const std::string weights = WriteBytes("my_lora.safetensors", Weights());
  const std::string config = Write("my_config.json", R"({"r": 2, "lora_alpha": 4})");
  // Named other than PEFT does, neither finds its partner.
  ExpectError(weights, absl::StatusCode::kNotFound, {dir_ + "/adapter_config.json"});
  ExpectError(config, absl::StatusCode::kNotFound, {dir_ + "/adapter_model.safetensors"});
  ExpectError(dir_, absl::StatusCode::kNotFound, {dir_ + "/adapter_model.safetensors"});
  Write("adapter_config.json", R"({"r": 2, "lora_alpha": 4})");
  auto f = LoadLoraFile(weights);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->path, weights);
  EXPECT_EQ((*f)->targets[0].scale, 2.0f);
  WriteBytes("adapter_model.safetensors", Weights());
  f = LoadLoraFile(config);
  ASSERT_TRUE(f.ok()) << f.status();
  f = LoadLoraFile(dir_);
  ASSERT_TRUE(f.ok()) << f.status();
}

TEST_F(LoraLoadPathTest, NamesWhatIsMissingOrUnsupported) {
  ExpectError(dir_ + "/nope", absl::StatusCode::kNotFound, {dir_ + "/nope: cannot open"});
  Write("adapter_config.json", R"({"r": 2, "lora_alpha": 4})");
  Write("adapter_model.bin", "PK\x03\x04");
  ExpectError(dir_, absl::StatusCode::kUnimplemented,
              {dir_ + "/adapter_model.bin: PyTorch pickle weights are not supported"});
}

TEST_F(LoraLoadPathTest, RefusesBrokenFilesByName) {
  WriteBytes("adapter_model.safetensors", Weights());
  Write("adapter_config.json", std::string(2 << 20, ' '));
  ExpectError(dir_, absl::StatusCode::kInvalidArgument,
              {dir_ + "/adapter_config.json: larger than 1048576 bytes"});
  Write("adapter_config.json", R"({"r": 2})");
  ExpectError(dir_, absl::StatusCode::kInvalidArgument,
              {dir_ + "/adapter_config.json: 'lora_alpha' is missing"});
  Write("adapter_config.json", R"({"r": 2, "lora_alpha": 4})");
  Write("adapter_model.safetensors", "short");
  ExpectError(dir_, absl::StatusCode::kInvalidArgument,
              {dir_ + "/adapter_model.safetensors: file is 5 bytes"});

  // A GGUF model (not an adapter) given as a LoRA file.
  GgufBuilder model;
  model.AddString("general.architecture", "llama").AddString("general.type", "model");
  model.AddTensor("blk.0.attn_q.weight", GgufBuilder::kTF32, {4, 4});
  const std::string gguf = WriteBytes("model.gguf", model.Build());
  ExpectError(gguf, absl::StatusCode::kInvalidArgument,
              {gguf + ": not an adapter: general.type is 'model'"});
  const std::string truncated = Write("cut.gguf", "GGUF\x03");
  ExpectError(truncated, absl::StatusCode::kInvalidArgument, {truncated + ": "});
}

// A FIFO in place of either file of a PEFT adapter made open(2) wait for a
// writer forever; both are refused at once, by name (issue 17, class 3).
TEST_F(LoraLoadPathTest, FifoInPlaceOfAFileIsRefusedWithoutBlocking) {
  const std::string config = dir_ + "/adapter_config.json";
  const std::string weights = dir_ + "/adapter_model.safetensors";
  for (const auto& [fifo, other] : {std::pair{config, weights}, std::pair{weights, config}}) {
    SCOPED_TRACE(fifo);
    ::unlink(config.c_str());
    ::unlink(weights.c_str());
    if (other == weights) {
      WriteBytes("adapter_model.safetensors", Weights());
    } else {
      Write("adapter_config.json", R"({"r": 2, "lora_alpha": 4})");
    }
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    written_.push_back(fifo);
    auto done = std::async(std::launch::async, [&] { return LoadLoraFile(dir_).status(); });
    if (done.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
      ADD_FAILURE() << "blocked on the FIFO " << fifo;
      const int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // lets the reader return
      if (w >= 0) ::close(w);
    }
    const absl::Status s = done.get();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(fifo + ": not a regular file (a FIFO)"));
  }
  // Given directly, the FIFO is refused too.
  ExpectError(weights, absl::StatusCode::kInvalidArgument, {weights + ": not a"});
}

}  // namespace
}  // namespace hearth
