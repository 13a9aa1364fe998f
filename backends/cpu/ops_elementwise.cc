// ops_elementwise.cc — the elementwise graph ops of the CPU backend: ADD and
// MUL (with broadcast of b), SCALE, the gated activations SILU_MUL and
// GELU_MUL, and COPY between F32, F16 and BF16 with arbitrary strides.
#include <cmath>
#include <cstring>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

constexpr uint32_t kF32 = 1u << HEARTH_DTYPE_F32;
constexpr uint32_t kFloats = kF32 | (1u << HEARTH_DTYPE_F16) | (1u << HEARTH_DTYPE_BF16);

// Cheap elementwise ops get a thread per this many elements; below that the
// wake-up costs more than the work.
constexpr int64_t kCheapElemsPerThread = 32768;
// Ops that evaluate exp/tanh per element.
constexpr int64_t kTranscendentalElemsPerThread = 4096;

bool AllF32(const Node& n, int n_in, std::string* why) {
  for (int s = -1; s < n_in; ++s) {
    if (!WantDtype(n, s, HEARTH_DTYPE_F32, why)) return false;
  }
  return true;
}

bool AllRowContiguous(const Node& n, int n_in, std::string* why) {
  for (int s = -1; s < n_in; ++s) {
    if (!WantRowContiguous(n, s, why)) return false;
  }
  return true;
}

size_t NoScratch(const Node&, int) { return 0; }

// ---------------------------------------------------------------- ADD / MUL

bool BinaryDtypes(const Node& n, std::string* why) { return AllF32(n, 2, why); }

bool BinaryCheck(const Node& n, std::string* why) {
  if (!AllRowContiguous(n, 2, why) || !WantSameShape(n, -1, 0, why)) return false;
  const Tensor& a = n.in[0];
  const Tensor& b = n.in[1];
  for (int d = 0; d < 4; ++d) {
    if (b.ne[d] == a.ne[d] || (d > 0 && b.ne[d] == 1)) continue;
    *why = StrFormat(
        "input 1 (tensor %d) has shape %s, which does not broadcast "
        "to input 0's %s "
        "(each of ne[1..3] must equal a's or be 1; ne[0] must equal)",
        n.in_id[1], ShapeStr(b).c_str(), ShapeStr(a).c_str());
    return false;
  }
  return true;
}

template <bool kMul>
bool BinaryRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& a = n.in[0];
  const Tensor& b = n.in[1];
  const Tensor& out = n.out;
  ParallelRowPieces(
      env, a.Rows(), a.ne[0], kCheapElemsPerThread, [&](int64_t r, int64_t i0, int64_t i1) {
        const int64_t i23 = r / a.ne[1];
        const int64_t j1 = r % a.ne[1], j2 = i23 % a.ne[2], j3 = i23 / a.ne[2];
        const float* x = reinterpret_cast<const float*>(a.Row(j1, j2, j3));
        const float* y = reinterpret_cast<const float*>(
            b.Row(b.ne[1] == 1 ? 0 : j1, b.ne[2] == 1 ? 0 : j2, b.ne[3] == 1 ? 0 : j3));
        float* o = reinterpret_cast<float*>(out.Row(j1, j2, j3));
        if (kMul) {
          for (int64_t i = i0; i < i1; ++i) o[i] = x[i] * y[i];
        } else {
          for (int64_t i = i0; i < i1; ++i) o[i] = x[i] + y[i];
        }
      });
  return true;
}

// -------------------------------------------------------------------- SCALE

bool ScaleDtypes(const Node& n, std::string* why) { return AllF32(n, 1, why); }

bool ScaleCheck(const Node& n, std::string* why) {
  return AllRowContiguous(n, 1, why) && WantSameShape(n, -1, 0, why);
}

bool ScaleRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& a = n.in[0];
  const float s = n.params<hearth_scale_params>().scale;
  const VecOps& vec = Vec();
  ParallelRowPieces(env, a.Rows(), a.ne[0], kCheapElemsPerThread,
                    [&](int64_t r, int64_t i0, int64_t i1) {
                      vec.scale_mul(n.out.F32Row(r) + i0, a.F32Row(r) + i0, s, nullptr, i1 - i0);
                    });
  return true;
}

// ------------------------------------------------------ SILU_MUL / GELU_MUL

bool GatedDtypes(const Node& n, std::string* why) { return AllF32(n, 2, why); }

bool GatedCheck(const Node& n, std::string* why) {
  return AllRowContiguous(n, 2, why) && WantSameShape(n, 1, 0, why) && WantSameShape(n, -1, 0, why);
}

template <bool kGelu>
bool GatedRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& g = n.in[0];
  const Tensor& u = n.in[1];
  const VecOps& vec = Vec();
  ParallelRowPieces(env, g.Rows(), g.ne[0], kTranscendentalElemsPerThread,
                    [&](int64_t r, int64_t i0, int64_t i1) {
                      float* y = n.out.F32Row(r) + i0;
                      const float* gr = g.F32Row(r) + i0;
                      const float* ur = u.F32Row(r) + i0;
                      if (kGelu) {
                        vec.gelu_mul(y, gr, ur, i1 - i0);
                      } else {
                        vec.silu_mul(y, gr, ur, i1 - i0);
                      }
                    });
  return true;
}

// --------------------------------------------------------------------- COPY

bool CopyDtypes(const Node& n, std::string* why) {
  return WantDtypeIn(n, 0, kFloats, why) && WantDtypeIn(n, -1, kFloats, why);
}

bool CopyCheck(const Node& n, std::string* why) { return WantSameShape(n, -1, 0, why); }

inline float LoadAsFloat(const uint8_t* p, uint32_t dtype) {
  if (dtype == HEARTH_DTYPE_F32) return *reinterpret_cast<const float*>(p);
  uint16_t h = *reinterpret_cast<const uint16_t*>(p);
  return dtype == HEARTH_DTYPE_F16 ? HalfBitsToFloat(h) : Bf16BitsToFloat(h);
}

inline void StoreFloat(uint8_t* p, uint32_t dtype, float v) {
  if (dtype == HEARTH_DTYPE_F32) {
    *reinterpret_cast<float*>(p) = v;
  } else {
    *reinterpret_cast<uint16_t*>(p) =
        dtype == HEARTH_DTYPE_F16 ? FloatToHalfBits(v) : FloatToBf16Bits(v);
  }
}

// One contiguous row of n elements from src (sdt) into dst (ddt).
void ConvertRow(const uint8_t* src, uint32_t sdt, uint8_t* dst, uint32_t ddt, int64_t n) {
  const VecOps& vec = Vec();
  if (sdt == ddt) {
    if (src != dst) std::memmove(dst, src, static_cast<size_t>(n * PlainElemBytes(sdt)));
  } else if (sdt == HEARTH_DTYPE_F32 && ddt == HEARTH_DTYPE_F16) {
    vec.f32_to_f16(reinterpret_cast<uint16_t*>(dst), reinterpret_cast<const float*>(src), n);
  } else if (sdt == HEARTH_DTYPE_F16 && ddt == HEARTH_DTYPE_F32) {
    vec.f16_to_f32(reinterpret_cast<float*>(dst), reinterpret_cast<const uint16_t*>(src), n);
  } else {
    const int64_t sb = PlainElemBytes(sdt), db = PlainElemBytes(ddt);
    for (int64_t i = 0; i < n; ++i) StoreFloat(dst + i * db, ddt, LoadAsFloat(src + i * sb, sdt));
  }
}

bool CopyRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& x = n.in[0];
  const Tensor& out = n.out;
  const int64_t sb = PlainElemBytes(x.dtype), db = PlainElemBytes(out.dtype);
  const bool rows_contiguous = (x.nb[0] == sb && out.nb[0] == db) || x.ne[0] <= 1;
  ParallelRowPieces(
      env, x.Rows(), x.ne[0], kCheapElemsPerThread, [&](int64_t r, int64_t i0, int64_t i1) {
        const uint8_t* src = x.FlatRow(r);
        uint8_t* dst = out.FlatRow(r);
        if (rows_contiguous) {
          ConvertRow(src + i0 * sb, x.dtype, dst + i0 * db, out.dtype, i1 - i0);
          return;
        }
        for (int64_t i = i0; i < i1; ++i) {
          StoreFloat(dst + i * out.nb[0], out.dtype, LoadAsFloat(src + i * x.nb[0], x.dtype));
        }
      });
  return true;
}

}  // namespace

const OpInfo kOpAdd = {"ADD", 2, 0, true, BinaryDtypes, BinaryCheck, NoScratch, BinaryRun<false>};
const OpInfo kOpMul = {"MUL", 2, 0, true, BinaryDtypes, BinaryCheck, NoScratch, BinaryRun<true>};
const OpInfo kOpScale = {"SCALE", 1, 0, true, ScaleDtypes, ScaleCheck, NoScratch, ScaleRun};
const OpInfo kOpSiluMul = {"SILU_MUL",  2,          0,         true,
                           GatedDtypes, GatedCheck, NoScratch, GatedRun<false>};
const OpInfo kOpGeluMul = {"GELU_MUL",  2,          0,         true,
                           GatedDtypes, GatedCheck, NoScratch, GatedRun<true>};
const OpInfo kOpCopy = {"COPY", 1, 0, true, CopyDtypes, CopyCheck, NoScratch, CopyRun};

}  // namespace hearth::cpu
