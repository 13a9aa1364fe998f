// plugin_test.cc — the CPU plugin's shell: the ABI handshake (through the
// static library and through the built .so's one exported symbol), device
// info, contexts, and buffer bounds checks with messages naming the numbers.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/quant_dispatch.h"
#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {

hearth_plugin_init_info MakeInfo(uint32_t major, uint32_t minor) {
  hearth_plugin_init_info info{};
  info.struct_size = sizeof(info);
  info.host_abi_major = major;
  info.host_abi_minor = minor;
  info.host = TestHost();
  return info;
}

void ExpectMessage(std::initializer_list<const char*> fragments) {
  for (const char* f : fragments) {
    EXPECT_NE(Recorder().last_error.find(f), std::string::npos)
        << "message \"" << Recorder().last_error << "\" lacks \"" << f << "\"";
  }
}

TEST(HandshakeTest, AcceptsMajorOneAnyMinor) {
  for (uint32_t minor : {0u, 7u}) {
    hearth_plugin_init_info info = MakeInfo(1, minor);
    ASSERT_EQ(PluginInit(&info), HEARTH_P_OK);
    EXPECT_EQ(info.plugin_abi_major, 1u);
    EXPECT_EQ(info.plugin_abi_minor, 0u);
    EXPECT_EQ(info.kind, static_cast<uint32_t>(HEARTH_PLUGIN_KIND_BACKEND));
    EXPECT_STREQ(info.name, "cpu");
    EXPECT_NE(info.version, nullptr);
    const auto* vt = static_cast<const hearth_backend_vtable*>(info.vtable);
    ASSERT_NE(vt, nullptr);
    EXPECT_EQ(vt->struct_size, sizeof(hearth_backend_vtable));
    EXPECT_TRUE(HEARTH_PLUGIN_HAS_SLOT(vt, hearth_backend_vtable, graph_compute));
    const char* reason = "unset";
    EXPECT_EQ(vt->probe(&reason), 1);
    ASSERT_NE(reason, nullptr);
    EXPECT_NE(vt->buffer_wrap_host, nullptr);
  }
}

TEST(HandshakeTest, RejectsOtherMajorAndStillSaysItsOwn) {
  hearth_plugin_init_info info = MakeInfo(2, 3);
  Recorder().last_error.clear();
  EXPECT_EQ(PluginInit(&info), HEARTH_P_FAILED_PRECONDITION);
  EXPECT_EQ(info.plugin_abi_major, 1u) << "filled even when the handshake fails";
  EXPECT_EQ(info.vtable, nullptr);
  ExpectMessage({"1.0", "2.3", "major"});
}

TEST(HandshakeTest, RejectsTruncatedInfo) {
  hearth_plugin_init_info info = MakeInfo(1, 0);
  info.struct_size = offsetof(hearth_plugin_init_info, kind);
  Recorder().last_error.clear();
  EXPECT_EQ(PluginInit(&info), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_EQ(info.plugin_abi_major, 1u);
  ExpectMessage({"struct_size"});
  EXPECT_EQ(PluginInit(nullptr), HEARTH_P_INVALID_ARGUMENT);
}

TEST(HandshakeTest, SharedObjectExportsOnlyInit) {
  const std::string path = std::string(HEARTH_PLUGIN_DIR) + "/libhearth-backend-cpu.so";
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto init = reinterpret_cast<hearth_plugin_init_fn>(dlsym(handle, HEARTH_PLUGIN_INIT_SYMBOL));
  ASSERT_NE(init, nullptr);
  EXPECT_EQ(dlsym(handle, "_ZN6hearth3cpu10PluginInitEP23hearth_plugin_init_info"), nullptr)
      << "internal symbols stay hidden";
  hearth_plugin_init_info info = MakeInfo(1, 0);
  ASSERT_EQ(init(&info), HEARTH_P_OK);
  EXPECT_STREQ(info.name, "cpu");
  info = MakeInfo(0, 9);
  Recorder().last_error.clear();
  EXPECT_EQ(init(&info), HEARTH_P_FAILED_PRECONDITION);
  EXPECT_EQ(info.plugin_abi_major, 1u);
  ExpectMessage({"0.9"});
  // Never dlclose a plugin (see hearth_plugin.h); the process ends soon.
}

TEST(DeviceTest, DescribesTheCpu) {
  const hearth_backend_vtable* vt = InitPlugin();
  ASSERT_NE(vt, nullptr);
  EXPECT_EQ(vt->device_count(), 1u);
  hearth_pdevice_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EQ(vt->device_info(0, &info), HEARTH_P_OK);
  EXPECT_STREQ(info.name, "cpu");
  EXPECT_GT(std::strlen(info.vendor), 0u);
  EXPECT_NE(std::string(info.description).find(KernelIsa()), std::string::npos) << info.description;
  EXPECT_GT(info.memory_total, uint64_t{1} << 20);
  EXPECT_LE(info.memory_free, info.memory_total);
  EXPECT_EQ(info.host_visible, 1u);

  // An older, shorter struct is filled only as far as it goes.
  struct {
    hearth_pdevice_info info;
    uint64_t guard;
  } small{};
  small.info.struct_size = offsetof(hearth_pdevice_info, vendor);
  small.guard = 0x1234;
  ASSERT_EQ(vt->device_info(0, &small.info), HEARTH_P_OK);
  EXPECT_STREQ(small.info.name, "cpu");
  EXPECT_EQ(small.info.vendor, nullptr);
  EXPECT_EQ(small.guard, 0x1234u);

  Recorder().last_error.clear();
  EXPECT_EQ(vt->device_info(1, &info), HEARTH_P_NOT_FOUND);
  ExpectMessage({"device 1"});
  EXPECT_EQ(vt->device_info(0, nullptr), HEARTH_P_INVALID_ARGUMENT);
}

TEST(ContextTest, ThreadCountsAndBadOptions) {
  const hearth_backend_vtable* vt = InitPlugin();
  ASSERT_NE(vt, nullptr);
  for (uint32_t n : {0u, 1u, 4u}) {
    hearth_pcontext_options opt{sizeof(opt), 0, n};
    hearth_pcontext* ctx = nullptr;
    ASSERT_EQ(vt->context_create(&opt, &ctx), HEARTH_P_OK);
    vt->context_free(ctx);
  }
  hearth_pcontext* ctx = nullptr;
  ASSERT_EQ(vt->context_create(nullptr, &ctx), HEARTH_P_OK) << "NULL options mean defaults";
  vt->context_free(ctx);
  vt->context_free(nullptr);
  hearth_pcontext_options opt{sizeof(opt), 3, 1};
  EXPECT_EQ(vt->context_create(&opt, &ctx), HEARTH_P_NOT_FOUND);
  ExpectMessage({"device 3"});
  opt = {sizeof(opt), 0, 100000};
  EXPECT_EQ(vt->context_create(&opt, &ctx), HEARTH_P_INVALID_ARGUMENT);
  ExpectMessage({"n_threads 100000"});
}

class BufferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vt_ = InitPlugin();
    ASSERT_NE(vt_, nullptr);
    hearth_pcontext_options opt{sizeof(opt), 0, 2};
    ASSERT_EQ(vt_->context_create(&opt, &ctx_), HEARTH_P_OK);
  }
  void TearDown() override {
    if (ctx_) vt_->context_free(ctx_);
  }
  const hearth_backend_vtable* vt_ = nullptr;
  hearth_pcontext* ctx_ = nullptr;
};

TEST_F(BufferTest, AllocUploadDownload) {
  for (uint64_t size : {0ull, 1ull, 100ull, 4096ull}) {
    hearth_pbuffer* buf = nullptr;
    ASSERT_EQ(vt_->buffer_alloc(ctx_, size, &buf), HEARTH_P_OK);
    void* p = vt_->buffer_host_ptr(ctx_, buf);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    std::vector<uint8_t> in(size), out(size, 0);
    for (size_t i = 0; i < size; ++i) in[i] = static_cast<uint8_t>(i * 7);
    ASSERT_EQ(vt_->buffer_upload(ctx_, buf, 0, in.data(), size), HEARTH_P_OK);
    ASSERT_EQ(vt_->buffer_download(ctx_, buf, 0, out.data(), size), HEARTH_P_OK);
    EXPECT_EQ(in, out);
    if (size > 10) {
      uint8_t part[4];
      ASSERT_EQ(vt_->buffer_download(ctx_, buf, size - 4, part, 4), HEARTH_P_OK);
      EXPECT_EQ(std::memcmp(part, &in[size - 4], 4), 0);
    }
    vt_->buffer_free(ctx_, buf);
  }
}

TEST_F(BufferTest, BoundsErrorsNameTheNumbers) {
  hearth_pbuffer* buf = nullptr;
  ASSERT_EQ(vt_->buffer_alloc(ctx_, 100, &buf), HEARTH_P_OK);
  uint8_t data[64] = {};
  EXPECT_EQ(vt_->buffer_upload(ctx_, buf, 90, data, 11), HEARTH_P_OUT_OF_RANGE);
  ExpectMessage({"buffer_upload", "offset 90 + size 11", "(100 bytes)"});
  EXPECT_EQ(vt_->buffer_download(ctx_, buf, 101, data, 0), HEARTH_P_OUT_OF_RANGE);
  ExpectMessage({"buffer_download", "offset 101 + size 0"});
  EXPECT_EQ(vt_->buffer_download(ctx_, buf, UINT64_MAX - 3, data, 8), HEARTH_P_OUT_OF_RANGE);
  ExpectMessage({"18446744073709551612 + size 8 overflows"});
  EXPECT_EQ(vt_->buffer_upload(ctx_, buf, 0, nullptr, 8), HEARTH_P_INVALID_ARGUMENT);
  ExpectMessage({"data is NULL"});
  // Bytes past the checked range were not touched by the refused calls.
  std::vector<uint8_t> all(100, 1);
  ASSERT_EQ(vt_->buffer_download(ctx_, buf, 0, all.data(), 100), HEARTH_P_OK);
  vt_->buffer_free(ctx_, buf);
  // A freed buffer is no longer live; a second free is ignored (and logged).
  EXPECT_EQ(vt_->buffer_upload(ctx_, buf, 0, data, 1), HEARTH_P_INVALID_ARGUMENT);
  ExpectMessage({"not a live buffer"});
  size_t logs = Recorder().logs.size();
  vt_->buffer_free(ctx_, buf);
  EXPECT_EQ(Recorder().logs.size(), logs + 1);
  EXPECT_EQ(vt_->buffer_host_ptr(ctx_, buf), nullptr);
}

TEST_F(BufferTest, WrapHostDoesNotCopy) {
  alignas(64) float host[16] = {};
  hearth_pbuffer* buf = nullptr;
  ASSERT_EQ(vt_->buffer_wrap_host(ctx_, host, sizeof(host), &buf), HEARTH_P_OK);
  EXPECT_EQ(vt_->buffer_host_ptr(ctx_, buf), static_cast<void*>(host));
  float v = 3.5f;
  ASSERT_EQ(vt_->buffer_upload(ctx_, buf, 8, &v, 4), HEARTH_P_OK);
  EXPECT_EQ(host[2], 3.5f);
  EXPECT_EQ(vt_->buffer_upload(ctx_, buf, 64, &v, 4), HEARTH_P_OUT_OF_RANGE);
  vt_->buffer_free(ctx_, buf);
  EXPECT_EQ(host[2], 3.5f) << "freeing a wrapped buffer leaves the host memory alone";
  EXPECT_EQ(vt_->buffer_wrap_host(ctx_, nullptr, 16, &buf), HEARTH_P_INVALID_ARGUMENT);
}

TEST_F(BufferTest, BuffersBelongToTheDevice) {
  // Weights made through one context serve a graph in another, which frees them.
  hearth_pcontext* other = nullptr;
  hearth_pcontext_options opt{sizeof(opt), 0, 1};
  ASSERT_EQ(vt_->context_create(&opt, &other), HEARTH_P_OK);
  hearth_pbuffer* in = nullptr;
  hearth_pbuffer* out = nullptr;
  ASSERT_EQ(vt_->buffer_alloc(ctx_, 16, &in), HEARTH_P_OK);
  ASSERT_EQ(vt_->buffer_alloc(other, 16, &out), HEARTH_P_OK);
  const float x[4] = {1, 2, 3, 4};
  ASSERT_EQ(vt_->buffer_upload(ctx_, in, 0, x, sizeof(x)), HEARTH_P_OK);
  hearth_tensor_desc t[2] = {};
  for (int i = 0; i < 2; ++i) {
    t[i].dtype = HEARTH_DTYPE_F32;
    t[i].n_dims = 1;
    t[i].ne[0] = 4;
    t[i].nb[0] = 4;
    t[i].buffer = i == 0 ? in : out;
  }
  const int32_t inputs[1] = {0};
  const hearth_scale_params p{2.0f};
  alignas(8) uint8_t params[8] = {};
  std::memcpy(params, &p, sizeof(p));
  hearth_node n{};
  n.op = HEARTH_OP_SCALE;
  n.output = 1;
  n.first_input = 0;
  n.n_inputs = 1;
  n.params_size = sizeof(p);
  hearth_graph g{};
  g.struct_size = sizeof(g);
  g.n_tensors = 2;
  g.tensors = t;
  g.n_nodes = 1;
  g.nodes = &n;
  g.n_node_inputs = 1;
  g.node_inputs = inputs;
  g.params_bytes = sizeof(params);
  g.params = params;
  ASSERT_EQ(vt_->graph_compute(other, &g), HEARTH_P_OK) << Recorder().last_error;
  float y[4];
  ASSERT_EQ(vt_->buffer_download(ctx_, out, 0, y, sizeof(y)), HEARTH_P_OK);
  EXPECT_EQ(y[3], 8.0f);
  vt_->buffer_free(other, in);
  vt_->buffer_free(ctx_, out);
  vt_->context_free(other);
}

TEST_F(BufferTest, DeviceInfoSaysArchitectureAndSimdWidth) {
  hearth_pdevice_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EQ(vt_->device_info(0, &info), HEARTH_P_OK);
  ASSERT_NE(info.arch, nullptr);
  EXPECT_EQ(std::string(info.arch).rfind("x86-64+", 0), 0u) << info.arch;
  EXPECT_TRUE(info.simd_width == 1 || info.simd_width == 8 || info.simd_width == 16)
      << info.simd_width;
  EXPECT_GE(info.compute_units, 1u);
}

TEST_F(BufferTest, BufferCopyMovesBytesAndRefusesRangesPastTheEnd) {
  hearth_pbuffer *a = nullptr, *b = nullptr;
  ASSERT_EQ(vt_->buffer_alloc(ctx_, 64, &a), HEARTH_P_OK);
  ASSERT_EQ(vt_->buffer_alloc(ctx_, 32, &b), HEARTH_P_OK);
  uint8_t src[64];
  for (int i = 0; i < 64; ++i) src[i] = static_cast<uint8_t>(i);
  ASSERT_EQ(vt_->buffer_upload(ctx_, a, 0, src, 64), HEARTH_P_OK);
  ASSERT_EQ(vt_->buffer_copy(ctx_, a, 16, b, 8, 24), HEARTH_P_OK) << Recorder().last_error;
  uint8_t got[32] = {};
  ASSERT_EQ(vt_->buffer_download(ctx_, b, 0, got, 32), HEARTH_P_OK);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(got[8 + i], 16 + i) << i;
  // Overlapping ranges of one buffer behave as memmove.
  ASSERT_EQ(vt_->buffer_copy(ctx_, a, 0, a, 4, 32), HEARTH_P_OK);
  uint8_t back[64];
  ASSERT_EQ(vt_->buffer_download(ctx_, a, 0, back, 64), HEARTH_P_OK);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(back[4 + i], i) << i;
  Recorder().last_error.clear();
  EXPECT_EQ(vt_->buffer_copy(ctx_, a, 48, b, 0, 17), HEARTH_P_OUT_OF_RANGE);
  EXPECT_NE(Recorder().last_error.find("past the end"), std::string::npos) << Recorder().last_error;
  EXPECT_EQ(vt_->buffer_copy(ctx_, a, 0, b, 31, 2), HEARTH_P_OUT_OF_RANGE);
  vt_->buffer_free(ctx_, a);
  vt_->buffer_free(ctx_, b);
}

TEST_F(BufferTest, WeightPlaceWrapsLiveDataAndCopiesTheRest) {
  ASSERT_TRUE(HEARTH_PLUGIN_HAS_SLOT(vt_, hearth_backend_vtable, weight_place));
  ASSERT_NE(vt_->weight_place, nullptr);
  std::vector<float> w(4 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
  hearth_pweight pw{};
  pw.struct_size = sizeof(pw);
  pw.usage = HEARTH_WEIGHT_USE_MATMUL;
  pw.name = "blk.0.attn_q.weight";
  pw.desc.dtype = HEARTH_DTYPE_F32;
  pw.desc.n_dims = 2;
  pw.desc.ne[0] = 4;
  pw.desc.ne[1] = 3;
  pw.desc.ne[2] = pw.desc.ne[3] = 1;
  pw.desc.nb[0] = 4;
  pw.desc.nb[1] = 16;
  pw.desc.nb[2] = pw.desc.nb[3] = 48;
  pw.data = w.data();
  pw.size = w.size() * sizeof(float);
  for (uint32_t outlives : {1u, 0u}) {
    pw.data_outlives = outlives;
    hearth_pbuffer* buf = nullptr;
    uint32_t repacked = 7;
    ASSERT_EQ(vt_->weight_place(ctx_, &pw, &buf, &repacked), HEARTH_P_OK) << Recorder().last_error;
    EXPECT_EQ(repacked, 0u);
    const float* p = static_cast<const float*>(vt_->buffer_host_ptr(ctx_, buf));
    EXPECT_EQ(p == w.data(), outlives == 1) << "zero copy exactly when the data outlives it";
    EXPECT_EQ(p[11], 11.0f);
    vt_->buffer_free(ctx_, buf);
  }
  // A shape the bytes cannot hold is refused by name.
  pw.desc.ne[1] = 4;
  pw.desc.nb[2] = pw.desc.nb[3] = 64;
  hearth_pbuffer* buf = nullptr;
  uint32_t repacked = 0;
  Recorder().last_error.clear();
  EXPECT_EQ(vt_->weight_place(ctx_, &pw, &buf, &repacked), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_NE(Recorder().last_error.find("blk.0.attn_q.weight"), std::string::npos)
      << Recorder().last_error;
}

// A Q4_0 or Q8_0 matrix placed for MUL_MAT is repacked (x8 layouts): the
// host can no longer read, write or copy its buffer, the weight-reading ops
// give what they give on the plain weight (GET_ROWS and MUL_MAT_T the same
// bits, the product to the kernels' tolerance), and any other use is
// refused by name.
class RepackTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RepackTest, MatricesAreRepackedAndReadThroughTheirLayout) {
  if (!CpuHasAvx2()) GTEST_SKIP() << "weights are repacked from AVX2 up";
  const uint32_t dt = GetParam();
  Backend b(2);
  ASSERT_TRUE(b.ok());
  const hearth_backend_vtable* vt = b.vt();
  const int64_t K = hearth_dtype_block_elems(dt) == 256 ? 512 : 96;
  constexpr int64_t M = 24;
  std::vector<uint8_t> w = RandomWeights(dt, M, K, 17);
  hearth_pweight pw{};
  pw.struct_size = sizeof(pw);
  pw.usage = HEARTH_WEIGHT_USE_MATMUL | HEARTH_WEIGHT_USE_ROWS;
  pw.name = "blk.0.ffn_up.weight";
  const int wi = b.Add(dt, {K, M}, w.data());
  pw.desc = b.desc(wi);
  pw.desc.buffer = nullptr;
  pw.data = w.data();
  pw.size = w.size();
  pw.data_outlives = 1;
  hearth_pbuffer* packed = nullptr;
  uint32_t repacked = 0;
  ASSERT_EQ(vt->weight_place(b.ctx(), &pw, &packed, &repacked), HEARTH_P_OK)
      << Recorder().last_error;
  EXPECT_EQ(repacked, 1u);
  EXPECT_EQ(vt->buffer_host_ptr(b.ctx(), packed), nullptr);
  uint8_t byte = 0;
  Recorder().last_error.clear();
  EXPECT_EQ(vt->buffer_download(b.ctx(), packed, 0, &byte, 1), HEARTH_P_INVALID_ARGUMENT);
  ExpectMessage({"repacked"});
  EXPECT_EQ(vt->buffer_upload(b.ctx(), packed, 0, &byte, 1), HEARTH_P_INVALID_ARGUMENT);

  // Rows only (an untied embedding table) and odd row counts stay plain.
  {
    hearth_pweight rows_only = pw;
    rows_only.usage = HEARTH_WEIGHT_USE_ROWS;
    hearth_pbuffer* buf = nullptr;
    ASSERT_EQ(vt->weight_place(b.ctx(), &rows_only, &buf, &repacked), HEARTH_P_OK);
    EXPECT_EQ(repacked, 0u);
    vt->buffer_free(b.ctx(), buf);
    hearth_pweight odd = pw;
    odd.desc.ne[1] = M - 4;
    odd.size = w.size() - 4 * w.size() / M;
    ASSERT_EQ(vt->weight_place(b.ctx(), &odd, &buf, &repacked), HEARTH_P_OK);
    EXPECT_EQ(repacked, 0u);
    vt->buffer_free(b.ctx(), buf);
  }

  const int pi = b.Add(dt, {K, M});
  b.desc(pi).buffer = packed;
  const std::vector<float> x = RandomF32(K * 5, 3);
  const std::vector<float> dy = RandomF32(M * 20, 4);
  const std::vector<int32_t> ids = {0, 7, 8, 23, 5};
  const int x1 = b.Add(HEARTH_DTYPE_F32, {K, 1}, x.data());
  const int x5 = b.Add(HEARTH_DTYPE_F32, {K, 5}, x.data());
  const int di = b.Add(HEARTH_DTYPE_F32, {M, 20}, dy.data());
  const int ii = b.Add(HEARTH_DTYPE_I32, {5}, ids.data());
  int out[2][4];
  for (int v = 0; v < 2; ++v) {
    const int wv = v == 0 ? wi : pi;
    out[v][0] = b.Add(HEARTH_DTYPE_F32, {M, 1});
    out[v][1] = b.Add(HEARTH_DTYPE_F32, {M, 5});
    out[v][2] = b.Add(HEARTH_DTYPE_F32, {K, 5});
    out[v][3] = b.Add(HEARTH_DTYPE_F32, {K, 20});
    b.Node(HEARTH_OP_MUL_MAT, out[v][0], {wv, x1});
    b.Node(HEARTH_OP_MUL_MAT, out[v][1], {wv, x5});
    b.Node(HEARTH_OP_GET_ROWS, out[v][2], {wv, ii});
    b.Node(HEARTH_OP_MUL_MAT_T, out[v][3], {wv, di});
  }
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  for (int o = 0; o < 4; ++o) {
    const std::vector<float> plain = b.Read(out[0][o]), got = b.Read(out[1][o]);
    ASSERT_EQ(plain.size(), got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      if (o >= 2) {
        ASSERT_EQ(got[i], plain[i]) << "output " << o << " at " << i;
      } else {
        ASSERT_NEAR(got[i], plain[i], 1e-4 * (1.0 + std::fabs(plain[i])))
            << "output " << o << " at " << i;
      }
    }
  }

  // A view that does not start on a group of 8 rows, another op reading it,
  // an op writing it: refused, naming the repacked weight.
  b.ClearNodes();
  const int view = b.Add(dt, {K, 8});
  b.desc(view).buffer = packed;
  b.desc(view).offset = 3 * RowBytes(dt, K);
  const int out8 = b.Add(HEARTH_DTYPE_F32, {8, 1});
  b.Node(HEARTH_OP_MUL_MAT, out8, {view, x1});
  EXPECT_EQ(b.Compute(), HEARTH_P_INVALID_ARGUMENT);
  ExpectMessage({"repacked", "start on a group"});
  b.desc(view).offset = 8 * RowBytes(dt, K);
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  const std::vector<float> rows8 = b.Read(out8), all = b.Read(out[1][0]);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(rows8[i], all[8 + i]) << "rows 8..15 through a view, " << i;
  b.ClearNodes();
  b.Node(HEARTH_OP_MUL_MAT, out[1][0], {x1, pi});
  EXPECT_EQ(b.Compute(), HEARTH_P_INVALID_ARGUMENT);
  ExpectMessage({"input 1", "repacked", "MUL_MAT cannot read it"});
  b.ClearNodes();
  b.Node(HEARTH_OP_COPY, pi, {wi});
  EXPECT_EQ(b.Compute(), HEARTH_P_INVALID_ARGUMENT);
  ExpectMessage({"repacked", "cannot be written"});
  vt->buffer_free(b.ctx(), packed);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RepackTest,
                         ::testing::Values(uint32_t{HEARTH_DTYPE_Q4_0}, uint32_t{HEARTH_DTYPE_Q8_0},
                                           uint32_t{HEARTH_DTYPE_Q4_K},
                                           uint32_t{HEARTH_DTYPE_Q6_K}),
                         [](const ::testing::TestParamInfo<uint32_t>& i) {
                           return std::string(DtypeName(i.param));
                         });

}  // namespace
}  // namespace hearth::cpu::testing
