// tokenizer_file.h — the tokenizer of a GGUF file (a vocabulary-only file or
// a model), for tests that need a real vocabulary. A failure to load is
// reported as a test failure and gives nullptr.
#ifndef HEARTH_TESTS_UNIT_TOKENIZER_FILE_H_
#define HEARTH_TESTS_UNIT_TOKENIZER_FILE_H_

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::tok {

inline std::unique_ptr<Tokenizer> LoadTokenizerFile(const std::string& path) {
  auto file = gguf::File::Open(path);
  if (!file.ok()) {
    ADD_FAILURE() << file.status();
    return nullptr;
  }
  auto vocab = LoadVocab(**file);  // copies what it needs: the file may go
  if (!vocab.ok()) {
    ADD_FAILURE() << vocab.status();
    return nullptr;
  }
  auto t = Tokenizer::Create(*std::move(vocab));
  if (!t.ok()) {
    ADD_FAILURE() << t.status();
    return nullptr;
  }
  return *std::move(t);
}

}  // namespace hearth::tok

#endif  // HEARTH_TESTS_UNIT_TOKENIZER_FILE_H_
