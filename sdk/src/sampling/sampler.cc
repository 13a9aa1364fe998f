// sampler.cc — the sampling chain: penalties, top-k, top-p, min-p, temperature, draw.
//
// Cost matters because n_vocab reaches 150k+ and this runs once per generated
// token. Stages work on one candidate array that starts in id order; a stage
// that truncates leaves a prefix sorted by (logit desc, id asc). That order is
// total, so the sorted result, and with it every draw, is the same with any
// standard library (std::sort and friends only differ on equal elements).
#include "sdk/src/sampling/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hearth::sampling {
namespace {

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool PenaltiesActive(const SamplerConfig& c) {
  return c.penalty_last_n != 0 &&
         (c.repeat_penalty != 1.0f || c.presence_penalty != 0.0f || c.frequency_penalty != 0.0f);
}

// Keeps penalised finite logits finite, so a huge penalty cannot invent a +inf
// (which would swallow the whole distribution) or a -inf (a hard ban).
float ClampFinite(double v) {
  return static_cast<float>(std::min<double>(FLT_MAX, std::max<double>(-FLT_MAX, v)));
}

absl::Status BadField(const char* field, double value, const char* rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("sampling params: ", field, " = ", value, " ", rule));
}

}  // namespace

void Xoshiro256::Seed(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& word : s_) word = SplitMix64(&x);
}

uint64_t Xoshiro256::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

absl::Status ValidateSamplerConfig(const SamplerConfig& c) {
  if (std::isnan(c.temperature) || std::isinf(c.temperature)) {
    return BadField("temperature", c.temperature, "is not a finite number");
  }
  if (!(c.top_p > 0.0f && c.top_p <= 1.0f)) {
    return BadField("top_p", c.top_p, "is outside (0, 1]");
  }
  if (!(c.min_p >= 0.0f && c.min_p <= 1.0f)) {
    return BadField("min_p", c.min_p, "is outside [0, 1]");
  }
  if (!(c.repeat_penalty > 0.0f) || std::isinf(c.repeat_penalty)) {
    return BadField("repeat_penalty", c.repeat_penalty,
                    "is invalid; it must be a finite number > 0 (1 = off)");
  }
  if (!std::isfinite(c.presence_penalty)) {
    return BadField("presence_penalty", c.presence_penalty, "is not a finite number");
  }
  if (!std::isfinite(c.frequency_penalty)) {
    return BadField("frequency_penalty", c.frequency_penalty, "is not a finite number");
  }
  if (c.penalty_last_n < -1) {
    return BadField("penalty_last_n", c.penalty_last_n,
                    "is invalid; it must be >= 0, or -1 for the whole history");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Sampler>> Sampler::Create(const SamplerConfig& config) {
  if (absl::Status s = ValidateSamplerConfig(config); !s.ok()) return s;
  return std::unique_ptr<Sampler>(new Sampler(config));
}

Sampler::Sampler(const SamplerConfig& config) : config_(config), rng_(config.seed) {
  if (config_.penalty_last_n > 0) {
    history_.reserve(std::min<size_t>(static_cast<size_t>(config_.penalty_last_n), 4096));
  }
}

void Sampler::Accept(int32_t token) {
  if (token < 0 || !PenaltiesActive(config_)) return;
  const int32_t cap = config_.penalty_last_n;  // -1: unbounded
  if (cap > 0 && history_.size() == static_cast<size_t>(cap)) {
    history_[history_head_] = token;
    history_head_ = (history_head_ + 1) % history_.size();
  } else {
    history_.push_back(token);
  }
}

void Sampler::Reset() {
  history_.clear();
  history_head_ = 0;
  rng_.Seed(config_.seed);
}

std::vector<int32_t> Sampler::PenaltyWindow() const {
  std::vector<int32_t> out;
  out.reserve(history_.size());
  for (size_t i = 0; i < history_.size(); ++i) {
    out.push_back(history_[(history_head_ + i) % history_.size()]);
  }
  return out;
}

absl::Status Sampler::LoadCandidates(absl::Span<const float> logits) {
  if (logits.empty()) return absl::InvalidArgumentError("n_vocab is 0 (no logits)");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_vocab ", logits.size(), " does not fit a 32-bit token id"));
  }
  cand_.resize(logits.size());  // allocates only when the vocabulary grows
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (std::isnan(l)) {
      return absl::InvalidArgumentError(absl::StrCat("logit of token ", i, " is NaN"));
    }
    if (l == std::numeric_limits<float>::infinity()) {
      return absl::InvalidArgumentError(absl::StrCat("logit of token ", i, " is +inf"));
    }
    cand_[i] = {static_cast<int32_t>(i), l};
  }
  sorted_ = false;
  return absl::OkStatus();
}

void Sampler::ApplyPenalties(size_t n_vocab) {
  if (counts_.size() < n_vocab) counts_.resize(n_vocab, 0);
  for (int32_t t : history_) {
    if (static_cast<size_t>(t) < n_vocab) ++counts_[t];
  }
  // cand_ is still in id order here, so cand_[t] is token t.
  for (int32_t t : history_) {
    if (static_cast<size_t>(t) >= n_vocab || counts_[t] == 0) continue;
    float& logit = cand_[t].logit;
    if (std::isfinite(logit)) {
      double v = logit;
      v = v > 0 ? v / config_.repeat_penalty : v * config_.repeat_penalty;
      v -= config_.presence_penalty;
      v -= static_cast<double>(counts_[t]) * config_.frequency_penalty;
      logit = ClampFinite(v);
    }
    counts_[t] = 0;  // applied once per distinct token; leaves counts_ zeroed
  }
}

namespace {
struct ByLogitDesc {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};
}  // namespace

// A small k (the usual 40 against a vocabulary of 150k) scans once with a
// bounded heap whose top is the worst survivor: almost every candidate loses
// one comparison against it, which beats nth_element's passes over the array.
void Sampler::ApplyTopK() {
  const int32_t k = config_.top_k;
  if (k <= 0 || static_cast<size_t>(k) >= cand_.size()) return;
  if (static_cast<size_t>(k) * 8 <= cand_.size()) {
    heap_.clear();
    for (const Candidate& c : cand_) {
      if (heap_.size() < static_cast<size_t>(k)) {
        heap_.push_back(c);
        std::push_heap(heap_.begin(), heap_.end(), ByLogitDesc());
      } else if (ByLogitDesc()(c, heap_.front())) {
        std::pop_heap(heap_.begin(), heap_.end(), ByLogitDesc());
        heap_.back() = c;
        std::push_heap(heap_.begin(), heap_.end(), ByLogitDesc());
      }
    }
    std::sort_heap(heap_.begin(), heap_.end(), ByLogitDesc());
    cand_.assign(heap_.begin(), heap_.end());
  } else {
    std::nth_element(cand_.begin(), cand_.begin() + (k - 1), cand_.end(), ByLogitDesc());
    cand_.resize(k);
    std::sort(cand_.begin(), cand_.end(), ByLogitDesc());
  }
  sorted_ = true;
}

// min-p keeps p_i >= min_p * p_max, i.e. logit_i >= logit_max + ln(min_p): a
// threshold on logits that no renormalisation changes. Its survivors and
// top-p's are both prefixes of the sorted order, so the two stages commute;
// running min-p's cut before top-p's sort (with top-p's normaliser taken
// beforehand) gives the documented result while sorting far fewer candidates.
void Sampler::ApplyMinPCompaction() {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : cand_) max_logit = std::max(max_logit, c.logit);
  const double threshold = static_cast<double>(max_logit) + std::log(double{config_.min_p});
  size_t kept = 0;
  for (const Candidate& c : cand_) {
    if (static_cast<double>(c.logit) >= threshold) cand_[kept++] = c;
  }
  cand_.resize(kept);  // id order is kept, the max survives, so kept >= 1
}

void Sampler::TruncateSortedMinP() {
  const double threshold =
      static_cast<double>(cand_.front().logit) + std::log(double{config_.min_p});
  size_t kept = 1;
  while (kept < cand_.size() && static_cast<double>(cand_[kept].logit) >= threshold) ++kept;
  cand_.resize(kept);
}

// Keeps the smallest prefix whose probability reaches top_p * norm, where
// norm is the softmax denominator of the candidates before any min-p cut.
// Sorting grows geometrically, so a peaked distribution sorts a few dozen
// entries instead of the whole vocabulary.
void Sampler::ApplyTopP(double norm) {
  const double target = static_cast<double>(config_.top_p) * norm;
  const size_t n = cand_.size();
  const double max_logit = sorted_ ? cand_.front().logit : [&] {
    float m = -std::numeric_limits<float>::infinity();
    for (const Candidate& c : cand_) m = std::max(m, c.logit);
    return static_cast<double>(m);
  }();
  double cum = 0.0;
  size_t done = 0;
  size_t upto = std::min<size_t>(n, 64);
  while (true) {
    if (!sorted_ && upto == n) {
      std::sort(cand_.begin() + done, cand_.end(), ByLogitDesc());
    } else if (!sorted_) {
      std::partial_sort(cand_.begin() + done, cand_.begin() + upto, cand_.end(), ByLogitDesc());
    }
    for (size_t i = done; i < upto; ++i) {
      cum += std::exp(static_cast<double>(cand_[i].logit) - max_logit);
      if (cum >= target) {
        cand_.resize(i + 1);
        sorted_ = true;
        return;
      }
    }
    if (upto == n) break;  // rounding left the sum a hair short: keep all
    done = upto;
    // A heap-based partial sort of most of the array is slower than a sort.
    upto = upto * 4 >= n / 2 ? n : upto * 4;
  }
  sorted_ = true;
}

int32_t Sampler::Greedy() const {
  size_t best = 0;
  for (size_t i = 1; i < cand_.size(); ++i) {
    if (cand_[i].logit > cand_[best].logit) best = i;  // strict: ties keep the lower id
  }
  return cand_[best].id;
}

int32_t Sampler::Draw() {
  double max_logit = -std::numeric_limits<double>::infinity();
  for (const Candidate& c : cand_) max_logit = std::max<double>(max_logit, c.logit);
  // Divide rather than multiply by 1/T: for a denormal T, 1/T is inf and 0*inf is NaN.
  const double temp = config_.temperature;
  weights_.resize(cand_.size());
  double total = 0.0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    total += weights_[i] = std::exp((cand_[i].logit - max_logit) / temp);
  }
  const double r = rng_.NextDouble() * total;
  double cum = 0.0;
  int32_t last_positive = cand_.front().id;
  for (size_t i = 0; i < cand_.size(); ++i) {
    if (weights_[i] <= 0.0) continue;
    last_positive = cand_[i].id;
    cum += weights_[i];
    if (r < cum) return cand_[i].id;
  }
  return last_positive;  // r landed on the rounding gap at the very end
}

absl::StatusOr<int32_t> Sampler::Sample(absl::Span<const float> logits) {
  if (absl::Status s = LoadCandidates(logits); !s.ok()) return s;
  if (PenaltiesActive(config_)) ApplyPenalties(logits.size());

  bool any_finite = false;
  for (const Candidate& c : cand_) {
    if (c.logit != -std::numeric_limits<float>::infinity()) {
      any_finite = true;
      break;
    }
  }
  if (!any_finite) {
    return absl::InvalidArgumentError(
        absl::StrCat("all ", logits.size(), " logits are -inf; there is no token to pick"));
  }

  // Every stage below keeps the argmax, so greedy can skip them.
  if (config_.temperature <= 0.0f) return Greedy();

  ApplyTopK();
  double norm = 0.0;
  if (config_.top_p < 1.0f) {
    float max_logit = -std::numeric_limits<float>::infinity();
    for (const Candidate& c : cand_) max_logit = std::max(max_logit, c.logit);
    for (const Candidate& c : cand_) {
      norm += std::exp(static_cast<double>(c.logit) - static_cast<double>(max_logit));
    }
  }
  if (config_.min_p > 0.0f && !sorted_) ApplyMinPCompaction();
  if (config_.top_p < 1.0f) ApplyTopP(norm);
  if (config_.min_p > 0.0f && sorted_) TruncateSortedMinP();
  return Draw();
}

}  // namespace hearth::sampling
