// reference.cc — float64 references of the op set, from hearth_plugin.h.
#include "backends/conformance/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "hearth/hearth_plugin.h"

namespace hearth::conformance {

double HalfToDouble(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0    ? std::ldexp(m, -24)
             : e == 31 ? (m ? std::numeric_limits<double>::quiet_NaN()
                            : std::numeric_limits<double>::infinity())
                       : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

uint16_t FloatToHalf(float f) {
  _Float16 h = static_cast<_Float16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

double Bf16ToDouble(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t FloatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

double RoundTo(uint32_t dtype, double v) {
  const float f = static_cast<float>(v);
  switch (dtype) {
    case HEARTH_DTYPE_F16:
      return HalfToDouble(FloatToHalf(f));
    case HEARTH_DTYPE_BF16:
      return Bf16ToDouble(FloatToBf16(f));
    default:
      return f;
  }
}

namespace {

double F16At(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return HalfToDouble(h);
}

// The 6-bit scale and min j of a Q4_K super-block (GGUF's get_scale_min_k4).
void ScaleMinK4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

void DequantizeRow(uint32_t dtype, const uint8_t* row, int64_t k, double* out) {
  const int64_t be = hearth_dtype_block_elems(dtype), bb = hearth_dtype_block_bytes(dtype);
  for (int64_t b = 0; b < k / be; ++b) {
    const uint8_t* p = row + b * bb;
    double* y = out + b * be;
    switch (dtype) {
      case HEARTH_DTYPE_Q8_0: {
        const double d = F16At(p);
        for (int i = 0; i < 32; ++i) y[i] = d * static_cast<int8_t>(p[2 + i]);
        break;
      }
      case HEARTH_DTYPE_Q4_0: {
        const double d = F16At(p);
        for (int j = 0; j < 16; ++j) {
          y[j] = d * ((p[2 + j] & 0xF) - 8);
          y[j + 16] = d * ((p[2 + j] >> 4) - 8);
        }
        break;
      }
      case HEARTH_DTYPE_Q4_1: {
        const double d = F16At(p), m = F16At(p + 2);
        for (int j = 0; j < 16; ++j) {
          y[j] = d * (p[4 + j] & 0xF) + m;
          y[j + 16] = d * (p[4 + j] >> 4) + m;
        }
        break;
      }
      case HEARTH_DTYPE_Q5_0: {
        const double d = F16At(p);
        const uint32_t qh = p[2] | (p[3] << 8) | (p[4] << 16) | (static_cast<uint32_t>(p[5]) << 24);
        for (int j = 0; j < 16; ++j) {
          const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
          y[j] = d * (((p[6 + j] & 0xF) | h0) - 16);
          y[j + 16] = d * (((p[6 + j] >> 4) | h1) - 16);
        }
        break;
      }
      case HEARTH_DTYPE_Q4_K: {
        const double d = F16At(p), dmin = F16At(p + 2);
        const uint8_t* scales = p + 4;
        const uint8_t* q = p + 16;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
          int sc, m;
          ScaleMinK4(is, scales, &sc, &m);
          const double d1 = d * sc, m1 = dmin * m;
          ScaleMinK4(is + 1, scales, &sc, &m);
          const double d2 = d * sc, m2 = dmin * m;
          for (int l = 0; l < 32; ++l) y[j + l] = d1 * (q[l] & 0xF) - m1;
          for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * (q[l] >> 4) - m2;
        }
        break;
      }
      case HEARTH_DTYPE_Q6_K: {
        const uint8_t* ql = p;
        const uint8_t* qh = p + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
        const double d = F16At(p + 208);
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[n + l] = d * sc[is] * q1;
            y[n + l + 32] = d * sc[is + 2] * q2;
            y[n + l + 64] = d * sc[is + 4] * q3;
            y[n + l + 96] = d * sc[is + 6] * q4;
          }
        }
        break;
      }
      default:
        for (int64_t i = 0; i < be; ++i) y[i] = std::numeric_limits<double>::quiet_NaN();
    }
  }
}

Vec MatMul(const Vec& w, const Vec& x, int64_t K, int64_t M, int64_t T) {
  Vec out(static_cast<size_t>(M * T));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t m = 0; m < M; ++m) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += w[m * K + k] * x[t * K + k];
      out[t * M + m] = s;
    }
  }
  return out;
}

Vec RmsNorm(const Vec& x, const Vec& w, int64_t D, int64_t rows, double eps) {
  Vec out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < D; ++i) ss += x[r * D + i] * x[r * D + i];
    const double inv = 1 / std::sqrt(ss / D + eps);
    for (int64_t i = 0; i < D; ++i) out[r * D + i] = x[r * D + i] * inv * (w.empty() ? 1 : w[i]);
  }
  return out;
}

Vec Rope(const Vec& x, const std::vector<int32_t>& pos, int64_t hd, int64_t nh, int64_t T,
         const RopeArgs& a, bool inverse) {
  Vec out = x;
  const int half = a.n_rot / 2;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < nh; ++h) {
      const double* xr = &x[(t * nh + h) * hd];
      double* yr = &out[(t * nh + h) * hd];
      for (int i = 0; i < half; ++i) {
        double angle = pos[t] * a.freq_scale * std::pow(a.theta_base, -2.0 * i / a.n_rot);
        if (!a.freq_factors.empty()) angle /= a.freq_factors[i];
        if (inverse) angle = -angle;
        const double c = std::cos(angle), s = std::sin(angle);
        const int i0 = a.mode == HEARTH_ROPE_NEOX ? i : 2 * i;
        const int i1 = a.mode == HEARTH_ROPE_NEOX ? i + half : 2 * i + 1;
        yr[i0] = xr[i0] * c - xr[i1] * s;
        yr[i1] = xr[i0] * s + xr[i1] * c;
      }
    }
  }
  return out;
}

namespace {

double Score(const double* q, const double* k, int64_t dk, const AttnArgs& a, double* dcap) {
  double s = 0;
  for (int64_t i = 0; i < dk; ++i) s += q[i] * k[i];
  s *= a.scale;
  if (dcap) *dcap = 1;
  if (a.softcap > 0) {
    const double th = std::tanh(s / a.softcap);
    if (dcap) *dcap = 1 - th * th;
    s = a.softcap * th;
  }
  return s;
}

// Rows j of the batch that query t sees.
std::vector<int64_t> SelfKeys(const std::vector<int32_t>& pos, const std::vector<int32_t>& seq,
                              int64_t T, int64_t t, int window) {
  std::vector<int64_t> keys;
  for (int64_t j = 0; j < T; ++j) {
    const int32_t sj = seq.empty() ? 0 : seq[j], st = seq.empty() ? 0 : seq[t];
    if (sj != st || pos[j] > pos[t]) continue;
    if (window > 0 && pos[t] - pos[j] >= window) continue;
    keys.push_back(j);
  }
  return keys;
}

}  // namespace

double AttendOne(const double* q, const std::vector<const double*>& keys,
                 const std::vector<const double*>& values, int64_t dk, int64_t dv,
                 const AttnArgs& a, double* out) {
  std::vector<double> s(keys.size());
  double mx = -std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < keys.size(); ++j) {
    s[j] = Score(q, keys[j], dk, a, nullptr);
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (double& e : s) sum += (e = std::exp(e - mx));
  for (int64_t i = 0; i < dv; ++i) {
    double acc = 0;
    for (size_t j = 0; j < keys.size(); ++j) acc += s[j] * values[j][i];
    out[i] = acc / sum;
  }
  return mx + std::log(sum);
}

void SelfAttention(const Vec& q, const Vec& k, const Vec& v, const std::vector<int32_t>& pos,
                   const std::vector<int32_t>& seq, int64_t dk, int64_t dv, int64_t nh, int64_t nkv,
                   int64_t T, const AttnArgs& a, Vec* o, Vec* lse) {
  o->assign(static_cast<size_t>(dv * nh * T), 0);
  lse->assign(static_cast<size_t>(nh * T), 0);
  const int64_t group = nh / nkv;
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<int64_t> rows = SelfKeys(pos, seq, T, t, a.window);
    for (int64_t h = 0; h < nh; ++h) {
      std::vector<const double*> ks, vs;
      for (int64_t j : rows) {
        ks.push_back(&k[(j * nkv + h / group) * dk]);
        vs.push_back(&v[(j * nkv + h / group) * dv]);
      }
      (*lse)[t * nh + h] =
          AttendOne(&q[(t * nh + h) * dk], ks, vs, dk, dv, a, &(*o)[(t * nh + h) * dv]);
    }
  }
}

void SelfAttentionBack(const Vec& q, const Vec& k, const Vec& v, const Vec& dout,
                       const std::vector<int32_t>& pos, const std::vector<int32_t>& seq, int64_t dk,
                       int64_t dv, int64_t nh, int64_t nkv, int64_t T, const AttnArgs& a, Vec* dq,
                       Vec* dkk, Vec* dvv) {
  dq->assign(q.size(), 0);
  dkk->assign(k.size(), 0);
  dvv->assign(v.size(), 0);
  const int64_t group = nh / nkv;
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<int64_t> rows = SelfKeys(pos, seq, T, t, a.window);
    for (int64_t h = 0; h < nh; ++h) {
      const double* qr = &q[(t * nh + h) * dk];
      const double* dor = &dout[(t * nh + h) * dv];
      const int64_t hk = h / group;
      std::vector<double> p(rows.size()), dcap(rows.size());
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (size_t j = 0; j < rows.size(); ++j) {
        p[j] = Score(qr, &k[(rows[j] * nkv + hk) * dk], dk, a, &dcap[j]);
        mx = std::max(mx, p[j]);
      }
      for (double& e : p) sum += (e = std::exp(e - mx));
      for (double& e : p) e /= sum;
      // dp_j = do . v_j; D = sum_j p_j dp_j; ds_j = p_j (dp_j - D) * dcap_j.
      std::vector<double> dp(rows.size());
      double dsum = 0;
      for (size_t j = 0; j < rows.size(); ++j) {
        const double* vr = &v[(rows[j] * nkv + hk) * dv];
        for (int64_t i = 0; i < dv; ++i) dp[j] += dor[i] * vr[i];
        dsum += p[j] * dp[j];
      }
      for (size_t j = 0; j < rows.size(); ++j) {
        const double ds = p[j] * (dp[j] - dsum) * dcap[j] * a.scale;
        const double* kr = &k[(rows[j] * nkv + hk) * dk];
        double* dkr = &(*dkk)[(rows[j] * nkv + hk) * dk];
        double* dvr = &(*dvv)[(rows[j] * nkv + hk) * dv];
        for (int64_t i = 0; i < dk; ++i) {
          (*dq)[(t * nh + h) * dk + i] += ds * kr[i];
          dkr[i] += ds * qr[i];
        }
        for (int64_t i = 0; i < dv; ++i) dvr[i] += p[j] * dor[i];
      }
    }
  }
}

double Silu(double x) { return x / (1 + std::exp(-x)); }

double GeluTanh(double x) {
  const double c = std::sqrt(2 / M_PI);
  return 0.5 * x * (1 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

double SiluGrad(double x) {
  const double s = 1 / (1 + std::exp(-x));
  return s * (1 + x * (1 - s));
}

double GeluTanhGrad(double x) {
  const double c = std::sqrt(2 / M_PI);
  const double th = std::tanh(c * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x);
}

namespace {
bool Masked(int32_t target, int32_t ignore_index, bool has_ignore) {
  return target < 0 || (has_ignore && target == ignore_index);
}
}  // namespace

Vec CrossEntropy(const Vec& logits, const std::vector<int32_t>& targets, int64_t V, int64_t T,
                 int32_t ignore_index, bool has_ignore) {
  Vec out(static_cast<size_t>(T), 0);
  for (int64_t t = 0; t < T; ++t) {
    if (Masked(targets[t], ignore_index, has_ignore)) continue;
    const double* l = &logits[t * V];
    const double mx = *std::max_element(l, l + V);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(l[i] - mx);
    out[t] = mx + std::log(sum) - l[targets[t]];
  }
  return out;
}

Vec CrossEntropyBack(const Vec& logits, const std::vector<int32_t>& targets, int64_t V, int64_t T,
                     double scale, int32_t ignore_index, bool has_ignore) {
  Vec out(logits.size(), 0);
  for (int64_t t = 0; t < T; ++t) {
    if (Masked(targets[t], ignore_index, has_ignore)) continue;
    const double* l = &logits[t * V];
    const double mx = *std::max_element(l, l + V);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(l[i] - mx);
    for (int64_t i = 0; i < V; ++i) {
      out[t * V + i] = scale * (std::exp(l[i] - mx) / sum - (i == targets[t] ? 1 : 0));
    }
  }
  return out;
}

Vec RmsNormBack(const Vec& x, const Vec& dy, const Vec& w, int64_t D, int64_t rows, double eps) {
  Vec dx(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = &x[r * D];
    const double* gr = &dy[r * D];
    double ss = 0, dot = 0;
    for (int64_t i = 0; i < D; ++i) {
      ss += xr[i] * xr[i];
      dot += (w.empty() ? 1 : w[i]) * gr[i] * xr[i];
    }
    const double inv = 1 / std::sqrt(ss / D + eps);
    for (int64_t i = 0; i < D; ++i) {
      dx[r * D + i] = inv * (w.empty() ? 1 : w[i]) * gr[i] - inv * inv * inv / D * xr[i] * dot;
    }
  }
  return dx;
}

}  // namespace hearth::conformance
