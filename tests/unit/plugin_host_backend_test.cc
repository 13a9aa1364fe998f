// plugin_host_backend_test.cc — hearth::Backend over the fixture backend
// (tests/plugins/test_backend.c), the host services a plugin calls, and
// TakePluginStatus: statuses carry the plugin's code and its set_error
// message, prefixed "<plugin>: <call>".
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "sdk/src/plugin_host/plugin_host.h"

namespace hearth {
namespace {

const std::string kPluginDir = HEARTH_BUILD_DIR "/test_plugins";

::testing::AssertionResult StartsWith(absl::string_view text, absl::string_view prefix) {
  if (text.substr(0, prefix.size()) == prefix) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not start with \"" << prefix
                                       << "\"";
}

::testing::AssertionResult HasSubstr(absl::string_view text, absl::string_view needle) {
  if (text.find(needle) != absl::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not contain \"" << needle
                                       << "\"";
}

struct LogLines {
  std::vector<std::string> lines;
  static void Callback(int, const char* message, void* user_data) {
    static_cast<LogLines*>(user_data)->lines.emplace_back(message);
  }
};

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PluginHostOptions o;
    o.explicit_paths = {kPluginDir + "/libhearth-test-fake-b.so"};
    o.explicit_only = true;
    o.log = &LogLines::Callback;
    o.log_user_data = &log_;
    o.log_level = HEARTH_LOG_DEBUG;
    auto host = PluginHost::Create(o);
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    ASSERT_EQ(host_->devices().size(), 1u) << host_->plugins()[0].load_error;
    auto backend = Backend::Create(host_->devices()[0], 1);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
  }

  LogLines log_;
  std::unique_ptr<PluginHost> host_;
  std::unique_ptr<Backend> backend_;
};

TEST_F(BackendTest, UploadDownloadRoundTrip) {
  auto buf = backend_->Alloc(64);
  ASSERT_TRUE(buf.ok()) << buf.status();
  const std::string data = "twelve bytes";
  ASSERT_TRUE(backend_->Upload(*buf, 10, data.data(), data.size()).ok());
  std::string back(data.size(), '\0');
  ASSERT_TRUE(backend_->Download(*buf, 10, &back[0], back.size()).ok());
  EXPECT_EQ(back, data);
  ASSERT_NE(backend_->HostPtr(*buf), nullptr);
  EXPECT_EQ(std::memcmp(static_cast<char*>(backend_->HostPtr(*buf)) + 10, data.data(),
                        data.size()),
            0);
  backend_->Free(*buf);
  backend_->Free(nullptr);  // harmless
}

TEST_F(BackendTest, PluginErrorsBecomeStatusesNamingPluginAndCall) {
  auto buf = backend_->Alloc(16);
  ASSERT_TRUE(buf.ok()) << buf.status();
  char bytes[32] = {};
  absl::Status st = backend_->Upload(*buf, 8, bytes, sizeof(bytes));
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(StartsWith(st.message(), "fake-b: buffer_upload: "));
  EXPECT_TRUE(HasSubstr(st.message(), "range is past the end of the buffer"));
  st = backend_->Download(*buf, 17, bytes, 0);
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(StartsWith(st.message(), "fake-b: buffer_download: "));
  auto huge = backend_->Alloc(uint64_t{1} << 40);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(StartsWith(huge.status().message(), "fake-b: buffer_alloc: "));
  backend_->Free(*buf);
}

TEST_F(BackendTest, ComputeRunsAGraphAndReportsUnsupportedOps) {
  auto buf = backend_->Alloc(2 * 4 * sizeof(float));
  ASSERT_TRUE(buf.ok()) << buf.status();
  const float x[4] = {1.0f, -2.0f, 0.5f, 3.0f};
  ASSERT_TRUE(backend_->Upload(*buf, 0, x, sizeof(x)).ok());

  hearth_tensor_desc t[2] = {};
  for (int i = 0; i < 2; ++i) {
    t[i].dtype = HEARTH_DTYPE_F32;
    t[i].n_dims = 1;
    t[i].ne[0] = 4;
    t[i].ne[1] = t[i].ne[2] = t[i].ne[3] = 1;
    t[i].nb[0] = 4;
    t[i].nb[1] = t[i].nb[2] = t[i].nb[3] = 16;
    t[i].buffer = *buf;
    t[i].offset = 16 * i;
  }
  const int32_t inputs[1] = {0};
  const hearth_scale_params p{2.5f};
  alignas(8) uint8_t params[8] = {};
  std::memcpy(params, &p, sizeof(p));
  hearth_node node = {};
  node.op = HEARTH_OP_SCALE;
  node.output = 1;
  node.n_inputs = 1;
  node.params_size = sizeof(p);
  hearth_graph graph = {};
  graph.struct_size = sizeof(graph);
  graph.n_tensors = 2;
  graph.tensors = t;
  graph.n_nodes = 1;
  graph.nodes = &node;
  graph.n_node_inputs = 1;
  graph.node_inputs = inputs;
  graph.params_bytes = sizeof(params);
  graph.params = params;

  EXPECT_TRUE(backend_->Supports(graph, 0));
  ASSERT_TRUE(backend_->Compute(graph).ok());
  float y[4] = {};
  ASSERT_TRUE(backend_->Download(*buf, 16, y, sizeof(y)).ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], x[i] * 2.5f) << i;  // exact: one rounding

  node.op = HEARTH_OP_MUL_MAT;
  EXPECT_FALSE(backend_->Supports(graph, 0));
  absl::Status st = backend_->Compute(graph);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(), "fake-b: graph_compute: only SCALE is supported by the test backend");
  backend_->Free(*buf);
}

TEST_F(BackendTest, WrapsAlignedHostMemoryAndCopiesTheRest) {
  alignas(64) static unsigned char weights[128];
  for (int i = 0; i < 128; ++i) weights[i] = static_cast<unsigned char>(i);
  bool wrapped = false;
  auto a = backend_->WrapOrUpload(weights, 64, &wrapped);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(wrapped);
  EXPECT_EQ(backend_->HostPtr(*a), weights);  // no copy

  // The fixture refuses unaligned memory, so the host must copy it.
  auto b = backend_->WrapOrUpload(weights + 4, 64, &wrapped);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(wrapped);
  EXPECT_NE(backend_->HostPtr(*b), weights + 4);
  unsigned char back[64];
  ASSERT_TRUE(backend_->Download(*b, 0, back, sizeof(back)).ok());
  EXPECT_EQ(std::memcmp(back, weights + 4, sizeof(back)), 0);
  bool saw_fallback = false;
  for (const std::string& l : log_.lines) {
    saw_fallback |= l.find("not 64-byte aligned; copying instead") != std::string::npos;
  }
  EXPECT_TRUE(saw_fallback);
  backend_->Free(*a);
  backend_->Free(*b);
}

TEST(BackendCreateTest, DeviceWithoutPluginIsAnError) {
  DeviceRef d;
  d.name = "ghost";
  auto b = Backend::Create(d, 0);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HasSubstr(b.status().message(), "'ghost'"));
}

TEST(TakePluginStatusTest, CarriesCodeAndRecordedMessage) {
  PluginHostOptions o;
  o.explicit_only = true;
  auto host = PluginHost::Create(o);
  ASSERT_TRUE(host.ok());
  const hearth_host_services* s = (*host)->services();
  ASSERT_EQ(s->struct_size, sizeof(hearth_host_services));

  s->set_error(s->ctx, HEARTH_P_INVALID_ARGUMENT, "dims 3 x 5 do not match");
  absl::Status st = TakePluginStatus(HEARTH_P_INVALID_ARGUMENT, "cpu: graph_compute");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "cpu: graph_compute: dims 3 x 5 do not match");

  // Taken means gone: the next failure without a message says so.
  st = TakePluginStatus(HEARTH_P_INTERNAL, "cpu: buffer_alloc");
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(HasSubstr(st.message(), "cpu: buffer_alloc: failed with status 13 without a message"));

  // OK clears a message recorded along the way.
  s->set_error(s->ctx, HEARTH_P_INTERNAL, "stale");
  EXPECT_TRUE(TakePluginStatus(HEARTH_P_OK, "x").ok());
  EXPECT_FALSE(HasSubstr(TakePluginStatus(HEARTH_P_UNAVAILABLE, "x").message(), "stale"));

  // Codes outside absl's range are INTERNAL, and say so.
  s->set_error(s->ctx, 99, "weird");
  st = TakePluginStatus(99, "x");
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(st.message(), "x: weird (the plugin returned invalid status code 99)");
  st = TakePluginStatus(-1, "x");
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);

  // NULL message does not crash.
  s->set_error(s->ctx, HEARTH_P_NOT_FOUND, nullptr);
  st = TakePluginStatus(HEARTH_P_NOT_FOUND, "x");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "x: (no message)");
}

TEST(TakePluginStatusTest, ErrorsAreRecordedPerThread) {
  PluginHostOptions o;
  o.explicit_only = true;
  auto host = PluginHost::Create(o);
  ASSERT_TRUE(host.ok());
  const hearth_host_services* s = (*host)->services();
  s->set_error(s->ctx, HEARTH_P_INVALID_ARGUMENT, "main thread's error");
  std::string other;
  std::thread t([&] { other = std::string(TakePluginStatus(HEARTH_P_INTERNAL, "t").message()); });
  t.join();
  EXPECT_FALSE(HasSubstr(other, "main thread's error"));
  EXPECT_EQ(TakePluginStatus(HEARTH_P_INVALID_ARGUMENT, "m").message(), "m: main thread's error");
}

TEST(HostServicesTest, AlignedAllocation) {
  PluginHostOptions o;
  o.explicit_only = true;
  auto host = PluginHost::Create(o);
  ASSERT_TRUE(host.ok());
  const hearth_host_services* s = (*host)->services();
  for (size_t align : {1u, 8u, 64u, 4096u}) {
    void* p = s->alloc(s->ctx, 100, align);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align;
    std::memset(p, 0xAB, 100);
    s->free(s->ctx, p);
  }
  EXPECT_EQ(s->alloc(s->ctx, 100, 3), nullptr);   // not a power of two
  EXPECT_EQ(s->alloc(s->ctx, 100, 0), nullptr);
  void* empty = s->alloc(s->ctx, 0, 16);
  EXPECT_NE(empty, nullptr);
  s->free(s->ctx, empty);
  s->free(s->ctx, nullptr);
  EXPECT_EQ(s->alloc(s->ctx, SIZE_MAX - 64, 64), nullptr);  // fails, does not abort
}

TEST(HostServicesTest, LogFromAThreadNoHostIsCallingGoesToTheNewestHost) {
  LogLines log;
  PluginHostOptions o;
  o.explicit_only = true;
  o.log = &LogLines::Callback;
  o.log_user_data = &log;
  o.log_level = HEARTH_LOG_INFO;
  auto host = PluginHost::Create(o);
  ASSERT_TRUE(host.ok());
  const hearth_host_services* s = (*host)->services();
  std::thread t([&] {
    s->log(s->ctx, HEARTH_LOG_INFO, "from a worker");
    s->log(s->ctx, HEARTH_LOG_DEBUG, "too chatty");  // above the level
  });
  t.join();
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(log.lines[0], "plugin: from a worker");
  host->reset();
  s->log(s->ctx, HEARTH_LOG_DEBUG, "no host left: dropped, no crash");
  EXPECT_EQ(log.lines.size(), 1u);
}

}  // namespace
}  // namespace hearth
