// ops.cc — the op registry of the CPU backend and the contract checks that
// several ops share.
#include "backends/cpu/ops.h"

#include <cstdarg>
#include <cstdio>

namespace hearth::cpu {

const OpInfo* FindOp(uint32_t op) {
  static const OpInfo* const kOps[HEARTH_OP_COUNT_] = {
      nullptr,         &kOpGetRows,      &kOpMulMat,           &kOpAdd,
      &kOpMul,         &kOpScale,        &kOpRmsNorm,          &kOpRope,
      &kOpAttention,   &kOpSiluMul,      &kOpGeluMul,          &kOpSoftmax,
      &kOpCopy,        &kOpLoraMulMat,   &kOpMulMatT,          &kOpOuter,
      &kOpRmsNormBack, &kOpRopeBack,     &kOpAttentionBack,    &kOpSiluMulBack,
      &kOpGeluMulBack, &kOpCrossEntropy, &kOpCrossEntropyBack, &kOpAdamwStep,
      &kOpSumSq,       &kOpDropout,
  };
  return op < HEARTH_OP_COUNT_ ? kOps[op] : nullptr;
}

int64_t RowBytes(uint32_t dtype, int64_t ne0) {
  int64_t be = hearth_dtype_block_elems(dtype);
  return be > 0 ? ne0 / be * hearth_dtype_block_bytes(dtype) : 0;
}

void ByteSpan(const Tensor& t, uintptr_t* lo, uintptr_t* hi) {
  *lo = *hi = reinterpret_cast<uintptr_t>(t.data);
  if (t.Elems() == 0) return;
  int64_t elem = PlainElemBytes(t.dtype);
  int64_t end = elem > 0 ? (t.ne[0] - 1) * t.nb[0] + elem : RowBytes(t.dtype, t.ne[0]);
  for (int d = 1; d < 4; ++d) end += (t.ne[d] - 1) * t.nb[d];
  *hi = *lo + static_cast<uintptr_t>(end);
}

std::string SlotName(const Node& n, int slot) {
  if (slot == -1) return StrFormat("output (tensor %d)", n.out_id);
  if (slot < -1) return StrFormat("output %d (tensor %d)", -slot - 1, n.extra_id[-slot - 2]);
  return StrFormat("input %d (tensor %d)", slot, n.in_id[slot]);
}

std::string ShapeStr(const Tensor& t) {
  return StrFormat("[%lld, %lld, %lld, %lld]", static_cast<long long>(t.ne[0]),
                   static_cast<long long>(t.ne[1]), static_cast<long long>(t.ne[2]),
                   static_cast<long long>(t.ne[3]));
}

const Tensor& SlotTensor(const Node& n, int slot) {
  if (slot == -1) return n.out;
  if (slot < -1) return n.extra[-slot - 2];
  return n.in[slot];
}

bool WantDtype(const Node& n, int slot, uint32_t dtype, std::string* why) {
  const Tensor& t = SlotTensor(n, slot);
  if (t.dtype == dtype) return true;
  *why = SlotName(n, slot) + " has dtype " + DtypeName(t.dtype) + ", want " + DtypeName(dtype);
  return false;
}

bool WantDtypeIn(const Node& n, int slot, uint32_t mask, std::string* why) {
  const Tensor& t = SlotTensor(n, slot);
  if (t.dtype < 32 && (mask >> t.dtype) & 1u) return true;
  std::string want;
  for (uint32_t d = 0; d < HEARTH_DTYPE_COUNT_; ++d) {
    if ((mask >> d) & 1u) want += (want.empty() ? "" : "/") + std::string(DtypeName(d));
  }
  *why = SlotName(n, slot) + " has dtype " + DtypeName(t.dtype) + ", want " + want;
  return false;
}

bool WantRowContiguous(const Node& n, int slot, std::string* why) {
  const Tensor& t = SlotTensor(n, slot);
  int64_t elem = PlainElemBytes(t.dtype);
  if (elem == 0 || t.nb[0] == elem || t.ne[0] <= 1) return true;
  *why = StrFormat("%s has nb[0] = %lld; this op needs contiguous rows (nb[0] = %lld)",
                   SlotName(n, slot).c_str(), static_cast<long long>(t.nb[0]),
                   static_cast<long long>(elem));
  return false;
}

bool WantSameShape(const Node& n, int slot_a, int slot_b, std::string* why) {
  const Tensor& a = SlotTensor(n, slot_a);
  const Tensor& b = SlotTensor(n, slot_b);
  for (int d = 0; d < 4; ++d) {
    if (a.ne[d] != b.ne[d]) {
      *why = SlotName(n, slot_a) + " has shape " + ShapeStr(a) + " but " + SlotName(n, slot_b) +
             " has shape " + ShapeStr(b) + "; they must match";
      return false;
    }
  }
  return true;
}

bool WantDims(const Node& n, int slot, int max_dims, std::string* why) {
  const Tensor& t = SlotTensor(n, slot);
  for (int d = max_dims; d < 4; ++d) {
    if (t.ne[d] != 1) {
      *why = StrFormat("%s has shape %s; at most %d dims allowed here", SlotName(n, slot).c_str(),
                       ShapeStr(t).c_str(), max_dims);
      return false;
    }
  }
  return true;
}

}  // namespace hearth::cpu
