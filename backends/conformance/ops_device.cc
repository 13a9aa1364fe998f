// ops_device.cc — the conformance checks of the vtable slots that are not
// ops: buffer_copy (against memmove) and weight_place (a weight placed
// tensor by tensor, possibly repacked, must multiply exactly as the same
// bytes do in a plain buffer: whole, and through row views, as the host
// uses it). Their table rows are named like ops: BUFFER_COPY, WEIGHT_PLACE.
#include <cstring>
#include <utility>

#include "backends/conformance/ops_common.h"

namespace hearth::conformance {
namespace {

// Seeds of these rows' random streams (the ops use their op number).
constexpr uint32_t kBufferCopySeed = 0x10001, kWeightPlaceSeed = 0x10002;

void GenBufferCopy(Suite& s) {
  s.Row("BUFFER_COPY", "bytes");
  for (uint64_t size : Pick<uint64_t>(s, {4099}, {1, 64, 4099, 1 << 20})) {
    const uint64_t a = size < 16 ? 16 : size;
    s.Book(s.plugin().RunBufferCopy(s.rng(), a, a / 2 + 16),
           "buffers of " + std::to_string(a) + " and " + std::to_string(a / 2 + 16) + " bytes");
  }
}

// MUL_MAT over a placed weight: all rows, and a view of some rows starting
// past the first (the host's views of a weight are whole rows).
void GenWeightPlace(Suite& s) {
  Rng& rng = s.rng();
  for (uint32_t dt : WeightDtypes()) {
    s.Row("WEIGHT_PLACE", "w=" + DN(dt) + " x=F32");
    const int64_t be = hearth_dtype_block_elems(dt);
    const int64_t K = be > 1 ? 2 * be : 72;
    const int64_t M = 9;
    for (bool outlives : {true, false}) {
      for (int64_t T : Pick<int64_t>(s, {3}, {1, 3, 20})) {
        for (const auto& [first, rows] : std::vector<std::pair<int64_t, int64_t>>{{0, M}, {2, 5}}) {
          Case c(&rng, "w [" + std::to_string(K) + ", " + std::to_string(M) + "] rows [" +
                           std::to_string(first) + ", " + std::to_string(first + rows) + "), T=" +
                           std::to_string(T) + (outlives ? ", data outlives" : ", data copied"));
          // The weight's bytes and values, as a plain or block tensor.
          Vec w;
          std::vector<uint8_t> bytes;
          if (IsBlockDtype(dt)) {
            bytes = RandomBlocks(rng, dt, M, K);
            const int64_t rb = K / be * hearth_dtype_block_bytes(dt);
            w.assign(static_cast<size_t>(K * M), 0);
            for (int64_t r = 0; r < M; ++r) DequantizeRow(dt, &bytes[r * rb], K, &w[r * K]);
          } else {
            const int64_t eb = hearth_dtype_block_bytes(dt);
            const Vec vals = RandomVec(rng, K * M);
            bytes.resize(static_cast<size_t>(K * M * eb));
            w.resize(vals.size());
            for (size_t i = 0; i < vals.size(); ++i) {
              w[i] = RoundTo(dt, vals[i]);
              if (dt == HEARTH_DTYPE_F32) {
                const float f = static_cast<float>(w[i]);
                std::memcpy(&bytes[i * 4], &f, 4);
              } else {
                const uint16_t h = dt == HEARTH_DTYPE_F16 ? FloatToHalf(static_cast<float>(w[i]))
                                                          : FloatToBf16(static_cast<float>(w[i]));
                std::memcpy(&bytes[i * 2], &h, 2);
              }
            }
          }
          const int tw = c.PlacedWeight(dt, K, M, bytes, outlives, first, rows);
          Vec x;
          const int tx =
              c.Input(HEARTH_DTYPE_F32, {K, T}, RandomVec(rng, K * T), Case::kContiguous, &x);
          const int to = c.Output(HEARTH_DTYPE_F32, {rows, T}, Case::kContiguous);
          c.Node(HEARTH_OP_MUL_MAT, {to}, {tw, tx});
          const Vec wv(w.begin() + first * K, w.begin() + (first + rows) * K);
          AddProductCheck(c, to, wv, x, K, rows, T, 1, 1, 1, 1, dt);
          s.Run(c);
        }
      }
    }
  }
}

}  // namespace

void AddDeviceChecks(std::vector<OpEntry>* ops) {
  ops->push_back({kBufferCopySeed, "BUFFER_COPY", GenBufferCopy});
  ops->push_back({kWeightPlaceSeed, "WEIGHT_PLACE", GenWeightPlace});
}

}  // namespace hearth::conformance
