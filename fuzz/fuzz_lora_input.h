// fuzz_lora_input.h — how the adapter fuzz targets read their input as an
// adapter file: bytes starting with "GGUF" are a GGUF LoRA image; anything
// else is "<adapter_config.json>\0<adapter_model.safetensors>", and when the
// weights part is not a valid safetensors image `fallback` (a valid one the
// target built) is used instead, so the config rules are still exercised.
#ifndef HEARTH_FUZZ_FUZZ_LORA_INPUT_H_
#define HEARTH_FUZZ_FUZZ_LORA_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/safetensors.h"

namespace hearth_fuzz {

inline absl::StatusOr<std::unique_ptr<hearth::LoraFile>> ParseAdapterInput(
    const uint8_t* data, size_t size, const std::vector<uint8_t>& fallback) {
  if (size >= 4 && std::memcmp(data, "GGUF", 4) == 0) {
    auto g = hearth::gguf::File::FromMemory(data, size, "fuzz.gguf");
    if (!g.ok()) return g.status();
    return hearth::ParseGgufLora(std::move(*g));
  }
  const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t config_len = nul == nullptr ? size : static_cast<size_t>(nul - data);
  const std::string_view config(reinterpret_cast<const char*>(data), config_len);
  const uint8_t* weights = nul == nullptr ? nullptr : nul + 1;
  const size_t weights_len = nul == nullptr ? 0 : size - config_len - 1;
  auto st = hearth::safetensors::File::FromMemory(weights, weights_len, "fuzz.safetensors");
  if (!st.ok()) {
    st = hearth::safetensors::File::FromMemory(fallback.data(), fallback.size(),
                                               "fallback.safetensors");
    if (!st.ok()) __builtin_trap();  // the target's own fallback must parse
  }
  return hearth::ParsePeft(config, std::move(*st), "fuzz/adapter_config.json");
}

}  // namespace hearth_fuzz

#endif  // HEARTH_FUZZ_FUZZ_LORA_INPUT_H_
