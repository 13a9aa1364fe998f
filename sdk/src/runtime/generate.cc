// generate.cc — see generate.h.
#include "sdk/src/runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/runtime/logits_mask.h"

namespace hearth {
namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

std::string StopFilter::Add(std::string_view text, bool* hit_stop) {
  *hit_stop = false;
  pending_.append(text.data(), text.size());
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    if (s.empty()) continue;
    size_t at = pending_.find(s);
    if (at != std::string::npos) first = std::min(first, at);
  }
  if (first != std::string::npos) {
    *hit_stop = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  const size_t n = pending_.size() - StopHoldback(pending_, stops_);
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StopFilter::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

size_t StopHoldback(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops) {
    // Longest proper prefix of s that is a suffix of text.
    for (size_t len = std::min(s.size() - (s.empty() ? 0 : 1), text.size()); len > hold; --len) {
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  return hold;
}

namespace {

// The loop after the prompt is tokenized (its ids are in the vocabulary).
absl::Status Run(Session& session, std::unique_ptr<sampling::Sampler> sampler,
                 std::vector<int32_t> ids, const GenerateOptions& options, const TextSink& sink,
                 GenerateStats* stats) {
  GenerateStats st;
  const tok::Tokenizer& tok = session.model().tokenizer();
  // Made before anything changes, so a bad constraint changes nothing.
  std::unique_ptr<LogitsMask> mask;
  if (!options.constraint.empty()) {
    HEARTH_ASSIGN_OR_RETURN(
        mask, LogitsMask::Create(session.model(), options.constraint, options.constraint_config));
  }
  std::vector<int32_t> generated;
  std::vector<float> masked;
  if (options.reuse_prefix) {
    // What the session holds, in order: fed history, then a pending token.
    const std::vector<int32_t>& held = session.history();
    size_t common = 0;
    while (common < ids.size() && common < held.size() && ids[common] == held[common]) ++common;
    if (common == held.size() && common < ids.size() && session.pending() == ids[common]) {
      ++common;  // the pending token matches too: Feed runs it first
    }
    // Recompute at least the last prompt token, so its logits are fresh.
    if (common == ids.size() && common > 0) --common;
    session.TruncateTo(static_cast<int64_t>(common));
    // A kept pending token is fed by Feed itself, so it leaves `ids` too.
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(common));
  }
  const int64_t room = session.n_ctx() - session.n_past();
  if (static_cast<int64_t>(ids.size()) > room) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the prompt is ", ids.size(), " tokens but the context has room for ", room,
        " (n_ctx ", session.n_ctx(), ", ", session.n_past(), " already used)"));
  }
  if (ids.empty() && !session.has_logits()) {
    return absl::InvalidArgumentError(
        "the prompt is empty and the session holds nothing to continue from");
  }
  st.n_prompt_tokens = static_cast<int32_t>(ids.size());
  auto t0 = std::chrono::steady_clock::now();
  HEARTH_RETURN_IF_ERROR(session.Feed(ids));
  auto t1 = std::chrono::steady_clock::now();
  st.prompt_seconds = Seconds(t0, t1);
  for (int32_t id : session.history()) sampler->Accept(id);

  tok::StreamDecoder decoder(tok);
  StopFilter filter(options.stop);
  // Sends released text to the sink; false when generation must end.
  bool hit_stop = false, go_on = true;
  auto emit = [&](std::string_view text) {
    std::string out = filter.Add(text, &hit_stop);
    const bool sink_on = out.empty() || !sink || sink(out);
    return sink_on && !hit_stop;
  };
  st.stop_reason = StopReason::kMaxTokens;
  while (options.max_tokens < 0 || st.n_generated_tokens < options.max_tokens) {
    absl::Span<const float> logits = session.logits();
    if (mask) {
      masked.assign(logits.begin(), logits.end());
      bool any_allowed = false;
      HEARTH_RETURN_IF_ERROR(mask->Apply(generated, absl::MakeSpan(masked), &any_allowed));
      if (!any_allowed) {
        st.stop_reason = StopReason::kConstraint;
        break;
      }
      logits = masked;
    }
    HEARTH_ASSIGN_OR_RETURN(int32_t id, sampler->Sample(logits));
    sampler->Accept(id);
    generated.push_back(id);
    if (tok.IsEog(id)) {
      st.stop_reason = StopReason::kEog;
      break;
    }
    ++st.n_generated_tokens;
    go_on = emit(decoder.Push(id));
    if (!go_on) {
      st.stop_reason = hit_stop ? StopReason::kStopString : StopReason::kCallback;
      // Counted, so part of the conversation: n_past = prompt + generated.
      if (session.n_past() < session.n_ctx()) session.SetPending(id);
      break;
    }
    if (session.n_past() >= session.n_ctx()) {
      st.stop_reason = StopReason::kContextFull;
      break;
    }
    if (options.max_tokens >= 0 && st.n_generated_tokens >= options.max_tokens) {
      session.SetPending(id);  // part of the conversation; run by the next feed
      break;
    }
    HEARTH_RETURN_IF_ERROR(session.Feed({id}));
  }
  if (go_on) {
    if (!emit(decoder.Flush())) {
      st.stop_reason = hit_stop ? StopReason::kStopString : StopReason::kCallback;
    } else {
      std::string rest = filter.Flush();
      if (!rest.empty() && sink && !sink(rest)) st.stop_reason = StopReason::kCallback;
    }
  }
  st.generate_seconds = Seconds(t1, std::chrono::steady_clock::now());
  if (stats) *stats = st;
  return absl::OkStatus();
}

}  // namespace

absl::Status Generate(Session& session, std::string_view prompt, const GenerateOptions& options,
                      const TextSink& sink, GenerateStats* stats) {
  // The sampling settings are checked before any prompt work.
  HEARTH_ASSIGN_OR_RETURN(auto sampler, sampling::Sampler::Create(options.sampling));
  HEARTH_ASSIGN_OR_RETURN(
      std::vector<int32_t> ids,
      session.model().tokenizer().Encode(prompt, options.add_special, options.parse_special));
  return Run(session, std::move(sampler), std::move(ids), options, sink, stats);
}

absl::Status GenerateFromIds(Session& session, std::vector<int32_t> ids,
                             const GenerateOptions& options, const TextSink& sink,
                             GenerateStats* stats) {
  HEARTH_ASSIGN_OR_RETURN(auto sampler, sampling::Sampler::Create(options.sampling));
  // Checked before reuse_prefix drops any of the session's context.
  const int32_t n_vocab = session.model().tokenizer().n_vocab();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt token ", i, " is id ", ids[i], ", outside the vocabulary [0, ", n_vocab, ")"));
    }
  }
  return Run(session, std::move(sampler), std::move(ids), options, sink, stats);
}

}  // namespace hearth
