// fuzz_adapter_bind.cc — libFuzzer target for binding a LoRA adapter to a
// base model: CheckLoraAgainstModel and LoraDeviceB
// (sdk/src/lora/lora_binding.h), what Adapter::Load does between parsing
// the file and uploading it, without a device.
//
// The first input byte picks the base (even: tests/data/models/tiny-llama-f32,
// ROPE_NORMAL, so PEFT q/k rows are permuted; odd: tiny-qwen2-f32, NEOX),
// loaded once as a ModelConfig and buffer-less weight descriptors the way
// fuzz_model_load does. The rest is an adapter as fuzz_lora_file reads it: a
// GGUF LoRA when it starts with "GGUF", else "<adapter_config.json>\0<safetensors>"
// with, when the weights part is broken, a fixed q_proj/k_proj pair that
// fits the chosen base. Every parsed adapter is bound: every target's B is
// laid out, and the check and the layout must agree.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "fuzz/fuzz_lora_input.h"
#include "fuzz/fuzz_util.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/lora/lora_binding.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/safetensors.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/model/architecture.h"

namespace {

using hearth_fuzz::Touch;

struct Base {
  hearth::ModelConfig config;
  hearth::WeightSet weights;
  // A valid PEFT safetensors image for this base: layer 0's q_proj and
  // k_proj at rank 2, for inputs whose weights part does not parse.
  std::vector<uint8_t> fallback;
};

[[noreturn]] void SetupFailed(const std::string& what) {
  std::fprintf(stderr, "fuzz_adapter_bind: %s\n", what.c_str());
  __builtin_trap();
}

void AppendSafetensorsPair(const std::string& module, int64_t n_in, int64_t n_out, int64_t rank,
                           uint64_t* offset, std::string* header) {
  const std::string prefix = "base_model.model.model.layers.0.self_attn." + module + ".lora_";
  const uint64_t a_bytes = static_cast<uint64_t>(rank * n_in) * 4;
  const uint64_t b_bytes = static_cast<uint64_t>(n_out * rank) * 4;
  *header += (header->size() > 1 ? "," : "") + std::string("\"") + prefix +
             "A.weight\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(rank) + "," +
             std::to_string(n_in) + "],\"data_offsets\":[" + std::to_string(*offset) + "," +
             std::to_string(*offset + a_bytes) + "]},\"" + prefix +
             "B.weight\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n_out) + "," +
             std::to_string(rank) + "],\"data_offsets\":[" + std::to_string(*offset + a_bytes) +
             "," + std::to_string(*offset + a_bytes + b_bytes) + "]}";
  *offset += a_bytes + b_bytes;
}

std::vector<uint8_t> FallbackWeights(const hearth::WeightSet& w) {
  const hearth_tensor_desc* q = w.Find("blk.0.attn_q.weight");
  const hearth_tensor_desc* k = w.Find("blk.0.attn_k.weight");
  if (q == nullptr || k == nullptr) SetupFailed("base model lacks blk.0.attn_q/attn_k");
  std::string header = "{";
  uint64_t data_bytes = 0;
  AppendSafetensorsPair("q_proj", q->ne[0], q->ne[1], 2, &data_bytes, &header);
  AppendSafetensorsPair("k_proj", k->ne[0], k->ne[1], 2, &data_bytes, &header);
  header += "}";
  std::vector<uint8_t> out(8 + header.size() + data_bytes);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  // Distinct bytes, so a wrong row order shows in the layout check.
  for (size_t i = 8 + header.size(); i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 13);
  return out;
}

Base LoadBase(const std::string& path) {
  Base b;
  auto file = hearth::gguf::File::Open(path);
  if (!file.ok()) SetupFailed(std::string(file.status().message()));
  auto arch_name = (*file)->GetString("general.architecture");
  const hearth::Architecture* arch =
      arch_name.ok() ? hearth::FindArchitecture(*arch_name) : nullptr;
  if (arch == nullptr) SetupFailed(path + ": no known architecture");
  if (!arch->ReadConfig(**file, &b.config).ok()) SetupFailed(path + ": ReadConfig failed");
  for (const hearth::gguf::TensorInfo& t : (*file)->tensors()) {
    const int32_t dtype = hearth::gguf::GgmlTypeToHearthDtype(t.type);
    if (dtype < 0) SetupFailed(path + ": unsupported dtype of " + t.name);
    hearth::Shape s;
    s.n_dims = t.n_dims;
    for (int i = 0; i < 4; ++i) s.ne[i] = t.ne[i];
    b.weights.Add(t.name, hearth::ContiguousDesc(static_cast<uint32_t>(dtype), s));
  }
  if (!arch->CheckWeights(b.config, b.weights).ok()) SetupFailed(path + ": CheckWeights failed");
  b.fallback = FallbackWeights(b.weights);
  return b;
}

const std::vector<Base>& Bases() {
  static const std::vector<Base>* bases = [] {
    auto* v = new std::vector<Base>();
    v->push_back(LoadBase(HEARTH_FUZZ_MODELS "/tiny-llama-f32.gguf"));
    v->push_back(LoadBase(HEARTH_FUZZ_MODELS "/tiny-qwen2-f32.gguf"));
    return v;
  }();
  return *bases;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Checks one laid-out B against what the target and the model promise:
// [n_out, rank] of B's dtype, every element where the layout's definition
// (written here independently, HF row -> model row) puts it.
void CheckDeviceB(const hearth::LoraTarget& t, const Base& base, const std::vector<uint8_t>& out) {
  const hearth_tensor_desc* w = base.weights.Find(t.weight);
  if (w == nullptr && t.weight == "output.weight") w = base.weights.Find("token_embd.weight");
  if (w == nullptr) __builtin_trap();  // laid out for a weight the model lacks
  const int64_t n_in = w->ne[0], n_out = w->ne[1], rank = t.b.ne[0];
  if (t.a.ne[0] != n_in || t.b.ne[1] != n_out || t.a.ne[1] != rank || rank <= 0) {
    __builtin_trap();
  }
  const size_t elem = t.b.dtype == HEARTH_DTYPE_F32 ? 4 : 2;
  if (out.size() != static_cast<size_t>(n_out * rank) * elem || out.size() != t.b.bytes) {
    __builtin_trap();
  }
  volatile uint8_t sink = Touch(out.data(), out.size());
  sink = sink ^ Touch(t.a.data, t.a.bytes) ^ Touch(t.b.data, t.b.bytes);
  (void)sink;

  int64_t heads = 0;
  if (t.hf_row_order && base.config.rope_mode == HEARTH_ROPE_NORMAL) {
    if (EndsWith(t.weight, ".attn_q.weight")) heads = base.config.n_head;
    if (EndsWith(t.weight, ".attn_k.weight")) heads = base.config.n_head_kv;
  }
  const int64_t head_dim = heads > 0 ? n_out / heads : n_out;
  if (heads > 0 && (n_out % heads != 0 || head_dim % 2 != 0)) __builtin_trap();
  const int64_t half = head_dim / 2;
  for (int64_t hf_row = 0; hf_row < n_out; ++hf_row) {
    int64_t row = hf_row;
    if (heads > 0) {
      // HF keeps the rotary halves of a head apart; the model interleaves them.
      const int64_t h = hf_row / head_dim, i = (hf_row % head_dim) / half,
                    j = (hf_row % head_dim) % half;
      row = h * head_dim + 2 * j + i;
    }
    for (int64_t k = 0; k < rank; ++k) {
      if (std::memcmp(out.data() + static_cast<size_t>(k * n_out + row) * elem,
                      t.b.data + static_cast<size_t>(hf_row * rank + k) * elem, elem) != 0) {
        __builtin_trap();
      }
    }
  }
}

void Bind(const hearth::LoraFile& f, const Base& base) {
  const absl::Status check = hearth::CheckLoraAgainstModel(f, base.config, base.weights);
  if (!check.ok() && !absl::StartsWith(check.message(), f.path + ": ")) __builtin_trap();
  size_t refused = 0;
  for (size_t i = 0; i < f.targets.size(); ++i) {
    auto b = hearth::LoraDeviceB(f, i, base.config, base.weights);
    if (!b.ok()) {
      if (!absl::StartsWith(b.status().message(), f.path + ": ")) __builtin_trap();
      ++refused;
      continue;
    }
    CheckDeviceB(f.targets[i], base, *b);
  }
  // The layout refuses a target exactly when the check would, and the check
  // refuses a file exactly when one of its targets does (the parser already
  // guarantees B's own geometry, the layout's only extra rule).
  if (check.ok() != (refused == 0)) __builtin_trap();
  if (hearth::LoraDeviceB(f, f.targets.size(), base.config, base.weights).ok()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Base& base = Bases()[data[0] & 1];
  data += 1;
  size -= 1;
  auto lora = hearth_fuzz::ParseAdapterInput(data, size, base.fallback);
  if (lora.ok()) Bind(**lora, base);
  return 0;
}
