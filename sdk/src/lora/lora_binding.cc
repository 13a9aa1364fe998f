// lora_binding.cc — a LoRA file against a model's ModelConfig and WeightSet:
// the shape and architecture checks, and B's device layout (the q/k row
// permutation PEFT adapters need on models whose GGUF q/k weights were
// permuted for interleaved RoPE, then the transpose LORA_MUL_MAT wants).
#include "sdk/src/lora/lora_binding.h"

#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/common/status.h"
#include "sdk/src/graph/graph.h"

namespace hearth {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Heads whose rows a PEFT B must be permuted by on this model, or 0.
int64_t PermuteHeads(const LoraTarget& t, const ModelConfig& c) {
  if (!t.hf_row_order || c.rope_mode != HEARTH_ROPE_NORMAL) return 0;
  if (EndsWith(t.weight, ".attn_q.weight")) return c.n_head;
  if (EndsWith(t.weight, ".attn_k.weight")) return c.n_head_kv;
  return 0;
}

absl::Status CheckArchitecture(const LoraFile& f, const ModelConfig& c) {
  if (!f.base_arch.empty() && f.base_arch != c.arch) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": the adapter is for architecture '",
                                                   f.base_arch, "' but the model is '", c.arch,
                                                   "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckTarget(const LoraFile& f, const LoraTarget& t, const ModelConfig& c,
                         const WeightSet& w) {
  if (t.layer >= c.n_layer) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", t.source_module, " targets layer ",
                                                   t.layer, " but the model has ", c.n_layer,
                                                   " layers (an adapter for a different model?)"));
  }
  const hearth_tensor_desc* base = w.Find(t.weight);
  if (base == nullptr && t.weight == "output.weight") {
    base = w.Find("token_embd.weight");  // tied output layer
  }
  if (base == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", t.source_module, " targets '",
                                                   t.weight, "', which the model does not have"));
  }
  const int64_t n_in = base->ne[0], n_out = base->ne[1];
  if (t.a.ne[0] != n_in) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.path, ": ", t.a.source, " takes ", t.a.ne[0], " inputs but the model's ",
                     t.weight, " takes ", n_in, " (an adapter for a different hidden size?)"));
  }
  if (t.b.ne[1] != n_out) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", t.b.source, " has ", t.b.ne[1],
                                                   " outputs but the model's ", t.weight, " has ",
                                                   n_out, " (an adapter for a different model?)"));
  }
  if (t.a.ne[1] != t.b.ne[0]) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", t.a.source, " has rank ",
                                                   t.a.ne[1], " but ", t.b.source, " has rank ",
                                                   t.b.ne[0]));
  }
  if (const int64_t heads = PermuteHeads(t, c)) {
    if (n_out % heads != 0 || (n_out / heads) % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", t.b.source, " has ", n_out,
                                                     " rows, which do not split into ", heads,
                                                     " heads of an even size"));
    }
  }
  return absl::OkStatus();
}

uint64_t LoraElemBytes(uint32_t dtype) {
  switch (dtype) {
    case HEARTH_DTYPE_F32:
      return 4;
    case HEARTH_DTYPE_F16:
    case HEARTH_DTYPE_BF16:
      return 2;
    default:
      return 0;
  }
}

// The parser guarantees all of this; a LoraTarget built by hand may not, and
// the layout below reads every byte these numbers promise.
absl::Status CheckGeometry(const LoraFile& f, const LoraTensor& m) {
  const uint64_t elem = LoraElemBytes(m.dtype);
  if (elem == 0) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", m.source, " is ",
                                                   DtypeName(m.dtype),
                                                   "; a LoRA matrix must be F32, F16 or BF16"));
  }
  uint64_t n = 0, bytes = 0;
  if (m.ne[0] <= 0 || m.ne[1] <= 0 ||
      __builtin_mul_overflow(static_cast<uint64_t>(m.ne[0]), static_cast<uint64_t>(m.ne[1]), &n) ||
      __builtin_mul_overflow(n, elem, &bytes) || bytes != m.bytes ||
      (m.data == nullptr && m.bytes != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", m.source, " claims ", m.bytes,
                                                   " bytes", m.data == nullptr ? " (no data)" : "",
                                                   " for a ", m.ne[0], " x ", m.ne[1], " ",
                                                   DtypeName(m.dtype), " matrix"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckLoraAgainstModel(const LoraFile& f, const ModelConfig& c, const WeightSet& w) {
  HEARTH_RETURN_IF_ERROR(CheckArchitecture(f, c));
  for (const LoraTarget& t : f.targets) HEARTH_RETURN_IF_ERROR(CheckTarget(f, t, c, w));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> LoraDeviceB(const LoraFile& f, size_t i, const ModelConfig& c,
                                                 const WeightSet& w) {
  if (i >= f.targets.size()) {
    return absl::OutOfRangeError(
        absl::StrCat(f.path, ": no target ", i, " (the adapter has ", f.targets.size(), ")"));
  }
  const LoraTarget& t = f.targets[i];
  HEARTH_RETURN_IF_ERROR(CheckArchitecture(f, c));
  HEARTH_RETURN_IF_ERROR(CheckTarget(f, t, c, w));
  HEARTH_RETURN_IF_ERROR(CheckGeometry(f, t.b));
  const int64_t heads = PermuteHeads(t, c);
  if (heads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.path, ": ", t.b.source, " would be split into ", heads, " heads"));
  }

  // B is [rank, n_out] in ggml order: n_out rows of rank. The device takes
  // rank rows of n_out, so output r of column k lands at k * n_out + r.
  const int64_t rank = t.b.ne[0], n_out = t.b.ne[1];
  const size_t elem = static_cast<size_t>(LoraElemBytes(t.b.dtype));
  // Hugging Face keeps the two halves of each head's rotary pairs apart
  // (rotate_half); GGUF llama files interleave them, and the converters
  // permute the rows of q_proj and k_proj to match. B's rows are the
  // projection's outputs, so a PEFT B gets the same permutation: within each
  // head of `head_dim` rows, GGUF row 2j + i holds HF row i * head_dim/2 + j.
  const int64_t head_dim = heads > 0 ? n_out / heads : 0, half = head_dim / 2;
  std::vector<uint8_t> out(static_cast<size_t>(t.b.bytes));
  for (int64_t r = 0; r < n_out; ++r) {
    int64_t src_row = r;
    if (heads > 0) {
      const int64_t in_head = r % head_dim;
      src_row = r - in_head + (in_head % 2) * half + in_head / 2;
    }
    const uint8_t* src = t.b.data + static_cast<size_t>(src_row * rank) * elem;
    for (int64_t k = 0; k < rank; ++k) {
      std::memcpy(out.data() + static_cast<size_t>(k * n_out + r) * elem, src + k * elem, elem);
    }
  }
  return out;
}

}  // namespace hearth
