// runtime_test.cc — the version, error and runtime parts of the public C ABI,
// seen from an app: only hearth.h (and hearth.hpp) and libhearth.so. NULL
// arguments, struct_size growth in both directions, error ownership, plugin
// and device listing over the fixture plugins of tests/plugins.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hearth/hearth.h"
#include "hearth/hearth.hpp"
#include "capi_test_util.h"

namespace {

const std::string kPluginDir = HEARTH_BUILD_DIR "/test_plugins";

::testing::AssertionResult HasSubstr(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not contain \"" << needle
                                       << "\"";
}

// Takes an error apart and frees it.
struct Err {
  hearth_status_code code;
  std::string message;
};
Err Take(hearth_error* e) {
  Err r{hearth_error_code(e), hearth_error_message(e)};
  hearth_error_free(e);
  return r;
}

struct LogLines {
  std::vector<std::string> lines;
  static void Callback(int, const char* message, void* user_data) {
    static_cast<LogLines*>(user_data)->lines.emplace_back(message);
  }
};

// The fixture folder only, log lines captured.
hearth_runtime_params FixtureParams(LogLines* log) {
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  p.plugin_path = kPluginDir.c_str();
  p.explicit_only = 1;
  p.log = &LogLines::Callback;
  p.log_user_data = log;
  return p;
}

hearth_runtime* const kUntouched = reinterpret_cast<hearth_runtime*>(0x1234);

TEST(VersionTest, AbiVersionIsMajorShiftedOverMinor) {
  EXPECT_EQ(hearth_abi_version(),
            (uint32_t{HEARTH_ABI_VERSION_MAJOR} << 16) | uint32_t{HEARTH_ABI_VERSION_MINOR});
  EXPECT_EQ(hearth_abi_version() >> 16, 1u);
  ASSERT_NE(hearth_version_string(), nullptr);
  EXPECT_TRUE(std::regex_match(hearth_version_string(), std::regex(R"(\d+\.\d+\.\d+.*)")))
      << hearth_version_string();
}

TEST(ErrorTest, NullErrorMeansOk) {
  EXPECT_EQ(hearth_error_code(nullptr), HEARTH_OK);
  EXPECT_STREQ(hearth_error_message(nullptr), "");
  hearth_error_free(nullptr);
}

TEST(RuntimeTest, NullOutIsInvalidArgumentNamingIt) {
  Err e = Take(hearth_runtime_create(nullptr, nullptr));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_EQ(e.message, "hearth_runtime_create: argument 'out' is NULL");
}

TEST(RuntimeTest, NullParamsMeansDefaults) {
  hearth_runtime* rt = nullptr;
  ASSERT_EQ(hearth_runtime_create(nullptr, &rt), nullptr);
  ASSERT_NE(rt, nullptr);
  hearth_runtime_free(rt);
}

TEST(RuntimeTest, FreeAndCountsAcceptNull) {
  hearth_runtime_free(nullptr);
  EXPECT_EQ(hearth_runtime_plugin_count(nullptr), 0u);
  EXPECT_EQ(hearth_runtime_device_count(nullptr), 0u);
}

TEST(RuntimeTest, ZeroStructSizeIsAnErrorAndOutIsUntouched) {
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  p.struct_size = 0;
  hearth_runtime* rt = kUntouched;
  Err e = Take(hearth_runtime_create(&p, &rt));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_TRUE(HasSubstr(e.message, "hearth_runtime_create: params->struct_size is 0"));
  EXPECT_EQ(rt, kUntouched);
}

TEST(RuntimeTest, AbsurdStructSizeIsAnError) {
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  p.struct_size = 0xdeadbeef;  // an uninitialized struct, most likely
  hearth_runtime* rt = kUntouched;
  Err e = Take(hearth_runtime_create(&p, &rt));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_TRUE(HasSubstr(e.message, "params->struct_size is 3735928559"));
  EXPECT_EQ(rt, kUntouched);
}

// A struct_size no version of the header can produce: it ends inside a
// field (12 cuts the plugin_path pointer, bytes 8 to 16, in half). Reading
// that prefix would use half a pointer (issue 17, class 6).
TEST(RuntimeTest, StructSizeEndingInsideAFieldIsAnError) {
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  for (uint32_t size : {5u, 12u, 15u, 20u, 27u}) {
    p.struct_size = size;
    hearth_runtime* rt = kUntouched;
    Err e = Take(hearth_runtime_create(&p, &rt));
    const bool cuts = (size > 8 && size < 16) || (size > 24 && size < 32);
    if (!cuts) {
      EXPECT_EQ(e.code, HEARTH_OK) << size << ": " << e.message;  // in padding or on a boundary
      hearth_runtime_free(rt);
      continue;
    }
    EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT) << size;
    EXPECT_TRUE(HasSubstr(e.message, "hearth_runtime_create: params->struct_size is " +
                                         std::to_string(size) + ", which ends inside "
                                         "hearth_runtime_params."))
        << e.message;
    EXPECT_EQ(rt, kUntouched);
  }
  // The model's params are checked the same way, before the file is looked at.
  hearth_model_params mp = HEARTH_MODEL_PARAMS_INIT;
  mp.struct_size = 12;
  hearth_model* model = nullptr;
  hearth_test::Error rt_err;
  hearth_runtime* rt = hearth_test::TestRuntime(&rt_err);
  ASSERT_NE(rt, nullptr) << rt_err.message();
  Err e = Take(hearth_model_load(rt, "/nonexistent.gguf", &mp, &model));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_TRUE(HasSubstr(e.message,
                        "hearth_model_load: params->struct_size is 12, which ends inside "
                        "hearth_model_params.device (bytes 8 to 16)"))
      << e.message;
  EXPECT_EQ(model, nullptr);
  // And an out struct: nothing is written.
  hearth_device_info info;
  std::memset(&info, 0xEE, sizeof(info));
  info.struct_size = 12;
  const hearth_device_info before = info;
  e = Take(hearth_runtime_device_info(rt, 0, &info));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_TRUE(HasSubstr(e.message, "out->struct_size is 12, which ends inside "
                                   "hearth_device_info.name"))
      << e.message;
  EXPECT_EQ(std::memcmp(&info, &before, sizeof(info)), 0);
  hearth_runtime_free(rt);
}

TEST(RuntimeTest, BadLogLevelIsAnErrorNamingIt) {
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  p.log_level = 7;
  hearth_runtime* rt = kUntouched;
  Err e = Take(hearth_runtime_create(&p, &rt));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_TRUE(HasSubstr(e.message, "params->log_level is 7"));
  EXPECT_EQ(rt, kUntouched);
}

TEST(RuntimeTest, OlderCallerSmallerStructSizeReadsOnlyItsPrefix) {
  // A caller built when the struct ended after plugin_path: the fields past
  // its struct_size hold garbage that would be errors if they were read.
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  p.struct_size = offsetof(hearth_runtime_params, explicit_only);
  const std::string path = kPluginDir + "/libhearth-test-noprobe.so";
  p.plugin_path = path.c_str();
  p.explicit_only = 77;
  p.log_level = 99;
  hearth_runtime* rt = nullptr;
  hearth_error* err = hearth_runtime_create(&p, &rt);
  ASSERT_EQ(err, nullptr) << hearth_error_message(err);
  ASSERT_GE(hearth_runtime_plugin_count(rt), 1u);
  hearth_plugin_info info = HEARTH_PLUGIN_INFO_INIT;
  ASSERT_EQ(hearth_runtime_plugin_info(rt, 0, &info), nullptr);
  EXPECT_STREQ(info.name, "noprobe");  // explicit paths still come first
  hearth_runtime_free(rt);
}

TEST(RuntimeTest, NewerCallerLargerStructSizeIsAccepted) {
  struct Newer {
    hearth_runtime_params base;
    uint64_t field_from_the_future;
  } p;
  LogLines log;
  p.base = FixtureParams(&log);
  p.base.struct_size = sizeof(Newer);
  p.field_from_the_future = 42;
  hearth_runtime* rt = nullptr;
  hearth_error* err = hearth_runtime_create(&p.base, &rt);
  ASSERT_EQ(err, nullptr) << hearth_error_message(err);
  EXPECT_EQ(hearth_runtime_plugin_count(rt), 7u);
  hearth_runtime_free(rt);
}

class FixtureRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const hearth_runtime_params p = FixtureParams(&log_);
    hearth_error* err = hearth_runtime_create(&p, &rt_);
    ASSERT_EQ(err, nullptr) << hearth_error_message(err);
  }
  void TearDown() override { hearth_runtime_free(rt_); }

  std::optional<hearth_plugin_info> Plugin(const std::string& name) {
    for (size_t i = 0; i < hearth_runtime_plugin_count(rt_); ++i) {
      hearth_plugin_info info = HEARTH_PLUGIN_INFO_INIT;
      hearth_error* err = hearth_runtime_plugin_info(rt_, i, &info);
      EXPECT_EQ(err, nullptr) << hearth_error_message(err);
      if (info.name != nullptr && name == info.name) return info;
    }
    return std::nullopt;
  }

  LogLines log_;
  hearth_runtime* rt_ = nullptr;
};

TEST_F(FixtureRuntimeTest, ListsEveryPluginFileWithWhyItFailed) {
  EXPECT_EQ(hearth_runtime_plugin_count(rt_), 7u);
  auto noprobe = Plugin("noprobe");
  ASSERT_TRUE(noprobe);
  EXPECT_EQ(noprobe->load_error, nullptr);
  EXPECT_EQ(noprobe->probe_score, 0);
  EXPECT_STREQ(noprobe->version, "0.0.1-test");
  EXPECT_EQ(noprobe->abi_major, 1u);
  EXPECT_TRUE(HasSubstr(noprobe->path, "/libhearth-test-noprobe.so"));

  auto wrong = Plugin("libhearth-test-wrongmajor.so");
  ASSERT_TRUE(wrong);
  ASSERT_NE(wrong->load_error, nullptr);
  EXPECT_TRUE(HasSubstr(wrong->load_error, "plugin ABI major 2 does not match the host's ABI "
                                           "major 1"));
  EXPECT_EQ(wrong->abi_major, 2u);
  EXPECT_STREQ(wrong->version, "");

  auto initfail = Plugin("libhearth-test-initfail.so");
  ASSERT_TRUE(initfail);
  ASSERT_NE(initfail->load_error, nullptr);
  EXPECT_TRUE(HasSubstr(initfail->load_error, "libfakegpu.so.3 not found"));

  // The failures were also logged as warnings.
  bool warned = false;
  for (const std::string& l : log_.lines) warned |= l.find("libfakegpu.so.3") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST_F(FixtureRuntimeTest, DevicesBestFirst) {
  ASSERT_EQ(hearth_runtime_device_count(rt_), 2u);
  hearth_device_info d = HEARTH_DEVICE_INFO_INIT;
  ASSERT_EQ(hearth_runtime_device_info(rt_, 0, &d), nullptr);
  EXPECT_STREQ(d.name, "fake:1");
  EXPECT_STREQ(d.plugin, "fake-b");
  EXPECT_STREQ(d.vendor, "hearth tests");
  EXPECT_EQ(d.memory_total, 1u << 20);
  EXPECT_EQ(d.memory_free, 1u << 19);
  ASSERT_EQ(hearth_runtime_device_info(rt_, 1, &d), nullptr);
  EXPECT_STREQ(d.name, "fake");
  EXPECT_STREQ(d.plugin, "fake-a");
}

TEST_F(FixtureRuntimeTest, InfoIndexOutOfRangeNamesIndexAndCount) {
  hearth_plugin_info info = HEARTH_PLUGIN_INFO_INIT;
  Err e = Take(hearth_runtime_plugin_info(rt_, 7, &info));
  EXPECT_EQ(e.code, HEARTH_OUT_OF_RANGE);
  EXPECT_TRUE(HasSubstr(e.message, "index 7 is out of range (the runtime has 7 plugins)"));
  EXPECT_EQ(info.name, nullptr);  // untouched
  hearth_device_info d = HEARTH_DEVICE_INFO_INIT;
  e = Take(hearth_runtime_device_info(rt_, 2, &d));
  EXPECT_EQ(e.code, HEARTH_OUT_OF_RANGE);
  EXPECT_TRUE(HasSubstr(e.message, "index 2 is out of range (the runtime has 2 devices)"));
}

TEST_F(FixtureRuntimeTest, InfoNullArgumentsAreNamed) {
  hearth_plugin_info info = HEARTH_PLUGIN_INFO_INIT;
  Err e = Take(hearth_runtime_plugin_info(nullptr, 0, &info));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_EQ(e.message, "hearth_runtime_plugin_info: argument 'rt' is NULL");
  e = Take(hearth_runtime_plugin_info(rt_, 0, nullptr));
  EXPECT_EQ(e.message, "hearth_runtime_plugin_info: argument 'out' is NULL");
  e = Take(hearth_runtime_device_info(rt_, 0, nullptr));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_EQ(e.message, "hearth_runtime_device_info: argument 'out' is NULL");
  info.struct_size = 0;
  e = Take(hearth_runtime_plugin_info(rt_, 0, &info));
  EXPECT_EQ(e.code, HEARTH_INVALID_ARGUMENT);
  EXPECT_TRUE(HasSubstr(e.message, "out->struct_size is 0"));
}

TEST_F(FixtureRuntimeTest, OlderCallerInfoStructIsFilledOnlyUpToItsSize) {
  // A caller whose hearth_plugin_info ended after `path`.
  hearth_plugin_info info;
  std::memset(&info, 0xEE, sizeof(info));
  info.struct_size = offsetof(hearth_plugin_info, version);
  const hearth_plugin_info before = info;
  ASSERT_EQ(hearth_runtime_plugin_info(rt_, 0, &info), nullptr);
  EXPECT_EQ(info.struct_size, offsetof(hearth_plugin_info, version));  // kept
  ASSERT_NE(info.name, before.name);
  EXPECT_STREQ(info.name, "fake-a");
  EXPECT_TRUE(HasSubstr(info.path, "libhearth-test-fake-a.so"));
  // Nothing at or past `version` was written.
  EXPECT_EQ(std::memcmp(reinterpret_cast<const char*>(&info) + offsetof(hearth_plugin_info, version),
                        reinterpret_cast<const char*>(&before) + offsetof(hearth_plugin_info, version),
                        sizeof(info) - offsetof(hearth_plugin_info, version)),
            0);
}

TEST(RuntimeTest, RealCpuPluginGivesTheCpuDevice) {
  const std::string cpu = HEARTH_PLUGIN_DIR "/libhearth-backend-cpu.so";
  if (access(cpu.c_str(), R_OK) != 0) {
    GTEST_SKIP() << cpu << " is not built (target hearth_backend_cpu); nothing to check";
  }
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  p.plugin_path = cpu.c_str();
  p.explicit_only = 1;
  hearth_runtime* rt = nullptr;
  hearth_error* err = hearth_runtime_create(&p, &rt);
  ASSERT_EQ(err, nullptr) << hearth_error_message(err);
  ASSERT_EQ(hearth_runtime_plugin_count(rt), 1u);
  hearth_plugin_info info = HEARTH_PLUGIN_INFO_INIT;
  ASSERT_EQ(hearth_runtime_plugin_info(rt, 0, &info), nullptr);
  EXPECT_EQ(info.load_error, nullptr) << info.load_error;
  EXPECT_STREQ(info.name, "cpu");
  EXPECT_EQ(info.probe_score, 1);
  ASSERT_EQ(hearth_runtime_device_count(rt), 1u);
  hearth_device_info d = HEARTH_DEVICE_INFO_INIT;
  ASSERT_EQ(hearth_runtime_device_info(rt, 0, &d), nullptr);
  EXPECT_STREQ(d.name, "cpu");
  EXPECT_STREQ(d.plugin, "cpu");
  hearth_runtime_free(rt);
}

// hearth.hpp over the same calls.
TEST(CppWrapperTest, RuntimeListsPluginsAndDevices) {
  LogLines log;
  const hearth_runtime_params p = FixtureParams(&log);
  hearth::Runtime rt(p);
  EXPECT_EQ(rt.Plugins().size(), 7u);
  const auto devices = rt.Devices();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_STREQ(devices[0].name, "fake:1");
  hearth::Runtime moved = std::move(rt);
  EXPECT_EQ(rt.get(), nullptr);
  EXPECT_NE(moved.get(), nullptr);
  EXPECT_EQ(hearth::AbiVersion(), hearth_abi_version());
}

TEST(CppWrapperTest, ErrorsThrowWithCodeAndMessage) {
  hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
  p.log_level = -3;
  try {
    hearth::Runtime rt(p);
    FAIL() << "no exception";
  } catch (const hearth::Error& e) {
    EXPECT_EQ(e.code(), HEARTH_INVALID_ARGUMENT);
    EXPECT_TRUE(HasSubstr(e.what(), "params->log_level is -3"));
  }
}

TEST(CppWrapperTest, SamplerIsGreedyAtZeroTemperatureAndRejectsBadParams) {
  hearth_sampling_params sp = HEARTH_SAMPLING_PARAMS_INIT;
  sp.temperature = 0.0f;
  hearth::Sampler greedy(sp);
  const float logits[5] = {0.1f, 2.0f, -1.0f, 7.5f, 7.25f};
  EXPECT_EQ(greedy.Sample(logits, 5), 3);
  greedy.Accept(3);
  greedy.Reset();

  sp.top_p = 1.5f;  // outside (0, 1]
  try {
    hearth::Sampler bad(sp);
    FAIL() << "no exception";
  } catch (const hearth::Error& e) {
    EXPECT_EQ(e.code(), HEARTH_INVALID_ARGUMENT);
    EXPECT_TRUE(HasSubstr(e.what(), "top_p"));
  }
}

TEST(CppWrapperTest, ModelLoadFailureThrows) {
  LogLines log;
  hearth::Runtime rt(FixtureParams(&log));
  try {
    hearth::Model model(rt, "/nonexistent-hearth-dir/model.gguf");
    FAIL() << "no exception";
  } catch (const hearth::Error& e) {
    EXPECT_NE(e.code(), HEARTH_OK);
    EXPECT_TRUE(HasSubstr(e.what(), "/nonexistent-hearth-dir/model.gguf"));
  }
}

// hearth.hpp's Model and Session over a tiny real model (tests/data/models).
class CppModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string cpu = HEARTH_PLUGIN_DIR "/libhearth-backend-cpu.so";
    if (access(kModel.c_str(), R_OK) != 0 || access(cpu.c_str(), R_OK) != 0) {
      GTEST_SKIP() << "needs " << kModel << " and " << cpu;
    }
    hearth_runtime_params p = HEARTH_RUNTIME_PARAMS_INIT;
    p.plugin_path = cpu.c_str();
    p.explicit_only = 1;
    rt_.emplace(p);
    model_.emplace(*rt_, kModel);
  }

  static hearth_generate_params Greedy(int32_t max_tokens) {
    hearth_generate_params g = HEARTH_GENERATE_PARAMS_INIT;
    g.max_tokens = max_tokens;
    g.sampling.temperature = 0.0f;
    return g;
  }

  const std::string kModel = HEARTH_TEST_DATA "/models/tiny-llama-f32.gguf";
  std::optional<hearth::Runtime> rt_;
  std::optional<hearth::Model> model_;
};

TEST_F(CppModelTest, TokenizeDetokenizeAndInfo) {
  EXPECT_EQ(model_->Info().n_vocab, 512u);
  EXPECT_STREQ(model_->Info().architecture, "llama");
  const std::vector<int32_t> tokens = model_->Tokenize("hello world", 0);
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(model_->Detokenize(tokens), "hello world");
  std::string joined;
  for (int32_t t : tokens) joined += std::string(model_->TokenText(t));
  EXPECT_FALSE(joined.empty());
  EXPECT_THROW(model_->TokenText(-1), hearth::Error);
  EXPECT_EQ(model_->Meta("no.such.key"), std::nullopt);
  EXPECT_EQ(model_->Meta("general.architecture"), "llama");
}

TEST_F(CppModelTest, GenerateStreamsAndStops) {
  const hearth_generate_params g = Greedy(6);
  hearth::Session a(*model_);
  hearth_generate_result r1 = HEARTH_GENERATE_RESULT_INIT;
  const std::string text = a.GenerateText("hello", &g, &r1);
  EXPECT_EQ(r1.stop_reason, HEARTH_STOP_MAX_TOKENS);
  EXPECT_EQ(r1.n_generated_tokens, 6u);

  // Same prompt, fresh session, greedy: the same pieces through a callback.
  hearth::Session b(*model_);
  std::string streamed;
  b.Generate("hello", &g, [&](std::string_view piece) {
    streamed.append(piece);
    return true;
  });
  EXPECT_EQ(streamed, text);

  // false stops after the first piece.
  hearth::Session c(*model_);
  int calls = 0;
  const hearth_generate_result r3 = c.Generate("hello", &g, [&](std::string_view) {
    ++calls;
    return false;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r3.stop_reason, HEARTH_STOP_CALLBACK);
}

TEST_F(CppModelTest, ExceptionFromCallbackIsRethrownAfterTheCall) {
  struct Boom : std::exception {};
  const hearth_generate_params g = Greedy(6);
  hearth::Session s(*model_);
  int calls = 0;
  EXPECT_THROW(s.Generate("hello", &g,
                          [&](std::string_view) -> bool {
                            ++calls;
                            throw Boom();
                          }),
               Boom);
  EXPECT_EQ(calls, 1);  // generation stopped at the first throw
  // The session is still usable.
  s.Reset();
  EXPECT_EQ(s.NPast(), 0u);
  EXPECT_NO_THROW(s.GenerateText("hello", &g));
  EXPECT_GT(s.NPast(), 0u);
}

}  // namespace
