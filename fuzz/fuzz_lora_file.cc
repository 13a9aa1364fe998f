// fuzz_lora_file.cc — libFuzzer target for the LoRA adapter-file parsers.
//
// An input starting with "GGUF" is a GGUF image: parsed with
// gguf::File::FromMemory and, when valid, ParseGgufLora. Any other input is
// "<adapter_config.json>\0<adapter_model.safetensors>" for ParsePeft; when the
// part after the NUL is not a valid safetensors image, a fixed valid one is
// used instead so that the config rules are still exercised. Accepted
// adapters have every matrix touched and their invariants checked.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_lora_input.h"
#include "fuzz/fuzz_util.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/safetensors.h"

namespace {

using hearth_fuzz::Touch;

uint64_t ElemBytes(uint32_t dtype) { return dtype == HEARTH_DTYPE_F32 ? 4 : 2; }

void Check(const hearth::LoraFile& f) {
  volatile uint64_t sink = f.n_params;
  if (f.targets.empty() || f.rank <= 0 || f.alpha == 0 || !std::isfinite(f.alpha)) {
    __builtin_trap();
  }
  uint64_t params = 0;
  for (size_t i = 0; i < f.targets.size(); ++i) {
    const hearth::LoraTarget& t = f.targets[i];
    if (f.Find(t.weight) != &t) __builtin_trap();               // one target per weight
    if (i > 0 && f.targets[i - 1].layer < 0) __builtin_trap();  // output last
    if (t.rank <= 0 || t.scale == 0 || !std::isfinite(t.scale)) __builtin_trap();
    if (t.a.ne[1] != t.rank || t.b.ne[0] != t.rank) __builtin_trap();
    for (const hearth::LoraTensor* m : {&t.a, &t.b}) {
      if (m->dtype != HEARTH_DTYPE_F32 && m->dtype != HEARTH_DTYPE_F16 &&
          m->dtype != HEARTH_DTYPE_BF16) {
        __builtin_trap();
      }
      if (m->ne[0] <= 0 || m->ne[1] <= 0) __builtin_trap();
      const uint64_t n = static_cast<uint64_t>(m->ne[0]) * static_cast<uint64_t>(m->ne[1]);
      if (n * ElemBytes(m->dtype) != m->bytes) __builtin_trap();
      params += n;
      sink = sink + Touch(m->data, m->bytes);
    }
  }
  if (params != f.n_params) __builtin_trap();
  (void)sink;
}

// One valid pair (r = 2, n_in = n_out = 2, F32) for inputs whose weights part
// is broken.
std::vector<uint8_t> FallbackWeights() {
  const std::string header = R"({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":)"
                             R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight":)"
                             R"({"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})";
  std::vector<uint8_t> out(8 + header.size() + 32, 0);
  for (int k = 0; k < 8; ++k) out[k] = static_cast<uint8_t>(uint64_t{header.size()} >> (8 * k));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t> fallback = FallbackWeights();
  auto lora = hearth_fuzz::ParseAdapterInput(data, size, fallback);
  if (lora.ok()) Check(**lora);
  return 0;
}
