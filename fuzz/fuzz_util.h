// fuzz_util.h — what several fuzz targets share: reading a byte range in
// full, so that an accepted input whose offsets or sizes lie shows up as an
// out-of-bounds read under ASan.
#ifndef HEARTH_FUZZ_FUZZ_UTIL_H_
#define HEARTH_FUZZ_FUZZ_UTIL_H_

#include <cstdint>

namespace hearth_fuzz {

// Reads each byte of [p, p + n) so ASan checks the whole range.
inline uint8_t Touch(const uint8_t* p, uint64_t n) {
  uint8_t acc = 0;
  for (uint64_t i = 0; i < n; ++i) acc ^= p[i];
  return acc;
}

}  // namespace hearth_fuzz

#endif  // HEARTH_FUZZ_FUZZ_UTIL_H_
