// gguf_writer.cc — GGUF LoRA files from host values (see gguf_writer.h).
#include "sdk/src/lora/gguf_writer.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/encode.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/gguf_writer.h"

namespace hearth {
namespace {

// `values` as little-endian F32 or F16 bytes.
std::vector<uint8_t> Encode(const std::vector<float>& values, bool f16) {
  std::vector<uint8_t> out(values.size() * (f16 ? 2 : 4));
  if (f16) {
    std::vector<uint16_t> half(values.size());
    encode::F32ToF16(values.data(), half.data(), static_cast<int64_t>(values.size()));
    std::memcpy(out.data(), half.data(), out.size());  // little-endian hosts
  } else {
    std::memcpy(out.data(), values.data(), out.size());
  }
  return out;
}

}  // namespace

absl::Status WriteGgufLora(const GgufLoraMeta& meta, const std::vector<GgufLoraPair>& pairs,
                           const std::string& path, const std::string& dtype) {
  if (dtype != "f32" && dtype != "f16") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a GGUF LoRA is written as f32 or f16, not '", dtype, "'"));
  }
  if (meta.arch.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no base architecture to record"));
  }
  if (!(meta.alpha > 0) || !std::isfinite(meta.alpha)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": alpha ", meta.alpha, " is not positive"));
  }
  if (pairs.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no LoRA targets"));
  const bool f16 = dtype == "f16";
  gguf::Writer w;
  w.SetString("general.architecture", meta.arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetFloat32("adapter.lora.alpha", meta.alpha);
  if (!meta.base_name.empty()) w.SetString("general.basename", meta.base_name);
  if (!meta.provenance.empty()) w.SetString("hearth.provenance", meta.provenance);
  if (!meta.base_fingerprint.empty()) w.SetString("hearth.base_fingerprint", meta.base_fingerprint);

  // Encoded bytes must outlive WriteTo (Memory sources).
  std::vector<std::vector<uint8_t>> bytes;
  bytes.reserve(pairs.size() * 2);
  const uint32_t type = f16 ? gguf::kGgmlF16 : gguf::kGgmlF32;
  for (const GgufLoraPair& p : pairs) {
    if (p.rank < 1 || p.n_in < 1 || p.n_out < 1 ||
        p.a.size() != static_cast<size_t>(p.rank * p.n_in) ||
        p.b.size() != static_cast<size_t>(p.rank * p.n_out)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", p.weight, ": A or B does not have rank x n_in / n_out values"));
    }
    bytes.push_back(Encode(p.a, f16));
    HEARTH_RETURN_IF_ERROR(w.AddTensor(p.weight + ".lora_a", type, {p.n_in, p.rank},
                                       bytes.back().size(),
                                       gguf::TensorSource::Memory(bytes.back())));
    bytes.push_back(Encode(p.b, f16));
    HEARTH_RETURN_IF_ERROR(w.AddTensor(p.weight + ".lora_b", type, {p.rank, p.n_out},
                                       bytes.back().size(),
                                       gguf::TensorSource::Memory(bytes.back())));
  }
  return w.WriteTo(path);
}

}  // namespace hearth
