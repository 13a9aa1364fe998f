// peft_writer.cc — rendering a PEFT adapter and writing files atomically.
#include "sdk/src/lora/peft_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sdk/src/format/strict_json.h"

namespace hearth {

std::string PeftModule(const std::string& p) {
  if (p == "attn_q") return "self_attn.q_proj";
  if (p == "attn_k") return "self_attn.k_proj";
  if (p == "attn_v") return "self_attn.v_proj";
  if (p == "attn_output") return "self_attn.o_proj";
  if (p == "ffn_gate") return "mlp.gate_proj";
  if (p == "ffn_up") return "mlp.up_proj";
  if (p == "ffn_down") return "mlp.down_proj";
  return "";
}

namespace {

// A float that reads back as the same float (JSON has no inf or NaN: the
// writers' inputs are checked finite before; 0 stands in otherwise).
std::string JsonFloat(float v) {
  if (!std::isfinite(v)) return "0";
  char buf[32];
  snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

}  // namespace

// The JSON of both files is written as text, not through nlohmann (see
// format::AppendJsonString): a failed allocation is then a std::bad_alloc
// that unwinds like any other.
std::string PeftConfigJson(const PeftConfig& c) {
  std::string j = "{\n";
  absl::StrAppend(&j, "  \"peft_type\": \"LORA\",\n", "  \"task_type\": \"CAUSAL_LM\",\n",
                  "  \"r\": ", c.rank, ",\n", "  \"lora_alpha\": ", JsonFloat(c.alpha), ",\n",
                  "  \"use_rslora\": ", c.use_rslora ? "true" : "false", ",\n",
                  "  \"lora_dropout\": ", JsonFloat(c.lora_dropout), ",\n");
  absl::StrAppend(&j, "  \"bias\": \"none\",\n", "  \"fan_in_fan_out\": false,\n",
                  "  \"init_lora_weights\": true,\n", "  \"inference_mode\": true,\n",
                  "  \"use_dora\": false,\n", "  \"target_modules\": [");
  for (size_t i = 0; i < c.target_modules.size(); ++i) {
    j += i == 0 ? "\n    " : ",\n    ";
    format::AppendJsonString(&j, c.target_modules[i]);
  }
  j += c.target_modules.empty() ? "],\n" : "\n  ],\n";
  j += "  \"base_model_name_or_path\": ";
  format::AppendJsonString(&j, c.base_model);
  j += "\n}\n";
  return j;
}

std::vector<uint8_t> SafetensorsImage(const std::vector<PeftTensor>& tensors,
                                      const std::string& provenance) {
  std::string h = "{\"__metadata__\":{\"format\":\"pt\"";
  if (!provenance.empty()) {
    h += ",\"hearth.provenance\":";
    format::AppendJsonString(&h, provenance);
  }
  h += "}";
  uint64_t offset = 0;
  for (const PeftTensor& t : tensors) {
    const uint64_t bytes = t.data.size() * sizeof(float);
    h += ",";
    format::AppendJsonString(&h, t.name);
    absl::StrAppend(&h, ":{\"dtype\":\"F32\",\"shape\":[", t.rows, ",", t.cols,
                    "],\"data_offsets\":[", offset, ",", offset + bytes, "]}");
    offset += bytes;
  }
  h += "}";
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  std::vector<uint8_t> out(8 + h.size() + offset);
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, h.data(), h.size());
  uint8_t* p = out.data() + 8 + h.size();
  for (const PeftTensor& t : tensors) {
    std::memcpy(p, t.data.data(), t.data.size() * sizeof(float));  // little-endian hosts
    p += t.data.size() * sizeof(float);
  }
  return out;
}

absl::Status WriteFileAtomic(const std::string& path, const void* bytes, size_t size) {
  const std::string tmp = absl::StrCat(path, ".tmp-", ::getpid());
  auto fail = [&](const char* what) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat(what, " ", tmp));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", tmp));
  const uint8_t* p = static_cast<const uint8_t*>(bytes);
  size_t left = size;
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      return fail("cannot write");
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return fail("fsync failed on");
  }
  if (::close(fd) != 0) return fail("cannot close");
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return fail("cannot rename onto the destination");
  // The rename itself reaches the disk with the directory's fsync.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: some file systems refuse a directory fsync
    ::close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace hearth
