// Training data through hearth.h only: hearth_dataset_load on the tiny Qwen2
// model (ChatML), checked against what the same C ABI does for inference —
// the prompt part of a conversation must be exactly the ids a session is fed
// for hearth_chat_format(..., add_generation_prompt=1) — plus the capacity
// protocol, limits, truncation and errors naming the file and line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "hearth/hearth.h"
#include "capi_test_util.h"

namespace {

const std::string kQwen = std::string(HEARTH_TEST_DATA) + "/models/tiny-qwen2-f32.gguf";

using hearth_test::Error;

class CapiDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    Error rt_err;
    rt_ = hearth_test::TestRuntime(&rt_err);
    ASSERT_NE(rt_, nullptr) << rt_err.message();
    Error err{hearth_model_load(rt_, kQwen.c_str(), nullptr, &model_)};
    ASSERT_EQ(err.e, nullptr) << err.message();
    char tmpl[] = "/tmp/hearth_dataset_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    hearth_dataset_free(data_);
    hearth_model_free(model_);
    hearth_runtime_free(rt_);
    for (const std::string& f : files_) std::remove(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    files_.push_back(path);
    return path;
  }
  std::vector<int32_t> Tokenize(const std::string& text, uint32_t flags) {
    size_t n = 0;
    EXPECT_EQ(hearth_tokenize(model_, text.data(), text.size(), flags, nullptr, 0, &n), nullptr);
    std::vector<int32_t> ids(n);
    EXPECT_EQ(hearth_tokenize(model_, text.data(), text.size(), flags, ids.data(), n, &n), nullptr);
    return ids;
  }
  std::string Chat(const std::vector<hearth_chat_message>& m, int gen) {
    size_t n = 0;
    EXPECT_EQ(hearth_chat_format(model_, m.data(), m.size(), gen, nullptr, 0, &n), nullptr);
    std::string text(n, '\0');
    EXPECT_EQ(hearth_chat_format(model_, m.data(), m.size(), gen, text.data(), n, &n), nullptr);
    return text;
  }
  void Example(size_t i, std::vector<int32_t>* ids, std::vector<uint8_t>* trained, uint64_t* line) {
    size_t n = 0;
    Error e1{hearth_dataset_get_example(data_, i, nullptr, nullptr, 0, &n, line)};
    ASSERT_EQ(e1.e, nullptr) << e1.message();
    ids->assign(n, -1);
    trained->assign(n, 9);
    Error e2{hearth_dataset_get_example(data_, i, ids->data(), trained->data(), n, &n, line)};
    ASSERT_EQ(e2.e, nullptr) << e2.message();
  }

  hearth_runtime* rt_ = nullptr;
  hearth_model* model_ = nullptr;
  hearth_dataset* data_ = nullptr;
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(CapiDataset, ConversationPromptIsWhatASessionIsFed) {
  const std::string path =
      Write("chat.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello there\"}, "
            "{\"role\": \"assistant\", \"content\": \"Hi! How can I help?\"}]}\n"
            "{\"prompt\": \"Q:\", \"completion\": \" yes\"}\n");
  Error err{hearth_dataset_load(model_, path.c_str(), nullptr, &data_)};
  ASSERT_EQ(err.e, nullptr) << err.message();
  hearth_dataset_info info = HEARTH_DATASET_INFO_INIT;
  ASSERT_EQ(hearth_dataset_get_info(data_, &info), nullptr);
  EXPECT_EQ(info.n_examples, 2u);
  EXPECT_EQ(info.n_messages, 1u);
  EXPECT_EQ(info.n_prompt_completion, 1u);
  EXPECT_EQ(info.n_text, 0u);
  hearth_model_info mi = HEARTH_MODEL_INFO_INIT;
  ASSERT_EQ(hearth_model_get_info(model_, &mi), nullptr);
  EXPECT_EQ(info.max_tokens, mi.n_ctx_train);

  std::vector<int32_t> ids;
  std::vector<uint8_t> trained;
  uint64_t line = 0;
  Example(0, &ids, &trained, &line);
  EXPECT_EQ(line, 1u);
  const uint32_t chat_flags = HEARTH_TOKENIZE_ADD_SPECIAL | HEARTH_TOKENIZE_PARSE_SPECIAL;
  const std::vector<int32_t> prompt = Tokenize(Chat({{"user", "Hello there"}}, 1), chat_flags);
  const std::vector<int32_t> whole = Tokenize(
      Chat({{"user", "Hello there"}, {"assistant", "Hi! How can I help?"}}, 0), chat_flags);
  EXPECT_EQ(ids, whole);
  ASSERT_LT(prompt.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool in_prompt = i < prompt.size();
    if (in_prompt) {
      EXPECT_EQ(ids[i], prompt[i]) << i;
    }
    // Trained: the answer and its <|im_end|>; not the newline after it.
    const bool want = !in_prompt && i + 1 < ids.size();
    EXPECT_EQ(trained[i], want ? 1 : 0) << i;
  }
  EXPECT_TRUE(hearth_token_is_eog(model_, ids[ids.size() - 2]));
  uint64_t n_trained = 0;
  for (size_t k = 0; k < info.n_examples; ++k) {
    Example(k, &ids, &trained, &line);
    for (uint8_t t : trained) n_trained += t;
  }
  EXPECT_EQ(n_trained, info.n_trained_tokens);
}

TEST_F(CapiDataset, CapacityIndexAndArguments) {
  const std::string path = Write("t.jsonl", "{\"text\": \"abc def\"}\n");
  ASSERT_EQ(hearth_dataset_load(model_, path.c_str(), nullptr, &data_), nullptr);
  size_t n = 0;
  ASSERT_EQ(hearth_dataset_get_example(data_, 0, nullptr, nullptr, 0, &n, nullptr), nullptr);
  ASSERT_GT(n, 1u);
  std::vector<int32_t> ids(n);
  Error small{hearth_dataset_get_example(data_, 0, ids.data(), nullptr, n - 1, &n, nullptr)};
  EXPECT_EQ(hearth_error_code(small.e), HEARTH_RESOURCE_EXHAUSTED);
  // Only the trained flags.
  std::vector<uint8_t> trained(n, 7);
  ASSERT_EQ(hearth_dataset_get_example(data_, 0, nullptr, trained.data(), n, &n, nullptr), nullptr);
  EXPECT_EQ(trained[0], 0);
  EXPECT_EQ(trained[n - 1], 1);
  Error past{hearth_dataset_get_example(data_, 1, nullptr, nullptr, 0, &n, nullptr)};
  EXPECT_EQ(hearth_error_code(past.e), HEARTH_OUT_OF_RANGE);
  Error null_out{hearth_dataset_get_example(data_, 0, nullptr, nullptr, 4, &n, nullptr)};
  EXPECT_EQ(hearth_error_code(null_out.e), HEARTH_INVALID_ARGUMENT);
  hearth_dataset* d = nullptr;
  Error no_model{hearth_dataset_load(nullptr, path.c_str(), nullptr, &d)};
  EXPECT_EQ(hearth_error_code(no_model.e), HEARTH_INVALID_ARGUMENT);
  hearth_dataset_params bad = HEARTH_DATASET_PARAMS_INIT;
  bad.struct_size = 3;
  Error size{hearth_dataset_load(model_, path.c_str(), &bad, &d)};
  EXPECT_EQ(hearth_error_code(size.e), HEARTH_INVALID_ARGUMENT);
  EXPECT_EQ(d, nullptr);
  hearth_dataset_free(nullptr);
}

TEST_F(CapiDataset, LimitsAndErrorsNameTheFileAndLine) {
  const std::string path =
      Write("long.jsonl", "{\"text\": \"a\"}\n{\"text\": \"" + std::string(200, 'x') + " y z\"}\n");
  hearth_dataset_params p = HEARTH_DATASET_PARAMS_INIT;
  p.max_tokens = 4;
  Error too_long{hearth_dataset_load(model_, path.c_str(), &p, &data_)};
  EXPECT_EQ(hearth_error_code(too_long.e), HEARTH_INVALID_ARGUMENT);
  EXPECT_NE(too_long.message().find(path + ":2: the example is"), std::string::npos)
      << too_long.message();
  EXPECT_EQ(data_, nullptr);
  p.truncate = 1;
  ASSERT_EQ(hearth_dataset_load(model_, path.c_str(), &p, &data_), nullptr);
  hearth_dataset_info info = HEARTH_DATASET_INFO_INIT;
  ASSERT_EQ(hearth_dataset_get_info(data_, &info), nullptr);
  EXPECT_EQ(info.n_truncated, 1u);
  EXPECT_EQ(info.longest, 4u);

  const std::string bad = Write("bad.jsonl",
                                "{\"text\": \"ok\"}\n{\"messages\": [{\"role\": "
                                "\"user\", \"content\": \"hi\"}]}\n");
  hearth_dataset* d = nullptr;
  Error no_answer{hearth_dataset_load(model_, bad.c_str(), nullptr, &d)};
  EXPECT_NE(no_answer.message().find(bad + ":2: 'messages' has no assistant message"),
            std::string::npos)
      << no_answer.message();
  Error missing{hearth_dataset_load(model_, (dir_ + "/nope.jsonl").c_str(), nullptr, &d)};
  EXPECT_NE(missing.message().find("nope.jsonl"), std::string::npos) << missing.message();
  EXPECT_EQ(d, nullptr);
}

}  // namespace
