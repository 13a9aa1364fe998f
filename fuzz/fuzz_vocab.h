// fuzz_vocab.h — the tokenizer of a fixed, real vocabulary file for the
// fuzz targets that need one, loaded once. A file that does not load is a
// broken build, not a finding: the target says why and aborts.
#ifndef HEARTH_FUZZ_FUZZ_VOCAB_H_
#define HEARTH_FUZZ_FUZZ_VOCAB_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth_fuzz {

// Never freed on purpose (LeakSanitizer ignores reachable statics). The
// File may go: VocabData owns copies of its strings.
inline const hearth::tok::Tokenizer* LoadVocabFile(const char* path) {
  auto die = [path](const absl::Status& s) {
    std::fprintf(stderr, "fuzz: %s: %s\n", path, s.ToString().c_str());
    std::abort();
  };
  auto file = hearth::gguf::File::Open(path);
  if (!file.ok()) die(file.status());
  auto vocab = hearth::tok::LoadVocab(**file);
  if (!vocab.ok()) die(vocab.status());
  auto t = hearth::tok::Tokenizer::Create(*std::move(vocab));
  if (!t.ok()) die(t.status());
  return t->release();
}

}  // namespace hearth_fuzz

#endif  // HEARTH_FUZZ_FUZZ_VOCAB_H_
