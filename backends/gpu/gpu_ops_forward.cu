// gpu_ops_forward.cu — the inference ops of the GPU plugin: each op's
// contract (beyond what gpu_backend.cu checks for every node) and its launch.
// Also the arity table of every op and the checks the op files share.
#include <cmath>
#include <cstring>
#include <string>

#include "backends/gpu/gpu_ops.h"

namespace hearth::gpu {

using plugin::StrFormat;

bool ArityOf(uint32_t op, OpArity* a) {
  *a = OpArity();
  switch (op) {
    case HEARTH_OP_GET_ROWS:
    case HEARTH_OP_MUL_MAT:
    case HEARTH_OP_MUL_MAT_T:
    case HEARTH_OP_CROSS_ENTROPY:
      a->n_in = 2;
      return true;
    case HEARTH_OP_ADD:
    case HEARTH_OP_MUL:
    case HEARTH_OP_SILU_MUL:
    case HEARTH_OP_GELU_MUL:
    case HEARTH_OP_CROSS_ENTROPY_BACK:
      a->n_in = 2, a->in_place = true;
      return true;
    case HEARTH_OP_SCALE:
    case HEARTH_OP_SOFTMAX:
    case HEARTH_OP_COPY:
      a->n_in = 1, a->in_place = true;
      return true;
    case HEARTH_OP_RMS_NORM:
    case HEARTH_OP_DROPOUT:
      a->n_in = 1, a->n_opt = 1, a->in_place = true;
      return true;
    case HEARTH_OP_ROPE:
    case HEARTH_OP_ROPE_BACK:
      a->n_in = 2, a->n_opt = 1, a->in_place = true;
      return true;
    case HEARTH_OP_ATTENTION:
      a->n_in = 6, a->n_opt = 2, a->n_extra_opt = 1;
      return true;
    case HEARTH_OP_LORA_MUL_MAT:
      a->n_in = 4, a->n_opt = 1, a->in_place = true;
      return true;
    case HEARTH_OP_OUTER:
      a->n_in = 2, a->n_opt = 1, a->in_place = true;
      return true;
    case HEARTH_OP_RMS_NORM_BACK:
      a->n_in = 2, a->n_opt = 1;
      return true;
    case HEARTH_OP_ATTENTION_BACK:
      a->n_in = 7, a->n_opt = 1, a->n_extra = 2;
      return true;
    case HEARTH_OP_SILU_MUL_BACK:
    case HEARTH_OP_GELU_MUL_BACK:
      a->n_in = 3, a->n_extra = 1;
      return true;
    case HEARTH_OP_ADAMW_STEP:
      a->n_in = 4, a->n_extra = 2, a->in_place = true;
      a->in_place_extra[0] = 2;
      a->in_place_extra[1] = 3;
      return true;
    case HEARTH_OP_SUM_SQ:
      a->n_in = 1;
      return true;
    default:
      return false;
  }
}

namespace ops {

bool Overlap(const TRef& a, const TRef& b) {
  return a.span > 0 && b.span > 0 && a.data < b.data + b.span && b.data < a.data + a.span;
}

std::string Shape(const TRef& t) { return plugin::ShapeStr(t.ne); }

bool IsFloat(uint32_t dt) {
  return dt == HEARTH_DTYPE_F32 || dt == HEARTH_DTYPE_F16 || dt == HEARTH_DTYPE_BF16;
}

bool IsWeight(uint32_t dt) { return dt < HEARTH_DTYPE_COUNT_ && dt != HEARTH_DTYPE_I32; }

int64_t Rows(const TRef& t) { return t.ne[1] * t.ne[2] * t.ne[3]; }

bool SameShape(const TRef& a, const TRef& b) {
  for (int i = 0; i < 4; ++i) {
    if (a.ne[i] != b.ne[i]) return false;
  }
  return true;
}

const char* Name(const Prepared& p) { return plugin::OpName(p.op); }

bool WantF32(const Prepared& p, const TRef& t, const char* what, std::string* why) {
  if (t.dtype == HEARTH_DTYPE_F32) return true;
  *why = StrFormat("%s: %s has dtype %s, want F32", Name(p), what, plugin::DtypeName(t.dtype));
  return false;
}

bool WantI32(const Prepared& p, const TRef& t, const char* what, std::string* why) {
  if (t.dtype == HEARTH_DTYPE_I32) return true;
  *why = StrFormat("%s: %s has dtype %s, want I32", Name(p), what, plugin::DtypeName(t.dtype));
  return false;
}

bool WantSame(const Prepared& p, const TRef& a, const TRef& b, const char* what, std::string* why) {
  if (SameShape(a, b)) return true;
  *why = StrFormat("%s: %s is %s, want %s", Name(p), what, Shape(b).c_str(), Shape(a).c_str());
  return false;
}

bool WantVector(const Prepared& p, const TRef& t, int64_t n, const char* what, std::string* why) {
  if (t.ne[0] == n && Rows(t) == 1) return true;
  *why = StrFormat("%s: %s is %s, want [%lld]", Name(p), what, Shape(t).c_str(),
                   static_cast<long long>(n));
  return false;
}

}  // namespace ops

using namespace ops;  // NOLINT: the checks' vocabulary

bool CheckForward(const Prepared& p, std::string* why) {
  const char* name = Name(p);
  const TRef& o = p.out;
  const TRef& a = p.in[0];
  const TRef& b = p.in[1];
  switch (p.op) {
    case HEARTH_OP_ADD:
    case HEARTH_OP_MUL:
      if (!WantF32(p, o, "the output", why) || !WantF32(p, a, "a", why) ||
          !WantF32(p, b, "b", why) || !WantSame(p, a, o, "the output", why)) {
        return false;
      }
      for (int i = 0; i < 4; ++i) {
        if (b.ne[i] != 1 && b.ne[i] != a.ne[i]) {
          *why = StrFormat("%s: b %s does not broadcast over a %s", name, Shape(b).c_str(),
                           Shape(a).c_str());
          return false;
        }
      }
      return true;
    case HEARTH_OP_SCALE:
      return WantF32(p, o, "the output", why) && WantF32(p, a, "x", why) &&
             WantSame(p, a, o, "the output", why);
    case HEARTH_OP_SILU_MUL:
    case HEARTH_OP_GELU_MUL:
      return WantF32(p, o, "the output", why) && WantF32(p, a, "gate", why) &&
             WantF32(p, b, "up", why) && WantSame(p, a, b, "up", why) &&
             WantSame(p, a, o, "the output", why);
    case HEARTH_OP_SOFTMAX:
      return WantF32(p, o, "the output", why) && WantF32(p, a, "x", why) &&
             WantSame(p, a, o, "the output", why);
    case HEARTH_OP_COPY:
      if (!IsFloat(a.dtype) || !IsFloat(o.dtype)) {
        *why = StrFormat("%s: %s -> %s; this plugin converts between F32, F16 and BF16", name,
                         plugin::DtypeName(a.dtype), plugin::DtypeName(o.dtype));
        return false;
      }
      return WantSame(p, a, o, "the output", why);
    case HEARTH_OP_RMS_NORM: {
      float eps;
      std::memcpy(&eps, p.params, sizeof(eps));
      if (!std::isfinite(eps) || eps < 0) {
        *why = StrFormat("%s: eps %g must be finite and >= 0", name, eps);
        return false;
      }
      if (!WantF32(p, o, "the output", why) || !WantF32(p, a, "x", why) ||
          !WantSame(p, a, o, "the output", why)) {
        return false;
      }
      if (p.has[1]) {
        const TRef& w = p.in[1];
        if (!WantF32(p, w, "w", why)) return false;
        if (w.ne[0] != a.ne[0] || w.ne[1] * w.ne[2] * w.ne[3] != 1) {
          *why = StrFormat("%s: w is %s, want [%lld]", name, Shape(w).c_str(),
                           static_cast<long long>(a.ne[0]));
          return false;
        }
      }
      return true;
    }
    case HEARTH_OP_GET_ROWS:
      if (!IsWeight(a.dtype)) {
        *why = StrFormat("%s: table has dtype %s", name, plugin::DtypeName(a.dtype));
        return false;
      }
      if (b.dtype != HEARTH_DTYPE_I32 || b.ne[1] * b.ne[2] * b.ne[3] != 1) {
        *why = StrFormat("%s: ids must be I32 [T]; got %s %s", name, plugin::DtypeName(b.dtype),
                         Shape(b).c_str());
        return false;
      }
      if (a.ne[2] * a.ne[3] != 1) {
        *why = StrFormat("%s: table %s has more than 2 dims", name, Shape(a).c_str());
        return false;
      }
      if (!WantF32(p, o, "the output", why)) return false;
      if (o.ne[0] != a.ne[0] || o.ne[1] != b.ne[0] || o.ne[2] * o.ne[3] != 1) {
        *why = StrFormat("%s: the output is %s, want [%lld, %lld]", name, Shape(o).c_str(),
                         static_cast<long long>(a.ne[0]), static_cast<long long>(b.ne[0]));
        return false;
      }
      return true;
    case HEARTH_OP_MUL_MAT:
      if (!IsWeight(a.dtype)) {
        *why = StrFormat("%s: w has dtype %s", name, plugin::DtypeName(a.dtype));
        return false;
      }
      if (!WantF32(p, b, "x", why) || !WantF32(p, o, "the output", why)) return false;
      if (a.ne[0] != b.ne[0] || o.ne[0] != a.ne[1] || o.ne[1] != b.ne[1] || o.ne[2] != b.ne[2] ||
          o.ne[3] != b.ne[3] || (a.ne[2] != 1 && a.ne[2] != b.ne[2]) ||
          (a.ne[3] != 1 && a.ne[3] != b.ne[3])) {
        *why = StrFormat("%s: w %s, x %s, out %s do not form a product", name, Shape(a).c_str(),
                         Shape(b).c_str(), Shape(o).c_str());
        return false;
      }
      return true;
    case HEARTH_OP_ROPE: {
      hearth_rope_params rp;
      std::memcpy(&rp, p.params, sizeof(rp));
      if (!WantF32(p, o, "the output", why) || !WantF32(p, a, "x", why) ||
          !WantSame(p, a, o, "the output", why)) {
        return false;
      }
      if (rp.n_rot <= 0 || rp.n_rot % 2 != 0 || rp.n_rot > a.ne[0] ||
          (rp.mode != HEARTH_ROPE_NORMAL && rp.mode != HEARTH_ROPE_NEOX) ||
          !std::isfinite(rp.theta_base) || rp.theta_base <= 0 || !std::isfinite(rp.freq_scale)) {
        *why = StrFormat(
            "%s: params n_rot %d (head dim %lld), mode %d, theta_base %g, "
            "freq_scale %g are not valid",
            name, rp.n_rot, static_cast<long long>(a.ne[0]), rp.mode, rp.theta_base, rp.freq_scale);
        return false;
      }
      if (a.ne[3] != 1 || b.dtype != HEARTH_DTYPE_I32 || b.ne[0] != a.ne[2] ||
          b.ne[1] * b.ne[2] * b.ne[3] != 1) {
        *why = StrFormat("%s: x %s needs pos I32 [%lld]; got %s %s", name, Shape(a).c_str(),
                         static_cast<long long>(a.ne[2]), plugin::DtypeName(b.dtype),
                         Shape(b).c_str());
        return false;
      }
      if (p.has[2]) {
        const TRef& ff = p.in[2];
        if (!WantF32(p, ff, "freq_factors", why)) return false;
        if (ff.ne[0] != rp.n_rot / 2 || ff.ne[1] * ff.ne[2] * ff.ne[3] != 1) {
          *why =
              StrFormat("%s: freq_factors is %s, want [%d]", name, Shape(ff).c_str(), rp.n_rot / 2);
          return false;
        }
      }
      return true;
    }
    case HEARTH_OP_ATTENTION: {
      const TRef &q = p.in[0], &k = p.in[1], &v = p.in[2], &kc = p.in[3], &vc = p.in[4];
      const TRef& pos = p.in[5];
      if (!WantF32(p, o, "the output", why) || !WantF32(p, q, "q", why) ||
          !WantF32(p, k, "k", why) || !WantF32(p, v, "v", why) || !WantI32(p, pos, "pos", why) ||
          (p.has[6] && !WantI32(p, p.in[6], "seq", why)) ||
          (p.has[7] && !WantI32(p, p.in[7], "blocks", why)) ||
          (p.has_extra[0] && !WantF32(p, p.extra[0], "lse", why))) {
        return false;
      }
      for (const TRef* c : {&kc, &vc}) {
        if (c->dtype != HEARTH_DTYPE_F32 && c->dtype != HEARTH_DTYPE_F16) {
          *why = StrFormat("%s: a cache has dtype %s, want F32 or F16", name,
                           plugin::DtypeName(c->dtype));
          return false;
        }
      }
      const int64_t dk = q.ne[0], nh = q.ne[1], T = q.ne[2], dv = v.ne[0], nkv = k.ne[1];
      auto shape4 = [&](const TRef& t, int64_t a0, int64_t a1, int64_t a2, int64_t a3,
                        const char* what) {
        if (t.ne[0] == a0 && t.ne[1] == a1 && t.ne[2] == a2 && t.ne[3] == a3) return true;
        *why = StrFormat("%s: %s is %s, want [%lld, %lld, %lld, %lld]", name, what,
                         Shape(t).c_str(), static_cast<long long>(a0), static_cast<long long>(a1),
                         static_cast<long long>(a2), static_cast<long long>(a3));
        return false;
      };
      if (!shape4(q, dk, nh, T, 1, "q") || !shape4(k, dk, nkv, T, 1, "k") ||
          !shape4(v, dv, nkv, T, 1, "v") || !shape4(kc, dk, nkv, kc.ne[2], kc.ne[3], "k_cache") ||
          !shape4(vc, dv, nkv, kc.ne[2], kc.ne[3], "v_cache") ||
          !shape4(o, dv, nh, T, 1, "the output") || !WantVector(p, pos, T, "pos", why) ||
          (p.has[6] && !WantVector(p, p.in[6], T, "seq", why)) ||
          (p.has_extra[0] && !shape4(p.extra[0], nh, T, 1, 1, "lse"))) {
        return false;
      }
      if (nkv < 1 || nh % nkv != 0) {
        *why = StrFormat("%s: n_head %lld is not a multiple of n_head_kv %lld", name,
                         static_cast<long long>(nh), static_cast<long long>(nkv));
        return false;
      }
      if (p.has[7] && (p.in[7].ne[2] * p.in[7].ne[3] != 1 || p.in[7].ne[0] < 1 || kc.ne[2] < 1)) {
        *why = StrFormat(
            "%s: the block table %s must be [max_blocks >= 1, n_seq] over pages of "
            ">= 1 rows",
            name, Shape(p.in[7]).c_str());
        return false;
      }
      if (dv > kMaxAttentionDv) {
        *why = StrFormat("%s: head_dim_v %lld is more than the %lld this plugin implements", name,
                         static_cast<long long>(dv), static_cast<long long>(kMaxAttentionDv));
        return false;
      }
      const hearth_attention_params ap = p.Params<hearth_attention_params>();
      if (!std::isfinite(ap.scale) || !(ap.softcap >= 0.0f) || !std::isfinite(ap.softcap) ||
          ap.window < 0) {
        *why = StrFormat(
            "%s: scale %g, softcap %g, window %d: want a finite scale, softcap 0 or "
            "finite > 0, window >= 0",
            name, static_cast<double>(ap.scale), static_cast<double>(ap.softcap), ap.window);
        return false;
      }
      // The caches are written: they share no byte with any other tensor.
      for (int c = 3; c <= 4 && !p.shapes_only; ++c) {
        for (int i = 0; i < kMaxInputs; ++i) {
          if (i != c && p.has[i] && Overlap(p.in[c], p.in[i])) {
            *why = StrFormat("%s: input %d (a cache) overlaps input %d", name, c, i);
            return false;
          }
        }
      }
      return true;
    }
    default:
      *why = StrFormat("%s is not implemented by this plugin yet", name);
      return false;
  }
}

namespace {

AttentionArgs AttentionArgsOf(const Prepared& p) {
  AttentionArgs a;
  a.out = p.out;
  a.q = p.in[0], a.k = p.in[1], a.v = p.in[2], a.k_cache = p.in[3], a.v_cache = p.in[4];
  a.pos = p.in[5];
  a.seq = p.in[6], a.has_seq = p.has[6];
  a.blocks = p.in[7], a.has_blocks = p.has[7];
  a.lse = p.extra[0], a.has_lse = p.has_extra[0];
  const hearth_attention_params ap = p.Params<hearth_attention_params>();
  a.scale = ap.scale, a.softcap = ap.softcap, a.window = ap.window;
  return a;
}

}  // namespace

int64_t ForwardWorkBytes(const Prepared& p) {
  return p.op == HEARTH_OP_ATTENTION ? AttentionWorkBytes(AttentionArgsOf(p)) : 0;
}

Error LaunchForward(Stream s, const Prepared& p, void* work, int* flag, int flag_value) {
  float f;
  std::memcpy(&f, p.params, sizeof(f));
  switch (p.op) {
    case HEARTH_OP_ADD:
      return LaunchElementwise(s, ElemOp::kAdd, p.out, p.in[0], p.in[1], 0);
    case HEARTH_OP_MUL:
      return LaunchElementwise(s, ElemOp::kMul, p.out, p.in[0], p.in[1], 0);
    case HEARTH_OP_SCALE:
      return LaunchElementwise(s, ElemOp::kScale, p.out, p.in[0], p.in[0], f);
    case HEARTH_OP_SILU_MUL:
      return LaunchElementwise(s, ElemOp::kSiluMul, p.out, p.in[0], p.in[1], 0);
    case HEARTH_OP_GELU_MUL:
      return LaunchElementwise(s, ElemOp::kGeluMul, p.out, p.in[0], p.in[1], 0);
    case HEARTH_OP_COPY:
      return LaunchElementwise(s, ElemOp::kCopy, p.out, p.in[0], p.in[0], 0);
    case HEARTH_OP_RMS_NORM:
      return LaunchRmsNorm(s, p.out, p.in[0], p.has[1] ? &p.in[1] : nullptr, f);
    case HEARTH_OP_SOFTMAX:
      return LaunchSoftmax(s, p.out, p.in[0], f);
    case HEARTH_OP_GET_ROWS:
      return LaunchGetRows(s, p.out, p.in[0], p.in[1], flag, flag_value);
    case HEARTH_OP_MUL_MAT:
      return LaunchMulMat(s, p.out, p.in[0], p.in[1]);
    case HEARTH_OP_ROPE: {
      hearth_rope_params rp;
      std::memcpy(&rp, p.params, sizeof(rp));
      return LaunchRope(s, p.out, p.in[0], p.in[1], p.has[2] ? &p.in[2] : nullptr, rp.theta_base,
                        rp.freq_scale, rp.n_rot, rp.mode);
    }
    case HEARTH_OP_ATTENTION:
      return LaunchAttention(s, AttentionArgsOf(p), static_cast<float*>(work), flag, flag_value);
    default:
      return kSuccess;
  }
}

}  // namespace hearth::gpu
