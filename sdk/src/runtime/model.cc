// model.cc — loading a model: validate the file, pick the architecture,
// build the tokenizer, place the weights on the device (wrapping the mapped
// file without a copy where the device reads host memory), and check that
// the backend supports every op the model's graph uses.
#include "sdk/src/runtime/model.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/fingerprint.h"

namespace hearth {

Model::~Model() {
  if (loader_ && weight_buffer_) loader_->Free(weight_buffer_);
  if (loader_) {
    for (hearth_pbuffer* b : placed_weights_) loader_->Free(b);
  }
}

absl::StatusOr<std::shared_ptr<Model>> Model::Load(std::shared_ptr<PluginHost> host,
                                                   const std::string& path,
                                                   const ModelLoadOptions& options) {
  std::shared_ptr<Model> m(new Model());
  m->host_ = std::move(host);
  HEARTH_ASSIGN_OR_RETURN(m->file_, gguf::File::Open(path));
  const gguf::File& f = *m->file_;

  auto arch_name = f.GetString("general.architecture");
  if (!arch_name.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no 'general.architecture' string in the metadata (",
                     arch_name.status().message(), ")"));
  }
  m->arch_ = FindArchitecture(*arch_name);
  if (m->arch_ == nullptr) {
    return absl::UnimplementedError(absl::StrCat(path, ": architecture '", *arch_name,
                                                 "' is not supported (supported: ",
                                                 ArchitectureNames(), ")"));
  }
  HEARTH_RETURN_IF_ERROR(m->arch_->ReadConfig(f, &m->config_));

  HEARTH_ASSIGN_OR_RETURN(tok::VocabData vocab, tok::LoadVocab(f));
  if (static_cast<int64_t>(vocab.tokens.size()) > m->config_.n_vocab) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the tokenizer has ", vocab.tokens.size(),
        " tokens but token_embd.weight has only ", m->config_.n_vocab, " rows"));
  }
  HEARTH_ASSIGN_OR_RETURN(m->tokenizer_, tok::Tokenizer::Create(std::move(vocab)));

  HEARTH_ASSIGN_OR_RETURN(const DeviceRef* dev, m->host_->FindDevice(options.device));
  m->device_ = *dev;
  m->n_threads_ = options.n_threads;
  HEARTH_ASSIGN_OR_RETURN(m->loader_, Backend::Create(m->device_, m->n_threads_));
  HEARTH_RETURN_IF_ERROR(m->PlaceWeights());
  HEARTH_RETURN_IF_ERROR(m->arch_->CheckWeights(m->config_, m->weights_));
  HEARTH_RETURN_IF_ERROR(m->CheckBackendSupport(*m->loader_, nullptr));
  m->Describe();
  return m;
}

absl::Status Model::PlaceWeights() {
  const gguf::File& f = *file_;
  // Tensor by tensor when the plugin takes weights that way (it may repack
  // each one); else the whole mapped file in one buffer.
  const bool per_tensor = loader_->CanPlaceWeights();
  if (!per_tensor) {
    bool wrapped = false;
    HEARTH_ASSIGN_OR_RETURN(weight_buffer_,
                            loader_->WrapOrUpload(f.data(), f.file_size(), &wrapped));
  }
  for (const gguf::TensorInfo& t : f.tensors()) {
    const int32_t dtype = gguf::GgmlTypeToHearthDtype(t.type);
    if (dtype < 0) {
      return absl::UnimplementedError(absl::StrCat(
          f.name(), ": tensor '", t.name, "' has type ", gguf::GgmlTypeName(t.type),
          ", which hearth cannot compute with yet"));
    }
    Shape s;
    s.n_dims = t.n_dims;
    for (int i = 0; i < 4; ++i) s.ne[i] = t.ne[i];
    hearth_tensor_desc d = ContiguousDesc(static_cast<uint32_t>(dtype), s);
    if (per_tensor) {
      hearth_pweight w{};
      w.struct_size = sizeof(w);
      // Norm weights and biases are 1-D; the embedding table is gathered
      // (and, tied, also multiplied as the output projection).
      w.usage = t.n_dims == 1                   ? HEARTH_WEIGHT_USE_OTHER
                : t.name == "token_embd.weight" ? HEARTH_WEIGHT_USE_ROWS | HEARTH_WEIGHT_USE_MATMUL
                                                : HEARTH_WEIGHT_USE_MATMUL;
      w.name = t.name.c_str();
      w.desc = d;
      w.data = f.data() + t.offset;
      w.size = t.size;
      w.data_outlives = 1;  // the mapping lives until ~Model, after the buffers
      bool repacked = false;
      HEARTH_ASSIGN_OR_RETURN(hearth_pbuffer * buf, loader_->PlaceWeight(w, &repacked));
      placed_weights_.push_back(buf);
      // The plugin keeps its own copy: the file's pages need not stay.
      if (repacked) f.DropPages(t.offset, t.size);
      d.buffer = buf;
      d.offset = 0;
    } else {
      d.buffer = weight_buffer_;
      d.offset = t.offset;
    }
    weights_.Add(t.name, d);
    n_params_ += static_cast<uint64_t>(t.n_elements());
    if (t.name != "token_embd.weight") {
      decode_weight_bytes_ += t.size;
    }
  }
  // A tied output reads the embedding table in full every step.
  if (weights_.Find("output.weight") == nullptr) {
    if (const gguf::TensorInfo* e = f.FindTensor("token_embd.weight")) {
      decode_weight_bytes_ += e->size;
    }
  }
  return absl::OkStatus();
}

const hearth_pvocab& Model::PluginVocab() const {
  std::call_once(vocab_once_, [this] {
    auto v = std::make_unique<VocabView>();
    const int32_t n = tokenizer_->n_vocab();
    const std::vector<int32_t>& types = tokenizer_->vocab().token_types;
    v->offsets.reserve(static_cast<size_t>(n) + 1);
    v->is_control.resize(static_cast<size_t>(n), 0);
    for (int32_t id = 0; id < n; ++id) {
      v->offsets.push_back(v->text.size());
      v->text += tokenizer_->TokenToPiece(id, /*render_special=*/false);
      if (static_cast<size_t>(id) < types.size() && types[id] == tok::kControl) {
        v->is_control[id] = 1;
      }
    }
    v->offsets.push_back(v->text.size());
    v->view.struct_size = sizeof(v->view);
    v->view.n_vocab = static_cast<uint32_t>(n);
    v->view.text = v->text.data();
    v->view.offsets = v->offsets.data();
    v->view.is_control = v->is_control.data();
    vocab_view_ = std::move(v);
  });
  return vocab_view_->view;
}

absl::Status Model::CheckBackendSupport(Backend& backend, const LoraStack* lora) const {
  // A one-token graph over placeholder caches: supports() looks at ops,
  // dtypes and shapes, never at buffers.
  KvCacheRefs kv;
  kv.n_ctx = 1;
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    kv.k.push_back(ContiguousDesc(HEARTH_DTYPE_F32,
                                  Shape::Of({config_.head_dim, config_.n_head_kv, 1})));
    kv.v.push_back(ContiguousDesc(HEARTH_DTYPE_F32,
                                  Shape::Of({config_.head_dim_v, config_.n_head_kv, 1})));
  }
  Graph g;
  HEARTH_RETURN_IF_ERROR(
      arch_->Build(config_, weights_, kv, 1, /*all_logits=*/false, lora, &g).status());
  hearth_graph view = g.view();
  for (uint32_t i = 0; i < view.n_nodes; ++i) {
    if (!backend.Supports(view, i)) {
      const hearth_node& n = view.nodes[i];
      const hearth_tensor_desc& w = view.tensors[view.node_inputs[n.first_input]];
      return absl::UnimplementedError(absl::StrCat(
          "device '", device_.name, "' (plugin ", device_.plugin->name,
          ") does not support op ", OpName(n.op), " (node ", i, ", first input ",
          DtypeName(w.dtype),
          ") that architecture '", config_.arch, "' needs"));
    }
  }
  return absl::OkStatus();
}

void Model::Describe() {
  const gguf::File& f = *file_;
  auto n = f.GetString("general.name");
  name_ = n.ok() ? *n : "";
  // Quantization: types by share of weight bytes, largest first.
  std::map<std::string, uint64_t> bytes;
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    bytes[gguf::GgmlTypeName(t.type)] += t.size;
    total += t.size;
  }
  std::vector<std::pair<std::string, uint64_t>> order(bytes.begin(), bytes.end());
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> parts;
  for (const auto& [type, b] : order) {
    char pct[32];
    snprintf(pct, sizeof pct, "%.1f%%", total ? 100.0 * b / total : 0.0);
    parts.push_back(absl::StrCat(type, " ", pct));
  }
  quantization_ = absl::StrJoin(parts, ", ");
  tokenizer_desc_ = tokenizer_->Describe();
}

const std::string& Model::fingerprint() const {
  std::call_once(fingerprint_once_, [this] { fingerprint_ = format::WeightsFingerprint(*file_); });
  return fingerprint_;
}

const std::string* Model::Meta(const std::string& key) const {
  std::lock_guard<std::mutex> lock(meta_mu_);
  auto it = meta_text_.find(key);
  if (it != meta_text_.end()) return &it->second;
  const gguf::Value* v = file_->Find(key);
  if (v == nullptr) return nullptr;
  std::string text;
  switch (v->type) {
    case gguf::ValueType::kString: text = std::string(v->str); break;
    case gguf::ValueType::kArray: text = absl::StrCat("[", v->array_count, " items]"); break;
    case gguf::ValueType::kFloat32:
    case gguf::ValueType::kFloat64: text = absl::StrCat(v->f); break;
    case gguf::ValueType::kBool: text = v->u ? "true" : "false"; break;
    case gguf::ValueType::kInt8:
    case gguf::ValueType::kInt16:
    case gguf::ValueType::kInt32:
    case gguf::ValueType::kInt64: text = absl::StrCat(v->i); break;
    default: text = absl::StrCat(v->u); break;
  }
  return &meta_text_.emplace(key, std::move(text)).first->second;
}

}  // namespace hearth
