// pre_tokenizer.cc — the table of known pre-tokenizers. Adding one is one
// entry here (names, the regex sequence from the model's tokenizer.json, and
// whether it ignores merges) plus a case in tokenizer_pretok_test.cc.
#include "sdk/src/tokenizer/pre_tokenizer.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/status.h"

namespace hearth::tok {
namespace {

struct PreTokenizerSpec {
  std::vector<const char*> names;  // canonical name first
  std::vector<const char*> regexes;
  bool ignore_merges;
};

// GPT-2's pattern (openai/gpt-2 encoder.py, HF ByteLevel pre-tokenizer).
constexpr const char kGpt2Regex[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Llama 3 (tokenizer.json of Meta-Llama-3): digits in groups of up to three,
// case-insensitive contractions, newlines kept apart from other spaces.
constexpr const char kLlama3Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen2: as Llama 3 but every digit is its own piece.
constexpr const char kQwen2Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// DeepSeek's CJK run: [一-龥ࠀ-一가-퟿]+ in the original. Non-ASCII is written as
// \x{...} in these patterns because editors and tools NFC-normalize text,
// which silently turns e.g. U+212A KELVIN SIGN into 'K'.
constexpr const char kCjkRegex[] = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

const std::vector<PreTokenizerSpec>& Specs() {
  static const auto* specs = new std::vector<PreTokenizerSpec>{
      // "default" is what converters write when they did not recognise the
      // tokenizer; GPT-2's pattern is the byte-level BPE baseline.
      {{"gpt2", "gpt-2", "default"}, {kGpt2Regex}, false},
      {{"llama3", "llama-bpe", "llama-v3"}, {kLlama3Regex}, true},
      {{"qwen2"}, {kQwen2Regex}, false},
      // SmolLM/SmolLM2 (tokenizer.json of HuggingFaceTB/SmolLM2-135M-Instruct):
      // Digits(individual_digits) makes every numeric character (Rust's
      // is_numeric: categories Nd, Nl, No) a piece of its own, then ByteLevel
      // cuts each piece with GPT-2's pattern. Splitting digits first matters
      // for the spaces before them: "a  1" is "a", "  ", "1", where GPT-2's
      // pattern alone gives "a", " ", " 1".
      {{"smollm"}, {R"(\p{N})", kGpt2Regex}, false},
      // DeepSeek LLM (tokenizer.json of deepseek-llm-7b-base): a Sequence of
      // Split(Isolated) pre-tokenizers. The second is the cased letters
      // (Lu/Ll/Lt) of an older Unicode, as ranges.
      {{"deepseek-llm"},
       {R"([\r\n])",
        R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF})"
        R"(\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D})"
        R"(\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5})"
        R"(\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5})"
        R"(\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
        R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15})"
        R"(\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59})"
        R"(\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE})"
        R"(\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB})"
        R"(\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
        R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128})"
        R"(\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149})"
        R"(\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE})"
        R"(\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
        R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})"
        R"(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})"
        R"(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
        R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)",
        R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
        R"(\s+$)", kCjkRegex, R"(\p{N}+)"},
       false},
      // DeepSeek Coder (tokenizer.json of deepseek-coder-6.7b-base).
      {{"deepseek-coder"},
       {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkRegex, R"(\p{N})"},
       false},
  };
  return *specs;
}

}  // namespace

std::vector<std::string> PreTokenizer::KnownNames() {
  std::vector<std::string> names;
  for (const PreTokenizerSpec& s : Specs()) {
    for (const char* n : s.names) names.emplace_back(n);
  }
  return names;
}

std::string PreTokenizer::NameForRegexes(const std::vector<std::string>& regexes,
                                         bool* ignore_merges) {
  for (const PreTokenizerSpec& s : Specs()) {
    if (s.regexes.size() != regexes.size()) continue;
    bool same = true;
    for (size_t i = 0; i < regexes.size(); ++i) same = same && regexes[i] == s.regexes[i];
    if (!same) continue;
    *ignore_merges = s.ignore_merges;
    return s.names[0];
  }
  return "";
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(std::string_view name) {
  for (const PreTokenizerSpec& spec : Specs()) {
    bool hit = false;
    for (const char* n : spec.names) hit = hit || name == n;
    if (!hit) continue;
    std::unique_ptr<PreTokenizer> pre(new PreTokenizer());
    pre->name_ = spec.names[0];
    pre->ignore_merges_ = spec.ignore_merges;
    for (const char* re : spec.regexes) {
      absl::StatusOr<std::unique_ptr<CodepointRegex>> compiled = CodepointRegex::Compile(re);
      if (!compiled.ok()) {
        return absl::InternalError(
            absl::StrCat("pre-tokenizer ", pre->name_, ": ", compiled.status().message()));
      }
      pre->regexes_.push_back(*std::move(compiled));
    }
    return pre;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("tokenizer.ggml.pre: unknown pre-tokenizer \"", std::string(name),
                   "\" (known: ", absl::StrJoin(KnownNames(), ", "), ")"));
}

std::vector<std::string_view> PreTokenizer::Split(std::string_view text) const {
  CodepointText cpt;
  cpt.Assign(text);
  std::vector<std::pair<size_t, size_t>> pieces;
  if (!cpt.cps.empty()) pieces.emplace_back(0, cpt.cps.size());
  std::vector<std::pair<size_t, size_t>> next;
  for (const auto& re : regexes_) {
    next.clear();
    for (const auto& p : pieces) re->SplitIsolated(cpt, p.first, p.second, &next);
    pieces.swap(next);
  }
  std::vector<std::string_view> out;
  out.reserve(pieces.size());
  for (const auto& p : pieces) {
    const size_t b = cpt.offsets[p.first], e = cpt.offsets[p.second];
    out.push_back(text.substr(b, e - b));
  }
  return out;
}

}  // namespace hearth::tok
