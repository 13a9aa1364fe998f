// convert_test.cc — hearth_convert and hearth_quantize through the C ABI:
// the tiny Hugging Face directories of tests/data/convert (made by
// scripts/fixtures/make_convert_fixtures.py) converted to GGUF, loaded, and
// compared with transformers' float64 logits and `tokenizers`' ids; and
// malformed directories refused with the file and key named.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "capi_test_util.h"
#include "hearth/hearth.h"

namespace {

namespace fs = std::filesystem;
using hearth_test::Error;

const std::string kData = std::string(HEARTH_TEST_DATA) + "/convert/";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Reference {
  nlohmann::json json;
  std::vector<float> logits;  // [n_prompt, n_vocab]
};

Reference LoadReference(const std::string& name) {
  Reference r;
  r.json = nlohmann::json::parse(ReadText(kData + name + "/reference.json"));
  const std::string raw = ReadText(kData + name + "/logits.f32");
  r.logits.resize(raw.size() / 4);
  std::memcpy(r.logits.data(), raw.data(), r.logits.size() * 4);
  return r;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "hearth-convert-XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Convert(const std::string& dir, const std::string& out, const char* type) {
  hearth_convert_params p = HEARTH_CONVERT_PARAMS_INIT;
  p.type = type;
  Error err;
  err.e = hearth_convert(dir.c_str(), out.c_str(), &p);
  return err.message();
}

class Loaded {
 public:
  explicit Loaded(const std::string& path) {
    Error err;
    rt_ = hearth_test::TestRuntime(&err);
    EXPECT_EQ(err.message(), "");
    hearth_model_params mp = HEARTH_MODEL_PARAMS_INIT;
    mp.device = "cpu";
    mp.n_threads = 2;
    Error load;
    load.e = hearth_model_load(rt_, path.c_str(), &mp, &model_);
    EXPECT_EQ(load.message(), "");
  }
  ~Loaded() {
    hearth_model_free(model_);
    hearth_runtime_free(rt_);
  }
  hearth_model* model() const { return model_; }

  std::vector<int32_t> Tokenize(const std::string& text, uint32_t flags) const {
    size_t n = 0;
    Error e1;
    e1.e = hearth_tokenize(model_, text.data(), text.size(), flags, nullptr, 0, &n);
    std::vector<int32_t> ids(n);
    Error e2;
    e2.e = hearth_tokenize(model_, text.data(), text.size(), flags, ids.data(), n, &n);
    EXPECT_EQ(e1.message() + e2.message(), "") << text;
    return ids;
  }

  // Logits of every position, feeding one token at a time.
  std::vector<float> AllLogits(const std::vector<int32_t>& ids) const {
    hearth_session* s = nullptr;
    Error e;
    e.e = hearth_session_create(model_, nullptr, &s);
    EXPECT_EQ(e.message(), "");
    std::vector<float> out;
    for (int32_t id : ids) {
      Error f;
      f.e = hearth_session_feed(s, &id, 1);
      EXPECT_EQ(f.message(), "");
      const float* logits = nullptr;
      size_t n = 0;
      Error g;
      g.e = hearth_session_logits(s, &logits, &n);
      EXPECT_EQ(g.message(), "");
      if (logits != nullptr) out.insert(out.end(), logits, logits + n);
    }
    hearth_session_free(s);
    return out;
  }

 private:
  hearth_runtime* rt_ = nullptr;
  hearth_model* model_ = nullptr;
};

// max|got - ref| / max|ref| over every position, as tests/data/models do.
double RelError(const std::vector<float>& got, const std::vector<float>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - ref[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return diff / scale;
}

struct Case {
  const char* model;
  const char* type;
  double tolerance;  // relative, as RelError
};

class ConvertLogitsTest : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertLogitsTest, MatchesTransformers) {
  const Case c = GetParam();
  TempDir tmp;
  const std::string out = tmp.path() + "/model.gguf";
  ASSERT_EQ(Convert(kData + c.model, out, c.type), "");
  Loaded m(out);
  ASSERT_NE(m.model(), nullptr);
  const Reference ref = LoadReference(c.model);
  const std::vector<int32_t> ids = ref.json["ids"].get<std::vector<int32_t>>();
  // The prompt tokenizes (BOS included where the tokenizer adds it) as
  // `tokenizers` does.
  EXPECT_EQ(m.Tokenize(ref.json["prompt"], HEARTH_TOKENIZE_ADD_SPECIAL), ids);
  const std::vector<float> got = m.AllLogits(ids);
  const double err = RelError(got, ref.logits);
  if (getenv("HEARTH_CONVERT_DEBUG") != nullptr && got.size() == ref.logits.size()) {
    const size_t nv = ref.json["n_vocab"];
    for (size_t pos = 0; pos < ids.size(); ++pos) {
      std::vector<float> a(got.begin() + pos * nv, got.begin() + (pos + 1) * nv);
      std::vector<float> b(ref.logits.begin() + pos * nv, ref.logits.begin() + (pos + 1) * nv);
      std::printf("  pos %zu: %.3g\n", pos, RelError(a, b));
    }
  }
  std::printf("%s --type %s: max |logit - transformers| / max |transformers| = %.3g\n", c.model,
              c.type, err);
  EXPECT_LE(err, c.tolerance);
}

// Tolerances (measured figures in docs/convert.md): 1e-4 where the weights
// are exact (the fixtures are F32, F16 and BF16; BF16 fits in F16), F16
// rounding of F32 weights 5e-3 as docs/fixtures.md; quantized types 0.15
// (Q8_0) and 0.35 (4-bit) as sanity bounds: the reference does not see the
// weight rounding.
INSTANTIATE_TEST_SUITE_P(
    Fixtures, ConvertLogitsTest,
    ::testing::Values(Case{"llama-bpe", "f32", 1e-4}, Case{"llama-bpe", "bf16", 1e-4},
                      Case{"llama-bpe", "f16", 1e-4}, Case{"llama-bpe", "q8_0", 0.15},
                      Case{"llama-bpe", "q4_k_m", 0.35}, Case{"qwen2", "f32", 1e-4},
                      Case{"qwen2", "f16", 1e-4}, Case{"qwen2", "q8_0", 0.15},
                      Case{"qwen2", "q4_0", 0.35}, Case{"gemma3", "f32", 1e-4},
                      Case{"gemma3", "f16", 5e-3}, Case{"gemma3", "q8_0", 0.15},
                      Case{"gemma3", "q4_k_m", 0.35}),
    [](const ::testing::TestParamInfo<Case>& i) {
      std::string n = std::string(i.param.model) + "_" + i.param.type;
      std::replace(n.begin(), n.end(), '-', '_');
      return n;
    });

TEST(ConvertTest, TokenizerMatchesHuggingFace) {
  for (const char* name : {"llama-bpe", "qwen2", "gemma3"}) {
    TempDir tmp;
    const std::string out = tmp.path() + "/model.gguf";
    ASSERT_EQ(Convert(kData + name, out, "f32"), "");
    Loaded m(out);
    ASSERT_NE(m.model(), nullptr);
    const Reference ref = LoadReference(name);
    for (const auto& t : ref.json["tokenize"]) {
      const std::string text = t["text"];
      // Hugging Face tokenizers always parse added tokens' texts.
      EXPECT_EQ(m.Tokenize(text, HEARTH_TOKENIZE_PARSE_SPECIAL),
                t["ids"].get<std::vector<int32_t>>())
          << name << ": " << text;
      EXPECT_EQ(m.Tokenize(text, HEARTH_TOKENIZE_ADD_SPECIAL | HEARTH_TOKENIZE_PARSE_SPECIAL),
                t["ids_special"].get<std::vector<int32_t>>())
          << name << ": " << text;
    }
    EXPECT_NE(hearth_model_meta(m.model(), "tokenizer.chat_template"), nullptr) << name;
  }
}

TEST(ConvertTest, QuantizeOfF32EqualsDirectConversion) {
  TempDir tmp;
  const std::string f32 = tmp.path() + "/f32.gguf", direct = tmp.path() + "/direct.gguf";
  const std::string requant = tmp.path() + "/requant.gguf";
  ASSERT_EQ(Convert(kData + "gemma3", f32, "f32"), "");
  ASSERT_EQ(Convert(kData + "gemma3", direct, "q4_k_m"), "");
  hearth_convert_params p = HEARTH_CONVERT_PARAMS_INIT;
  p.type = "q4_k_m";
  Error err;
  err.e = hearth_quantize(f32.c_str(), requant.c_str(), &p);
  ASSERT_EQ(err.message(), "");
  // Same tensors, same bytes; the metadata differs only in nothing.
  EXPECT_EQ(ReadText(direct), ReadText(requant));
  // A quantized tensor is not quantized again.
  Error again;
  p.type = "q4_0";
  again.e = hearth_quantize(requant.c_str(), (tmp.path() + "/x.gguf").c_str(), &p);
  EXPECT_EQ(hearth_error_code(again.e), HEARTH_FAILED_PRECONDITION);
  EXPECT_NE(again.message().find("hearth quantizes from F32, F16 or BF16"), std::string::npos)
      << again.message();
  EXPECT_FALSE(fs::exists(tmp.path() + "/x.gguf"));
  Error no_type;
  no_type.e = hearth_quantize(f32.c_str(), requant.c_str(), nullptr);
  EXPECT_EQ(hearth_error_code(no_type.e), HEARTH_INVALID_ARGUMENT);
}

int StopAtThird(size_t index, size_t, const char*, void* calls) {
  ++*static_cast<int*>(calls);
  return index >= 2 ? 1 : 0;
}

TEST(ConvertTest, ProgressCanStopAndNothingIsWritten) {
  TempDir tmp;
  const std::string out = tmp.path() + "/model.gguf";
  int calls = 0;
  hearth_convert_params p = HEARTH_CONVERT_PARAMS_INIT;
  p.progress = StopAtThird;
  p.user_data = &calls;
  Error err;
  err.e = hearth_convert((kData + "qwen2").c_str(), out.c_str(), &p);
  EXPECT_EQ(hearth_error_code(err.e), HEARTH_CANCELLED) << err.message();
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(tmp.path())) ADD_FAILURE() << "left " << e.path();
}

// Every progress_bytes call, after `progress` at the same moment.
struct ProgressLog {
  std::vector<size_t> index;  // from progress
  std::vector<hearth_convert_progress> calls;
  std::vector<std::string> tensors;
};

int LogIndex(size_t index, size_t, const char*, void* log) {
  static_cast<ProgressLog*>(log)->index.push_back(index);
  return 0;
}

int LogBytes(const hearth_convert_progress* p, void* log) {
  ProgressLog* l = static_cast<ProgressLog*>(log);
  EXPECT_EQ(l->index.size(), l->calls.size() + 1) << "progress comes first";
  l->calls.push_back(*p);
  l->tensors.push_back(p->tensor);
  return 0;
}

// The bytes grow with each tensor's input size, from 0, below a constant
// total; convert counts every tensor, quantize the ones it encodes.
void CheckBytes(const ProgressLog& log, uint64_t total_at_least) {
  ASSERT_FALSE(log.calls.empty());
  ASSERT_EQ(log.index.size(), log.calls.size());
  uint64_t previous = 0;
  for (size_t i = 0; i < log.calls.size(); ++i) {
    const hearth_convert_progress& c = log.calls[i];
    EXPECT_EQ(c.struct_size, sizeof(hearth_convert_progress));
    EXPECT_EQ(c.index, log.index[i]);
    EXPECT_LT(c.index, c.count);
    EXPECT_EQ(c.bytes_total, log.calls[0].bytes_total);
    EXPECT_LT(c.bytes_done, c.bytes_total) << log.tensors[i];
    if (i > 0) {
      EXPECT_GT(c.bytes_done, previous) << log.tensors[i];
    }
    previous = c.bytes_done;
  }
  EXPECT_EQ(log.calls[0].bytes_done, 0u);
  EXPECT_GE(log.calls[0].bytes_total, total_at_least);
}

TEST(ConvertTest, ProgressInBytes) {
  TempDir tmp;
  const std::string f16 = tmp.path() + "/f16.gguf", q8 = tmp.path() + "/q8.gguf";
  ProgressLog convert_log;
  hearth_convert_params p = HEARTH_CONVERT_PARAMS_INIT;
  p.progress = LogIndex;
  p.progress_bytes = LogBytes;
  p.user_data = &convert_log;
  Error err;
  err.e = hearth_convert((kData + "qwen2").c_str(), f16.c_str(), &p);
  ASSERT_EQ(err.message(), "");
  // Every tensor of the directory is read: the safetensors data, all of it.
  CheckBytes(convert_log, 1);
  EXPECT_EQ(convert_log.calls.size(), convert_log.calls[0].count);
  EXPECT_EQ(convert_log.calls.back().index, convert_log.calls[0].count - 1);
  EXPECT_LE(convert_log.calls[0].bytes_total, fs::file_size(kData + "qwen2/model.safetensors"));

  ProgressLog quantize_log;
  p.type = "q8_0";
  p.user_data = &quantize_log;
  Error qerr;
  qerr.e = hearth_quantize(f16.c_str(), q8.c_str(), &p);
  ASSERT_EQ(qerr.message(), "");
  CheckBytes(quantize_log, 1);
  EXPECT_LE(quantize_log.calls[0].bytes_total, fs::file_size(f16));

  // A caller built against the struct before progress_bytes: struct_size 32
  // leaves it out (NULL), and `progress` alone is called.
  ProgressLog old_log;
  hearth_convert_params old = HEARTH_CONVERT_PARAMS_INIT;
  old.struct_size = offsetof(hearth_convert_params, progress_bytes);
  old.progress = LogIndex;
  old.progress_bytes = LogBytes;  // past struct_size: never read
  old.user_data = &old_log;
  Error oerr;
  oerr.e = hearth_convert((kData + "qwen2").c_str(), (tmp.path() + "/old.gguf").c_str(), &old);
  ASSERT_EQ(oerr.message(), "");
  EXPECT_FALSE(old_log.index.empty());
  EXPECT_TRUE(old_log.calls.empty());
}

// ---- refusals ---------------------------------------------------------------

// A copy of a fixture directory that a test may break.
class BrokenDir {
 public:
  explicit BrokenDir(const std::string& name) {
    fs::copy(kData + name, tmp_.path() + "/m", fs::copy_options::recursive);
  }
  std::string dir() const { return tmp_.path() + "/m"; }
  std::string file(const std::string& f) const { return dir() + "/" + f; }
  void Write(const std::string& f, const std::string& text) const {
    std::ofstream(file(f), std::ios::binary | std::ios::trunc) << text;
  }
  void EditJson(const std::string& f, const std::function<void(nlohmann::ordered_json&)>& edit) {
    auto j = nlohmann::ordered_json::parse(ReadText(file(f)));
    edit(j);
    Write(f, j.dump(1));
  }
  // Converts; returns the error code and message, and checks no output.
  std::pair<hearth_status_code, std::string> Refusal() const {
    const std::string out = tmp_.path() + "/out.gguf";
    Error err;
    err.e = hearth_convert(dir().c_str(), out.c_str(), nullptr);
    EXPECT_FALSE(fs::exists(out));
    return {err.e ? hearth_error_code(err.e) : HEARTH_OK, err.message()};
  }

 private:
  TempDir tmp_;
};

#define EXPECT_REFUSED(broken, code, ...)                                                 \
  do {                                                                                    \
    auto [c, msg] = (broken).Refusal();                                                   \
    EXPECT_EQ(c, code) << msg;                                                            \
    for (const char* part : {__VA_ARGS__}) {                                              \
      EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg; \
    }                                                                                     \
  } while (0)

TEST(ConvertRefusalTest, MissingConfig) {
  BrokenDir b("qwen2");
  fs::remove(b.file("config.json"));
  EXPECT_REFUSED(b, HEARTH_NOT_FOUND, "config.json");
}

TEST(ConvertRefusalTest, BadJson) {
  BrokenDir b("qwen2");
  b.Write("config.json", "{\"hidden_size\": 64,, }");
  EXPECT_REFUSED(b, HEARTH_INVALID_ARGUMENT, "config.json");
  BrokenDir t("gemma3");
  t.Write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"type\": \"Unigram\"}}");
  EXPECT_REFUSED(t, HEARTH_INVALID_ARGUMENT, "tokenizer.json", "type");
}

TEST(ConvertRefusalTest, UnknownArchitecture) {
  BrokenDir b("qwen2");
  b.EditJson("config.json", [](auto& j) { j["architectures"] = {"MambaForCausalLM"}; });
  EXPECT_REFUSED(b, HEARTH_UNIMPLEMENTED, "config.json", "'architectures'", "MambaForCausalLM");
  BrokenDir n("qwen2");
  n.EditJson("config.json", [](auto& j) { j.erase("architectures"); });
  EXPECT_REFUSED(n, HEARTH_INVALID_ARGUMENT, "config.json", "'architectures'");
}

TEST(ConvertRefusalTest, WrongTypeOrMissingKey) {
  BrokenDir b("llama-bpe");
  b.EditJson("config.json", [](auto& j) { j["num_attention_heads"] = "four"; });
  EXPECT_REFUSED(b, HEARTH_INVALID_ARGUMENT, "config.json", "'num_attention_heads'", "string");
  BrokenDir m("llama-bpe");
  m.EditJson("config.json", [](auto& j) { j.erase("hidden_size"); });
  EXPECT_REFUSED(m, HEARTH_INVALID_ARGUMENT, "config.json", "'hidden_size'", "missing");
  BrokenDir r("llama-bpe");
  r.EditJson("config.json", [](auto& j) { j["rope_parameters"]["rope_type"] = "yarn"; });
  EXPECT_REFUSED(r, HEARTH_UNIMPLEMENTED, "config.json", "'rope_parameters.rope_type'", "yarn");
}

TEST(ConvertRefusalTest, MissingTensor) {
  // One layer more than the weights hold.
  BrokenDir b("gemma3");
  b.EditJson("config.json", [](auto& j) {
    j["num_hidden_layers"] = 3;
    j["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention"};
  });
  EXPECT_REFUSED(b, HEARTH_INVALID_ARGUMENT, "model.layers.2.input_layernorm.weight");
  // A shard the index names is gone.
  BrokenDir s("llama-bpe");
  fs::remove(s.file("model-00002-of-00003.safetensors"));
  EXPECT_REFUSED(s, HEARTH_NOT_FOUND, "model-00002-of-00003.safetensors");
}

TEST(ConvertRefusalTest, WrongShape) {
  BrokenDir b("qwen2");
  b.EditJson("config.json", [](auto& j) { j["intermediate_size"] = 96; });
  EXPECT_REFUSED(b, HEARTH_INVALID_ARGUMENT, "model.safetensors", "mlp.gate_proj.weight",
                 "[128, 64]", "[96, 64]");
}

TEST(ConvertRefusalTest, UnsupportedTokenizer) {
  BrokenDir b("qwen2");
  b.EditJson("tokenizer.json",
             [](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+"; });
  EXPECT_REFUSED(b, HEARTH_UNIMPLEMENTED, "tokenizer.json", "'pre_tokenizer'");
  BrokenDir u("qwen2");
  u.EditJson("tokenizer.json", [](auto& j) { j["model"]["type"] = "Unigram"; });
  EXPECT_REFUSED(u, HEARTH_UNIMPLEMENTED, "tokenizer.json", "'model.type'", "Unigram");
  BrokenDir m("gemma3");
  fs::remove(m.file("tokenizer.json"));
  EXPECT_REFUSED(m, HEARTH_NOT_FOUND, "tokenizer.json");
}

TEST(ConvertRefusalTest, UnknownType) {
  TempDir tmp;
  const std::string msg = Convert(kData + "qwen2", tmp.path() + "/x.gguf", "q3_k");
  EXPECT_NE(msg.find("unknown model type 'q3_k'"), std::string::npos) << msg;
}

}  // namespace
