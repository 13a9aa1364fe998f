// fuzz_dataset.cc — libFuzzer target for training-data JSONL: record
// parsing (strict JSON per line), the chat rendering of messages records
// with content spans, the layout-aware tokenizer (control tokens only in
// markup, cuts where training starts) and the loss masks. The first byte
// picks the chat format (or none), the example limit and truncation; the rest
// is the file. A dataset that loads must keep its invariants.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/fuzz_vocab.h"
#include "sdk/src/tokenizer/tokenizer.h"
#include "sdk/src/train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hearth::tok::Tokenizer* tok = hearth_fuzz::LoadVocabFile(HEARTH_FUZZ_VOCAB);
  if (size == 0) return 0;
  static const char* const kFormats[] = {"chatml", "gemma", "llama3", "llama2", ""};
  hearth::train::DatasetOptions options;
  options.chat_format = kFormats[data[0] % 5];
  options.no_chat_format_reason = "fuzz: no chat format";
  options.max_tokens = (data[0] >> 3) % 2 == 0 ? 4096 : 1 + (data[0] >> 4);
  options.truncate = (data[0] >> 2) & 1;
  const std::string_view jsonl(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto d = hearth::train::Dataset::Parse(jsonl, "fuzz.jsonl", *tok, options);
  if (!d.ok()) return 0;
  int64_t tokens = 0, trained = 0;
  for (const hearth::train::Example& ex : d->examples()) {
    if (ex.tokens.size() != ex.trained.size() || ex.tokens.empty()) __builtin_trap();
    if (static_cast<int64_t>(ex.tokens.size()) > options.max_tokens) __builtin_trap();
    if (ex.trained[0] != 0) __builtin_trap();
    int64_t n = 0;
    for (size_t i = 0; i < ex.tokens.size(); ++i) {
      if (ex.tokens[i] < 0 || ex.tokens[i] >= tok->n_vocab()) __builtin_trap();
      if (ex.trained[i] > 1) __builtin_trap();
      n += ex.trained[i];
    }
    if (n == 0 || ex.line < 1) __builtin_trap();
    tokens += static_cast<int64_t>(ex.tokens.size());
    trained += n;
  }
  const hearth::train::DatasetStats& s = d->stats();
  if (s.n_tokens != tokens || s.n_trained != trained ||
      s.n_examples != static_cast<int64_t>(d->examples().size())) {
    __builtin_trap();
  }
  return 0;
}
