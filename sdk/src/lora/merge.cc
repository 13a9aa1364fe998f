// merge.cc — folding LoRA adapters into a model file. Each targeted weight
// is rebuilt in row chunks by a small graph on the model's device:
// GET_ROWS dequantizes W's rows to F32, COPY turns A and B (both through
// transposed views) into F32, MUL_MAT forms B·A for those rows, SCALE and
// ADD fold it in. The host only encodes the result (F32/F16/BF16/Q8_0) and
// streams it to the writer, one chunk at a time.
#include "sdk/src/lora/merge.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/encode.h"
#include "sdk/src/format/gguf_writer.h"

namespace hearth {
namespace {

// F32 elements of W one chunk holds on the device (64 MiB).
constexpr int64_t kChunkElems = int64_t{16} << 20;

struct Term {
  const Adapter* adapter;
  size_t index;  // into the adapter's targets
  float scale;   // the user's scale times the file's own
};

absl::StatusOr<uint32_t> OutputType(const std::string& merged_type, uint32_t base_type,
                                    const std::string& name, int64_t n_in) {
  uint32_t type;
  if (merged_type.empty()) {
    const bool is_float = base_type == gguf::kGgmlF32 || base_type == gguf::kGgmlF16 ||
                          base_type == gguf::kGgmlBF16;
    type = is_float ? base_type : gguf::kGgmlQ8_0;
  } else if (merged_type == "f32") {
    type = gguf::kGgmlF32;
  } else if (merged_type == "f16") {
    type = gguf::kGgmlF16;
  } else if (merged_type == "bf16") {
    type = gguf::kGgmlBF16;
  } else if (merged_type == "q8_0") {
    type = gguf::kGgmlQ8_0;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "merged type '", merged_type, "' is not one of f32, f16, bf16, q8_0"));
  }
  if (type == gguf::kGgmlQ8_0 && n_in % 32 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": rows of ", n_in, " values do not split into Q8_0 blocks of 32; export with "
        "--type f16 or f32"));
  }
  return type;
}

uint64_t TensorBytes(uint32_t type, int64_t n_in, int64_t rows) {
  int64_t block_elems = 1, block_bytes = 4;
  gguf::GgmlTypeGeometry(type, &block_elems, &block_bytes);
  return static_cast<uint64_t>(n_in / block_elems * block_bytes) * static_cast<uint64_t>(rows);
}

class Merger {
 public:
  Merger(const Model& model, Backend* backend) : model_(model), backend_(backend) {}
  ~Merger() {
    if (arena_) backend_->Free(arena_);
  }

  // Streams `source` (a weight of the model) with `terms` folded in, as
  // `out_type` rows.
  absl::Status Produce(const std::string& source, const std::vector<Term>& terms,
                       uint32_t out_type, const gguf::ChunkSink& emit) {
    const hearth_tensor_desc& w = *model_.weights().Find(source);
    const int64_t K = w.ne[0], M = w.ne[1];
    const int64_t per_chunk = std::clamp<int64_t>(kChunkElems / K, 1, M);
    std::vector<float> rows_f32;
    std::vector<uint8_t> encoded;
    std::vector<int32_t> ids;
    for (int64_t m0 = 0; m0 < M; m0 += per_chunk) {
      const int64_t rows = std::min(per_chunk, M - m0);
      Graph g;
      const int ids_t = g.Input(HEARTH_DTYPE_I32, Shape::Of({rows}));
      int x = g.Op(HEARTH_OP_GET_ROWS, HEARTH_DTYPE_F32, Shape::Of({K, rows}),
                   {g.External(w), ids_t});
      for (const Term& t : terms) {
        const LoraTerm& lt = t.adapter->term(t.index);
        const int64_t R = lt.a.ne[1];
        hearth_tensor_desc at = lt.a;  // A [K, R] seen as A^T [R, K]
        at.ne[0] = R;
        at.ne[1] = K;
        at.nb[0] = lt.a.nb[1];
        at.nb[1] = lt.a.nb[0];
        const int a_t = g.Op(HEARTH_OP_COPY, HEARTH_DTYPE_F32, Shape::Of({R, K}),
                             {g.External(at)});
        // Outputs m0 .. m0 + rows of B^T [M, R], seen as B's rows [R, rows].
        hearth_tensor_desc bc = lt.b;
        bc.ne[0] = R;
        bc.ne[1] = rows;
        bc.nb[0] = lt.b.nb[1];
        bc.nb[1] = lt.b.nb[0];
        bc.offset += static_cast<uint64_t>(m0 * lt.b.nb[0]);
        const int b_rows = g.Op(HEARTH_OP_COPY, HEARTH_DTYPE_F32, Shape::Of({R, rows}),
                                {g.External(bc)});
        int delta = g.Op(HEARTH_OP_MUL_MAT, HEARTH_DTYPE_F32, Shape::Of({K, rows}),
                         {a_t, b_rows});
        delta = g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({K, rows}), {delta},
                     hearth_scale_params{t.scale});
        x = g.Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, Shape::Of({K, rows}), {x, delta});
      }
      g.MarkOutput(x);
      const uint64_t need = g.Plan();
      if (need > arena_bytes_) {
        if (arena_) backend_->Free(arena_);
        arena_ = nullptr;
        arena_bytes_ = 0;
        HEARTH_ASSIGN_OR_RETURN(arena_, backend_->Alloc(need));
        arena_bytes_ = need;
      }
      g.Bind(arena_);
      ids.resize(static_cast<size_t>(rows));
      for (int64_t i = 0; i < rows; ++i) ids[i] = static_cast<int32_t>(m0 + i);
      const hearth_tensor_desc& idd = g.tensor(ids_t);
      HEARTH_RETURN_IF_ERROR(backend_->Upload(idd.buffer, idd.offset, ids.data(),
                                              static_cast<uint64_t>(rows) * 4));
      HEARTH_RETURN_IF_ERROR(backend_->Compute(g.view()));
      rows_f32.resize(static_cast<size_t>(K * rows));
      const hearth_tensor_desc& xd = g.tensor(x);
      HEARTH_RETURN_IF_ERROR(backend_->Download(xd.buffer, xd.offset, rows_f32.data(),
                                                rows_f32.size() * sizeof(float)));
      HEARTH_RETURN_IF_ERROR(Encode(rows_f32, out_type, &encoded));
      HEARTH_RETURN_IF_ERROR(emit(absl::MakeConstSpan(encoded)));
    }
    return absl::OkStatus();
  }

 private:
  static absl::Status Encode(const std::vector<float>& src, uint32_t type,
                             std::vector<uint8_t>* out) {
    const int64_t n = static_cast<int64_t>(src.size());
    switch (type) {
      case gguf::kGgmlF32:
        out->resize(src.size() * 4);
        std::copy_n(reinterpret_cast<const uint8_t*>(src.data()), out->size(), out->begin());
        return absl::OkStatus();
      case gguf::kGgmlF16:
      case gguf::kGgmlBF16:
        out->resize(src.size() * 2);
        (type == gguf::kGgmlF16 ? encode::F32ToF16 : encode::F32ToBF16)(
            src.data(), reinterpret_cast<uint16_t*>(out->data()), n);
        return absl::OkStatus();
      default:  // Q8_0, checked by OutputType
        out->resize(static_cast<size_t>(n / 32 * 34));
        return encode::QuantizeQ8_0(src.data(), n, out->data());
    }
  }

  const Model& model_;
  Backend* backend_;
  hearth_pbuffer* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
};

}  // namespace

absl::Status ExportMerged(const Model& model, const Session::AdapterSet& adapters,
                          const std::string& path, const std::string& merged_type) {
  if (adapters.empty()) {
    return absl::InvalidArgumentError("export: no adapters to merge");
  }
  // Terms by the weight they change, in the order the adapters were given.
  StringMap<std::vector<Term>> terms;
  std::vector<std::string> provenance;
  for (size_t i = 0; i < adapters.size(); ++i) {
    const auto& [adapter, scale] = adapters[i];
    if (adapter == nullptr || adapter->model() != &model) {
      return absl::InvalidArgumentError(absl::StrCat(
          "export: adapter #", i, " was not loaded for this model"));
    }
    if (!std::isfinite(scale)) {
      return absl::InvalidArgumentError(
          absl::StrCat("export: adapter #", i, ": scale ", scale, " is not finite"));
    }
    const LoraFile& f = adapter->file();
    for (size_t t = 0; t < f.targets.size(); ++t) {
      terms[f.targets[t].weight].push_back(
          Term{adapter.get(), t, scale * adapter->term(t).scale});
    }
    provenance.push_back(absl::StrCat(f.path, ":", scale));
  }

  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                          Backend::Create(model.device(), model.n_threads()));
  Merger merger(model, backend.get());
  const gguf::File& file = model.file();
  gguf::Writer writer;
  writer.CopyMetadataFrom(file);
  writer.SetStringArray("hearth.merged_adapters", provenance);

  auto add_merged = [&](const std::string& name, const gguf::TensorInfo& source,
                        const std::vector<Term>* ts) -> absl::Status {
    HEARTH_ASSIGN_OR_RETURN(uint32_t type,
                            OutputType(merged_type, source.type, name, source.ne[0]));
    const std::string source_name = source.name;
    return writer.AddTensor(
        name, type, {source.ne[0], source.ne[1]}, TensorBytes(type, source.ne[0], source.ne[1]),
        gguf::TensorSource::Chunks([&merger, source_name, ts, type](const gguf::ChunkSink& emit) {
          return merger.Produce(source_name, *ts, type, emit);
        }));
  };
  for (const gguf::TensorInfo& t : file.tensors()) {
    auto it = terms.find(t.name);
    if (it == terms.end()) {
      HEARTH_RETURN_IF_ERROR(writer.AddTensorFrom(t));
    } else {
      HEARTH_RETURN_IF_ERROR(add_merged(t.name, t, &it->second));
    }
  }
  // A LoRA on the output layer of a model whose output is tied to the
  // embedding table: the merged output becomes a tensor of its own.
  auto out = terms.find("output.weight");
  if (out != terms.end() && file.FindTensor("output.weight") == nullptr) {
    const gguf::TensorInfo* embd = file.FindTensor("token_embd.weight");
    if (embd == nullptr) {
      return absl::InvalidArgumentError("export: the model has no token_embd.weight to untie");
    }
    HEARTH_RETURN_IF_ERROR(add_merged("output.weight", *embd, &out->second));
  }
  return writer.WriteTo(path);
}

}  // namespace hearth
