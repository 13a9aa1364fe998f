// lora_file.cc — LoadLoraFile: from a path to the right parser (PEFT
// directory or file pair, or GGUF by magic), and the helpers both parsers
// share (lora_file_internal.h).
#include "sdk/src/lora/lora_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/lora/lora_file_internal.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/mapped_file.h"

namespace hearth {
namespace lora_internal {

namespace {
constexpr const char* kProjections[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                        "ffn_gate", "ffn_up", "ffn_down"};
}  // namespace

std::optional<int64_t> ParseLayerIndex(std::string_view digits) {
  if (digits.empty() || digits.size() > 5 || (digits.size() > 1 && digits[0] == '0')) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v < kMaxLayers ? std::optional<int64_t>(v) : std::nullopt;
}

bool IsLoraProjection(std::string_view gguf_name) {
  return std::find(std::begin(kProjections), std::end(kProjections), gguf_name) !=
         std::end(kProjections);
}

const char* LoraProjectionList() {
  return "attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down and output";
}

std::string AlphaProblem(double alpha) {
  constexpr const char* kExpected = " (expected a finite non-zero number)";
  if (!std::isfinite(alpha) || std::fabs(alpha) > std::numeric_limits<float>::max()) {
    return absl::StrCat("; it does not fit in a float", kExpected);
  }
  const auto f = static_cast<float>(alpha);
  if (f == 0) return absl::StrCat("; a zero alpha switches the adapter off", kExpected);
  if (!std::isnormal(f)) {
    return absl::StrCat("; an alpha below the least normal float (",
                        std::numeric_limits<float>::min(),
                        ") is zero to arithmetic that flushes denormals, which switches the "
                        "adapter off",
                        kExpected);
  }
  return "";
}

bool UsableScale(float scale) { return std::isnormal(scale); }

bool IsLoraDtype(uint32_t hearth_dtype) {
  return hearth_dtype == HEARTH_DTYPE_F32 || hearth_dtype == HEARTH_DTYPE_F16 ||
         hearth_dtype == HEARTH_DTYPE_BF16;
}

absl::Status FinishLoraFile(LoraFile* file, std::string_view file_for_errors) {
  if (file->targets.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(Absl(file_for_errors), ": no LoRA tensors"));
  }
  // Within a layer, the order of the forward pass (kProjections), so a
  // listing reads like the model.
  const auto projection = [](const LoraTarget& t) {
    for (size_t i = 0; i < std::size(kProjections); ++i) {
      if (t.weight.find(absl::StrCat(".", kProjections[i], ".")) != std::string::npos) return i;
    }
    return std::size(kProjections);
  };
  const auto key = [&](const LoraTarget& t) {
    return std::make_tuple(t.layer < 0 ? INT64_MAX : t.layer, projection(t), t.weight);
  };
  std::sort(file->targets.begin(), file->targets.end(),
            [&](const LoraTarget& x, const LoraTarget& y) { return key(x) < key(y); });
  uint64_t n = 0;
  for (const LoraTarget& t : file->targets) {
    // Each product is bounded by the bytes of a tensor inside the file.
    n +=
        static_cast<uint64_t>(t.a.ne[0] * t.a.ne[1]) + static_cast<uint64_t>(t.b.ne[0] * t.b.ne[1]);
  }
  file->n_params = n;
  return absl::OkStatus();
}

}  // namespace lora_internal

namespace {

// Config files are a few KB; the cap keeps a wrong path from being slurped.
constexpr uint64_t kMaxConfigBytes = uint64_t{1} << 20;

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// True when the file starts with the GGUF magic. Opened as RegularFile: a
// FIFO or a device is refused without blocking.
absl::StatusOr<bool> IsGguf(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(const format::RegularFile f, format::OpenRegularFile(path));
  char magic[4] = {};
  ssize_t n;
  do {
    n = ::read(f.fd(), magic, sizeof(magic));
  } while (n < 0 && errno == EINTR);
  return n == 4 && std::string_view(magic, 4) == "GGUF";
}

}  // namespace

const LoraTarget* LoraFile::Find(std::string_view weight) const {
  for (const LoraTarget& t : targets) {
    if (t.weight == weight) return &t;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<LoraFile>> LoadLoraFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return absl::ErrnoToStatus(err, absl::StrCat(path, ": cannot open LoRA adapter"));
  }
  std::string config_path, weights_path;
  if (S_ISDIR(st.st_mode)) {
    config_path = absl::StrCat(path, "/adapter_config.json");
    weights_path = absl::StrCat(path, "/adapter_model.safetensors");
  } else if (S_ISREG(st.st_mode)) {
    HEARTH_ASSIGN_OR_RETURN(const bool gguf, IsGguf(path));
    if (gguf) {
      HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> g, gguf::File::Open(path));
      HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<LoraFile> lora, ParseGgufLora(std::move(g)));
      lora->path = path;
      return lora;
    }
    const std::string dir = DirName(path);
    if (EndsWith(path, ".json")) {
      config_path = path;
      weights_path = absl::StrCat(dir, "/adapter_model.safetensors");
    } else {
      weights_path = path;
      config_path = absl::StrCat(dir, "/adapter_config.json");
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a file or directory; expected a LoRA adapter"));
  }

  if (!Exists(weights_path)) {
    const std::string bin = absl::StrCat(DirName(weights_path), "/adapter_model.bin");
    if (Exists(bin)) {
      return absl::UnimplementedError(absl::StrCat(
          bin,
          ": PyTorch pickle weights are not supported; save the adapter as safetensors "
          "(save_pretrained(..., safe_serialization=True))"));
    }
    return absl::NotFoundError(
        absl::StrCat(path, ": no ", weights_path,
                     " (a PEFT adapter is adapter_config.json + adapter_model.safetensors)"));
  }
  if (!Exists(config_path)) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no ", config_path,
                     " (a PEFT adapter is adapter_config.json + adapter_model.safetensors)"));
  }
  HEARTH_ASSIGN_OR_RETURN(std::string config, format::ReadSmallFile(config_path, kMaxConfigBytes));
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<safetensors::File> weights,
                          safetensors::File::Open(weights_path));
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<LoraFile> lora,
                          ParsePeft(config, std::move(weights), config_path));
  lora->path = path;
  return lora;
}

}  // namespace hearth
