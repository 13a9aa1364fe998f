// ops_attention_test.cc — the CPU ATTENTION op against a double-precision
// reference kept here: GQA/MQA, sliding window, softcap, F16 and mixed
// caches, a cache holding earlier history, and a prompt followed by single
// decode steps giving exactly what one whole-sequence call gives; a batch of
// several sequences (a cache slot each, or pages through a block table)
// giving exactly what separate calls give, and the lse output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {

struct Shape {
  int64_t dk, dv, n_head, n_head_kv, n_ctx;
  uint32_t k_dtype, v_dtype;
  float scale, softcap;
  int32_t window;
};

// Double reference with its own copy of the caches.
class Reference {
 public:
  Reference(const Shape& s, const std::vector<float>& k_init, const std::vector<float>& v_init)
      : s_(s), kc_(k_init.size()), vc_(v_init.size()) {
    for (size_t i = 0; i < kc_.size(); ++i) kc_[i] = Round(s.k_dtype, k_init[i]);
    for (size_t i = 0; i < vc_.size(); ++i) vc_[i] = Round(s.v_dtype, v_init[i]);
  }
  static double Round(uint32_t dtype, float v) {
    return dtype == HEARTH_DTYPE_F16 ? HalfToDouble(DoubleToHalf(v)) : v;
  }
  std::vector<double> Step(const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, const std::vector<int32_t>& pos) {
    const int64_t n_tok = static_cast<int64_t>(pos.size()), hk = s_.n_head_kv;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t i = 0; i < hk * s_.dk; ++i) {
        kc_[pos[t] * hk * s_.dk + i] = Round(s_.k_dtype, k[t * hk * s_.dk + i]);
      }
      for (int64_t i = 0; i < hk * s_.dv; ++i) {
        vc_[pos[t] * hk * s_.dv + i] = Round(s_.v_dtype, v[t * hk * s_.dv + i]);
      }
    }
    std::vector<double> out;
    const int64_t group = s_.n_head / hk;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t h = 0; h < s_.n_head; ++h) {
        const int64_t g = h / group;
        std::vector<double> sc;
        std::vector<int64_t> rows;
        for (int64_t j = 0; j <= pos[t]; ++j) {
          if (s_.window > 0 && pos[t] - j >= s_.window) continue;
          double d = 0;
          for (int64_t i = 0; i < s_.dk; ++i) {
            d += double{q[(t * s_.n_head + h) * s_.dk + i]} * kc_[(j * hk + g) * s_.dk + i];
          }
          d *= s_.scale;
          if (s_.softcap > 0) d = s_.softcap * std::tanh(d / s_.softcap);
          sc.push_back(d);
          rows.push_back(j);
        }
        double m = -INFINITY, sum = 0;
        for (double d : sc) m = std::max(m, d);
        for (double& d : sc) sum += (d = std::exp(d - m));
        for (int64_t i = 0; i < s_.dv; ++i) {
          double acc = 0;
          for (size_t r = 0; r < rows.size(); ++r)
            acc += sc[r] * vc_[(rows[r] * hk + g) * s_.dv + i];
          out.push_back(acc / sum);
        }
      }
    }
    return out;
  }
  const std::vector<double>& k_cache() const { return kc_; }

 private:
  Shape s_;
  std::vector<double> kc_, vc_;
};

std::vector<uint8_t> ToDtype(uint32_t dtype, const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * (dtype == HEARTH_DTYPE_F16 ? 2 : 4));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == HEARTH_DTYPE_F16) {
      uint16_t h = DoubleToHalf(v[i]);
      std::memcpy(&out[2 * i], &h, 2);
    } else {
      std::memcpy(&out[4 * i], &v[i], 4);
    }
  }
  return out;
}

// Backend caches plus the matching reference; Step() runs one graph.
class Harness {
 public:
  // head_major: the caches as the runtime lays them out (a kv head's rows
  // adjacent: nb[1] spans all rows), else with the heads of a row adjacent.
  Harness(Backend& b, const Shape& s, uint32_t seed, bool head_major = false) : b_(b), s_(s) {
    std::vector<float> k0 = RandomF32(s.n_ctx * s.n_head_kv * s.dk, seed);
    std::vector<float> v0 = RandomF32(s.n_ctx * s.n_head_kv * s.dv, seed + 1);
    auto add = [&](uint32_t dtype, int64_t d, const std::vector<float>& rows) {
      if (!head_major) return b.Add(dtype, {d, s.n_head_kv, s.n_ctx}, ToDtype(dtype, rows).data());
      std::vector<float> hm(rows.size());  // [head][row][d] from [row][head][d]
      for (int64_t h = 0; h < s.n_head_kv; ++h) {
        for (int64_t j = 0; j < s.n_ctx; ++j) {
          for (int64_t e = 0; e < d; ++e) {
            hm[(h * s.n_ctx + j) * d + e] = rows[(j * s.n_head_kv + h) * d + e];
          }
        }
      }
      const int64_t esz = dtype == HEARTH_DTYPE_F16 ? 2 : 4;
      return b.Add(dtype, {d, s.n_head_kv, s.n_ctx}, ToDtype(dtype, hm).data(),
                   {esz, s.n_ctx * d * esz, d * esz});
    };
    kc_ = add(s.k_dtype, s.dk, k0);
    vc_ = add(s.v_dtype, s.dv, v0);
    ref_ = std::make_unique<Reference>(s, k0, v0);
    seed_ = seed + 2;
  }
  // Asks for the lse output too, as training does (the tiled path).
  void set_with_lse(bool with_lse) { with_lse_ = with_lse; }
  // Runs tokens at `pos`; returns the backend output, checks it against the
  // reference and the cache rows written.
  std::vector<float> Step(const std::vector<int32_t>& pos) {
    const int64_t n = static_cast<int64_t>(pos.size());
    std::vector<float> q = RandomF32(s_.dk * s_.n_head * n, seed_++, -2, 2);
    std::vector<float> k = RandomF32(s_.dk * s_.n_head_kv * n, seed_++, -2, 2);
    std::vector<float> v = RandomF32(s_.dv * s_.n_head_kv * n, seed_++);
    return Run(q, k, v, pos);
  }
  std::vector<float> Run(const std::vector<float>& q, const std::vector<float>& k,
                         const std::vector<float>& v, const std::vector<int32_t>& pos) {
    const int64_t n = static_cast<int64_t>(pos.size());
    int qi = b_.Add(HEARTH_DTYPE_F32, {s_.dk, s_.n_head, n}, q.data());
    int ki = b_.Add(HEARTH_DTYPE_F32, {s_.dk, s_.n_head_kv, n}, k.data());
    int vi = b_.Add(HEARTH_DTYPE_F32, {s_.dv, s_.n_head_kv, n}, v.data());
    int pi = b_.Add(HEARTH_DTYPE_I32, {n}, pos.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {s_.dv, s_.n_head, n});
    if (with_lse_) {
      int li = b_.Add(HEARTH_DTYPE_F32, {s_.n_head, n});
      b_.NodeP(HEARTH_OP_ATTENTION, {oi, li}, {qi, ki, vi, kc_, vc_, pi},
               hearth_attention_params{s_.scale, s_.softcap, s_.window});
    } else {
      b_.Node(HEARTH_OP_ATTENTION, oi, {qi, ki, vi, kc_, vc_, pi}, {s_.scale, s_.softcap},
              {s_.window});
    }
    EXPECT_EQ(b_.Supports(static_cast<uint32_t>(b_.nodes().size() - 1)), 1);
    EXPECT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    b_.ClearNodes();
    std::vector<double> want = ref_->Step(q, k, v, pos);
    std::vector<float> got = b_.Read(oi);
    EXPECT_TRUE(Near(got, want, 2e-6, 2e-5));
    std::vector<float> kc = b_.Read(kc_);
    std::vector<double> want_kc = ref_->k_cache();
    EXPECT_TRUE(Near(kc, want_kc, 0, 0)) << "k cache after the write";
    return got;
  }

 private:
  Backend& b_;
  Shape s_;
  int kc_ = -1, vc_ = -1;
  std::unique_ptr<Reference> ref_;
  uint32_t seed_ = 0;
  bool with_lse_ = false;
};

class AttentionTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_TRUE(b_.ok()); }
  Backend b_{static_cast<uint32_t>(GetParam())};
};

INSTANTIATE_TEST_SUITE_P(Threads, AttentionTest, ::testing::Values(1, 2, 3),
                         [](const auto& info) { return "t" + std::to_string(info.param); });

TEST_P(AttentionTest, MultiHeadPrompt) {
  Shape s{16, 16, 4, 4, 8, HEARTH_DTYPE_F32, HEARTH_DTYPE_F32, 0.25f, 0.0f, 0};
  Harness h(b_, s, 1);
  h.Step({0, 1, 2, 3, 4});
}

TEST_P(AttentionTest, GroupedQueryOverHistory) {
  // 6 query heads share 2 kv heads; rows before pos 7 hold earlier history.
  Shape s{20, 12, 6, 2, 16, HEARTH_DTYPE_F32, HEARTH_DTYPE_F32, 1.0f / std::sqrt(20.0f), 0.0f, 0};
  Harness h(b_, s, 2);
  h.Step({7, 8, 9});
  h.Step({10});
}

TEST_P(AttentionTest, WindowSoftcapF16CacheMultiQuery) {
  Shape s{24, 24, 3, 1, 20, HEARTH_DTYPE_F16, HEARTH_DTYPE_F16, 0.5f, 2.0f, 3};
  Harness h(b_, s, 3);
  h.Step({10, 11, 12, 13});
  h.Step({14});
  h.Step({19});  // a gap: the window only reaches back to 17
}

TEST_P(AttentionTest, MixedCacheDtypesLongContext) {
  Shape s{64, 40, 8, 2, 300, HEARTH_DTYPE_F16, HEARTH_DTYPE_F32, 0.125f, 30.0f, 0};
  Harness h(b_, s, 4);
  h.Step({250, 299});
  Shape w = s;
  w.window = 100;
  w.k_dtype = HEARTH_DTYPE_F32;
  w.v_dtype = HEARTH_DTYPE_F16;
  Harness h2(b_, w, 5);
  h2.Step({290, 291, 292});
}

// The training forward (lse requested) in tiles of 64 queries x 64 cache
// rows: more than one tile, partial tiles, history rows before the batch,
// F16 caches, GQA and MQA, windows that leave key tiles and rows between
// them unseen, positions out of order within a tile.
TEST_P(AttentionTest, TrainingForwardInTiles) {
  std::vector<int32_t> run(150);
  for (int32_t i = 0; i < 150; ++i) run[i] = 100 + i;
  std::swap(run[3], run[70]);
  std::swap(run[10], run[11]);
  for (int32_t window : {0, 70, 5}) {
    Shape s{64, 40, 8, 2, 300, HEARTH_DTYPE_F16, HEARTH_DTYPE_F32, 0.125f, 30.0f, window};
    Harness h(b_, s, 60);
    h.set_with_lse(true);
    h.Step(run);
    h.Step({280, 200});  // one tile; with a window, rows between that no query sees
  }
  Shape m{20, 12, 3, 1, 200, HEARTH_DTYPE_F32, HEARTH_DTYPE_F16, 0.3f, 0.0f, 0};
  Harness h(b_, m, 70);
  h.set_with_lse(true);
  std::vector<int32_t> first(68);
  for (int32_t i = 0; i < 68; ++i) first[i] = i;
  h.Step(first);
  h.Step({190, 5});  // one tile, far apart
}

// A prompt of n_total tokens in one call, and the same prompt as n_first
// tokens then single decode steps, give the same bits, on this test's
// backend and on one with another thread count (`other`).
void CheckPromptThenDecode(Backend& b, Backend& other, const Shape& s, int32_t n_first,
                           int32_t n_total) {
  const int64_t per_tok_q = s.dk * s.n_head, per_tok_k = s.dk * s.n_head_kv;
  const int64_t per_tok_v = s.dv * s.n_head_kv;
  std::vector<float> q = RandomF32(per_tok_q * n_total, 10, -2, 2);
  std::vector<float> k = RandomF32(per_tok_k * n_total, 11, -2, 2);
  std::vector<float> v = RandomF32(per_tok_v * n_total, 12);
  auto slice = [](const std::vector<float>& x, int64_t per, int64_t t0, int64_t t1) {
    return std::vector<float>(x.begin() + per * t0, x.begin() + per * t1);
  };
  auto positions = [](int32_t t0, int32_t t1) {
    std::vector<int32_t> p;
    for (int32_t t = t0; t < t1; ++t) p.push_back(t);
    return p;
  };
  Harness whole(b, s, 20);
  const std::vector<float> all = whole.Run(q, k, v, positions(0, n_total));
  Harness whole_other(other, s, 20);
  const std::vector<float> all_other = whole_other.Run(q, k, v, positions(0, n_total));
  ASSERT_EQ(all, all_other) << "another thread count gave other bits";
  Harness steps(b, s, 20);
  steps.Run(slice(q, per_tok_q, 0, n_first), slice(k, per_tok_k, 0, n_first),
            slice(v, per_tok_v, 0, n_first), positions(0, n_first));
  for (int32_t t = n_first; t < n_total; ++t) {
    std::vector<float> one = steps.Run(slice(q, per_tok_q, t, t + 1), slice(k, per_tok_k, t, t + 1),
                                       slice(v, per_tok_v, t, t + 1), {t});
    std::vector<float> want = slice(all, s.dv * s.n_head, t, t + 1);
    ASSERT_EQ(one.size(), want.size());
    for (size_t i = 0; i < one.size(); ++i) {
      ASSERT_EQ(one[i], want[i]) << "token " << t << " element " << i;
    }
  }
}

TEST_P(AttentionTest, PromptThenDecodeEqualsOneShot) {
  Backend other{GetParam() == 1 ? 3u : 1u};
  ASSERT_TRUE(other.ok());
  for (uint32_t dtype : {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16}) {
    SCOPED_TRACE(::testing::Message() << "dtype " << dtype);
    CheckPromptThenDecode(b_, other, {32, 32, 4, 2, 12, dtype, dtype, 0.2f, 0.0f, 0}, 5, 8);
    // Longer than a query tile and a key block (32 and 64 rows), a head
    // size that is not a multiple of 8, four q heads per kv head; with and
    // without a window.
    CheckPromptThenDecode(b_, other, {20, 12, 8, 2, 140, dtype, dtype, 0.3f, 0.0f, 0}, 97, 133);
    CheckPromptThenDecode(b_, other, {20, 12, 8, 2, 140, dtype, dtype, 0.3f, 5.0f, 40}, 70, 135);
  }
}

// Caches laid out head-major, as the runtime keeps them (blocks of a kv
// head's rows then convert in one run), give the bits of the same caches
// with the heads of a row adjacent (row by row), for prompts and decode
// steps, with and without a window.
TEST_P(AttentionTest, HeadMajorCachesGiveTheSameBits) {
  for (uint32_t dtype : {HEARTH_DTYPE_F16, HEARTH_DTYPE_F32}) {
    for (int32_t window : {0, 50}) {
      SCOPED_TRACE(::testing::Message() << "dtype " << dtype << " window " << window);
      const Shape s{64, 64, 8, 2, 300, dtype, dtype, 0.125f, 0.0f, window};
      Harness rows(b_, s, 80), heads(b_, s, 80, /*head_major=*/true);
      std::vector<int32_t> prompt(150);
      for (int32_t i = 0; i < 150; ++i) prompt[i] = i;
      ASSERT_EQ(rows.Step(prompt), heads.Step(prompt));
      for (int32_t t = 150; t < 155; ++t) ASSERT_EQ(rows.Step({t}), heads.Step({t}));
      ASSERT_EQ(rows.Step({299}), heads.Step({299}));
    }
  }
}

// One sequence of a batch: its tokens' positions and its history rows.
struct SeqCase {
  std::vector<int32_t> pos;  // new tokens
  int32_t history;           // rows [0, history) hold earlier tokens
};

// Separate single-sequence runs (the layout the tests above check against
// the double reference) give the wanted outputs and caches; one batched
// graph must give the same bits, with a slot per sequence or, when
// block_size > 0, pages in a shuffled block table.
void CheckBatchAgainstSeparate(Backend& b, uint32_t cache_dtype, int64_t block_size) {
  const int64_t dk = 16, dv = 8, n_head = 4, n_head_kv = 2, n_ctx = 16;
  const hearth_attention_params p{0.3f, 0.0f, 0};
  const std::vector<SeqCase> seqs = {{{0, 1, 2, 3, 4}, 0}, {{7}, 7}, {{2, 3, 4}, 2}};
  const int64_t n_seq = static_cast<int64_t>(seqs.size());
  const size_t row_k = dk * n_head_kv, row_v = dv * n_head_kv;
  const size_t esz = cache_dtype == HEARTH_DTYPE_F16 ? 2 : 4;

  // Per sequence: initial cache contents and its tokens' q, k, v.
  std::vector<std::vector<float>> k0, v0, q, k, v;
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t n = static_cast<int64_t>(seqs[s].pos.size());
    k0.push_back(RandomF32(n_ctx * row_k, 100 + s));
    v0.push_back(RandomF32(n_ctx * row_v, 200 + s));
    q.push_back(RandomF32(n * dk * n_head, 300 + s, -2, 2));
    k.push_back(RandomF32(n * row_k, 400 + s, -2, 2));
    v.push_back(RandomF32(n * row_v, 500 + s));
  }
  // Separate runs.
  std::vector<std::vector<float>> want_out, want_kc, want_vc;
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t n = static_cast<int64_t>(seqs[s].pos.size());
    b.ClearNodes();
    int kc = b.Add(cache_dtype, {dk, n_head_kv, n_ctx}, ToDtype(cache_dtype, k0[s]).data());
    int vc = b.Add(cache_dtype, {dv, n_head_kv, n_ctx}, ToDtype(cache_dtype, v0[s]).data());
    int qi = b.Add(HEARTH_DTYPE_F32, {dk, n_head, n}, q[s].data());
    int ki = b.Add(HEARTH_DTYPE_F32, {dk, n_head_kv, n}, k[s].data());
    int vi = b.Add(HEARTH_DTYPE_F32, {dv, n_head_kv, n}, v[s].data());
    int pi = b.Add(HEARTH_DTYPE_I32, {n}, seqs[s].pos.data());
    int oi = b.Add(HEARTH_DTYPE_F32, {dv, n_head, n});
    b.NodeP(HEARTH_OP_ATTENTION, {oi}, {qi, ki, vi, kc, vc, pi}, p);
    ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
    want_out.push_back(b.Read(oi));
    want_kc.push_back(b.Read(kc));
    want_vc.push_back(b.Read(vc));
  }

  // The batch: tokens of every sequence interleaved (one of each in turn).
  std::vector<int32_t> pos, seq;
  std::vector<std::pair<int64_t, int64_t>> origin;  // (sequence, index within it)
  for (size_t i = 0;; ++i) {
    bool any = false;
    for (int64_t s = 0; s < n_seq; ++s) {
      if (i < seqs[s].pos.size()) {
        pos.push_back(seqs[s].pos[i]);
        seq.push_back(static_cast<int32_t>(s));
        origin.push_back({s, static_cast<int64_t>(i)});
        any = true;
      }
    }
    if (!any) break;
  }
  const int64_t T = static_cast<int64_t>(pos.size());
  std::vector<float> bq, bk, bv;
  for (const auto& [s, i] : origin) {
    bq.insert(bq.end(), q[s].begin() + i * dk * n_head, q[s].begin() + (i + 1) * dk * n_head);
    bk.insert(bk.end(), k[s].begin() + i * row_k, k[s].begin() + (i + 1) * row_k);
    bv.insert(bv.end(), v[s].begin() + i * row_v, v[s].begin() + (i + 1) * row_v);
  }
  // Where row j of sequence s lives: (slot or page, row within it).
  const bool paged = block_size > 0;
  const int64_t rows = paged ? block_size : n_ctx;
  const int64_t max_blocks = paged ? n_ctx / block_size : 0;
  const int64_t n_pages = paged ? n_seq * max_blocks + 2 : n_seq;  // 2 pages nobody uses
  std::vector<int32_t> table(static_cast<size_t>(max_blocks * n_seq));
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i + 2);
  std::mt19937 rng(7);
  std::shuffle(table.begin(), table.end(), rng);
  auto locate = [&](int64_t s, int64_t j) {
    if (!paged) return std::pair<int64_t, int64_t>{s, j};
    return std::pair<int64_t, int64_t>{table[s * max_blocks + j / block_size], j % block_size};
  };
  std::vector<float> ck(n_pages * rows * row_k, 0.0f), cv(n_pages * rows * row_v, 0.0f);
  for (int64_t s = 0; s < n_seq; ++s) {
    for (int64_t j = 0; j < n_ctx; ++j) {
      const auto [page, r] = locate(s, j);
      std::copy_n(k0[s].begin() + j * row_k, row_k, ck.begin() + (page * rows + r) * row_k);
      std::copy_n(v0[s].begin() + j * row_v, row_v, cv.begin() + (page * rows + r) * row_v);
    }
  }
  b.ClearNodes();
  int kc = b.Add(cache_dtype, {dk, n_head_kv, rows, n_pages}, ToDtype(cache_dtype, ck).data());
  int vc = b.Add(cache_dtype, {dv, n_head_kv, rows, n_pages}, ToDtype(cache_dtype, cv).data());
  int qi = b.Add(HEARTH_DTYPE_F32, {dk, n_head, T}, bq.data());
  int ki = b.Add(HEARTH_DTYPE_F32, {dk, n_head_kv, T}, bk.data());
  int vi = b.Add(HEARTH_DTYPE_F32, {dv, n_head_kv, T}, bv.data());
  int pi = b.Add(HEARTH_DTYPE_I32, {T}, pos.data());
  int si = b.Add(HEARTH_DTYPE_I32, {T}, seq.data());
  int ti = paged ? b.Add(HEARTH_DTYPE_I32, {max_blocks, n_seq}, table.data()) : -1;
  int oi = b.Add(HEARTH_DTYPE_F32, {dv, n_head, T});
  if (paged) {
    b.NodeP(HEARTH_OP_ATTENTION, {oi}, {qi, ki, vi, kc, vc, pi, si, ti}, p);
  } else {
    b.NodeP(HEARTH_OP_ATTENTION, {oi}, {qi, ki, vi, kc, vc, pi, si}, p);
  }
  ASSERT_EQ(b.Supports(0), 1);
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  const std::vector<float> got = b.Read(oi);
  const std::vector<float> got_kc = b.Read(kc), got_vc = b.Read(vc);
  const size_t per_tok = dv * n_head;
  for (int64_t t = 0; t < T; ++t) {
    const auto [s, i] = origin[t];
    for (size_t e = 0; e < per_tok; ++e) {
      ASSERT_EQ(got[t * per_tok + e], want_out[s][i * per_tok + e])
          << "token " << t << " (sequence " << s << ") element " << e;
    }
  }
  for (int64_t s = 0; s < n_seq; ++s) {
    for (int64_t j = 0; j < n_ctx; ++j) {
      const auto [page, r] = locate(s, j);
      for (size_t e = 0; e < row_k; ++e) {
        ASSERT_EQ(got_kc[(page * rows + r) * row_k + e], want_kc[s][j * row_k + e])
            << "k cache, sequence " << s << " row " << j;
      }
      for (size_t e = 0; e < row_v; ++e) {
        ASSERT_EQ(got_vc[(page * rows + r) * row_v + e], want_vc[s][j * row_v + e])
            << "v cache, sequence " << s << " row " << j;
      }
    }
  }
  (void)esz;
}

TEST_P(AttentionTest, BatchOfSequencesWithSlotsEqualsSeparateRuns) {
  CheckBatchAgainstSeparate(b_, HEARTH_DTYPE_F32, 0);
  CheckBatchAgainstSeparate(b_, HEARTH_DTYPE_F16, 0);
}

TEST_P(AttentionTest, BatchOfSequencesWithPagesEqualsSeparateRuns) {
  CheckBatchAgainstSeparate(b_, HEARTH_DTYPE_F32, 4);
  CheckBatchAgainstSeparate(b_, HEARTH_DTYPE_F16, 8);
}

TEST_P(AttentionTest, BadSequenceIdsAndPagesAreErrorsNotReads) {
  const int64_t dk = 8, n_head = 2, rows = 4, n_pages = 3;
  const hearth_attention_params p{0.5f, 0.0f, 0};
  struct Case {
    std::vector<int32_t> pos, seq, table;  // table: [2 blocks, 2 sequences]
    const char* want;
  };
  const std::vector<Case> cases = {
      {{0, 1}, {0, 2}, {0, 1, 2, 0}, "seq[1] = 2 is outside the 2 sequences"},
      {{0, 1}, {-1, 0}, {0, 1, 2, 0}, "seq[0] = -1"},
      {{5, 1}, {0, 1}, {0, 3, 2, 0}, "blocks[1, 0] = 3 is not a page"},
      {{0, 4}, {0, 1}, {0, 1, 2, -1}, "blocks[1, 1] = -1 is not a page"},
      {{0, 8}, {0, 1}, {0, 1, 2, 0}, "pos[1] = 8 is outside the KV cache rows [0, 8)"},
  };
  for (const Case& c : cases) {
    b_.ClearNodes();
    std::vector<float> zeros(dk * n_head * 2, 0.0f);
    int kc = b_.Add(HEARTH_DTYPE_F32, {dk, 1, rows, n_pages});
    int vc = b_.Add(HEARTH_DTYPE_F32, {dk, 1, rows, n_pages});
    int qi = b_.Add(HEARTH_DTYPE_F32, {dk, n_head, 2}, zeros.data());
    int ki = b_.Add(HEARTH_DTYPE_F32, {dk, 1, 2}, zeros.data());
    int vi = b_.Add(HEARTH_DTYPE_F32, {dk, 1, 2}, zeros.data());
    int pi = b_.Add(HEARTH_DTYPE_I32, {2}, c.pos.data());
    int si = b_.Add(HEARTH_DTYPE_I32, {2}, c.seq.data());
    int ti = b_.Add(HEARTH_DTYPE_I32, {2, 2}, c.table.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {dk, n_head, 2});
    b_.NodeP(HEARTH_OP_ATTENTION, {oi}, {qi, ki, vi, kc, vc, pi, si, ti}, p);
    Recorder().last_error.clear();
    EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT) << c.want;
    EXPECT_NE(Recorder().last_error.find(c.want), std::string::npos) << Recorder().last_error;
  }
}

TEST_P(AttentionTest, LseIsTheLogOfTheSoftmaxDenominator) {
  for (float softcap : {0.0f, 3.0f}) {
    const int64_t dk = 12, dv = 12, n_head = 4, n_head_kv = 2, n_ctx = 6, T = 6;
    const hearth_attention_params p{0.4f, softcap, 4};
    std::vector<float> q = RandomF32(dk * n_head * T, 50, -2, 2);
    std::vector<float> k = RandomF32(dk * n_head_kv * T, 51, -2, 2);
    std::vector<float> v = RandomF32(dv * n_head_kv * T, 52);
    std::vector<int32_t> pos = {0, 1, 2, 3, 4, 5};
    b_.ClearNodes();
    int kc = b_.Add(HEARTH_DTYPE_F32, {dk, n_head_kv, n_ctx});
    int vc = b_.Add(HEARTH_DTYPE_F32, {dv, n_head_kv, n_ctx});
    int qi = b_.Add(HEARTH_DTYPE_F32, {dk, n_head, T}, q.data());
    int ki = b_.Add(HEARTH_DTYPE_F32, {dk, n_head_kv, T}, k.data());
    int vi = b_.Add(HEARTH_DTYPE_F32, {dv, n_head_kv, T}, v.data());
    int pi = b_.Add(HEARTH_DTYPE_I32, {T}, pos.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {dv, n_head, T});
    int li = b_.Add(HEARTH_DTYPE_F32, {n_head, T});
    b_.NodeP(HEARTH_OP_ATTENTION, {oi, li}, {qi, ki, vi, kc, vc, pi}, p);
    ASSERT_EQ(b_.Supports(0), 1);
    ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    std::vector<double> want;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t g = h / (n_head / n_head_kv);
        double m = -INFINITY;
        std::vector<double> sc;
        for (int64_t j = 0; j <= pos[t]; ++j) {
          if (pos[t] - j >= p.window) continue;
          double d = 0;
          for (int64_t i = 0; i < dk; ++i) {
            d += double{q[(t * n_head + h) * dk + i]} * k[(j * n_head_kv + g) * dk + i];
          }
          d *= p.scale;
          if (softcap > 0) d = softcap * std::tanh(d / softcap);
          sc.push_back(d);
          m = std::max(m, d);
        }
        double sum = 0;
        for (double d : sc) sum += std::exp(d - m);
        want.push_back(m + std::log(sum));
      }
    }
    EXPECT_TRUE(Near(b_.Read(li), want, 1e-5, 1e-5)) << "softcap " << softcap;
  }
}

}  // namespace
}  // namespace hearth::cpu::testing
