// lora_file_gguf.cc — GGUF LoRA adapters as llama.cpp's convert_lora_to_gguf
// writes them: general.type = "adapter", adapter.type = "lora",
// adapter.lora.alpha, and pairs "<weight>.lora_a" (ne [n_in, r]) /
// "<weight>.lora_b" (ne [r, n_out]) named like the base model's weights.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/lora/lora_file_internal.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/strict_json.h"

namespace hearth {
namespace {

using format::ShowText;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// A required string key; a missing one is the file's fault (INVALID_ARGUMENT).
absl::StatusOr<std::string> RequiredString(const gguf::File& g, std::string_view key,
                                           std::string_view missing_message) {
  absl::StatusOr<std::string> v = g.GetString(key);
  if (v.status().code() == absl::StatusCode::kNotFound) {
    return absl::InvalidArgumentError(absl::StrCat(g.name(), ": ", Absl(missing_message)));
  }
  return v;
}

// "blk.3.attn_q.weight" -> layer 3; "output.weight" -> -1; else nullopt.
std::optional<int64_t> TargetLayer(std::string_view weight) {
  if (weight == "output.weight") return -1;
  if (weight.size() <= 11 || !StartsWith(weight, "blk.") || !EndsWith(weight, ".weight")) {
    return std::nullopt;
  }
  const std::string_view mid = weight.substr(4, weight.size() - 4 - 7);  // "3.attn_q"
  const size_t dot = mid.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::optional<int64_t> layer = lora_internal::ParseLayerIndex(mid.substr(0, dot));
  if (!layer || !lora_internal::IsLoraProjection(mid.substr(dot + 1))) return std::nullopt;
  return layer;
}

struct Pair {
  const gguf::TensorInfo* a = nullptr;
  const gguf::TensorInfo* b = nullptr;
  int64_t layer = 0;
};

LoraTensor MakeTensor(const gguf::TensorInfo& t) {
  LoraTensor out;
  out.dtype = static_cast<uint32_t>(gguf::GgmlTypeToHearthDtype(t.type));
  out.ne[0] = t.ne[0];
  out.ne[1] = t.ne[1];
  out.data = t.data;
  out.bytes = t.size;
  out.source = t.name;
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoraFile>> ParseGgufLora(std::unique_ptr<gguf::File> file) {
  if (file == nullptr) return absl::InvalidArgumentError("ParseGgufLora: no GGUF file");
  const gguf::File& g = *file;
  const std::string& name = g.name();
  const auto invalid = [&](std::string_view msg) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", Absl(msg)));
  };

  HEARTH_ASSIGN_OR_RETURN(const std::string type,
                          RequiredString(g, "general.type",
                                         "not an adapter: general.type is missing (a LoRA GGUF has "
                                         "general.type = \"adapter\")"));
  if (type != "adapter") {
    return invalid(absl::StrCat("not an adapter: general.type is '", ShowText(type),
                                "' (expected \"adapter\")"));
  }
  HEARTH_ASSIGN_OR_RETURN(
      const std::string adapter_type,
      RequiredString(g, "adapter.type", "adapter.type is missing (expected \"lora\")"));
  if (adapter_type != "lora") {
    return absl::UnimplementedError(absl::StrCat(
        name, ": adapter.type is '", ShowText(adapter_type), "'; hearth reads LoRA adapters only"));
  }
  if (g.Find("adapter.alora.invocation_tokens") != nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(name, ": activated LoRA (adapter.alora.invocation_tokens) is not supported"));
  }
  absl::StatusOr<double> alpha_or = g.GetFloat("adapter.lora.alpha");
  if (alpha_or.status().code() == absl::StatusCode::kNotFound) {
    return invalid("adapter.lora.alpha is missing");
  }
  HEARTH_RETURN_IF_ERROR(alpha_or.status());
  const double alpha_d = *alpha_or;
  const std::string alpha_problem = lora_internal::AlphaProblem(alpha_d);
  if (!alpha_problem.empty()) {
    return invalid(absl::StrCat("adapter.lora.alpha is ", alpha_d, alpha_problem));
  }
  const auto alpha = static_cast<float>(alpha_d);
  HEARTH_ASSIGN_OR_RETURN(
      const std::string arch,
      RequiredString(g, "general.architecture", "general.architecture is missing"));
  // Empty would skip the check that the adapter was trained for the model's
  // architecture (CheckLoraAgainstModel), as no other GGUF LoRA may.
  if (arch.empty()) return invalid("general.architecture is empty");

  auto out = std::make_unique<LoraFile>();
  out->format = LoraFormat::kGguf;
  out->path = name;
  out->base_arch = arch;
  for (const char* key : {"general.name", "general.basename"}) {
    const gguf::Value* v = g.Find(key);
    if (v != nullptr && v->type == gguf::ValueType::kString && !v->str.empty()) {
      out->base_model = std::string(v->str);
      break;
    }
  }
  out->alpha = alpha;
  out->use_rslora = false;
  // hearth's provenance record (hearth.provenance, JSON object text, and
  // hearth.base_fingerprint, checked against the model at load time).
  for (const char* key : {"hearth.provenance", "hearth.base_fingerprint"}) {
    const gguf::Value* v = g.Find(key);
    if (v == nullptr) continue;
    if (v->type != gguf::ValueType::kString) return invalid(absl::StrCat(key, " is not a string"));
    (std::string_view(key) == "hearth.provenance" ? out->provenance : out->base_fingerprint) =
        std::string(v->str);
  }
  if (!out->provenance.empty()) {
    absl::StatusOr<nlohmann::ordered_json> j =
        format::ParseStrictJson(out->provenance, absl::StrCat(name, ": hearth.provenance"));
    if (!j.ok()) return j.status();
    const format::JsonReleaser release_j(&j);
    if (!j->is_object()) return invalid("hearth.provenance is not a JSON object");
    out->provenance = j->dump();
  }

  std::map<std::string, Pair> pairs;
  for (const gguf::TensorInfo& t : g.tensors()) {
    const std::string who = absl::StrCat("tensor '", ShowText(t.name), "'");
    const bool is_a = EndsWith(t.name, ".lora_a");
    if (!is_a && !EndsWith(t.name, ".lora_b")) {
      return invalid(absl::StrCat(who,
                                  " is not a LoRA matrix (expected <weight>.lora_a / "
                                  "<weight>.lora_b)"));
    }
    const std::string weight = t.name.substr(0, t.name.size() - 7);
    const std::optional<int64_t> layer = TargetLayer(weight);
    if (!layer) {
      return invalid(absl::StrCat(who, ": hearth does not apply LoRA to '", ShowText(weight),
                                  "' (supported: blk.N.{", lora_internal::LoraProjectionList(),
                                  "}.weight and output.weight)"));
    }
    const int32_t dtype = gguf::GgmlTypeToHearthDtype(t.type);
    if (dtype < 0 || !lora_internal::IsLoraDtype(static_cast<uint32_t>(dtype))) {
      return absl::UnimplementedError(absl::StrCat(
          name, ": ", who, " is ", gguf::GgmlTypeName(t.type),
          "; hearth reads F32, F16 and BF16 LoRA tensors (convert with --outtype f16)"));
    }
    if (t.ne[2] != 1 || t.ne[3] != 1) {
      return invalid(absl::StrCat(who, " has ", t.n_dims, " dimensions [", t.ne[0], ", ", t.ne[1],
                                  ", ", t.ne[2], ", ", t.ne[3], "], expected 2"));
    }
    Pair& p = pairs[weight];
    p.layer = *layer;
    (is_a ? p.a : p.b) = &t;  // names are unique in a GGUF file
  }

  for (const auto& [weight, p] : pairs) {
    for (auto [have, other, mine] :
         {std::tuple{p.a, p.b, "lora_a"}, std::tuple{p.b, p.a, "lora_b"}}) {
      if (have == nullptr) {
        return invalid(absl::StrCat(weight, ": ", weight, ".", mine, " is missing (",
                                    ShowText(other->name), " has no partner)"));
      }
    }
    const int64_t rank = p.a->ne[1];
    if (p.b->ne[0] != rank) {
      return invalid(absl::StrCat(weight, ": lora_a has rank ", rank, " (ne [", p.a->ne[0], ", ",
                                  p.a->ne[1], "]) but lora_b has rank ", p.b->ne[0], " (ne [",
                                  p.b->ne[0], ", ", p.b->ne[1], "])"));
    }
    LoraTarget t;
    t.weight = weight;
    t.source_module = weight.substr(0, weight.size() - 7);  // "blk.3.attn_q", "output"
    t.layer = p.layer;
    t.rank = rank;
    t.alpha = alpha;
    t.scale = static_cast<float>(alpha_d / static_cast<double>(rank));
    if (!lora_internal::UsableScale(t.scale)) {
      return invalid(absl::StrCat(weight, ": scale alpha / r = ", alpha_d, " / ", rank,
                                  " is not a usable float"));
    }
    t.a = MakeTensor(*p.a);
    t.b = MakeTensor(*p.b);
    t.hf_row_order = false;
    out->rank = std::max(out->rank, rank);
    out->targets.push_back(std::move(t));
  }
  HEARTH_RETURN_IF_ERROR(lora_internal::FinishLoraFile(out.get(), name));
  out->gguf_file = std::move(file);
  return out;
}

}  // namespace hearth
