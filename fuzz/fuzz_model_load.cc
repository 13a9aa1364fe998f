// fuzz_model_load.cc — libFuzzer target for everything a model load reads
// from a GGUF file before any weight byte is used: the architecture's
// hyper-parameters (ReadConfig), the weight shapes (CheckWeights), the step
// graphs built from them (Build for 1..3 tokens, then Plan), and the
// tokenizer (LoadVocab + Tokenizer::Create). It mirrors Model::Load
// (sdk/src/runtime/model.cc) without a backend: weights are descriptors
// with no buffer, so hostile hyper-parameters (zero heads, huge layer
// counts, head_dim * n_head overflow) must be caught as errors.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sdk/src/format/gguf.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/model/architecture.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace {

void CheckModel(const hearth::gguf::File& f) {
  auto arch_name = f.GetString("general.architecture");
  if (!arch_name.ok()) return;
  const hearth::Architecture* arch = hearth::FindArchitecture(*arch_name);
  if (arch == nullptr) return;
  hearth::ModelConfig config;
  if (!arch->ReadConfig(f, &config).ok()) return;

  hearth::WeightSet weights;
  for (const hearth::gguf::TensorInfo& t : f.tensors()) {
    const int32_t dtype = hearth::gguf::GgmlTypeToHearthDtype(t.type);
    if (dtype < 0) return;  // Model::Load rejects these as unimplemented
    hearth::Shape s;
    s.n_dims = t.n_dims;
    for (int i = 0; i < 4; ++i) s.ne[i] = t.ne[i];
    hearth_tensor_desc d = hearth::ContiguousDesc(static_cast<uint32_t>(dtype), s);
    d.buffer = nullptr;
    d.offset = t.offset;
    weights.Add(t.name, d);
  }
  if (!arch->CheckWeights(config, weights).ok()) return;

  constexpr int64_t kCtx = 4;
  hearth::KvCacheRefs kv;
  kv.n_ctx = kCtx;
  for (int64_t l = 0; l < config.n_layer; ++l) {
    kv.k.push_back(hearth::ContiguousDesc(
        HEARTH_DTYPE_F32, hearth::Shape::Of({config.head_dim, config.n_head_kv, kCtx})));
    kv.v.push_back(hearth::ContiguousDesc(
        HEARTH_DTYPE_F32, hearth::Shape::Of({config.head_dim_v, config.n_head_kv, kCtx})));
  }
  for (int64_t n_tokens = 1; n_tokens <= 3; ++n_tokens) {
    for (bool all_logits : {false, true}) {
      hearth::Graph g;
      auto step = arch->Build(config, weights, kv, n_tokens, all_logits, nullptr, &g);
      if (!step.ok()) continue;
      (void)g.Plan();
      hearth_graph view = g.view();
      // Every node input and output names a tensor of the graph, inside
      // node_inputs, and its params lie inside the params block.
      for (uint32_t i = 0; i < view.n_nodes; ++i) {
        const hearth_node& n = view.nodes[i];
        const int64_t n_tensors = view.n_tensors;
        if (n.output < 0 || n.output >= n_tensors) __builtin_trap();
        if (uint64_t{n.first_input} + n.n_inputs + n.n_extra_outputs > view.n_node_inputs) {
          __builtin_trap();
        }
        for (uint32_t k = 0; k < uint32_t{n.n_inputs} + n.n_extra_outputs; ++k) {
          if (view.node_inputs[n.first_input + k] >= n_tensors) __builtin_trap();  // -1: absent
        }
        if (uint64_t{n.params_offset} + n.params_size > view.params_bytes) __builtin_trap();
      }
    }
  }
}

void CheckTokenizer(const hearth::gguf::File& f) {
  auto vocab = hearth::tok::LoadVocab(f);
  if (!vocab.ok()) return;
  auto tok = hearth::tok::Tokenizer::Create(*std::move(vocab));
  if (!tok.ok()) return;
  // A tokenizer that loaded must encode and decode.
  auto ids = (*tok)->Encode("Hello world <s> 123", /*add_special=*/true, /*parse_special=*/true);
  if (ids.ok()) (void)(*tok)->Decode(*ids, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = hearth::gguf::File::FromMemory(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  CheckModel(**file);
  CheckTokenizer(**file);
  return 0;
}
