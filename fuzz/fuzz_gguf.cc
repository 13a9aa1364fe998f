// fuzz_gguf.cc — libFuzzer target for the GGUF reader: any byte string is
// parsed with File::FromMemory; when it validates, every getter is called on
// every key and every tensor's bytes are touched, so an accepted file whose
// offsets or counts lie shows up as an out-of-bounds read under ASan.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "sdk/src/format/gguf.h"

using hearth_fuzz::Touch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = hearth::gguf::File::FromMemory(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  const hearth::gguf::File& f = **file;
  volatile uint64_t sink = f.version() + f.alignment() + f.data_offset();

  for (const auto& [key, value] : f.metadata()) {
    if (f.Find(key) == nullptr) __builtin_trap();  // every listed key is findable
    (void)f.GetString(key);
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetBool(key);
    if (auto a = f.GetStringArray(key); a.ok()) {
      for (std::string_view s : *a) {
        sink = sink + Touch(reinterpret_cast<const uint8_t*>(s.data()), s.size());
      }
    }
    if (auto a = f.GetFloatArray(key); a.ok()) sink = sink + a->size();
    if (auto a = f.GetIntArray(key); a.ok()) sink = sink + a->size();
    if (value.type == hearth::gguf::ValueType::kString) {
      sink = sink + Touch(reinterpret_cast<const uint8_t*>(value.str.data()), value.str.size());
    }
  }
  (void)f.Find("general.architecture");
  (void)f.GetString("no.such.key");

  for (const hearth::gguf::TensorInfo& t : f.tensors()) {
    if (f.FindTensor(t.name) == nullptr) __builtin_trap();
    sink = sink + t.n_elements();
    sink = sink + hearth::gguf::GgmlTypeName(t.type).size();
    sink = sink + static_cast<uint64_t>(hearth::gguf::GgmlTypeToHearthDtype(t.type));
    int64_t block_elems = 0, block_bytes = 0;
    if (!hearth::gguf::GgmlTypeGeometry(t.type, &block_elems, &block_bytes)) __builtin_trap();
    // A tensor the reader accepted must lie inside the input.
    if (t.offset > size || t.size > size - t.offset) __builtin_trap();
    if (t.data != nullptr) sink = sink + Touch(t.data, t.size);
  }
  (void)f.FindTensor("no.such.tensor");
  (void)sink;
  return 0;
}
