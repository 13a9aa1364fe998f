// generate.h — the text-in, text-out loop over a session: tokenize, feed,
// sample, stream UTF-8-safe text, stop on EOG / stop strings / max tokens.
#ifndef HEARTH_SDK_SRC_RUNTIME_GENERATE_H_
#define HEARTH_SDK_SRC_RUNTIME_GENERATE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "sdk/src/runtime/session.h"
#include "sdk/src/sampling/sampler.h"

namespace hearth {

enum class StopReason {
  kMaxTokens = 0,
  kEog = 1,
  kStopString = 2,
  kCallback = 3,
  kContextFull = 4,
  kConstraint = 5,  // the logits mask allowed no token
  kCancelled = 6,   // engine: cancelled, or the engine was destroyed
  kError = 7,       // engine: the request failed
};

struct GenerateOptions {
  int32_t max_tokens = 256;  // < 0: until the context is full
  sampling::SamplerConfig sampling;
  std::vector<std::string> stop;
  bool add_special = true;    // BOS etc. for the prompt
  bool parse_special = false; // special-token texts in the prompt become tokens
  // The prompt is the whole conversation: keep the longest token prefix the
  // session already holds (its KV cache) and compute only the rest.
  bool reuse_prefix = false;
  // A logits mask from the extension plugin of this name ("" = none), and
  // its configuration (the plugin's own format).
  std::string constraint;
  std::string constraint_config;
};

struct GenerateStats {
  int32_t n_prompt_tokens = 0;
  int32_t n_generated_tokens = 0;
  StopReason stop_reason = StopReason::kMaxTokens;
  double prompt_seconds = 0, generate_seconds = 0;
};

// Receives each piece of text; returns false to stop.
using TextSink = std::function<bool(std::string_view piece)>;

absl::Status Generate(Session& session, std::string_view prompt, const GenerateOptions& options,
                      const TextSink& sink, GenerateStats* stats);
// The same with the prompt already tokenized (add_special/parse_special
// unused); an id outside the vocabulary is INVALID_ARGUMENT naming it.
absl::Status GenerateFromIds(Session& session, std::vector<int32_t> ids,
                             const GenerateOptions& options, const TextSink& sink,
                             GenerateStats* stats);

// Releases generated text while honouring stop strings: text that could
// still become a stop string is held back until the next piece decides.
class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends `text` and returns what can be released now. When a stop string
  // appeared, *hit_stop is set, the text before it is returned and the rest
  // (the stop string included) is dropped.
  std::string Add(std::string_view text, bool* hit_stop);
  // Whatever is held (generation ended for another reason).
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

// Of `text`, how many trailing bytes could be the start of one of `stops`
// (held back until the next piece decides). Exposed for tests.
size_t StopHoldback(std::string_view text, const std::vector<std::string>& stops);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_RUNTIME_GENERATE_H_
