// harness.cc — laying a case out in one arena, running it on the plugin,
// and judging what came back (values, errors, stray writes).
#include "backends/conformance/harness.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace hearth::conformance {

// ------------------------------------------------------------------ random

double Uniform(Rng& rng, double lo, double hi) {
  return lo + (hi - lo) * (static_cast<double>(rng() >> 11) * 0x1.0p-53);
}

int64_t UniformInt(Rng& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

Vec RandomVec(Rng& rng, size_t n, double lo, double hi) {
  Vec v(n);
  for (double& x : v) x = Uniform(rng, lo, hi);
  return v;
}

std::vector<uint8_t> RandomBlocks(Rng& rng, uint32_t dtype, int64_t rows, int64_t k) {
  const int64_t be = hearth_dtype_block_elems(dtype), bb = hearth_dtype_block_bytes(dtype);
  std::vector<uint8_t> out(static_cast<size_t>(rows * (k / be) * bb));
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  auto put_half = [](uint8_t* p, double v) {
    const uint16_t h = FloatToHalf(static_cast<float>(v));
    std::memcpy(p, &h, 2);
  };
  for (size_t blk = 0; blk < out.size() / bb; ++blk) {
    uint8_t* p = &out[blk * bb];
    const double sign = (rng() & 1) ? 1 : -1;
    switch (dtype) {
      case HEARTH_DTYPE_Q8_0:
        put_half(p, sign * Uniform(rng, 0.002, 0.01));
        break;
      case HEARTH_DTYPE_Q4_0:
      case HEARTH_DTYPE_Q5_0:
        put_half(p, sign * Uniform(rng, 0.02, 0.1));
        break;
      case HEARTH_DTYPE_Q4_1:
        put_half(p, Uniform(rng, 0.02, 0.1));
        put_half(p + 2, Uniform(rng, -0.8, 0.0));
        break;
      case HEARTH_DTYPE_Q4_K:  // scales and mins are 6-bit; keep d * 63 * 15 ~ 1
        put_half(p, Uniform(rng, 0.0005, 0.002));
        put_half(p + 2, Uniform(rng, 0.0005, 0.002));
        break;
      case HEARTH_DTYPE_Q6_K: {  // int8 scales: keep them moderate
        for (int i = 0; i < 16; ++i) p[192 + i] = static_cast<uint8_t>(UniformInt(rng, -40, 40));
        put_half(p + 208, sign * Uniform(rng, 0.0005, 0.002));
        break;
      }
      default:
        break;
    }
  }
  return out;
}

// ------------------------------------------------------------------ layout

namespace {

int64_t ElemBytes(uint32_t dtype) { return hearth_dtype_block_bytes(dtype); }
bool IsBlock(uint32_t dtype) { return hearth_dtype_block_elems(dtype) > 1; }
int64_t RowBytes(uint32_t dtype, int64_t ne0) {
  return ne0 / hearth_dtype_block_elems(dtype) * hearth_dtype_block_bytes(dtype);
}

}  // namespace

int Case::Place(uint32_t dtype, const Shape& ne, const int64_t* nb, Layout layout) {
  TensorSpec t;
  hearth_tensor_desc& d = t.desc;
  d.dtype = dtype;
  d.n_dims = static_cast<uint32_t>(ne.size());
  for (int i = 0; i < 4; ++i) d.ne[i] = i < static_cast<int>(ne.size()) ? ne[i] : 1;
  const int64_t eb = ElemBytes(dtype);
  // Padding keeps the element alignment of plugin_common's CheckDesc: whole
  // elements, or whole blocks for block formats.
  const int64_t pad_unit = IsBlock(dtype) ? eb : eb;
  if (nb != nullptr) {
    for (int i = 0; i < 4; ++i) d.nb[i] = nb[i];
  } else {
    d.nb[0] = eb;
    d.nb[1] = RowBytes(dtype, d.ne[0]);
    if (layout == kStrided) d.nb[1] += pad_unit * UniformInt(*rng_, 1, 3);
    for (int i = 2; i < 4; ++i) {
      d.nb[i] = d.nb[i - 1] * d.ne[i - 1];
      if (layout == kStrided) d.nb[i] += pad_unit * UniformInt(*rng_, 1, 3);
    }
  }
  bool empty = false;
  uint64_t span = IsBlock(dtype) ? RowBytes(dtype, d.ne[0]) : (d.ne[0] - 1) * d.nb[0] + eb;
  for (int i = 1; i < 4; ++i) span += (d.ne[i] - 1) * d.nb[i];
  for (int i = 0; i < 4; ++i) empty |= d.ne[i] == 0;
  if (empty) span = 0;
  // A guard of 64..124 bytes, then an offset aligned to the element only
  // (4 for F32/I32, 2 for F16, BF16 and blocks) and sometimes no more.
  const int64_t align = IsBlock(dtype) ? 2 : eb;
  uint64_t off = arena_.size() + 64 + 4 * UniformInt(*rng_, 0, 15);
  off = (off + align - 1) / align * align;
  if (UniformInt(*rng_, 0, 1)) off += align;
  d.offset = off;
  t.span = span;
  arena_.resize(off + span + 64, 0xff);
  writable_.resize(arena_.size(), 0);
  tensors_.push_back(t);
  return static_cast<int>(tensors_.size()) - 1;
}

int64_t Case::Elems(int t) const {
  const hearth_tensor_desc& d = tensors_[t].desc;
  return d.ne[0] * d.ne[1] * d.ne[2] * d.ne[3];
}

namespace {
// Byte offset of plain element i (ne order) from the tensor's offset.
uint64_t ElemOffset(const hearth_tensor_desc& d, int64_t i) {
  const int64_t i0 = i % d.ne[0], r = i / d.ne[0];
  const int64_t i1 = r % d.ne[1], i2 = r / d.ne[1] % d.ne[2], i3 = r / d.ne[1] / d.ne[2];
  return i0 * d.nb[0] + i1 * d.nb[1] + i2 * d.nb[2] + i3 * d.nb[3];
}
}  // namespace

uint8_t* Case::ElemPtr(int t, int64_t i) {
  const hearth_tensor_desc& d = tensors_[t].desc;
  return &arena_[d.offset + ElemOffset(d, i)];
}

void Case::ForEachElemByte(int t, const std::function<void(uint64_t)>& f) const {
  const hearth_tensor_desc& d = tensors_[t].desc;
  const int64_t eb = ElemBytes(d.dtype);
  if (IsBlock(d.dtype)) {
    const int64_t rb = RowBytes(d.dtype, d.ne[0]);
    for (int64_t r = 0; r < d.ne[1] * d.ne[2] * d.ne[3]; ++r) {
      const uint64_t o = d.offset + ElemOffset(d, r * d.ne[0]);
      for (int64_t b = 0; b < rb; ++b) f(o + b);
    }
    return;
  }
  for (int64_t i = 0; i < Elems(t); ++i) {
    const uint64_t o = d.offset + ElemOffset(d, i);
    for (int64_t b = 0; b < eb; ++b) f(o + b);
  }
}

namespace {
void StoreElem(uint32_t dtype, uint8_t* p, double v, double* stored) {
  const float f = static_cast<float>(v);
  uint16_t h;
  switch (dtype) {
    case HEARTH_DTYPE_F16:
      h = FloatToHalf(f);
      std::memcpy(p, &h, 2);
      *stored = HalfToDouble(h);
      break;
    case HEARTH_DTYPE_BF16:
      h = FloatToBf16(f);
      std::memcpy(p, &h, 2);
      *stored = Bf16ToDouble(h);
      break;
    default:
      std::memcpy(p, &f, 4);
      *stored = f;
  }
}
}  // namespace

int Case::Input(uint32_t dtype, const Shape& ne, const Vec& values, Layout layout, Vec* stored) {
  const int t = Place(dtype, ne, nullptr, layout);
  Vec s(values.size());
  for (int64_t i = 0; i < Elems(t); ++i) StoreElem(dtype, ElemPtr(t, i), values[i], &s[i]);
  if (stored) *stored = std::move(s);
  return t;
}

int Case::InputStrided(uint32_t dtype, const Shape& ne, const int64_t nb[4], const Vec& values,
                       Vec* stored) {
  const int t = Place(dtype, ne, nb, kContiguous);
  Vec s(values.size());
  for (int64_t i = 0; i < Elems(t); ++i) StoreElem(dtype, ElemPtr(t, i), values[i], &s[i]);
  if (stored) *stored = std::move(s);
  return t;
}

int Case::InputI32(const Shape& ne, const std::vector<int32_t>& values) {
  const int t = Place(HEARTH_DTYPE_I32, ne, nullptr, kContiguous);
  for (int64_t i = 0; i < Elems(t); ++i) std::memcpy(ElemPtr(t, i), &values[i], 4);
  return t;
}

int Case::InputBlocks(uint32_t dtype, const Shape& ne, const std::vector<uint8_t>& rows,
                      Layout layout) {
  const int t = Place(dtype, ne, nullptr, layout);
  const hearth_tensor_desc& d = tensors_[t].desc;
  const int64_t rb = RowBytes(dtype, d.ne[0]);
  for (int64_t r = 0; r < d.ne[1] * d.ne[2] * d.ne[3]; ++r) {
    std::memcpy(&arena_[d.offset + ElemOffset(d, r * d.ne[0])], &rows[r * rb], rb);
  }
  return t;
}

int Case::PlacedWeight(uint32_t dtype, int64_t K, int64_t M, const std::vector<uint8_t>& rows,
                       bool outlives, int64_t first_row, int64_t view_rows) {
  TensorSpec t;
  hearth_tensor_desc& d = t.desc;
  d.dtype = dtype;
  d.n_dims = 2;
  d.ne[0] = K;
  d.ne[1] = view_rows;
  d.ne[2] = d.ne[3] = 1;
  d.nb[0] = ElemBytes(dtype);
  d.nb[1] = RowBytes(dtype, K);
  d.nb[2] = d.nb[3] = d.nb[1] * view_rows;
  d.offset = static_cast<uint64_t>(first_row * d.nb[1]);
  t.span = static_cast<uint64_t>(view_rows * d.nb[1]);
  Placed p;
  p.whole = d;
  p.whole.ne[1] = M;
  p.whole.nb[2] = p.whole.nb[3] = d.nb[1] * M;
  p.whole.offset = 0;
  p.bytes = rows;
  p.outlives = outlives;
  p.view_offset = d.offset;
  tensors_.push_back(t);
  p.tensor = static_cast<int>(tensors_.size()) - 1;
  placed_.push_back(std::move(p));
  return placed_.back().tensor;
}

int Case::Output(uint32_t dtype, const Shape& ne, Layout layout) {
  const int t = Place(dtype, ne, nullptr, layout);
  MarkWritable(t);
  return t;
}

void Case::MarkWritable(int t) {
  ForEachElemByte(t, [&](uint64_t o) { writable_[o] = 1; });
}

void Case::Node(uint32_t op, const std::vector<int>& outs, const std::vector<int>& inputs,
                const void* params, size_t params_size) {
  hearth_node n{};
  n.op = op;
  n.output = outs.empty() ? -1 : outs[0];
  n.first_input = static_cast<uint32_t>(node_inputs_.size());
  n.n_inputs = static_cast<uint16_t>(inputs.size());
  n.n_extra_outputs = static_cast<uint16_t>(outs.empty() ? 0 : outs.size() - 1);
  for (int in : inputs) node_inputs_.push_back(in);
  for (size_t k = 1; k < outs.size(); ++k) node_inputs_.push_back(outs[k]);
  if (params_size > 0) {
    n.params_offset = static_cast<uint32_t>(params_.size() * 8);
    n.params_size = static_cast<uint32_t>(params_size);
    params_.resize(params_.size() + (params_size + 7) / 8, 0);
    std::memcpy(reinterpret_cast<uint8_t*>(params_.data()) + n.params_offset, params, params_size);
  }
  nodes_.push_back(n);
}

void Case::Expect(int t, Vec want, Vec tol) {
  if (tol.size() == 1) tol.assign(want.size(), tol[0]);
  checks_.push_back({t, std::move(want), std::move(tol)});
}

double Case::ReadElem(const std::vector<uint8_t>& image, int t, int64_t i) const {
  const hearth_tensor_desc& d = tensors_[t].desc;
  const uint8_t* p = &image[d.offset + ElemOffset(d, i)];
  uint16_t h;
  float f;
  int32_t n;
  switch (d.dtype) {
    case HEARTH_DTYPE_F16:
      std::memcpy(&h, p, 2);
      return HalfToDouble(h);
    case HEARTH_DTYPE_BF16:
      std::memcpy(&h, p, 2);
      return Bf16ToDouble(h);
    case HEARTH_DTYPE_I32:
      std::memcpy(&n, p, 4);
      return n;
    default:
      std::memcpy(&f, p, 4);
      return f;
  }
}

Vec TolAbsRel(const Vec& want, double atol, double rtol) {
  Vec tol(want.size());
  for (size_t i = 0; i < want.size(); ++i) tol[i] = atol + rtol * std::fabs(want[i]);
  return tol;
}

// ------------------------------------------------------------------ host

namespace {

struct HostState {
  std::string last_error;
  int32_t last_code = 0;
};
thread_local HostState g_host;

void HostSetError(void*, hearth_pstatus code, const char* message) {
  g_host.last_code = code;
  g_host.last_error = message != nullptr ? message : "";
  if (g_host.last_error.empty()) g_host.last_error = "(set_error with an empty message)";
}
void HostLog(void*, int level, const char* message) {
  if (level <= HEARTH_LOG_WARN && message != nullptr) std::fprintf(stderr, "plugin: %s\n", message);
}
void* HostAlloc(void*, size_t size, size_t alignment) {
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  size = (size + alignment - 1) / alignment * alignment;
  return std::aligned_alloc(alignment, size ? size : alignment);
}
void HostFree(void*, void* p) { std::free(p); }

const hearth_host_services kHost = {
    sizeof(hearth_host_services), nullptr, HostSetError, HostLog, HostAlloc, HostFree};

#define VT_HAS(vt, member) \
  (HEARTH_PLUGIN_HAS_SLOT(vt, hearth_backend_vtable, member) && (vt)->member != nullptr)

std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

}  // namespace

std::string LastPluginError() { return g_host.last_error; }
void ClearPluginError() {
  g_host.last_error.clear();
  g_host.last_code = 0;
}

std::string PluginUnderTest::Open(const std::string& path, uint32_t device) {
  // Never dlclose'd: the plugin's objects live until exit.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* e = dlerror();
    return "cannot load " + path + ": " + (e ? e : "dlopen failed");
  }
  auto init = reinterpret_cast<hearth_plugin_init_fn>(dlsym(handle, HEARTH_PLUGIN_INIT_SYMBOL));
  if (init == nullptr) return path + " does not export " HEARTH_PLUGIN_INIT_SYMBOL;
  hearth_plugin_init_info info{};
  info.struct_size = sizeof(info);
  info.host_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info.host_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  info.host = &kHost;
  ClearPluginError();
  if (init(&info) != HEARTH_P_OK) {
    return Fmt("%s: hearth_plugin_init failed (plugin ABI %u.%u, host %d.%d): %s", path.c_str(),
               info.plugin_abi_major, info.plugin_abi_minor, HEARTH_PLUGIN_ABI_MAJOR,
               HEARTH_PLUGIN_ABI_MINOR, LastPluginError().c_str());
  }
  if (info.plugin_abi_major != HEARTH_PLUGIN_ABI_MAJOR) {
    return Fmt("%s: plugin ABI major %u, this tool speaks %d", path.c_str(), info.plugin_abi_major,
               HEARTH_PLUGIN_ABI_MAJOR);
  }
  if (info.kind != HEARTH_PLUGIN_KIND_BACKEND || info.vtable == nullptr) {
    return path + " is not a backend plugin";
  }
  vt_ = static_cast<const hearth_backend_vtable*>(info.vtable);
  name_ = info.name != nullptr ? info.name : "?";
  if (!VT_HAS(vt_, graph_compute) || !VT_HAS(vt_, buffer_download) || !VT_HAS(vt_, supports) ||
      !VT_HAS(vt_, context_create) || !VT_HAS(vt_, buffer_alloc)) {
    return path + ": the backend vtable lacks a required slot";
  }
  const char* reason = nullptr;
  if (vt_->probe(&reason) <= 0) {
    return Fmt("%s: probe() says it cannot run here: %s", path.c_str(), reason ? reason : "?");
  }
  if (device >= vt_->device_count()) {
    return Fmt("%s has %u devices; --device %u does not exist", path.c_str(), vt_->device_count(),
               device);
  }
  device_ = device;
  hearth_pcontext_options opt{};
  opt.struct_size = sizeof(opt);
  opt.device = device;
  ClearPluginError();
  if (vt_->context_create(&opt, &ctx_) != HEARTH_P_OK) {
    ctx_ = nullptr;
    return "context_create failed: " + LastPluginError();
  }
  return "";
}

CaseResult PluginUnderTest::RunBufferCopy(Rng& rng, uint64_t size_a, uint64_t size_b) {
  CaseResult r;
  auto fail = [&](const std::string& why) {
    if (r.status != CaseResult::kFail) r.failure = why;
    r.status = CaseResult::kFail;
  };
  if (!VT_HAS(vt_, buffer_copy)) {
    fail("the required slot buffer_copy is missing");
    return r;
  }
  hearth_pbuffer *a = nullptr, *b = nullptr;
  if (vt_->buffer_alloc(ctx_, size_a, &a) != HEARTH_P_OK ||
      vt_->buffer_alloc(ctx_, size_b, &b) != HEARTH_P_OK) {
    fail("buffer_alloc failed: " + LastPluginError());
    if (a != nullptr) vt_->buffer_free(ctx_, a);
    return r;
  }
  std::vector<uint8_t> ha(size_a), hb(size_b);
  for (uint8_t& v : ha) v = static_cast<uint8_t>(rng());
  for (uint8_t& v : hb) v = static_cast<uint8_t>(rng());
  vt_->buffer_upload(ctx_, a, 0, ha.data(), size_a);
  vt_->buffer_upload(ctx_, b, 0, hb.data(), size_b);
  struct Step {
    bool to_b;  // a -> b, else a -> a
    uint64_t src, dst, n;
  };
  const uint64_t n1 = std::min<uint64_t>(size_a, size_b) / 3;
  const std::vector<Step> steps = {
      {true, 5, 3, n1},                    // between buffers, odd offsets
      {false, 0, 1 + size_a / 7, n1},      // overlapping, forward
      {false, size_a / 5, 3, size_a / 2},  // overlapping, backward
      {true, size_a - 1, size_b - 1, 1},   // the last byte
      {true, 0, 0, 0},                     // nothing
  };
  for (const Step& s : steps) {
    ClearPluginError();
    if (vt_->buffer_copy(ctx_, a, s.src, s.to_b ? b : a, s.dst, s.n) != HEARTH_P_OK) {
      fail(Fmt("buffer_copy(src %llu, dst %llu, %llu bytes) failed: %s", (unsigned long long)s.src,
               (unsigned long long)s.dst, (unsigned long long)s.n, LastPluginError().c_str()));
      break;
    }
    std::vector<uint8_t>& dst = s.to_b ? hb : ha;
    std::memmove(dst.data() + s.dst, ha.data() + s.src, s.n);
  }
  // Past the end: an error, and neither buffer changes.
  for (const Step& s : {Step{true, size_a - 10, 0, 11}, Step{true, 0, size_b - 3, 4},
                        Step{false, UINT64_MAX - 2, 0, 4}}) {
    ClearPluginError();
    const hearth_pstatus st = vt_->buffer_copy(ctx_, a, s.src, s.to_b ? b : a, s.dst, s.n);
    if (st == HEARTH_P_OK) {
      fail(Fmt("buffer_copy(src %llu, dst %llu, %llu bytes) past a buffer's end returned OK",
               (unsigned long long)s.src, (unsigned long long)s.dst, (unsigned long long)s.n));
    } else if (LastPluginError().empty()) {
      fail("buffer_copy refused a range past the end without calling set_error");
    }
  }
  std::vector<uint8_t> ga(size_a), gb(size_b);
  vt_->buffer_download(ctx_, a, 0, ga.data(), size_a);
  vt_->buffer_download(ctx_, b, 0, gb.data(), size_b);
  for (uint64_t i = 0; i < size_a && r.status != CaseResult::kFail; ++i) {
    if (ga[i] != ha[i])
      fail(Fmt("buffer a: byte %llu differs from memmove's", (unsigned long long)i));
  }
  for (uint64_t i = 0; i < size_b && r.status != CaseResult::kFail; ++i) {
    if (gb[i] != hb[i])
      fail(Fmt("buffer b: byte %llu differs from memmove's", (unsigned long long)i));
  }
  vt_->buffer_free(ctx_, a);
  vt_->buffer_free(ctx_, b);
  return r;
}

PluginUnderTest::~PluginUnderTest() {
  if (ctx_ != nullptr) vt_->context_free(ctx_);
}

std::string PluginUnderTest::DeviceName() const {
  hearth_pdevice_info d{};
  d.struct_size = sizeof(d);
  if (vt_->device_info(device_, &d) != HEARTH_P_OK) return "?";
  std::string s = d.name ? d.name : "?";
  if (d.description) s += std::string(" (") + d.description + ")";
  return s;
}

namespace {

// "12 bytes past the end of tensor 3" for a stray write at arena offset o.
std::string WhereIs(const Case& c, uint64_t o) {
  int best = -1;
  for (size_t t = 0; t < c.tensors().size(); ++t) {
    if (c.tensors()[t].desc.offset <= o &&
        (best < 0 || c.tensors()[t].desc.offset > c.tensors()[best].desc.offset)) {
      best = static_cast<int>(t);
    }
  }
  if (best < 0) return Fmt("byte %llu, before every tensor", (unsigned long long)o);
  const TensorSpec& s = c.tensors()[best];
  const uint64_t end = s.desc.offset + s.span;
  if (o >= end) {
    return Fmt("byte %llu, %llu bytes past the end of tensor %d", (unsigned long long)o,
               (unsigned long long)(o - end), best);
  }
  return Fmt("byte %llu, inside tensor %d's span but not one of its elements or not writable",
             (unsigned long long)o, best);
}

}  // namespace

CaseResult PluginUnderTest::Run(const Case& c) {
  CaseResult r;
  const std::vector<uint8_t>& image = c.arena();
  hearth_pbuffer* buf = nullptr;
  ClearPluginError();
  if (vt_->buffer_alloc(ctx_, image.size(), &buf) != HEARTH_P_OK) {
    r.status = CaseResult::kFail;
    r.failure = Fmt("buffer_alloc(%zu) failed: %s", image.size(), LastPluginError().c_str());
    return r;
  }
  struct Free {
    const hearth_backend_vtable* vt;
    hearth_pcontext* ctx;
    hearth_pbuffer* b;
    ~Free() { vt->buffer_free(ctx, b); }
  } free_buf{vt_, ctx_, buf};
  std::vector<hearth_tensor_desc> descs;
  for (const TensorSpec& t : c.tensors()) {
    descs.push_back(t.desc);
    descs.back().buffer = buf;
  }
  // Placed weights live in buffers of their own (freed with this scope).
  struct FreeAll {
    const hearth_backend_vtable* vt;
    hearth_pcontext* ctx;
    std::vector<hearth_pbuffer*> bufs;
    ~FreeAll() {
      for (hearth_pbuffer* b : bufs) vt->buffer_free(ctx, b);
    }
  } placed_bufs{vt_, ctx_, {}};
  if (!c.placed().empty() && !VT_HAS(vt_, weight_place)) {
    r.status = CaseResult::kNotClaimed;
    return r;
  }
  for (const Case::Placed& p : c.placed()) {
    std::vector<uint8_t> copy = p.bytes;  // scribbled over after placing when !outlives
    hearth_pweight w{};
    w.struct_size = sizeof(w);
    w.usage = HEARTH_WEIGHT_USE_MATMUL;
    w.name = "conformance.weight";
    w.desc = p.whole;
    w.data = p.outlives ? p.bytes.data() : copy.data();
    w.size = p.bytes.size();
    w.data_outlives = p.outlives ? 1 : 0;
    hearth_pbuffer* pb = nullptr;
    uint32_t repacked = 0;
    ClearPluginError();
    if (vt_->weight_place(ctx_, &w, &pb, &repacked) != HEARTH_P_OK || pb == nullptr) {
      r.status = CaseResult::kFail;
      r.failure = "weight_place failed: " + LastPluginError();
      return r;
    }
    placed_bufs.bufs.push_back(pb);
    if (!p.outlives) std::fill(copy.begin(), copy.end(), uint8_t{0xff});
    descs[p.tensor].buffer = pb;
    descs[p.tensor].offset = p.view_offset;
  }
  hearth_graph g{};
  g.struct_size = sizeof(g);
  g.n_tensors = static_cast<uint32_t>(descs.size());
  g.tensors = descs.data();
  g.n_nodes = static_cast<uint32_t>(c.nodes().size());
  g.nodes = c.nodes().data();
  g.n_node_inputs = static_cast<uint32_t>(c.node_inputs().size());
  g.node_inputs = c.node_inputs().data();
  g.params_bytes = static_cast<uint32_t>(c.params().size() * 8);
  g.params = c.params().data();
  // plan_key = binding_key = 0: "not computed, cache nothing".
  for (uint32_t i = 0; i < g.n_nodes; ++i) {
    if (vt_->supports(ctx_, &g, i) != 1) {
      r.status = CaseResult::kNotClaimed;
      return r;
    }
  }
  if (vt_->buffer_upload(ctx_, buf, 0, image.data(), image.size()) != HEARTH_P_OK) {
    r.status = CaseResult::kFail;
    r.failure = "buffer_upload failed: " + LastPluginError();
    return r;
  }
  ClearPluginError();
  const hearth_pstatus st = vt_->graph_compute(ctx_, &g);
  const std::string err = LastPluginError();
  std::vector<uint8_t> got(image.size());
  ClearPluginError();
  if (vt_->buffer_download(ctx_, buf, 0, got.data(), got.size()) != HEARTH_P_OK) {
    r.status = CaseResult::kFail;
    r.failure = "buffer_download failed: " + LastPluginError();
    return r;
  }
  auto fail = [&](const std::string& why) {
    if (r.status != CaseResult::kFail) r.failure = why;
    r.status = CaseResult::kFail;
  };
  if (c.expect_error()) {
    if (st == HEARTH_P_OK) {
      fail("graph_compute returned OK; an error was required");
    } else if (err.empty()) {
      fail(Fmt("graph_compute returned %d without calling set_error", st));
    }
  } else if (st != HEARTH_P_OK) {
    fail(Fmt("graph_compute failed (%d): %s", st, err.c_str()));
    return r;
  }
  // Stray writes: any byte outside the writable elements that changed.
  for (size_t o = 0; o < image.size(); ++o) {
    if (!c.writable()[o] && got[o] != image[o]) {
      fail("wrote outside its outputs: " + WhereIs(c, o));
      break;
    }
  }
  if (c.expect_error()) return r;
  for (const Case::Check& ch : c.checks()) {
    for (size_t i = 0; i < ch.want.size(); ++i) {
      const double v = c.ReadElem(got, ch.tensor, static_cast<int64_t>(i));
      const double want = ch.want[i], tol = ch.tol[i];
      const double e = std::fabs(v - want);
      // NaN (an output never written: the poison) and infinities fail
      // unless the reference is the same value.
      double ratio = e == 0 || v == want ? 0 : tol > 0 ? e / tol : HUGE_VAL;
      if (std::isnan(ratio) || (!std::isfinite(v) && v != want)) ratio = HUGE_VAL;
      if (ratio > r.worst_ratio) {
        r.worst_ratio = ratio;
        r.worst_err = std::isfinite(v) ? e : HUGE_VAL;
        r.worst_tol = tol;
      }
      if (ratio > 1 && r.status != CaseResult::kFail) {
        const hearth_tensor_desc& d = c.tensors()[ch.tensor].desc;
        const int64_t i0 = static_cast<int64_t>(i) % d.ne[0],
                      rr = static_cast<int64_t>(i) / d.ne[0];
        fail(Fmt("tensor %d element [%lld, %lld, %lld, %lld]: got %.9g, want %.9g (tol %.3g)",
                 ch.tensor, (long long)i0, (long long)(rr % d.ne[1]),
                 (long long)(rr / d.ne[1] % d.ne[2]), (long long)(rr / d.ne[1] / d.ne[2]), v, want,
                 tol));
      }
    }
  }
  return r;
}

}  // namespace hearth::conformance
