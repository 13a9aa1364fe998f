// hf_vocab.cc — tokenizer.json to tokenizer.ggml.* (see hf_vocab.h).
#include "sdk/src/convert/hf_vocab.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/status.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/format/regular_file.h"
#include "sdk/src/format/strict_json.h"
#include "sdk/src/tokenizer/pre_tokenizer.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::convert {
namespace {

constexpr char kGpt2Regex[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr char kSpace[] = "\xe2\x96\x81";  // U+2581, SentencePiece's space

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: '", where, "' ", what));
}
absl::Status Unsupported(const std::string& where, const std::string& what) {
  return absl::UnimplementedError(absl::StrCat("tokenizer.json: '", where, "' ", what));
}

std::string TypeOf(const Json& j) {
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The regex sequence a byte-level BPE pre-tokenizer applies, in order.
absl::Status CollectRegexes(const Json& pt, const std::string& path, std::vector<std::string>* out,
                            bool* byte_level) {
  if (!pt.is_object())
    return Bad(path, absl::StrCat("is ", format::JsonKind(pt), ", expected an object"));
  const std::string type = TypeOf(pt);
  if (type == "Sequence") {
    auto it = pt.find("pretokenizers");
    if (it == pt.end() || !it->is_array()) return Bad(path + ".pretokenizers", "is not an array");
    for (size_t i = 0; i < it->size(); ++i) {
      HEARTH_RETURN_IF_ERROR(
          CollectRegexes((*it)[i], absl::StrCat(path, ".pretokenizers[", i, "]"), out, byte_level));
    }
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    *byte_level = true;
    if (pt.value("add_prefix_space", false)) {
      return Unsupported(path + ".add_prefix_space",
                         "is true; hearth's byte-level BPE adds no prefix space");
    }
    if (pt.value("use_regex", true)) out->push_back(kGpt2Regex);
    return absl::OkStatus();
  }
  if (type == "Split") {
    auto pat = pt.find("pattern");
    if (pat == pt.end() || !pat->is_object() || !pat->contains("Regex") ||
        !(*pat)["Regex"].is_string()) {
      return Unsupported(path + ".pattern", "is not a {\"Regex\": …} pattern");
    }
    if (pt.value("behavior", std::string()) != "Isolated" || pt.value("invert", false)) {
      return Unsupported(path + ".behavior", "is not Isolated (without invert)");
    }
    out->push_back((*pat)["Regex"].get<std::string>());
    return absl::OkStatus();
  }
  if (type == "Digits") {
    out->push_back(pt.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    return absl::OkStatus();
  }
  return Unsupported(path + ".type",
                     absl::StrCat("= \"", type, "\" is not a pre-tokenizer hearth converts"));
}

// Whether `j` (a normalizer or pre-tokenizer, possibly a Sequence) contains
// a step for which `pred` holds.
template <typename Pred>
bool AnyStep(const Json& j, const char* list_key, const Pred& pred) {
  if (!j.is_object()) return false;
  if (TypeOf(j) == "Sequence") {
    auto it = j.find(list_key);
    if (it == j.end() || !it->is_array()) return false;
    for (const Json& s : *it) {
      if (AnyStep(s, list_key, pred)) return true;
    }
    return false;
  }
  return pred(j);
}

// The text of a special-token entry of tokenizer_config.json: a string or
// {"content": …}.
std::optional<std::string> TokenText(const Json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

// config.json's bos_token_id etc.: an integer or a list (the first counts).
std::optional<int64_t> ConfigId(const Json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer())
    return (*it)[0].get<int64_t>();
  return std::nullopt;
}

absl::StatusOr<std::string> ReadChatTemplate(const std::string& dir, const Json& tok_cfg) {
  auto it = tok_cfg.find("chat_template");
  if (it != tok_cfg.end() && it->is_string()) return it->get<std::string>();
  if (it != tok_cfg.end() && it->is_array()) {  // [{"name": "default", "template": …}, …]
    for (const Json& e : *it) {
      if (e.is_object() && e.value("name", std::string()) == "default" && e.contains("template") &&
          e["template"].is_string()) {
        return e["template"].get<std::string>();
      }
    }
  }
  if (FileExists(dir, "chat_template.jinja")) {
    std::string text, error;
    int err_no = 0;
    if (!format::ReadRegularFile(absl::StrCat(dir, "/chat_template.jinja"), uint64_t{16} << 20,
                                 &text, &error, &err_no)) {
      return absl::InvalidArgumentError(error);
    }
    return text;
  }
  if (FileExists(dir, "chat_template.json")) {
    HEARTH_ASSIGN_OR_RETURN(JsonFile f, ReadJsonFile(dir, "chat_template.json"));
    HEARTH_ASSIGN_OR_RETURN(std::optional<std::string> t,
                            OptionalString(f, f.root, "", "chat_template"));
    if (t) return *t;
  }
  return std::string();
}

}  // namespace

absl::Status AddVocabMetadata(const std::string& dir, const JsonFile& config, int64_t n_rows,
                              gguf::Writer* w, VocabSummary* summary) {
  HEARTH_ASSIGN_OR_RETURN(JsonFile tj, ReadJsonFile(dir, "tokenizer.json"));
  Json tok_cfg = Json::object();
  if (FileExists(dir, "tokenizer_config.json")) {
    HEARTH_ASSIGN_OR_RETURN(JsonFile tc, ReadJsonFile(dir, "tokenizer_config.json"));
    tok_cfg = std::move(tc.root);
  }
  const Json& root = tj.root;
  auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) return Bad("model", "is missing");
  const Json& model = *model_it;
  if (TypeOf(model) != "BPE") {
    return Unsupported("model.type", absl::StrCat("= \"", TypeOf(model),
                                                  "\"; hearth converts BPE tokenizers only"));
  }
  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object())
    return Bad("model.vocab", "is not an object");

  // Token list: the BPE vocabulary, then added_tokens (which may repeat
  // vocabulary entries or extend the list); gaps become unused pads.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<bool> filled;
  auto place = [&](int64_t id, const std::string& text, int32_t type,
                   const std::string& where) -> absl::Status {
    if (id < 0 || id >= (int64_t{1} << 24))
      return Bad(where, absl::StrCat("has id ", id, ", out of range"));
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      types.resize(id + 1, tok::kUnused);
      filled.resize(id + 1, false);
    }
    if (filled[id] && tokens[id] != text) {
      return Bad(where, absl::StrCat("gives id ", id, " to \"", format::ShowText(text),
                                     "\", which already belongs to \"",
                                     format::ShowText(tokens[id]), "\""));
    }
    tokens[id] = text;
    types[id] = type;
    filled[id] = true;
    return absl::OkStatus();
  };
  for (auto e = vocab_it->begin(); e != vocab_it->end(); ++e) {
    if (!e.value().is_number_integer())
      return Bad("model.vocab." + e.key(), "is not an integer id");
    HEARTH_RETURN_IF_ERROR(
        place(e.value().get<int64_t>(), e.key(), tok::kNormal, "model.vocab." + e.key()));
  }
  StringMap<int64_t> added_ids;
  if (auto at = root.find("added_tokens"); at != root.end() && at->is_array()) {
    for (size_t i = 0; i < at->size(); ++i) {
      const Json& a = (*at)[i];
      const std::string where = absl::StrCat("added_tokens[", i, "]");
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
          !a.contains("content") || !a["content"].is_string()) {
        return Bad(where, "needs an integer 'id' and a string 'content'");
      }
      const std::string text = a["content"].get<std::string>();
      const bool special = a.value("special", false);
      HEARTH_RETURN_IF_ERROR(
          place(a["id"].get<int64_t>(), text, special ? tok::kControl : tok::kUserDefined, where));
      added_ids[text] = a["id"].get<int64_t>();
    }
  }
  if (static_cast<int64_t>(tokens.size()) > n_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer.json has ", tokens.size(), " tokens but the embedding has only ",
                     n_rows, " rows (config.json 'vocab_size' and the weights disagree with it)"));
  }
  for (size_t i = 0; i < static_cast<size_t>(n_rows); ++i) {
    if (i >= tokens.size()) {
      tokens.push_back("");
      types.push_back(tok::kUnused);
      filled.push_back(false);
    }
    if (!filled[i]) tokens[i] = absl::StrCat("[PAD", i, "]");
  }
  StringMap<int64_t> id_of;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (filled[i]) id_of.try_emplace(tokens[i], static_cast<int64_t>(i));
  }

  // Merges: "a b" strings (older files) or ["a", "b"] pairs.
  std::vector<std::string> merges;
  if (auto mt = model.find("merges"); mt != model.end()) {
    if (!mt->is_array()) return Bad("model.merges", "is not an array");
    merges.reserve(mt->size());
    for (size_t i = 0; i < mt->size(); ++i) {
      const Json& m = (*mt)[i];
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.push_back(absl::StrCat(m[0].get<std::string>(), " ", m[1].get<std::string>()));
      } else {
        return Bad(absl::StrCat("model.merges[", i, "]"), "is not a pair of strings");
      }
    }
  }

  const bool spm = model.value("byte_fallback", false);
  const Json null_json;
  const Json& normalizer = root.contains("normalizer") ? root["normalizer"] : null_json;
  const Json& pre = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : null_json;
  std::vector<float> scores;
  if (spm) {
    summary->model = "llama";
    // SentencePiece merges the adjacent pair whose concatenation scores
    // highest; HF BPE the pair of lowest merge rank. Score = -rank of the
    // first merge that makes a token gives the same order.
    scores.assign(tokens.size(), 0.0f);
    std::vector<bool> scored(tokens.size(), false);
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t sp = merges[r].find(' ');
      if (sp == std::string::npos)
        return Bad(absl::StrCat("model.merges[", r, "]"), "has no space");
      auto it = id_of.find(merges[r].substr(0, sp) + merges[r].substr(sp + 1));
      if (it == id_of.end()) {
        return Bad(absl::StrCat("model.merges[", r, "]"),
                   "makes a token that is not in the vocabulary");
      }
      if (!scored[it->second]) {
        scores[it->second] = -static_cast<float>(r) - 1.0f;
        scored[it->second] = true;
      }
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string& t = tokens[i];
      if (types[i] == tok::kNormal && t.size() == 6 && absl::StartsWith(t, "<0x") && t[5] == '>') {
        types[i] = tok::kByte;
      }
    }
    const bool replaces_space =
        AnyStep(normalizer, "normalizers",
                [](const Json& s) {
                  return TypeOf(s) == "Replace" && s.contains("content") && s["content"] == kSpace;
                }) ||
        AnyStep(pre, "pretokenizers", [](const Json& s) { return TypeOf(s) == "Metaspace"; });
    if (!replaces_space) {
      return Unsupported("normalizer",
                         "does not turn spaces into U+2581 (Replace or Metaspace); "
                         "not a SentencePiece-style tokenizer hearth knows");
    }
    const bool prefix =
        AnyStep(normalizer, "normalizers",
                [](const Json& s) {
                  return TypeOf(s) == "Prepend" && s.value("prepend", "") == kSpace;
                }) ||
        AnyStep(pre, "pretokenizers", [](const Json& s) {
          if (TypeOf(s) != "Metaspace") return false;
          const std::string scheme = s.value("prepend_scheme", std::string());
          return scheme == "always" || scheme == "first" || s.value("add_prefix_space", false);
        });
    w->SetString("tokenizer.ggml.model", "llama");
    w->SetStringArray("tokenizer.ggml.tokens", tokens);
    w->SetArray("tokenizer.ggml.scores", scores);
    w->SetArray("tokenizer.ggml.token_type", types);
    w->SetBool("tokenizer.ggml.add_space_prefix", prefix);
  } else {
    summary->model = "gpt2";
    if (!normalizer.is_null() && TypeOf(normalizer) != "NFC") {
      return Unsupported("normalizer.type", absl::StrCat("= \"", TypeOf(normalizer),
                                                         "\" is not supported for byte-level BPE"));
    }
    std::vector<std::string> regexes;
    bool byte_level = false;
    if (pre.is_null())
      return Unsupported("pre_tokenizer", "is missing: not a byte-level BPE tokenizer");
    HEARTH_RETURN_IF_ERROR(CollectRegexes(pre, "pre_tokenizer", &regexes, &byte_level));
    if (!byte_level) {
      return Unsupported("pre_tokenizer",
                         "has no ByteLevel step and the model no byte_fallback: "
                         "neither byte-level nor SentencePiece-style BPE");
    }
    bool ignore_merges = false;
    const std::string name = tok::PreTokenizer::NameForRegexes(regexes, &ignore_merges);
    if (name.empty()) {
      return Unsupported(
          "pre_tokenizer",
          absl::StrCat("splits with regexes hearth does not know (", absl::StrJoin(regexes, " ; "),
                       "); docs/tokenizers.md says how to add one"));
    }
    if (model.value("ignore_merges", false) != ignore_merges) {
      return Unsupported(
          "model.ignore_merges",
          absl::StrCat("is ", ignore_merges ? "false" : "true", " but hearth's pre-tokenizer '",
                       name, "' has it ", ignore_merges ? "on" : "off"));
    }
    // llama.cpp's names for the same pre-tokenizers.
    summary->pre = name == "gpt2" ? "gpt-2" : name == "llama3" ? "llama-bpe" : name;
    w->SetString("tokenizer.ggml.model", "gpt2");
    w->SetString("tokenizer.ggml.pre", summary->pre);
    w->SetStringArray("tokenizer.ggml.tokens", tokens);
    w->SetArray("tokenizer.ggml.token_type", types);
    w->SetStringArray("tokenizer.ggml.merges", merges);
  }

  // Special ids: tokenizer_config.json names the tokens, config.json has ids.
  auto special_id = [&](const char* cfg_key, const char* config_key) -> std::optional<int64_t> {
    if (std::optional<std::string> text = TokenText(tok_cfg, cfg_key)) {
      auto it = id_of.find(*text);
      if (it != id_of.end()) return it->second;
    }
    std::optional<int64_t> id = ConfigId(config.root, config_key);
    if (id && *id >= 0 && *id < n_rows) return id;
    return std::nullopt;
  };
  std::optional<int64_t> bos = special_id("bos_token", "bos_token_id");
  std::optional<int64_t> eos = special_id("eos_token", "eos_token_id");
  std::optional<int64_t> pad = special_id("pad_token", "pad_token_id");
  if (bos) w->SetUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*bos));
  if (eos) w->SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*eos));
  if (auto unk = model.find("unk_token"); unk != model.end() && unk->is_string()) {
    auto it = id_of.find(unk->get<std::string>());
    if (it != id_of.end()) {
      w->SetUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(it->second));
      if (types[it->second] == tok::kNormal || types[it->second] == tok::kControl) {
        types[it->second] = tok::kUnknown;
        w->SetArray("tokenizer.ggml.token_type", types);
      }
    }
  }
  if (pad) w->SetUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*pad));

  // add_bos/add_eos: tokenizer_config.json's flags, else what the
  // post-processor's template puts around a single text.
  auto template_adds = [&](std::optional<int64_t> id, bool first) {
    if (!id) return false;
    auto pp = root.find("post_processor");
    if (pp == root.end() || !pp->is_object()) return false;
    const Json* tp = nullptr;
    if (TypeOf(*pp) == "TemplateProcessing") tp = &*pp;
    if (TypeOf(*pp) == "Sequence" && pp->contains("processors") && (*pp)["processors"].is_array()) {
      for (const Json& p : (*pp)["processors"]) {
        if (TypeOf(p) == "TemplateProcessing") tp = &p;
      }
    }
    if (tp == nullptr || !tp->contains("single") || !(*tp)["single"].is_array() ||
        (*tp)["single"].empty()) {
      return false;
    }
    const Json& e = first ? (*tp)["single"].front() : (*tp)["single"].back();
    if (!e.is_object() || !e.contains("SpecialToken")) return false;
    const Json& st = e["SpecialToken"];
    if (!st.is_object() || !st.contains("id") || !st["id"].is_string()) return false;
    auto it = id_of.find(st["id"].get<std::string>());
    return it != id_of.end() && it->second == *id;
  };
  auto flag = [&](const char* key, std::optional<int64_t> id, bool first) -> bool {
    auto it = tok_cfg.find(key);
    if (it != tok_cfg.end() && it->is_boolean()) return it->get<bool>() && id.has_value();
    return template_adds(id, first);
  };
  w->SetBool("tokenizer.ggml.add_bos_token", flag("add_bos_token", bos, true));
  w->SetBool("tokenizer.ggml.add_eos_token", flag("add_eos_token", eos, false));

  HEARTH_ASSIGN_OR_RETURN(std::string chat_template, ReadChatTemplate(dir, tok_cfg));
  if (!chat_template.empty()) w->SetString("tokenizer.chat_template", chat_template);
  summary->has_chat_template = !chat_template.empty();
  summary->n_tokens = static_cast<int64_t>(tokens.size());
  return absl::OkStatus();
}

}  // namespace hearth::convert
