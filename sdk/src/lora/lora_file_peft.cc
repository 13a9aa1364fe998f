// lora_file_peft.cc — PEFT LoRA adapters: adapter_config.json (rank, alpha,
// rsLoRA, rank/alpha patterns, features hearth refuses) and the tensor names
// of adapter_model.safetensors, mapped to GGUF weight names and paired.
//
// Pattern keys: PEFT matches rank_pattern/alpha_pattern keys as regexes
// against a module's full name ("model.layers.3.self_attn.q_proj"); hearth
// takes plain names only. A key applies to the module whose name equals it
// or ends with "." + key, the first such key in file order winning (as in
// PEFT); '.' is literal, and keys with other regex characters are refused.
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/lora/lora_file_internal.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/strict_json.h"

namespace hearth {
namespace {

using Json = nlohmann::ordered_json;
using format::JsonKind;
using format::ShowText;

constexpr int64_t kMaxRank = int64_t{1} << 20;
constexpr std::string_view kPeftPrefix = "base_model.model.";
// Prefixes of decoder layers: text models, Gemma 3 multimodal (new and old
// transformers layouts).
constexpr std::string_view kLayerPrefixes[] = {"model.layers.", "model.language_model.layers.",
                                               "language_model.model.layers."};
constexpr std::pair<std::string_view, std::string_view> kModules[] = {
    {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"}, {"self_attn.o_proj", "attn_output"},
    {"mlp.gate_proj", "ffn_gate"},  {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// ---- adapter_config.json ---------------------------------------------------

struct Pattern {
  std::string key;
  double value;
};

struct PeftConfig {
  int64_t r = 0;
  float alpha = 0;
  bool use_rslora = false;
  std::string base_model;
  std::string provenance;                            // the "hearth" object, compact JSON, or ""
  std::string base_fingerprint;                      // its "base_fingerprint", or ""
  std::vector<Pattern> rank_pattern, alpha_pattern;  // file order
};

class ConfigReader {
 public:
  ConfigReader(const Json& root, const std::string& file) : root_(root), file_(file) {}

  absl::Status Invalid(std::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", Absl(msg)));
  }
  absl::Status Unsupported(std::string_view msg) const {
    return absl::UnimplementedError(absl::StrCat(file_, ": ", Absl(msg)));
  }
  // nullptr when absent or null.
  const Json* Get(std::string_view key) const {
    auto it = root_.find(std::string(key));
    return it == root_.end() || it->is_null() ? nullptr : &*it;
  }
  absl::Status WrongType(std::string_view key, const Json& v, std::string_view want) const {
    return Invalid(absl::StrCat("'", Absl(key), "' is ", JsonKind(v), ", expected ", Absl(want)));
  }
  absl::StatusOr<bool> Bool(std::string_view key) const {
    const Json* v = Get(key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) return WrongType(key, *v, "true or false");
    return v->get<bool>();
  }
  // A positive integer no larger than kMaxRank.
  absl::StatusOr<int64_t> Rank(std::string_view what, const Json& v) const {
    if (!v.is_number_integer()) {
      return Invalid(
          absl::StrCat(Absl(what), " is ", JsonKind(v), ", expected a positive integer"));
    }
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(kMaxRank)
                               : v.get<int64_t>() > kMaxRank) {
      return Invalid(absl::StrCat(Absl(what), " = ", v.dump(), " is larger than ", kMaxRank));
    }
    const int64_t r = v.get<int64_t>();
    if (r <= 0)
      return Invalid(absl::StrCat(Absl(what), " is ", r, ", expected a positive integer"));
    return r;
  }
  // A finite non-zero number that fits in a float (lora_internal::AlphaProblem).
  absl::StatusOr<float> Alpha(std::string_view what, const Json& v) const {
    if (!v.is_number()) {
      return Invalid(
          absl::StrCat(Absl(what), " is ", JsonKind(v), ", expected a finite non-zero number"));
    }
    const double d = v.get<double>();
    const std::string problem = lora_internal::AlphaProblem(d);
    if (!problem.empty()) return Invalid(absl::StrCat(Absl(what), " is ", v.dump(), problem));
    return static_cast<float>(d);
  }
  absl::StatusOr<std::vector<Pattern>> Patterns(std::string_view key, bool ranks) const {
    std::vector<Pattern> out;
    const Json* v = Get(key);
    if (v == nullptr) return out;
    if (!v->is_object()) return WrongType(key, *v, "an object");
    for (auto it = v->begin(); it != v->end(); ++it) {
      const std::string& k = it.key();
      const std::string what = absl::StrCat(Absl(key), " '", ShowText(k), "'");
      if (k.empty()) return Invalid(absl::StrCat(Absl(key), " has an empty key"));
      if (k.find_first_of("\\^$|?*+()[]{}") != std::string::npos) {
        return Invalid(
            absl::StrCat(what,
                         " is a regular expression; hearth matches plain module names only (a key "
                         "applies to the module it equals or that ends with '.' + key)"));
      }
      if (ranks) {
        HEARTH_ASSIGN_OR_RETURN(const int64_t r, Rank(what, *it));
        out.push_back({k, static_cast<double>(r)});
      } else {
        HEARTH_ASSIGN_OR_RETURN(const float a, Alpha(what, *it));
        out.push_back({k, a});
      }
    }
    return out;
  }

 private:
  const Json& root_;
  const std::string& file_;
};

absl::StatusOr<PeftConfig> ReadConfig(std::string_view text, const std::string& file) {
  HEARTH_ASSIGN_OR_RETURN(Json root, format::ParseStrictJson(text, file));
  const format::JsonReleaser release_root(&root);
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": the config is ", JsonKind(root), ", expected a JSON object"));
  }
  ConfigReader c(root, file);
  PeftConfig cfg;

  if (const Json* v = c.Get("peft_type")) {
    if (!v->is_string()) return c.WrongType("peft_type", *v, "a string");
    if (v->get_ref<const std::string&>() != "LORA") {
      return c.Unsupported(absl::StrCat("peft_type is '",
                                        ShowText(v->get_ref<const std::string&>()),
                                        "'; hearth reads LORA adapters only"));
    }
  }
  const Json* r = c.Get("r");
  if (r == nullptr) return c.Invalid("'r' (the LoRA rank) is missing");
  HEARTH_ASSIGN_OR_RETURN(cfg.r, c.Rank("'r'", *r));
  const Json* alpha = c.Get("lora_alpha");
  if (alpha == nullptr) {
    const bool absent = root.find("lora_alpha") == root.end();
    return c.Invalid(absl::StrCat("'lora_alpha' is ", absent ? "missing" : "null",
                                  ", expected a finite non-zero number"));
  }
  HEARTH_ASSIGN_OR_RETURN(cfg.alpha, c.Alpha("'lora_alpha'", *alpha));
  HEARTH_ASSIGN_OR_RETURN(cfg.use_rslora, c.Bool("use_rslora"));
  HEARTH_ASSIGN_OR_RETURN(const bool dora, c.Bool("use_dora"));
  if (dora) return c.Unsupported("DoRA adapters are not supported (use_dora is true)");
  HEARTH_ASSIGN_OR_RETURN(const bool fan_in_fan_out, c.Bool("fan_in_fan_out"));
  if (fan_in_fan_out) {
    return c.Unsupported(
        "fan_in_fan_out is true (weights stored transposed, GPT-2 Conv1D style); not supported");
  }
  for (const char* key : {"use_qalora", "lora_bias"}) {
    HEARTH_ASSIGN_OR_RETURN(const bool on, c.Bool(key));
    if (on) return c.Unsupported(absl::StrCat(key, " is true; not supported"));
  }
  // Features that change what the adapter computes beyond y += s * B A x.
  for (const char* key : {"layer_replication", "alora_invocation_tokens", "target_parameters"}) {
    const Json* v = c.Get(key);
    if (v != nullptr && !(v->is_array() && v->empty())) {
      return c.Unsupported(absl::StrCat("'", key, "' is set; not supported"));
    }
  }
  HEARTH_ASSIGN_OR_RETURN(cfg.rank_pattern, c.Patterns("rank_pattern", /*ranks=*/true));
  HEARTH_ASSIGN_OR_RETURN(cfg.alpha_pattern, c.Patterns("alpha_pattern", /*ranks=*/false));
  if (const Json* v = c.Get("base_model_name_or_path")) {
    if (!v->is_string()) return c.WrongType("base_model_name_or_path", *v, "a string");
    cfg.base_model = v->get<std::string>();
  }
  // hearth's provenance record (PEFT ignores unknown keys): kept as text,
  // its base fingerprint checked against the model at load time.
  if (const Json* v = c.Get("hearth")) {
    if (!v->is_object()) return c.WrongType("hearth", *v, "an object");
    cfg.provenance = v->dump();
    auto fp = v->find("base_fingerprint");
    if (fp != v->end()) {
      if (!fp->is_string()) return c.WrongType("hearth.base_fingerprint", *fp, "a string");
      cfg.base_fingerprint = fp->get<std::string>();
    }
  }
  // Informational only (the tensors present decide), but must be well-formed.
  if (const Json* v = c.Get("target_modules")) {
    bool ok = v->is_string() || v->is_array();
    if (v->is_array()) {
      for (const Json& m : *v) ok = ok && m.is_string();
    }
    if (!ok) return c.WrongType("target_modules", *v, "a string or an array of strings");
  }
  return cfg;
}

// The first pattern key that applies to `module`, or nullptr.
const Pattern* Match(const std::vector<Pattern>& patterns, std::string_view module) {
  for (const Pattern& p : patterns) {
    if (module == p.key ||
        (EndsWith(module, p.key) && module[module.size() - p.key.size() - 1] == '.')) {
      return &p;
    }
  }
  return nullptr;
}

// ---- tensor names ----------------------------------------------------------

enum class Role { kA, kB, kBaseLayer };

struct PeftName {
  std::string module;  // "model.layers.3.self_attn.q_proj", "lm_head"
  Role role = Role::kA;
  std::string adapter;  // "" or e.g. "default" (".lora_A.default.weight")
};

// Splits "<prefix><module>.lora_A[.<adapter>].weight"; an error explains
// what the tensor is when it is not a LoRA matrix.
absl::StatusOr<PeftName> SplitName(std::string_view name, const std::string& file) {
  std::string_view n = name;
  if (StartsWith(n, kPeftPrefix)) n.remove_prefix(kPeftPrefix.size());
  const auto unsupported = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": tensor '", ShowText(name), "': ", Absl(why)));
  };
  if (n.find("lora_embedding_") != std::string_view::npos) {
    return unsupported("LoRA on embedding layers (lora_embedding_A/B) is not supported");
  }
  if (n.find("lora_magnitude_vector") != std::string_view::npos) {
    return unsupported(
        "DoRA magnitude vectors are not supported (DoRA adapters are not supported)");
  }
  if (EndsWith(n, ".bias")) return unsupported("bias tensors are not supported");
  if (n.find("modules_to_save") != std::string_view::npos ||
      n.find("original_module") != std::string_view::npos) {
    return unsupported("full weights saved by modules_to_save are not supported");
  }
  PeftName out;
  if (EndsWith(n, ".weight")) {
    std::string_view stem = n.substr(0, n.size() - 7);
    for (int pass = 0; pass < 2; ++pass) {
      for (auto [suffix, role] : {std::pair{std::string_view(".lora_A"), Role::kA},
                                  std::pair{std::string_view(".lora_B"), Role::kB}}) {
        if (EndsWith(stem, suffix) && stem.size() > suffix.size()) {
          out.module = std::string(stem.substr(0, stem.size() - suffix.size()));
          out.role = role;
          return out;
        }
      }
      // Second pass: ".lora_A.<adapter>.weight".
      const size_t dot = stem.rfind('.');
      if (pass == 1 || dot == std::string_view::npos || dot + 1 == stem.size()) break;
      out.adapter = std::string(stem.substr(dot + 1));
      stem = stem.substr(0, dot);
    }
    if (EndsWith(n, ".base_layer.weight") && n.size() > 18) {
      out.module = std::string(n.substr(0, n.size() - 18));
      out.role = Role::kBaseLayer;
      out.adapter.clear();
      return out;
    }
  }
  return unsupported(
      "not a LoRA matrix (expected <module>.lora_A.weight / .lora_B.weight); full weights, "
      "e.g. from modules_to_save, are not supported");
}

struct Target {
  int64_t layer;
  std::string weight;
};

// "model.layers.3.self_attn.q_proj" -> {3, "blk.3.attn_q.weight"}.
absl::StatusOr<Target> MapModule(std::string_view module, std::string_view tensor,
                                 const std::string& file) {
  const auto error = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": tensor '", ShowText(tensor), "': ", Absl(why)));
  };
  if (module == "lm_head") return Target{-1, "output.weight"};
  for (std::string_view prefix : kLayerPrefixes) {
    if (!StartsWith(module, prefix)) continue;
    std::string_view rest = module.substr(prefix.size());
    const size_t dot = rest.find('.');
    const std::string_view index = rest.substr(0, dot);
    const std::optional<int64_t> layer = lora_internal::ParseLayerIndex(index);
    if (!layer) {
      return error(absl::StrCat("layer index '", ShowText(index), "' is not an integer in [0, ",
                                lora_internal::kMaxLayers, ")"));
    }
    const std::string_view sub = dot == std::string_view::npos ? "" : rest.substr(dot + 1);
    for (auto [peft, gguf] : kModules) {
      if (sub == peft)
        return Target{*layer, absl::StrCat("blk.", *layer, ".", Absl(gguf), ".weight")};
    }
    break;
  }
  return error(absl::StrCat(
      "module '", ShowText(module),
      "' is not supported (hearth applies LoRA to model.layers.N.self_attn.{q,k,v,o}_proj, "
      "model.layers.N.mlp.{gate,up,down}_proj and lm_head)"));
}

struct Pair {
  std::string module;
  const safetensors::TensorInfo* a = nullptr;
  const safetensors::TensorInfo* b = nullptr;
  int64_t layer = 0;
};

std::string Shape(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

LoraTensor MakeTensor(const safetensors::TensorInfo& t) {
  LoraTensor out;
  out.dtype = t.hearth_dtype;
  out.ne[0] = t.shape[1];  // row-major [rows][cols]: ne[0] = cols
  out.ne[1] = t.shape[0];
  out.data = t.data;
  out.bytes = t.size;
  out.source = t.name;
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoraFile>> ParsePeft(std::string_view config_json,
                                                    std::unique_ptr<safetensors::File> weights,
                                                    std::string path_for_errors) {
  if (weights == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path_for_errors, ": no weights file"));
  }
  HEARTH_ASSIGN_OR_RETURN(const PeftConfig cfg, ReadConfig(config_json, path_for_errors));
  const std::string& file = weights->name();
  const auto invalid = [&](std::string_view msg) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", Absl(msg)));
  };
  const auto quoted = [](const safetensors::TensorInfo* t) {
    return absl::StrCat("'", ShowText(t->name), "'");
  };

  // Group the tensors by target weight; one adapter name throughout.
  std::map<std::string, Pair> pairs;
  std::vector<std::pair<std::string, const safetensors::TensorInfo*>> base_layers;
  const safetensors::TensorInfo* first_lora = nullptr;
  std::string adapter;
  for (const safetensors::TensorInfo& t : weights->tensors()) {
    HEARTH_ASSIGN_OR_RETURN(PeftName n, SplitName(t.name, file));
    HEARTH_ASSIGN_OR_RETURN(const Target target, MapModule(n.module, t.name, file));
    if (n.role == Role::kBaseLayer) {
      base_layers.emplace_back(target.weight, &t);
      continue;
    }
    if (first_lora == nullptr) {
      first_lora = &t;
      adapter = n.adapter;
    } else if (n.adapter != adapter) {
      const auto show = [](const std::string& a) {
        return a.empty() ? std::string("none") : absl::StrCat("'", ShowText(a), "'");
      };
      return invalid(absl::StrCat("tensors ", quoted(first_lora), " and ", quoted(&t),
                                  " belong to different adapters (", show(adapter), " and ",
                                  show(n.adapter), "); hearth reads one adapter per file"));
    }
    Pair& p = pairs[target.weight];
    if (!p.module.empty() && p.module != n.module) {
      const safetensors::TensorInfo* other = p.a != nullptr ? p.a : p.b;
      return invalid(absl::StrCat("tensors ", quoted(other), " and ", quoted(&t), " both modify ",
                                  target.weight));
    }
    p.module = n.module;
    p.layer = target.layer;
    const safetensors::TensorInfo*& slot = n.role == Role::kA ? p.a : p.b;
    if (slot != nullptr) {  // same module and adapter: only reachable through a distinct name
      return invalid(
          absl::StrCat("tensors ", quoted(slot), " and ", quoted(&t), " are the same LoRA matrix"));
    }
    slot = &t;
  }

  auto out = std::make_unique<LoraFile>();
  out->format = LoraFormat::kPeft;
  out->path = path_for_errors;
  out->base_model = cfg.base_model;
  out->provenance = cfg.provenance;
  out->base_fingerprint = cfg.base_fingerprint;
  // hearth writes its record into the weights file's __metadata__ (so the
  // config stays what PEFT expects, and the record travels with the
  // weights); a config "hearth" object (hearth's first outputs) also counts.
  auto meta = weights->metadata().find("hearth.provenance");
  if (out->provenance.empty() && meta != weights->metadata().end()) {
    absl::StatusOr<nlohmann::ordered_json> j = format::ParseStrictJson(
        meta->second, absl::StrCat(file, ": __metadata__ hearth.provenance"));
    if (!j.ok()) return j.status();
    const format::JsonReleaser release_j(&j);
    if (!j->is_object()) return invalid("__metadata__ hearth.provenance is not a JSON object");
    out->provenance = j->dump();
    auto fp = j->find("base_fingerprint");
    if (fp != j->end()) {
      if (!fp->is_string()) {
        return invalid("__metadata__ hearth.provenance: base_fingerprint is not a string");
      }
      out->base_fingerprint = fp->get<std::string>();
    }
  }
  out->rank = cfg.r;
  out->alpha = cfg.alpha;
  out->use_rslora = cfg.use_rslora;

  for (const auto& [weight, p] : pairs) {
    const std::string who = absl::StrCat(ShowText(p.module), " (", weight, ")");
    for (auto [have, other, mine, want] :
         {std::tuple{p.a, p.b, "lora_A", "lora_B"}, std::tuple{p.b, p.a, "lora_B", "lora_A"}}) {
      if (have == nullptr) {
        return invalid(absl::StrCat(who, ": ", mine, " is missing (", want, " ", quoted(other),
                                    " has no partner)"));
      }
    }
    for (const safetensors::TensorInfo* t : {p.a, p.b}) {
      if (!lora_internal::IsLoraDtype(t->hearth_dtype)) {
        return absl::UnimplementedError(
            absl::StrCat(file, ": tensor ", quoted(t), ": dtype ", t->dtype_name,
                         " is not supported for LoRA matrices (expected F32, F16 or BF16)"));
      }
      if (t->shape.size() != 2 || t->shape[0] == 0 || t->shape[1] == 0) {
        return invalid(absl::StrCat("tensor ", quoted(t), ": shape ", Shape(t->shape),
                                    t == p.a ? " is not [r, n_in]" : " is not [n_out, r]",
                                    " with non-zero sizes"));
      }
    }
    const int64_t rank_a = p.a->shape[0], rank_b = p.b->shape[1];
    if (rank_a != rank_b) {
      return invalid(absl::StrCat(who, ": lora_A ", quoted(p.a), " has rank ", rank_a, " (shape ",
                                  Shape(p.a->shape), ") but lora_B ", quoted(p.b), " has rank ",
                                  rank_b, " (shape ", Shape(p.b->shape), ")"));
    }
    const Pattern* rp = Match(cfg.rank_pattern, p.module);
    const int64_t rank = rp != nullptr ? static_cast<int64_t>(rp->value) : cfg.r;
    if (rank_a != rank) {
      const std::string from =
          rp != nullptr ? absl::StrCat("rank_pattern '", ShowText(rp->key), "'") : "r";
      return invalid(absl::StrCat(who, ": lora_A ", quoted(p.a), " and lora_B ", quoted(p.b),
                                  " have rank ", rank_a, " but the config says ", rank, " (", from,
                                  ")"));
    }
    const Pattern* ap = Match(cfg.alpha_pattern, p.module);
    const float alpha = ap != nullptr ? static_cast<float>(ap->value) : cfg.alpha;
    const double denom = cfg.use_rslora ? std::sqrt(static_cast<double>(rank)) : rank;
    const auto scale = static_cast<float>(alpha / denom);
    if (!lora_internal::UsableScale(scale)) {
      return invalid(absl::StrCat(who, ": scale alpha / ", cfg.use_rslora ? "sqrt(r)" : "r", " = ",
                                  alpha, " / ", denom, " is not a usable float"));
    }
    LoraTarget t;
    t.weight = weight;
    t.source_module = p.module;
    t.layer = p.layer;
    t.rank = rank;
    t.alpha = alpha;
    t.scale = scale;
    t.a = MakeTensor(*p.a);
    t.b = MakeTensor(*p.b);
    t.hf_row_order = true;
    out->targets.push_back(std::move(t));
  }

  // PEFT stores a targeted lm_head's (or embedding's) own base weight beside
  // its pair; it is the base model's, so it is skipped — alone it is a full
  // weight hearth does not apply.
  for (const auto& [weight, t] : base_layers) {
    if (pairs.count(weight) == 0) {
      return invalid(absl::StrCat("tensor ", quoted(t),
                                  ": a full base weight without a LoRA pair; not supported"));
    }
    out->ignored_tensors.push_back(t->name);
  }
  HEARTH_RETURN_IF_ERROR(lora_internal::FinishLoraFile(out.get(), file));
  out->safetensors_file = std::move(weights);
  return out;
}

}  // namespace hearth
