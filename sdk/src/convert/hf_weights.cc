// hf_weights.cc — safetensors shards of a model directory (see hf_weights.h).
#include "sdk/src/convert/hf_weights.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/convert/hf_json.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/quant/block_quantize.h"

namespace hearth::convert {

absl::StatusOr<std::unique_ptr<HfWeights>> HfWeights::Open(const std::string& dir) {
  auto w = std::unique_ptr<HfWeights>(new HfWeights());
  std::vector<std::string> shards;
  const char* kIndex = "model.safetensors.index.json";
  StringMap<std::string> placed;  // tensor -> shard, from the index
  if (FileExists(dir, kIndex)) {
    HEARTH_ASSIGN_OR_RETURN(JsonFile index, ReadJsonFile(dir, kIndex));
    auto it = index.root.find("weight_map");
    if (it == index.root.end() || !it->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kIndex, ": 'weight_map' is missing or not an object"));
    }
    std::set<std::string> seen;
    for (auto e = it->begin(); e != it->end(); ++e) {
      if (!e.value().is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(kIndex, ": 'weight_map.", e.key(), "' is not a file name"));
      }
      const std::string shard = e.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard[0] == '.') {
        return absl::InvalidArgumentError(absl::StrCat(kIndex, ": 'weight_map.", e.key(), "' = '",
                                                       shard, "' is not a file in the directory"));
      }
      placed[e.key()] = shard;
      if (seen.insert(shard).second) shards.push_back(shard);
    }
    if (shards.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(kIndex, ": 'weight_map' is empty"));
    }
  } else if (FileExists(dir, "model.safetensors")) {
    shards.push_back("model.safetensors");
  } else {
    return absl::NotFoundError(
        absl::StrCat(dir,
                     ": no model.safetensors and no model.safetensors.index.json (hearth converts "
                     "safetensors checkpoints; *.bin PyTorch files are not read)"));
  }
  for (const std::string& shard : shards) {
    HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<safetensors::File> f,
                            safetensors::File::Open(absl::StrCat(dir, "/", shard)));
    for (const safetensors::TensorInfo& t : f->tensors()) {
      auto [at, inserted] = w->by_name_.try_emplace(t.name, HfTensor{&t, shard});
      if (!inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat(shard, ": tensor '", t.name, "' is also in ", at->second.file));
      }
    }
    w->files_.push_back(std::move(f));
  }
  for (const auto& [name, shard] : placed) {
    const HfTensor* t = w->Find(name);
    if (t == nullptr || t->file != shard) {
      return absl::InvalidArgumentError(absl::StrCat(kIndex, ": 'weight_map.", name, "' says ",
                                                     shard, ", but ", shard,
                                                     " has no tensor of that name"));
    }
  }
  return w;
}

const HfTensor* HfWeights::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &it->second;
}

std::vector<std::string> HfWeights::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, t] : by_name_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status HfWeights::ReadFloat(const HfTensor& t, std::vector<float>* out) {
  const safetensors::TensorInfo& info = *t.info;
  uint32_t ggml = 0;
  if (info.dtype_name == "F32") {
    ggml = gguf::kGgmlF32;
  } else if (info.dtype_name == "F16") {
    ggml = gguf::kGgmlF16;
  } else if (info.dtype_name == "BF16") {
    ggml = gguf::kGgmlBF16;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(t.file, ": tensor '", info.name, "' is ",
                                                   info.dtype_name,
                                                   "; hearth converts F32, F16 and BF16 weights"));
  }
  const int64_t n = info.n_elements();
  out->resize(static_cast<size_t>(n));
  if (n > 0) quant::ToFloat(ggml, info.data, n, out->data());
  return absl::OkStatus();
}

}  // namespace hearth::convert
