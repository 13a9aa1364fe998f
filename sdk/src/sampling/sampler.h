// sampler.h — the sampling chain that turns a row of logits into a token.
//
// The chain is fixed by the public ABI (hearth_sampling_params): repetition
// penalties over the recent history, top-k, top-p, min-p, temperature, then a
// draw from a PRNG of our own (xoshiro256** seeded through splitmix64), so one
// seed gives the same tokens with every compiler and standard library.
// temperature <= 0 is greedy: the argmax after penalties, ties to the lowest id.
//
// A Sampler belongs to one thread at a time. After the first Sample() for a
// given vocabulary size it allocates nothing: every buffer is scratch kept
// between calls.
#ifndef HEARTH_SDK_SRC_SAMPLING_SAMPLER_H_
#define HEARTH_SDK_SRC_SAMPLING_SAMPLER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace hearth::sampling {

// Mirrors hearth_sampling_params field for field (src/capi converts).
struct SamplerConfig {
  float temperature = 0.8f;
  int32_t top_k = 40;              // <= 0 disables
  float top_p = 0.95f;             // 1 disables; must be in (0, 1]
  float min_p = 0.05f;             // 0 disables; must be in [0, 1]
  float repeat_penalty = 1.0f;     // 1 = off; must be > 0
  float presence_penalty = 0.0f;   // 0 = off
  float frequency_penalty = 0.0f;  // 0 = off
  int32_t penalty_last_n = 64;     // 0 = off; -1 = the whole history
  uint64_t seed = 0xC0FFEEu;
};

// INVALID_ARGUMENT naming the first bad field and its value.
absl::Status ValidateSamplerConfig(const SamplerConfig& config);

// xoshiro256** (Blackman & Vigna), seeded by expanding one 64-bit seed with
// splitmix64. Defined here, not taken from <random>, because the standard
// distributions differ between library implementations.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) { Seed(seed); }
  void Seed(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  static absl::StatusOr<std::unique_ptr<Sampler>> Create(const SamplerConfig& config);

  // Picks a token from `logits` (one per vocabulary entry) given the accepted
  // history. Does not accept it. NaN or +inf logits are errors naming the id;
  // so is a row where every logit is -inf.
  absl::StatusOr<int32_t> Sample(absl::Span<const float> logits);

  // Records a token of the history (prompt or generated). Only kept while a
  // penalty is on (nothing else reads it). Negative ids are ignored; ids
  // beyond the vocabulary of a later Sample() do not count there.
  void Accept(int32_t token);

  // Forgets the history and restarts the PRNG from the configured seed.
  void Reset();

  const SamplerConfig& config() const { return config_; }
  // The accepted tokens the penalties currently look at, oldest first.
  std::vector<int32_t> PenaltyWindow() const;

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };

  explicit Sampler(const SamplerConfig& config);

  absl::Status LoadCandidates(absl::Span<const float> logits);
  void ApplyPenalties(size_t n_vocab);
  void ApplyTopK();
  void ApplyMinPCompaction();
  void ApplyTopP(double norm);
  void TruncateSortedMinP();
  int32_t Greedy() const;
  int32_t Draw();

  SamplerConfig config_;
  Xoshiro256 rng_;

  // Penalty history: a ring of the last penalty_last_n tokens (unbounded for -1).
  std::vector<int32_t> history_;
  size_t history_head_ = 0;  // oldest entry once the ring is full

  // Scratch kept between calls; sized on the first Sample() for a vocabulary.
  std::vector<Candidate> cand_;   // candidates still in the running
  std::vector<uint32_t> counts_;  // per-id occurrences in the window; kept all-zero
  std::vector<double> weights_;   // the draw's unnormalised probabilities, as cand_
  std::vector<Candidate> heap_;   // top-k's bounded heap
  bool sorted_ = false;           // cand_ is in (logit desc, id asc) order
};

}  // namespace hearth::sampling

#endif  // HEARTH_SDK_SRC_SAMPLING_SAMPLER_H_
