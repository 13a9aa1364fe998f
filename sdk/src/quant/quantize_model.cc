// quantize_model.cc — GGUF to GGUF with new weight types (see quantize_model.h).
#include "sdk/src/quant/quantize_model.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/quant/block_quantize.h"
#include "sdk/src/quant/type_plan.h"

namespace hearth::quant {

absl::Status AddEncodedTensor(gguf::Writer* w, const std::string& name, uint32_t ggml_type,
                              const std::vector<int64_t>& ne,
                              std::function<absl::Status(std::vector<float>*)> load) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  int64_t block = 0, block_bytes = 0;
  if (!gguf::GgmlTypeGeometry(ggml_type, &block, &block_bytes) || n % block != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", n, " values cannot be stored as ", gguf::GgmlTypeName(ggml_type)));
  }
  const uint64_t size = static_cast<uint64_t>(n / block * block_bytes);
  return w->AddTensor(name, ggml_type, ne, size,
                      gguf::TensorSource::Buffer([name, ggml_type, n, size, load = std::move(load)](
                                                     std::vector<uint8_t>* out) {
                        std::vector<float> values;
                        HEARTH_RETURN_IF_ERROR(load(&values));
                        if (static_cast<int64_t>(values.size()) != n) {
                          return absl::InternalError(absl::StrCat(
                              name, ": ", values.size(), " values loaded, ", n, " expected"));
                        }
                        out->resize(size);
                        return QuantizeRow(name, ggml_type, values.data(), n, out->data());
                      }));
}

absl::Status QuantizeModel(const std::string& in, const std::string& out,
                           const std::string& type_name, const Progress& progress) {
  HEARTH_ASSIGN_OR_RETURN(ModelType type, ParseModelType(type_name));
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> src, gguf::File::Open(in));
  std::vector<std::string> names;
  for (const gguf::TensorInfo& t : src->tensors()) names.push_back(t.name);
  TypePlan plan(type, names);

  gguf::Writer w;
  w.CopyMetadataFrom(*src);
  w.SetUint32("general.file_type", type.file_type);
  w.SetUint32("general.quantization_version", 2);
  const int64_t count = static_cast<int64_t>(src->tensors().size());
  uint64_t bytes_total = 0, bytes_done = 0;
  for (const gguf::TensorInfo& t : src->tensors()) bytes_total += t.size;
  int64_t index = 0;
  for (const gguf::TensorInfo& t : src->tensors()) {
    const std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    uint32_t want = plan.TypeFor(t.name, ne);
    const bool convertible =
        t.type == gguf::kGgmlF32 || t.type == gguf::kGgmlF16 || t.type == gguf::kGgmlBF16;
    // 1-D tensors and names the plan does not convert keep their type.
    if (!TypePlan::Converts(t.name, ne)) want = t.type;
    const int64_t i = index++;
    const uint64_t before = bytes_done;
    bytes_done += t.size;
    auto step = [&progress, i, count, name = t.name, before, bytes_total]() -> absl::Status {
      if (progress && !progress(i, count, name, before, bytes_total)) {
        return absl::CancelledError(absl::StrCat("stopped by the progress callback at ", name));
      }
      return absl::OkStatus();
    };
    if (want == t.type) {
      // Progress for copied tensors comes with the next converted one.
      HEARTH_RETURN_IF_ERROR(w.AddTensorFrom(t));
      continue;
    }
    if (!convertible) {
      return absl::FailedPreconditionError(absl::StrCat(
          in, ": tensor '", t.name, "' is ", gguf::GgmlTypeName(t.type), "; hearth quantizes from ",
          "F32, F16 or BF16 only (quantizing a quantized tensor again loses more than it should)"));
    }
    const gguf::TensorInfo* info = &t;
    HEARTH_RETURN_IF_ERROR(AddEncodedTensor(
        &w, t.name, want, ne, [info, step](std::vector<float>* values) -> absl::Status {
          HEARTH_RETURN_IF_ERROR(step());
          values->resize(static_cast<size_t>(info->n_elements()));
          ToFloat(info->type, info->data, info->n_elements(), values->data());
          return absl::OkStatus();
        }));
  }
  return w.WriteTo(out);
}

}  // namespace hearth::quant
