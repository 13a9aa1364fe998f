// dataset.h — training data: a JSONL file of examples turned into token ids
// with a per-token flag saying whether the loss trains on it. This is what a
// LoRA trainer consumes, and what `hearth data` shows a user before they
// spend hours training on data the model sees differently than they think.
//
// One JSON object per line, of one of three kinds (docs/training-data.md):
//   {"text": "..."}                              every token trained
//   {"prompt": "...", "completion": "..."}       the completion trained
//   {"messages": [{"role": ..., "content": ...}, ...]}
//                                                rendered in the model's chat
//                                                format; the assistant turns
//                                                trained (content + end marker)
// Errors name the file and the line.
#ifndef HEARTH_SDK_SRC_TRAIN_DATASET_H_
#define HEARTH_SDK_SRC_TRAIN_DATASET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::train {

enum class RecordKind { kText, kPromptCompletion, kMessages };
inline constexpr int kRecordKinds = 3;

struct Example {
  std::vector<int32_t> tokens;
  // trained[i] = 1: the loss includes predicting tokens[i] from tokens[0, i).
  // trained[0] is always 0 (nothing comes before it).
  std::vector<uint8_t> trained;
  int64_t line = 0;  // 1-based line of the record in the file
  RecordKind kind = RecordKind::kText;
  bool truncated = false;
};

struct DatasetOptions {
  int64_t max_tokens = 0;  // the longest example, > 0 (a trainer's context)
  // Longer examples: cut at max_tokens (from the end) instead of an error.
  bool truncate = false;
  // The chat format ("gemma", "chatml", …) for messages records, from
  // chat::DetectFormat. Empty: such a record is an error that quotes
  // `no_chat_format_reason`.
  std::string chat_format;
  std::string no_chat_format_reason;
};

struct DatasetStats {
  int64_t n_examples = 0;
  int64_t n_tokens = 0;
  int64_t n_trained = 0;
  int64_t longest = 0;  // tokens of the longest example (after truncation)
  int64_t n_truncated = 0;
  int64_t by_kind[kRecordKinds] = {0, 0, 0};
};

class Dataset {
 public:
  // Reads a JSONL file (memory-mapped). `name` in errors is the path.
  static absl::StatusOr<Dataset> Load(const std::string& path, const tok::Tokenizer& tok,
                                      const DatasetOptions& options);
  // Parses JSONL text; errors start with "<name>:<line>:".
  static absl::StatusOr<Dataset> Parse(std::string_view jsonl, std::string_view name,
                                       const tok::Tokenizer& tok, const DatasetOptions& options);

  const std::vector<Example>& examples() const { return examples_; }
  const DatasetStats& stats() const { return stats_; }

 private:
  std::vector<Example> examples_;
  DatasetStats stats_;
};

}  // namespace hearth::train

#endif  // HEARTH_SDK_SRC_TRAIN_DATASET_H_
