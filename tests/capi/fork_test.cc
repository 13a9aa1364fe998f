// fork() and the C ABI: a child inherits the parent's handles but not the
// threads behind them (the CPU plugin's pool), so computing with an
// inherited session, model or runtime used to wait forever. Each must now
// fail at once with FAILED_PRECONDITION saying why, while handles the child
// creates itself work (issue 17, class 5). Every child runs under alarm(), so
// a regression fails the test instead of hanging it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "capi_test_util.h"
#include "hearth/hearth.h"

namespace {

using hearth_test::Error;

const std::string kQwen = std::string(HEARTH_TEST_DATA) + "/models/tiny-qwen2-f32.gguf";

// Runs `child` in a fork()ed process under a 10 s alarm and returns how it
// ended: its exit code, or -signal.
int InChild(const std::function<int()>& child) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(10);
    ::_exit(child());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1000;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// 0 when `e` is FAILED_PRECONDITION naming fork and `func`; else 1 (and says why).
int IsForkError(hearth_error* e, const char* func) {
  Error err{e};
  const std::string m = err.message();
  if (hearth_error_code(e) == HEARTH_FAILED_PRECONDITION && m.find("fork") != std::string::npos &&
      m.find(func) != std::string::npos) {
    return 0;
  }
  std::fprintf(stderr, "%s: expected a fork error, got code %d: %s\n", func,
               e ? static_cast<int>(hearth_error_code(e)) : 0, m.c_str());
  return 1;
}

class CapiFork : public ::testing::Test {
 protected:
  void SetUp() override {
    Error rt_err;
    rt_ = hearth_test::TestRuntime(&rt_err);
    ASSERT_NE(rt_, nullptr) << rt_err.message();
    Error err{hearth_model_load(rt_, kQwen.c_str(), nullptr, &model_)};
    ASSERT_EQ(err.e, nullptr) << err.message();
    Error s_err{hearth_session_create(model_, nullptr, &session_)};
    ASSERT_EQ(s_err.e, nullptr) << s_err.message();
    // The parent computes first, so the plugin's threads exist before fork().
    const int32_t ids[] = {1, 2, 3};
    Error f_err{hearth_session_feed(session_, ids, 3)};
    ASSERT_EQ(f_err.e, nullptr) << f_err.message();
  }
  void TearDown() override {
    hearth_session_free(session_);
    hearth_model_free(model_);
    hearth_runtime_free(rt_);
  }

  hearth_runtime* rt_ = nullptr;
  hearth_model* model_ = nullptr;
  hearth_session* session_ = nullptr;
};

TEST_F(CapiFork, AnInheritedSessionFailsAtOnceInTheChild) {
  const int32_t ids[] = {4, 5};
  EXPECT_EQ(InChild([&] { return IsForkError(hearth_session_feed(session_, ids, 2), "feed"); }), 0);
  float logprobs[2];
  EXPECT_EQ(InChild([&] {
              return IsForkError(hearth_session_score(session_, ids, 2, logprobs), "score");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              return IsForkError(
                  hearth_session_generate(session_, "hi", 2, nullptr, nullptr, nullptr, nullptr),
                  "generate");
            }),
            0);
  const hearth_chat_message m[] = {{"user", "hi"}};
  EXPECT_EQ(InChild([&] {
              return IsForkError(
                  hearth_session_generate_chat(session_, m, 1, nullptr, nullptr, nullptr, nullptr),
                  "generate_chat");
            }),
            0);
  // The parent's session is untouched and still works.
  Error err{hearth_session_feed(session_, ids, 2)};
  EXPECT_EQ(err.e, nullptr) << err.message();
}

TEST_F(CapiFork, AnInheritedModelOrRuntimeFailsAtOnceInTheChild) {
  EXPECT_EQ(InChild([&] {
              hearth_session* s = nullptr;
              return IsForkError(hearth_session_create(model_, nullptr, &s), "session_create");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              hearth_model* m = nullptr;
              return IsForkError(hearth_model_load(rt_, kQwen.c_str(), nullptr, &m), "model_load");
            }),
            0);
  // What does not compute stays usable: tokenizing with the inherited model.
  EXPECT_EQ(InChild([&] {
              int32_t ids[8];
              size_t n = 0;
              Error e{hearth_tokenize(model_, "hello", 5, 0, ids, 8, &n)};
              return e.e == nullptr && n > 0 ? 0 : 1;
            }),
            0);
}

TEST_F(CapiFork, AnInheritedTrainerFailsAtOnceInTheChild) {
  char path[] = "/tmp/hearth_fork_data_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string jsonl = "{\"prompt\": \"Ward 3:\", \"completion\": \" stable.\"}\n";
  ASSERT_EQ(::write(fd, jsonl.data(), jsonl.size()), static_cast<ssize_t>(jsonl.size()));
  ::close(fd);
  hearth_dataset* data = nullptr;
  Error d_err{hearth_dataset_load(model_, path, nullptr, &data)};
  ::unlink(path);
  ASSERT_EQ(d_err.e, nullptr) << d_err.message();
  hearth_trainer_params p = HEARTH_TRAINER_PARAMS_INIT;
  p.rank = 2;
  p.epochs = 3;
  hearth_trainer* t = nullptr;
  Error t_err{hearth_trainer_create(model_, data, &p, &t)};
  ASSERT_EQ(t_err.e, nullptr) << t_err.message();
  Error s_err{hearth_trainer_step(t, nullptr)};
  ASSERT_EQ(s_err.e, nullptr) << s_err.message();
  EXPECT_EQ(InChild([&] { return IsForkError(hearth_trainer_step(t, nullptr), "trainer_step"); }),
            0);
  EXPECT_EQ(
      InChild([&] { return IsForkError(hearth_trainer_run(t, nullptr, nullptr), "trainer_run"); }),
      0);
  EXPECT_EQ(InChild([&] {
              double loss = 0;
              return IsForkError(hearth_trainer_evaluate(t, &loss), "trainer_evaluate");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              return IsForkError(hearth_trainer_save(t, "/nonexistent/x"), "trainer_save");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              hearth_adapter* a = nullptr;
              return IsForkError(hearth_trainer_get_adapter(t, &a), "trainer_get_adapter");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              return IsForkError(hearth_trainer_save_checkpoint(t, "/nonexistent/x"),
                                 "trainer_save_checkpoint");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              return IsForkError(hearth_trainer_resume(t, "/nonexistent/x"), "trainer_resume");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              hearth_trainer* t2 = nullptr;
              return IsForkError(hearth_trainer_create(model_, data, &p, &t2), "trainer_create");
            }),
            0);
  EXPECT_EQ(InChild([&] {
              hearth_trainer_free(t);  // lets go without touching the parent's threads
              return 0;
            }),
            0);
  // The parent's trainer is untouched and still works.
  Error again{hearth_trainer_step(t, nullptr)};
  EXPECT_EQ(again.e, nullptr) << again.message();
  hearth_trainer_free(t);
  hearth_dataset_free(data);
}

TEST_F(CapiFork, TheChildCanFreeInheritedHandlesAndMakeItsOwn) {
  EXPECT_EQ(InChild([&] {
              // Freeing what the parent made must not wait for the parent's threads.
              hearth_session_free(session_);
              hearth_model_free(model_);
              hearth_runtime_free(rt_);
              Error rt_err;
              hearth_runtime* rt = hearth_test::TestRuntime(&rt_err);
              if (rt == nullptr) return 1;
              hearth_model* model = nullptr;
              hearth_session* s = nullptr;
              Error e1{hearth_model_load(rt, kQwen.c_str(), nullptr, &model)};
              if (e1.e != nullptr) return 2;
              Error e2{hearth_session_create(model, nullptr, &s)};
              if (e2.e != nullptr) return 3;
              const int32_t ids[] = {1, 2, 3};
              Error e3{hearth_session_feed(s, ids, 3)};
              hearth_session_free(s);
              hearth_model_free(model);
              hearth_runtime_free(rt);
              return e3.e == nullptr ? 0 : 4;
            }),
            0);
}

}  // namespace
