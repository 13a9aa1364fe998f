// config_reader.h — reads the hyper-parameters that decoder-only GGUF
// architectures share ("<arch>.block_count" …) with range checks, so a
// hostile file cannot ask for zero heads or a billion layers.
#ifndef HEARTH_SDK_SRC_MODEL_CONFIG_READER_H_
#define HEARTH_SDK_SRC_MODEL_CONFIG_READER_H_

#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/model/architecture.h"

namespace hearth {

// Fills every field of `c` but rope_mode and attn_scale from `<arch>.*` keys
// and the token embedding's shape.
absl::Status ReadDecoderConfig(const gguf::File& file, const std::string& arch, ModelConfig* c);

// Require() plus: the tensor is F32 (norms and biases are read as F32).
absl::Status RequireF32(const WeightSet& w, const std::string& name,
                        std::initializer_list<int64_t> ne);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_MODEL_CONFIG_READER_H_
