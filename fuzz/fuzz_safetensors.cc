// fuzz_safetensors.cc — libFuzzer target for the safetensors reader: any
// byte string is parsed with File::FromMemory; when it validates, every
// tensor's bytes are touched and the invariants the reader promises are
// checked, so an accepted file whose offsets or shapes lie shows up as an
// out-of-bounds read under ASan or a trap here.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "sdk/src/format/safetensors.h"

using hearth_fuzz::Touch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace st = hearth::safetensors;
  auto file = st::File::FromMemory(data, size, "fuzz.safetensors");
  if (!file.ok()) return 0;
  const st::File& f = **file;
  volatile uint64_t sink = f.file_size() + f.data_offset();
  if (f.data_offset() > size) __builtin_trap();
  for (const auto& [key, value] : f.metadata()) sink = sink + key.size() + value.size();

  const std::string* previous = nullptr;
  for (const st::TensorInfo& t : f.tensors()) {
    if (previous != nullptr && !(*previous < t.name)) __builtin_trap();  // sorted, unique
    previous = &t.name;
    if (f.Find(t.name) != &t) __builtin_trap();
    if (t.name.empty() || t.shape.size() > st::kMaxDims) __builtin_trap();
    int64_t elem_bytes = 0;
    uint32_t hearth_dtype = 0;
    if (!st::DtypeInfo(t.dtype_name, &elem_bytes, &hearth_dtype)) __builtin_trap();
    if (elem_bytes != t.elem_bytes || hearth_dtype != t.hearth_dtype) __builtin_trap();
    // A tensor the reader accepted lies inside the input, after the header.
    if (t.offset < f.data_offset() || t.offset > size || t.size > size - t.offset) {
      __builtin_trap();
    }
    if (static_cast<uint64_t>(t.n_elements()) * static_cast<uint64_t>(t.elem_bytes) != t.size) {
      __builtin_trap();
    }
    if (t.size != 0) {
      if (t.data != data + t.offset) __builtin_trap();
      sink = sink + Touch(t.data, t.size);
    }
  }
  (void)f.Find("no.such.tensor");
  (void)sink;
  return 0;
}
