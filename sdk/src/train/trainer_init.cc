// trainer_init.cc — Trainer::InitFromAdapter: continue training an existing
// adapter. It is loaded as any adapter is (checked against the model,
// provenance included), and its A and B^T — B already transposed and its
// q/k rows in the model's order, as the device takes it (LoraDeviceB) —
// replace the fresh init. The trained targets, rank and scale must match
// exactly, so the adapter computes the same function before the first step.
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sdk/src/lora/lora_binding.h"
#include "sdk/src/common/status.h"
#include "sdk/src/lora/adapter.h"
#include "sdk/src/train/trainer.h"

namespace hearth::train {
namespace {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(man), -24);  // zero or subnormal
  } else if (exp == 31) {
    f = man ? NAN : INFINITY;
  } else {
    f = std::ldexp(static_cast<float>(man | 0x400u), static_cast<int>(exp) - 25);
  }
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits |= sign;
  std::memcpy(&f, &bits, 4);
  return f;
}

// `n` values of `dtype` (F32, F16 or BF16) at `p`, as floats.
std::vector<float> ToFloats(uint32_t dtype, const uint8_t* p, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == HEARTH_DTYPE_F32) {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      if (dtype == HEARTH_DTYPE_BF16) {
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      } else {
        out[i] = HalfToFloat(h);
      }
    }
  }
  return out;
}

}  // namespace

absl::Status Trainer::InitFromAdapter(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<Adapter> adapter, Adapter::Load(model_, path));
  const LoraFile& f = adapter->file();
  std::vector<bool> used(f.targets.size(), false);
  for (size_t i = 0; i < targets_.size(); ++i) {
    const TrainTarget& tt = targets_[i];
    size_t j = 0;
    while (j < f.targets.size() && f.targets[j].weight != tt.weight) ++j;
    if (j == f.targets.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the initial adapter has no pair for ", tt.weight,
                       ", which --targets trains; give the targets it was trained with"));
    }
    const LoraTarget& t = f.targets[j];
    used[j] = true;
    if (t.rank != rank_ || std::fabs(t.scale - scale_) > 1e-6f * std::fabs(scale_)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", tt.weight, " has rank ", t.rank, " and scale ", t.scale,
                       "; this trainer has rank ", rank_, " and scale ", scale_,
                       " (give the initial adapter's rank and alpha)"));
    }
    const std::vector<float> a =
        ToFloats(t.a.dtype, t.a.data, static_cast<size_t>(tt.n_in * rank_));
    HEARTH_ASSIGN_OR_RETURN(const std::vector<uint8_t> b,
                            LoraDeviceB(f, j, model_->config(), model_->weights()));
    const std::vector<float> b_t =
        ToFloats(t.b.dtype, b.data(), static_cast<size_t>(tt.n_out * rank_));
    HEARTH_RETURN_IF_ERROR(SetValues(i, a, b_t));
  }
  for (size_t j = 0; j < used.size(); ++j) {
    if (!used[j]) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the initial adapter also adapts ", f.targets[j].weight,
                       ", which --targets does not train (its pair would be lost)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace hearth::train
