// adapter_lora_file_test.cc — PEFT LoRA adapters parsed without a base
// model: adapter_config.json rules (rank, alpha, rsLoRA, patterns, refused
// features) and tensor-name rules, on configs and safetensors images built in
// memory. Every error test checks the message names the culprit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hearth/hearth_plugin.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/format/safetensors.h"
#include "tests/unit/safetensors_builder.h"

namespace hearth {
namespace {

using ::hearth::testing::SafetensorsBuilder;
using ::testing::HasSubstr;

constexpr char kConfig[] =
    R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": "tiny-llama", "bias": "none", "use_rslora": false,
        "use_dora": false, "fan_in_fan_out": false, "rank_pattern": {}, "alpha_pattern": {},
        "layer_replication": null, "task_type": "CAUSAL_LM"})";

std::string Name(const std::string& module, const std::string& ab,
                 const std::string& adapter = "") {
  return "base_model.model." + module + ".lora_" + ab + (adapter.empty() ? "" : "." + adapter) +
         ".weight";
}

// Adds lora_A [r, n_in] and lora_B [n_out, r] for `module`.
void AddPair(SafetensorsBuilder* b, const std::string& module, uint64_t r, uint64_t n_in,
             uint64_t n_out, const std::string& adapter = "") {
  b->AddF32Pattern(Name(module, "A", adapter), {r, n_in});
  b->AddF32Pattern(Name(module, "B", adapter), {n_out, r}, 1.0f);
}

// The image must outlive the LoraFile (FromMemory does not copy).
struct Parsed {
  std::vector<uint8_t> image;
  absl::StatusOr<std::unique_ptr<LoraFile>> file = absl::UnknownError("not parsed");
};

std::unique_ptr<Parsed> Parse(const std::string& config, const SafetensorsBuilder& b) {
  auto p = std::make_unique<Parsed>();
  p->image = b.Build();
  auto st =
      safetensors::File::FromMemory(p->image.data(), p->image.size(), "adapter_model.safetensors");
  if (!st.ok()) {
    p->file = st.status();
    return p;
  }
  p->file = ParsePeft(config, std::move(*st), "adapter_config.json");
  return p;
}

SafetensorsBuilder OnePair() {
  SafetensorsBuilder b;
  AddPair(&b, "model.layers.0.self_attn.q_proj", 4, 16, 16);
  return b;
}

// Config `config` with a valid pair must fail with `code` and every part.
void ExpectConfigError(const std::string& config, absl::StatusCode code,
                       const std::vector<std::string>& parts) {
  SCOPED_TRACE(config);
  auto p = Parse(config, OnePair());
  ASSERT_FALSE(p->file.ok());
  EXPECT_EQ(p->file.status().code(), code) << p->file.status();
  EXPECT_THAT(std::string(p->file.status().message()), HasSubstr("adapter_config.json: "));
  for (const std::string& s : parts) {
    EXPECT_THAT(std::string(p->file.status().message()), HasSubstr(s));
  }
}

// Tensors of `b` with the default config must fail with `code` and parts.
void ExpectTensorError(const SafetensorsBuilder& b, absl::StatusCode code,
                       const std::vector<std::string>& parts, const std::string& config = kConfig) {
  auto p = Parse(config, b);
  ASSERT_FALSE(p->file.ok());
  EXPECT_EQ(p->file.status().code(), code) << p->file.status();
  EXPECT_THAT(std::string(p->file.status().message()), HasSubstr("adapter_model.safetensors: "));
  for (const std::string& s : parts) {
    EXPECT_THAT(std::string(p->file.status().message()), HasSubstr(s));
  }
}

// A config with `field` (a JSON fragment "key": value) in place of the same
// key of kConfig, or added.
std::string With(const std::string& key, const std::string& value) {
  std::string c = R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8)";
  if (key == "peft_type" || key == "r" || key == "lora_alpha") {
    c = "{";
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"peft_type", "\"LORA\""},
                               {"r", "4"},
                               {"lora_alpha", "8"}}) {
      if (k == key) {
        if (value.empty()) continue;  // drop it
        c += "\"" + k + "\": " + value + ", ";
      } else {
        c += "\"" + k + "\": " + v + ", ";
      }
    }
    c += "\"bias\": \"none\"";
    return c + "}";
  }
  return c + ", \"" + key + "\": " + value + "}";
}

TEST(LoraPeftTest, ParsesPairsIntoGgufNamedTargets) {
  SafetensorsBuilder b;
  b.Metadata("format", "pt");
  AddPair(&b, "lm_head", 4, 16, 40);
  AddPair(&b, "model.layers.1.self_attn.v_proj", 4, 16, 8);
  AddPair(&b, "model.layers.0.mlp.down_proj", 4, 24, 16);
  AddPair(&b, "model.layers.0.self_attn.q_proj", 4, 16, 16);
  auto p = Parse(kConfig, b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  const LoraFile& f = **p->file;
  EXPECT_EQ(f.format, LoraFormat::kPeft);
  EXPECT_EQ(f.path, "adapter_config.json");
  EXPECT_EQ(f.base_arch, "");
  EXPECT_EQ(f.base_model, "tiny-llama");
  EXPECT_EQ(f.rank, 4);
  EXPECT_EQ(f.alpha, 8.0f);
  EXPECT_FALSE(f.use_rslora);
  ASSERT_NE(f.safetensors_file, nullptr);
  EXPECT_EQ(f.gguf_file, nullptr);
  EXPECT_EQ(f.n_params, 4u * (16 + 40) + 4u * (16 + 8) + 4u * (24 + 16) + 4u * (16 + 16));

  std::vector<std::string> weights;
  for (const LoraTarget& t : f.targets) weights.push_back(t.weight);
  EXPECT_EQ(weights, (std::vector<std::string>{"blk.0.attn_q.weight", "blk.0.ffn_down.weight",
                                               "blk.1.attn_v.weight", "output.weight"}));
  const LoraTarget* down = f.Find("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->source_module, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(down->layer, 0);
  EXPECT_EQ(down->rank, 4);
  EXPECT_EQ(down->alpha, 8.0f);
  EXPECT_EQ(down->scale, 2.0f);
  EXPECT_TRUE(down->hf_row_order);
  EXPECT_EQ(down->a.dtype, static_cast<uint32_t>(HEARTH_DTYPE_F32));
  EXPECT_EQ(down->a.ne[0], 24);  // n_in
  EXPECT_EQ(down->a.ne[1], 4);   // rank
  EXPECT_EQ(down->b.ne[0], 4);   // rank
  EXPECT_EQ(down->b.ne[1], 16);  // n_out
  EXPECT_EQ(down->a.bytes, 4u * 24 * 4);
  EXPECT_EQ(down->a.source, "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
  EXPECT_EQ(down->b.source, "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
  const safetensors::TensorInfo* a = f.safetensors_file->Find(down->a.source);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(down->a.data, a->data);
  float first_b;
  std::memcpy(&first_b, down->b.data, 4);
  EXPECT_FLOAT_EQ(first_b, 1.01f);  // AddF32Pattern with bias 1

  const LoraTarget& out = f.targets.back();
  EXPECT_EQ(out.layer, -1);
  EXPECT_EQ(out.source_module, "lm_head");
  EXPECT_EQ(out.b.ne[1], 40);
  EXPECT_EQ(f.Find("blk.9.attn_q.weight"), nullptr);
}

TEST(LoraPeftTest, MapsEveryModuleAndLayerPrefix) {
  const std::pair<const char*, const char*> modules[] = {
      {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"}, {"self_attn.o_proj", "attn_output"},
      {"mlp.gate_proj", "ffn_gate"},  {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  for (const char* prefix :
       {"model.layers.", "model.language_model.layers.", "language_model.model.layers."}) {
    SafetensorsBuilder b;
    for (const auto& [peft, gguf] : modules)
      AddPair(&b, std::string(prefix) + "12." + peft, 4, 8, 8);
    auto p = Parse(kConfig, b);
    ASSERT_TRUE(p->file.ok()) << prefix << ": " << p->file.status();
    ASSERT_EQ((*p->file)->targets.size(), 7u);
    // Listed in forward order within the layer, not by name.
    for (size_t i = 0; i < 7; ++i) {
      EXPECT_EQ((*p->file)->targets[i].weight,
                std::string("blk.12.") + modules[i].second + ".weight");
    }
    for (const auto& [peft, gguf] : modules) {
      const LoraTarget* t = (*p->file)->Find(std::string("blk.12.") + gguf + ".weight");
      ASSERT_NE(t, nullptr) << prefix << peft;
      EXPECT_EQ(t->layer, 12);
      EXPECT_EQ(t->source_module, std::string(prefix) + "12." + peft);
    }
  }
}

TEST(LoraPeftTest, AcceptsOneAdapterNameAndNamesWithoutThePeftPrefix) {
  SafetensorsBuilder b;
  AddPair(&b, "model.layers.0.self_attn.q_proj", 4, 8, 8, "default");
  AddPair(&b, "model.layers.1.self_attn.q_proj", 4, 8, 8, "default");
  auto p = Parse(kConfig, b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_EQ((*p->file)->targets.size(), 2u);

  SafetensorsBuilder bare;
  bare.AddF32Pattern("model.layers.3.self_attn.k_proj.lora_A.weight", {4, 8});
  bare.AddF32Pattern("model.layers.3.self_attn.k_proj.lora_B.weight", {8, 4});
  p = Parse(kConfig, bare);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_EQ((*p->file)->targets[0].weight, "blk.3.attn_k.weight");
}

TEST(LoraPeftTest, RejectsTwoAdapterNames) {
  SafetensorsBuilder b;
  AddPair(&b, "model.layers.0.self_attn.q_proj", 4, 8, 8, "default");
  AddPair(&b, "model.layers.1.self_attn.q_proj", 4, 8, 8, "other");
  ExpectTensorError(b, absl::StatusCode::kInvalidArgument,
                    {"belong to different adapters ('default' and 'other')",
                     "layers.1.self_attn.q_proj.lora_A.other.weight"});
  SafetensorsBuilder mixed;
  AddPair(&mixed, "model.layers.0.self_attn.q_proj", 4, 8, 8);
  AddPair(&mixed, "model.layers.1.self_attn.q_proj", 4, 8, 8, "default");
  ExpectTensorError(mixed, absl::StatusCode::kInvalidArgument,
                    {"different adapters (none and 'default')"});
}

TEST(LoraPeftTest, ScaleFollowsRankAlphaAndRsLora) {
  SafetensorsBuilder b;
  AddPair(&b, "model.layers.0.self_attn.q_proj", 16, 8, 8);
  auto p = Parse(R"({"r": 16, "lora_alpha": 32})", b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_FLOAT_EQ((*p->file)->targets[0].scale, 2.0f);
  p = Parse(R"({"r": 16, "lora_alpha": 32, "use_rslora": true})", b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_TRUE((*p->file)->use_rslora);
  EXPECT_FLOAT_EQ((*p->file)->targets[0].scale, 8.0f);  // 32 / sqrt(16)
  p = Parse(R"({"r": 16, "lora_alpha": -4.5})", b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_FLOAT_EQ((*p->file)->targets[0].scale, -4.5f / 16);
  p = Parse(R"({"r": 16, "lora_alpha": 1e-3, "use_rslora": null})", b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_FLOAT_EQ((*p->file)->targets[0].scale, 1e-3f / 16);
}

TEST(LoraPeftTest, RankAndAlphaPatternsMatchFullNamesAndDotSuffixes) {
  SafetensorsBuilder b;
  AddPair(&b, "model.layers.0.self_attn.q_proj", 2, 8, 8);
  AddPair(&b, "model.layers.0.self_attn.v_proj", 4, 8, 8);
  AddPair(&b, "model.layers.1.self_attn.v_proj", 3, 8, 8);
  AddPair(&b, "model.layers.1.mlp.down_proj", 4, 8, 8);
  // First matching key in file order wins ("v_proj" would also match layer 1's v).
  const std::string config = R"({"r": 4, "lora_alpha": 8, "use_rslora": true,
      "rank_pattern": {"model.layers.1.self_attn.v_proj": 3, "q_proj": 2, "v_proj": 4},
      "alpha_pattern": {"layers.1.self_attn.v_proj": 6, "_proj": 100, "self_attn.q_proj": 1.5}})";
  auto p = Parse(config, b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  const LoraFile& f = **p->file;
  const LoraTarget* q0 = f.Find("blk.0.attn_q.weight");
  EXPECT_EQ(q0->rank, 2);
  EXPECT_EQ(q0->alpha, 1.5f);
  EXPECT_FLOAT_EQ(q0->scale, 1.5f / std::sqrt(2.0f));
  const LoraTarget* v0 = f.Find("blk.0.attn_v.weight");
  EXPECT_EQ(v0->rank, 4);
  EXPECT_EQ(v0->alpha, 8.0f);  // "_proj" is not a dot-separated suffix of "v_proj"
  EXPECT_FLOAT_EQ(v0->scale, 4.0f);
  const LoraTarget* v1 = f.Find("blk.1.attn_v.weight");
  EXPECT_EQ(v1->rank, 3);
  EXPECT_EQ(v1->alpha, 6.0f);
  EXPECT_FLOAT_EQ(v1->scale, 6.0f / std::sqrt(3.0f));
  const LoraTarget* d1 = f.Find("blk.1.ffn_down.weight");
  EXPECT_EQ(d1->rank, 4);
  EXPECT_EQ(d1->alpha, 8.0f);
  EXPECT_EQ(f.rank, 4);
}

TEST(LoraPeftTest, RejectsBadPatterns) {
  const auto err = absl::StatusCode::kInvalidArgument;
  ExpectConfigError(With("rank_pattern", R"({"layers\\.0\\.q_proj": 4})"), err,
                    {"rank_pattern 'layers\\\\.0\\\\.q_proj' is a regular expression",
                     "plain module names only"});
  ExpectConfigError(With("alpha_pattern", R"({".*q_proj": 4})"), err,
                    {"alpha_pattern '.*q_proj' is a regular expression"});
  ExpectConfigError(With("rank_pattern", R"({"q_proj": 0})"), err,
                    {"rank_pattern 'q_proj' is 0, expected a positive integer"});
  ExpectConfigError(With("rank_pattern", R"({"q_proj": 2.5})"), err,
                    {"rank_pattern 'q_proj' is a non-integer number"});
  ExpectConfigError(With("alpha_pattern", R"({"q_proj": 0})"), err,
                    {"alpha_pattern 'q_proj' is 0; a zero alpha switches the adapter off"});
  ExpectConfigError(With("alpha_pattern", R"({"q_proj": "8"})"), err,
                    {"alpha_pattern 'q_proj' is a string"});
  ExpectConfigError(With("rank_pattern", "[4]"), err, {"'rank_pattern' is an array"});
  ExpectConfigError(With("rank_pattern", R"({"": 4})"), err, {"rank_pattern has an empty key"});
  ExpectConfigError(With("rank_pattern", R"({"q_proj": 4, "q_proj": 2})"), err,
                    {"duplicate key \"q_proj\" in \"rank_pattern\""});
}

TEST(LoraPeftTest, RejectsBadRankAndAlpha) {
  const auto err = absl::StatusCode::kInvalidArgument;
  ExpectConfigError(With("r", ""), err, {"'r' (the LoRA rank) is missing"});
  ExpectConfigError(With("r", "\"4\""), err, {"'r' is a string, expected a positive integer"});
  ExpectConfigError(With("r", "4.0"), err, {"'r' is a non-integer number"});
  ExpectConfigError(With("r", "0"), err, {"'r' is 0, expected a positive integer"});
  ExpectConfigError(With("r", "-4"), err, {"'r' is -4, expected a positive integer"});
  ExpectConfigError(With("r", "18446744073709551615"), err,
                    {"'r' = 18446744073709551615 is larger than 1048576"});
  ExpectConfigError(With("r", "true"), err, {"'r' is a bool"});
  ExpectConfigError(With("lora_alpha", ""), err,
                    {"'lora_alpha' is missing, expected a finite non-zero number"});
  ExpectConfigError(With("lora_alpha", "null"), err, {"'lora_alpha' is null"});
  ExpectConfigError(With("lora_alpha", "\"8\""), err, {"'lora_alpha' is a string"});
  ExpectConfigError(With("lora_alpha", "0"), err, {"'lora_alpha' is 0; a zero alpha"});
  ExpectConfigError(With("lora_alpha", "-0.0"), err, {"'lora_alpha' is -0.0; a zero alpha"});
  ExpectConfigError(With("lora_alpha", "1e-50"), err, {"a zero alpha"});
  ExpectConfigError(With("lora_alpha", "1e39"), err, {"does not fit in a float"});
  // Zero to flush-to-zero arithmetic, as in a GGUF LoRA (issue 17).
  ExpectConfigError(With("lora_alpha", "1e-40"), err,
                    {"'lora_alpha' is 1e-40; an alpha below the least normal float"});
  ExpectConfigError(With("alpha_pattern", R"({"q_proj": -1e-39})"), err,
                    {"below the least normal float"});
  // Python's json writes NaN/Infinity, which are not JSON.
  ExpectConfigError(With("lora_alpha", "NaN"), err, {"invalid JSON"});
  ExpectConfigError(With("lora_alpha", "Infinity"), err, {"invalid JSON"});
  ExpectConfigError(With("lora_alpha", "1e400"), err, {"invalid JSON"});
}

TEST(LoraPeftTest, RejectsUnsupportedFeatures) {
  const auto unimpl = absl::StatusCode::kUnimplemented;
  ExpectConfigError(With("use_dora", "true"), unimpl, {"DoRA adapters are not supported"});
  ExpectConfigError(With("fan_in_fan_out", "true"), unimpl, {"fan_in_fan_out is true"});
  ExpectConfigError(With("use_qalora", "true"), unimpl, {"use_qalora is true"});
  ExpectConfigError(With("lora_bias", "true"), unimpl, {"lora_bias is true"});
  ExpectConfigError(With("layer_replication", "[[0, 1]]"), unimpl, {"'layer_replication' is set"});
  ExpectConfigError(With("alora_invocation_tokens", "[1, 2]"), unimpl,
                    {"'alora_invocation_tokens' is set"});
  ExpectConfigError(With("peft_type", "\"IA3\""), unimpl,
                    {"peft_type is 'IA3'; hearth reads LORA adapters only"});
  // Off, null or absent is fine.
  for (const char* c : {R"({"r": 4, "lora_alpha": 8, "use_dora": false, "lora_bias": null,
                            "target_parameters": [], "layer_replication": null})",
                        R"({"r": 4, "lora_alpha": 8})"}) {
    auto p = Parse(c, OnePair());
    EXPECT_TRUE(p->file.ok()) << c << ": " << p->file.status();
  }
}

TEST(LoraPeftTest, RejectsBadConfigTypesAndJson) {
  const auto err = absl::StatusCode::kInvalidArgument;
  ExpectConfigError(With("use_rslora", "\"yes\""), err,
                    {"'use_rslora' is a string, expected true or false"});
  ExpectConfigError(With("use_dora", "1"), err, {"'use_dora' is an integer"});
  ExpectConfigError(With("peft_type", "3"), err, {"'peft_type' is an integer, expected a string"});
  ExpectConfigError(With("base_model_name_or_path", "3"), err,
                    {"'base_model_name_or_path' is an integer, expected a string"});
  ExpectConfigError(With("target_modules", "[\"q_proj\", 3]"), err,
                    {"'target_modules' is an array, expected a string or an array of strings"});
  ExpectConfigError(With("target_modules", "{}"), err, {"'target_modules' is an object"});
  ExpectConfigError("[]", err, {"the config is an array, expected a JSON object"});
  ExpectConfigError("", err, {"invalid JSON at byte 1", "unexpected end of input"});
  ExpectConfigError(R"({"r": 4, "lora_alpha": 8,})", err, {"invalid JSON"});
  ExpectConfigError(std::string(kConfig) + std::string(1, '\0') + "{\"r\": 64}", err,
                    {"invalid JSON at byte", "a NUL byte"});
  ExpectConfigError(std::string(kConfig) + " junk", err, {"invalid JSON"});
  ExpectConfigError(R"({"r": 4, "lora_alpha": 8, "r": 8})", err,
                    {"duplicate key \"r\" at the top level"});
  ExpectConfigError(R"({"r": 4, "lora_alpha": 8, "x": )" + std::string(100000, '['), err,
                    {"nested deeper than 64 levels"});
  // target_modules as a string ("all-linear") and a null base model are fine.
  auto p = Parse(With("target_modules", "\"all-linear\""), OnePair());
  EXPECT_TRUE(p->file.ok()) << p->file.status();
}

TEST(LoraPeftTest, RejectsUnsupportedTensors) {
  const auto err = absl::StatusCode::kInvalidArgument;
  const std::pair<const char*, const char*> cases[] = {
      {"base_model.model.model.embed_tokens.lora_embedding_A", "lora_embedding_A/B"},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
       "DoRA adapters are not supported"},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias", "bias tensors"},
      {"base_model.model.model.layers.0.self_attn.q_proj.bias", "bias tensors"},
      {"base_model.model.lm_head.modules_to_save.default.weight", "modules_to_save"},
      {"base_model.model.lm_head.weight", "not a LoRA matrix"},
      {"base_model.model.model.embed_tokens.weight", "not a LoRA matrix"},
      {"base_model.model.model.norm.weight", "not a LoRA matrix"},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_C.weight", "not a LoRA matrix"},
      {"lora_A.weight", "not a LoRA matrix"},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_A..weight", "not a LoRA matrix"},
  };
  for (const auto& [name, why] : cases) {
    SCOPED_TRACE(name);
    SafetensorsBuilder b = OnePair();
    b.AddF32Pattern(name, {4, 16});
    ExpectTensorError(b, err, {std::string("tensor '") + name + "'", why});
  }
}

TEST(LoraPeftTest, RejectsUnsupportedModulesAndLayerIndices) {
  const auto err = absl::StatusCode::kInvalidArgument;
  const std::pair<const char*, const char*> cases[] = {
      {"model.layers.0.self_attn.qkv_proj", "module 'model.layers.0.self_attn.qkv_proj' is not"},
      {"model.layers.0.mlp.fc1", "module 'model.layers.0.mlp.fc1' is not supported"},
      {"model.embed_tokens", "module 'model.embed_tokens' is not supported"},
      {"transformer.h.0.attn.c_attn", "is not supported"},
      {"model.layers.0", "module 'model.layers.0' is not supported"},
      {"model.layers.x.self_attn.q_proj", "layer index 'x' is not an integer in [0, 100000)"},
      {"model.layers.-1.self_attn.q_proj", "layer index '-1'"},
      {"model.layers.01.self_attn.q_proj", "layer index '01'"},
      {"model.layers.100000.self_attn.q_proj", "layer index '100000'"},
      {"model.layers..self_attn.q_proj", "layer index ''"},
  };
  for (const auto& [module, why] : cases) {
    SCOPED_TRACE(module);
    SafetensorsBuilder b;
    AddPair(&b, module, 4, 8, 8);
    ExpectTensorError(b, err, {std::string("tensor 'base_model.model.") + module, why});
  }
  SafetensorsBuilder last;
  AddPair(&last, "model.layers.99999.mlp.up_proj", 4, 8, 8);
  auto p = Parse(kConfig, last);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_EQ((*p->file)->targets[0].weight, "blk.99999.ffn_up.weight");
}

TEST(LoraPeftTest, IgnoresTheBaseLayerCopyOfATargetedLmHeadOnly) {
  SafetensorsBuilder b = OnePair();
  AddPair(&b, "lm_head", 4, 16, 32);
  b.AddF32Pattern("base_model.model.lm_head.base_layer.weight", {32, 16});
  auto p = Parse(kConfig, b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_EQ((*p->file)->ignored_tensors,
            (std::vector<std::string>{"base_model.model.lm_head.base_layer.weight"}));
  EXPECT_EQ((*p->file)->targets.size(), 2u);

  SafetensorsBuilder alone = OnePair();
  alone.AddF32Pattern("base_model.model.lm_head.base_layer.weight", {32, 16});
  ExpectTensorError(alone, absl::StatusCode::kInvalidArgument,
                    {"tensor 'base_model.model.lm_head.base_layer.weight': a full base weight "
                     "without a LoRA pair"});
}

TEST(LoraPeftTest, RejectsIncompletePairs) {
  const std::string q = "model.layers.2.self_attn.q_proj";
  SafetensorsBuilder only_a = OnePair();
  only_a.AddF32Pattern(Name(q, "A"), {4, 16});
  ExpectTensorError(only_a, absl::StatusCode::kInvalidArgument,
                    {q + " (blk.2.attn_q.weight): lora_B is missing (lora_A '" + Name(q, "A") +
                     "' has no partner)"});
  SafetensorsBuilder only_b = OnePair();
  only_b.AddF32Pattern(Name(q, "B"), {16, 4});
  ExpectTensorError(only_b, absl::StatusCode::kInvalidArgument,
                    {"lora_A is missing (lora_B '" + Name(q, "B") + "' has no partner)"});
}

TEST(LoraPeftTest, RejectsTwoSpellingsOfOneTarget) {
  SafetensorsBuilder b;
  AddPair(&b, "model.layers.0.self_attn.q_proj", 4, 8, 8);
  AddPair(&b, "model.language_model.layers.0.self_attn.q_proj", 4, 8, 8);
  ExpectTensorError(b, absl::StatusCode::kInvalidArgument, {"both modify blk.0.attn_q.weight"});
  SafetensorsBuilder same;
  AddPair(&same, "model.layers.0.self_attn.q_proj", 4, 8, 8);
  same.AddF32Pattern("model.layers.0.self_attn.q_proj.lora_A.weight", {4, 8});
  ExpectTensorError(same, absl::StatusCode::kInvalidArgument, {"are the same LoRA matrix"});
}

TEST(LoraPeftTest, RejectsBadShapesAndRanks) {
  const std::string q = "model.layers.0.self_attn.q_proj";
  const auto err = absl::StatusCode::kInvalidArgument;
  SafetensorsBuilder one_d;
  one_d.AddF32Pattern(Name(q, "A"), {64});
  one_d.AddF32Pattern(Name(q, "B"), {16, 4});
  ExpectTensorError(one_d, err, {"tensor '" + Name(q, "A") + "': shape [64] is not [r, n_in]"});
  SafetensorsBuilder three_d;
  three_d.AddF32Pattern(Name(q, "A"), {4, 16});
  three_d.AddF32Pattern(Name(q, "B"), {16, 4, 1});
  ExpectTensorError(three_d, err, {"shape [16, 4, 1] is not [n_out, r]"});
  SafetensorsBuilder zero;
  zero.Add(Name(q, "A"), "F32", {0, 16}, {});
  zero.AddF32Pattern(Name(q, "B"), {16, 4});
  ExpectTensorError(zero, err, {"shape [0, 16] is not [r, n_in] with non-zero sizes"});

  SafetensorsBuilder mismatch;
  mismatch.AddF32Pattern(Name(q, "A"), {4, 16});
  mismatch.AddF32Pattern(Name(q, "B"), {16, 2});
  ExpectTensorError(mismatch, err,
                    {"lora_A '" + Name(q, "A") + "' has rank 4 (shape [4, 16]) but lora_B '" +
                     Name(q, "B") + "' has rank 2 (shape [16, 2])"});
  ExpectTensorError(OnePair(), err,
                    {q + " (blk.0.attn_q.weight): lora_A '" + Name(q, "A") + "' and lora_B '" +
                     Name(q, "B") + "' have rank 4 but the config says 8 (r)"},
                    R"({"r": 8, "lora_alpha": 16})");
  ExpectTensorError(OnePair(), err, {"have rank 4 but the config says 2 (rank_pattern 'q_proj')"},
                    R"({"r": 4, "lora_alpha": 16, "rank_pattern": {"q_proj": 2}})");
}

TEST(LoraPeftTest, AcceptsHalfTypesAndRejectsOthers) {
  const std::string v = "model.layers.0.self_attn.v_proj";
  SafetensorsBuilder b;
  b.Add(Name(v, "A"), "F16", {1, 2}, {0x00, 0x3C, 0x00, 0xC0});
  b.Add(Name(v, "B"), "BF16", {2, 1}, {0x80, 0x3F, 0x00, 0x40});
  auto p = Parse(R"({"r": 1, "lora_alpha": 1})", b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  EXPECT_EQ((*p->file)->targets[0].a.dtype, static_cast<uint32_t>(HEARTH_DTYPE_F16));
  EXPECT_EQ((*p->file)->targets[0].b.dtype, static_cast<uint32_t>(HEARTH_DTYPE_BF16));
  EXPECT_EQ((*p->file)->targets[0].a.bytes, 4u);

  for (const char* dtype : {"F64", "I64", "U8", "F8_E4M3"}) {
    SCOPED_TRACE(dtype);
    int64_t bytes = 0;
    uint32_t hd = 0;
    ASSERT_TRUE(safetensors::DtypeInfo(dtype, &bytes, &hd));
    SafetensorsBuilder bad;
    bad.Add(Name(v, "A"), dtype, {1, 2}, std::vector<uint8_t>(2 * bytes));
    bad.AddF32Pattern(Name(v, "B"), {2, 1});
    ExpectTensorError(bad, absl::StatusCode::kUnimplemented,
                      {"tensor '" + Name(v, "A") + "': dtype " + dtype +
                       " is not supported for LoRA matrices (expected F32, F16 or BF16)"},
                      R"({"r": 1, "lora_alpha": 1})");
  }
}

TEST(LoraPeftTest, RejectsAFileWithoutLoraTensors) {
  ExpectTensorError(SafetensorsBuilder(), absl::StatusCode::kInvalidArgument,
                    {"adapter_model.safetensors: no LoRA tensors"});
  auto p = Parse(kConfig, OnePair());
  ASSERT_TRUE(p->file.ok());
  EXPECT_FALSE(ParsePeft(kConfig, nullptr, "x.json").ok());
}

}  // namespace
}  // namespace hearth
