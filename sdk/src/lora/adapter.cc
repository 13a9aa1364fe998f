// adapter.cc — binding a LoRA file to a model: the checks and B's device
// layout come from sdk/src/lora/lora_binding.h; this file uploads A and
// B into one buffer on the model's device and checks the backend runs them.
#include "sdk/src/lora/adapter.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "sdk/src/lora/lora_binding.h"
#include "sdk/src/common/status.h"

namespace hearth {
namespace {

constexpr uint64_t kAlign = 64;

uint64_t AlignUp(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

Adapter::~Adapter() {
  if (backend_ && buffer_) backend_->Free(buffer_);
}

absl::StatusOr<std::shared_ptr<Adapter>> Adapter::Load(std::shared_ptr<const Model> model,
                                                       const std::string& path,
                                                       bool ignore_base_fingerprint) {
  std::shared_ptr<Adapter> a(new Adapter());
  HEARTH_ASSIGN_OR_RETURN(a->file_, LoadLoraFile(path));
  if (model == nullptr) return a;
  const std::string& recorded = a->file_->base_fingerprint;
  if (!recorded.empty() && !ignore_base_fingerprint && recorded != model->fingerprint()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": trained on a base model whose weights fingerprint is ", recorded, "; this model (",
        model->name(), ") has ", model->fingerprint(),
        ". Refusing to load it onto a different base; override with --lora-ignore-base "
        "(hearth_adapter_params.ignore_base_fingerprint = 1)"));
  }
  a->model_ = std::move(model);
  HEARTH_RETURN_IF_ERROR(
      CheckLoraAgainstModel(*a->file_, a->model_->config(), a->model_->weights()));
  HEARTH_RETURN_IF_ERROR(a->Place());
  return a;
}

absl::StatusOr<std::shared_ptr<Adapter>> Adapter::FromPeftMemory(
    std::shared_ptr<const Model> model, std::string config_json,
    std::vector<uint8_t> safetensors_image, const std::string& name) {
  std::shared_ptr<Adapter> a(new Adapter());
  a->image_ = std::move(safetensors_image);
  HEARTH_ASSIGN_OR_RETURN(auto st,
                          safetensors::File::FromMemory(a->image_.data(), a->image_.size(),
                                                        name + "/adapter_model.safetensors"));
  HEARTH_ASSIGN_OR_RETURN(a->file_, ParsePeft(config_json, std::move(st), name));
  if (model == nullptr) return a;
  a->model_ = std::move(model);
  HEARTH_RETURN_IF_ERROR(
      CheckLoraAgainstModel(*a->file_, a->model_->config(), a->model_->weights()));
  HEARTH_RETURN_IF_ERROR(a->Place());
  return a;
}

absl::Status Adapter::Place() {
  const LoraFile& f = *file_;
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
  for (size_t i = 0; i < f.targets.size(); ++i) {
    const LoraTarget& t = f.targets[i];
    LoraTerm term;
    term.scale = t.scale;
    HEARTH_ASSIGN_OR_RETURN(term.a, put(t.a, t.a.data, Shape::Of({t.a.ne[0], t.a.ne[1]})));
    HEARTH_ASSIGN_OR_RETURN(const std::vector<uint8_t> b,
                            LoraDeviceB(f, i, model_->config(), model_->weights()));
    HEARTH_ASSIGN_OR_RETURN(term.b, put(t.b, b.data(), Shape::Of({t.b.ne[1], t.b.ne[0]})));
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

void Adapter::AddTo(float scale, LoraStack* stack, int row_scales) const {
  for (size_t i = 0; i < terms_.size(); ++i) {
    LoraTerm t = terms_[i];
    t.scale *= scale;
    t.row_scales = row_scales;
    stack->Add(file_->targets[i].weight, t);
  }
}

}  // namespace hearth
