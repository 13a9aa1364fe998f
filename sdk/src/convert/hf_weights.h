// hf_weights.h — the tensors of a Hugging Face model directory: one
// model.safetensors, or the shards that model.safetensors.index.json's
// weight_map names. Every shard is memory-mapped and validated
// (format/safetensors.h); a tensor is read as float32 only when asked, so
// converting never holds more than one tensor in memory.
#ifndef HEARTH_SDK_SRC_CONVERT_HF_WEIGHTS_H_
#define HEARTH_SDK_SRC_CONVERT_HF_WEIGHTS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/format/safetensors.h"

namespace hearth::convert {

struct HfTensor {
  const safetensors::TensorInfo* info = nullptr;
  std::string file;  // the shard's name, for messages
};

class HfWeights {
 public:
  // Opens model.safetensors.index.json's shards when the index exists, else
  // model.safetensors. Errors name the file (and, for the index, the key);
  // a tensor in two shards, or one the index places in a shard that lacks
  // it, is an error.
  static absl::StatusOr<std::unique_ptr<HfWeights>> Open(const std::string& dir);

  const HfTensor* Find(std::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> Names() const;
  // The values of `t` as float32, row-major (F32, F16 and BF16 sources;
  // other dtypes are INVALID_ARGUMENT naming the file and tensor).
  static absl::Status ReadFloat(const HfTensor& t, std::vector<float>* out);

 private:
  std::vector<std::unique_ptr<safetensors::File>> files_;
  std::vector<std::string> file_names_;
  StringMap<HfTensor> by_name_;
};

}  // namespace hearth::convert

#endif  // HEARTH_SDK_SRC_CONVERT_HF_WEIGHTS_H_
