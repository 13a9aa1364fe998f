// adapter.cc — binding a LoRA file to a model: architecture and shape
// checks, the q/k row permutation PEFT adapters need on models whose GGUF
// q/k weights were permuted for interleaved RoPE, and the upload of A and B.
#include "sdk/src/runtime/adapter.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"

namespace hearth {
namespace {

constexpr uint64_t kAlign = 64;

uint64_t AlignUp(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Hugging Face keeps the two halves of each head's rotary pairs apart
// (rotate_half); GGUF llama files interleave them, and the converters
// permute the rows of q_proj and k_proj to match. B's rows are the
// projection's outputs, so a PEFT B gets the same permutation: within each
// head of `head_dim` rows, GGUF row 2j + i holds HF row i * head_dim/2 + j.
std::vector<uint8_t> PermuteRowsForInterleavedRope(const uint8_t* src, int64_t rows,
                                                   uint64_t row_bytes, int64_t n_heads) {
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
  const int64_t head_dim = rows / n_heads, half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t j = 0; j < half; ++j) {
      for (int64_t i = 0; i < 2; ++i) {
        const int64_t dst_row = h * head_dim + 2 * j + i;
        const int64_t src_row = h * head_dim + i * half + j;
        std::memcpy(out.data() + dst_row * row_bytes, src + src_row * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

// B [n_out rows of rank] as the op wants it: rank rows of n_out.
std::vector<uint8_t> Transpose(const uint8_t* src, int64_t rows, int64_t cols, size_t elem) {
  std::vector<uint8_t> out(static_cast<size_t>(rows * cols) * elem);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      std::memcpy(out.data() + (c * rows + r) * elem, src + (r * cols + c) * elem, elem);
    }
  }
  return out;
}

// Heads whose rows a PEFT B must be permuted by on this model, or 0.
int64_t PermuteHeads(const LoraTarget& t, const ModelConfig& c) {
  if (!t.hf_row_order || c.rope_mode != HEARTH_ROPE_NORMAL) return 0;
  if (EndsWith(t.weight, ".attn_q.weight")) return c.n_head;
  if (EndsWith(t.weight, ".attn_k.weight")) return c.n_head_kv;
  return 0;
}

}  // namespace

Adapter::~Adapter() {
  if (backend_ && buffer_) backend_->Free(buffer_);
}

absl::StatusOr<std::shared_ptr<Adapter>> Adapter::Load(std::shared_ptr<const Model> model,
                                                       const std::string& path) {
  std::shared_ptr<Adapter> a(new Adapter());
  HEARTH_ASSIGN_OR_RETURN(a->file_, LoadLoraFile(path));
  if (model == nullptr) return a;
  a->model_ = std::move(model);
  HEARTH_RETURN_IF_ERROR(a->Validate());
  HEARTH_RETURN_IF_ERROR(a->Place());
  return a;
}

absl::Status Adapter::Validate() const {
  const LoraFile& f = *file_;
  const ModelConfig& c = model_->config();
  if (!f.base_arch.empty() && f.base_arch != c.arch) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.path, ": the adapter is for architecture '", f.base_arch, "' but the model is '",
        c.arch, "'"));
  }
  for (const LoraTarget& t : f.targets) {
    if (t.layer >= c.n_layer) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.path, ": ", t.source_module, " targets layer ", t.layer, " but the model has ",
          c.n_layer, " layers (an adapter for a different model?)"));
    }
    const hearth_tensor_desc* w = model_->weights().Find(t.weight);
    if (w == nullptr && t.weight == "output.weight") {
      w = model_->weights().Find("token_embd.weight");  // tied output layer
    }
    if (w == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.path, ": ", t.source_module, " targets '", t.weight,
          "', which the model does not have"));
    }
    const int64_t n_in = w->ne[0], n_out = w->ne[1];
    if (t.a.ne[0] != n_in) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.path, ": ", t.a.source, " takes ", t.a.ne[0], " inputs but the model's ", t.weight,
          " takes ", n_in, " (an adapter for a different hidden size?)"));
    }
    if (t.b.ne[1] != n_out) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.path, ": ", t.b.source, " has ", t.b.ne[1], " outputs but the model's ", t.weight,
          " has ", n_out, " (an adapter for a different model?)"));
    }
    if (t.a.ne[1] != t.b.ne[0]) {
      return absl::InvalidArgumentError(absl::StrCat(f.path, ": ", t.a.source, " has rank ",
                                                     t.a.ne[1], " but ", t.b.source,
                                                     " has rank ", t.b.ne[0]));
    }
    if (const int64_t heads = PermuteHeads(t, c)) {
      if (n_out % heads != 0 || (n_out / heads) % 2 != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            f.path, ": ", t.b.source, " has ", n_out, " rows, which do not split into ", heads,
            " heads of an even size"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Adapter::Place() {
  const LoraFile& f = *file_;
  const ModelConfig& c = model_->config();
  uint64_t total = 0;
  for (const LoraTarget& t : f.targets) total += AlignUp(t.a.bytes) + AlignUp(t.b.bytes);
  HEARTH_ASSIGN_OR_RETURN(backend_, Backend::Create(model_->device(), 1));
  auto buf = backend_->Alloc(total > 0 ? total : kAlign);
  if (!buf.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        f.path, ": cannot allocate ", total, " bytes for the adapter on device '",
        model_->device().name, "': ", buf.status().message()));
  }
  buffer_ = *buf;
  uint64_t offset = 0;
  auto put = [&](const LoraTensor& lt, const uint8_t* bytes,
                 const Shape& shape) -> absl::StatusOr<hearth_tensor_desc> {
    hearth_tensor_desc d = ContiguousDesc(lt.dtype, shape);
    d.buffer = buffer_;
    d.offset = offset;
    HEARTH_RETURN_IF_ERROR(backend_->Upload(buffer_, offset, bytes, lt.bytes));
    offset += AlignUp(lt.bytes);
    return d;
  };
  for (const LoraTarget& t : f.targets) {
    LoraTerm term;
    term.scale = t.scale;
    HEARTH_ASSIGN_OR_RETURN(term.a, put(t.a, t.a.data, Shape::Of({t.a.ne[0], t.a.ne[1]})));
    const int64_t rank = t.b.ne[0], n_out = t.b.ne[1];
    const uint8_t* b = t.b.data;
    std::vector<uint8_t> permuted;
    if (const int64_t heads = PermuteHeads(t, c)) {
      permuted = PermuteRowsForInterleavedRope(
          b, n_out, t.b.bytes / static_cast<uint64_t>(n_out), heads);
      b = permuted.data();
    }
    const std::vector<uint8_t> bt =
        Transpose(b, n_out, rank, static_cast<size_t>(t.b.bytes / (n_out * rank)));
    HEARTH_ASSIGN_OR_RETURN(term.b, put(t.b, bt.data(), Shape::Of({n_out, rank})));
    terms_.push_back(term);
  }
  LoraStack all;
  AddTo(1.0f, &all);
  absl::Status supported = model_->CheckBackendSupport(*backend_, &all);
  if (!supported.ok()) {
    return absl::Status(supported.code(), absl::StrCat(f.path, ": ", supported.message()));
  }
  return absl::OkStatus();
}

void Adapter::AddTo(float scale, LoraStack* stack) const {
  for (size_t i = 0; i < terms_.size(); ++i) {
    LoraTerm t = terms_[i];
    t.scale *= scale;
    stack->Add(file_->targets[i].weight, t);
  }
}

}  // namespace hearth
