// peft_writer.cc — rendering a PEFT adapter and writing files atomically.
#include "sdk/src/lora/peft_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

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

std::string PeftConfigJson(const PeftConfig& c) {
  nlohmann::ordered_json j;
  const format::JsonReleaser release_j(&j);  // nothing below builds a temporary container
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["r"] = c.rank;
  j["lora_alpha"] = c.alpha;
  j["use_rslora"] = c.use_rslora;
  j["lora_dropout"] = c.lora_dropout;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["init_lora_weights"] = true;
  j["inference_mode"] = true;
  j["use_dora"] = false;
  j["target_modules"] = c.target_modules;
  j["base_model_name_or_path"] = c.base_model;
  return j.dump(2) + "\n";
}

std::vector<uint8_t> SafetensorsImage(const std::vector<PeftTensor>& tensors,
                                      const std::string& provenance) {
  // Built in place, leaf by leaf: a temporary array or object (an
  // initializer list) would allocate in its destructor (format::ReleaseJson).
  nlohmann::ordered_json header;
  const format::JsonReleaser release_header(&header);
  header["__metadata__"]["format"] = "pt";
  if (!provenance.empty()) header["__metadata__"]["hearth.provenance"] = provenance;
  uint64_t offset = 0;
  for (const PeftTensor& t : tensors) {
    const uint64_t bytes = t.data.size() * sizeof(float);
    nlohmann::ordered_json& e = header[t.name];
    e["dtype"] = "F32";
    e["shape"].push_back(t.rows);
    e["shape"].push_back(t.cols);
    e["data_offsets"].push_back(offset);
    e["data_offsets"].push_back(offset + bytes);
    offset += bytes;
  }
  std::string h = header.dump();
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
