// fault_plugin.cc — libhearth-backend-fault.so, a backend plugin built for
// tests only (never installed). It loads a real backend plugin (the absolute
// path in HEARTH_FAULT_INNER), forwards every vtable call to it, and fails
// the calls a fault plan names (fault_control.h), the way a device that runs
// out of memory or is lost would. This keeps fault hooks out of hearth's
// production code: the host sees an ordinary plugin with a device named
// "fault", and its error paths run exactly as they would for a real GPU.
//
// Besides hearth_plugin_init it exports the control symbols of
// fault_control.h; the plan can also be set before the first init with
// HEARTH_FAULT_PLAN. The wrapped plugin gets a host-services table of our
// own, so "host_alloc" rules reach the wrapped plugin's own allocations
// (its buffers, its compute scratch) and its out-of-memory paths.
#include <dlfcn.h>

#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "hearth/hearth_plugin.h"
#include "tests/fault/fault_control.h"

namespace {

// ------------------------------------------------------------------- plan

enum Call { kContext, kAlloc, kWrap, kUpload, kDownload, kCompute, kHostAlloc, kNumCalls };

const char* const kCallNames[kNumCalls] = {"context",  "alloc",   "wrap",      "upload",
                                           "download", "compute", "host_alloc"};

const hearth_pstatus kDefaultCode[kNumCalls] = {
    HEARTH_P_RESOURCE_EXHAUSTED, HEARTH_P_RESOURCE_EXHAUSTED, HEARTH_P_UNIMPLEMENTED,
    HEARTH_P_INTERNAL,           HEARTH_P_INTERNAL,           HEARTH_P_INTERNAL,
    HEARTH_P_RESOURCE_EXHAUSTED};

struct CodeName {
  const char* name;
  hearth_pstatus code;
};
const CodeName kCodeNames[] = {{"cancelled", 1},           {"unknown", 2},
                               {"invalid_argument", 3},    {"deadline_exceeded", 4},
                               {"not_found", 5},           {"already_exists", 6},
                               {"permission_denied", 7},   {"resource_exhausted", 8},
                               {"failed_precondition", 9}, {"aborted", 10},
                               {"out_of_range", 11},       {"unimplemented", 12},
                               {"internal", 13},           {"unavailable", 14},
                               {"data_loss", 15},          {"unauthenticated", 16}};

struct Rule {
  Call call;
  int64_t n;
  bool and_after;  // ">=": every call from the nth on
  hearth_pstatus code;
};

int CallByName(const std::string& name) {
  for (int i = 0; i < kNumCalls; ++i) {
    if (name == kCallNames[i]) return i;
  }
  return -1;
}

bool ParseCount(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 12) return false;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// One rule, "<call>[>]=N[:code]". Returns "" or why it is wrong.
std::string ParseRule(const std::string& text, Rule* rule) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return "expected <call>=N or <call>>=N";
  rule->and_after = text[eq - 1] == '>';
  const std::string name = text.substr(0, rule->and_after ? eq - 1 : eq);
  const int call = CallByName(name);
  if (call < 0) {
    return "unknown call '" + name +
           "' (context, alloc, wrap, upload, download, compute, host_alloc)";
  }
  rule->call = static_cast<Call>(call);
  std::string rest = text.substr(eq + 1), code;
  const size_t colon = rest.find(':');
  if (colon != std::string::npos) {
    code = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (!ParseCount(rest, &rule->n) || rule->n < 1) return "N must be a whole number >= 1";
  rule->code = kDefaultCode[call];
  if (!code.empty()) {
    int64_t number = 0;
    bool found = false;
    for (const CodeName& c : kCodeNames) {
      if (code == c.name) {
        rule->code = c.code;
        found = true;
      }
    }
    if (!found && ParseCount(code, &number) && number > 0 && number < 1000) {
      rule->code = static_cast<hearth_pstatus>(number);
      found = true;
    }
    if (!found) return "unknown status code '" + code + "'";
  }
  return "";
}

struct State {
  std::mutex mu;
  std::vector<Rule> rules;                                      // under mu
  int64_t calls[kNumCalls] = {};                                // under mu
  int64_t injected = 0;                                         // under mu
  std::unordered_set<const void*> live_buffers, live_contexts;  // under mu
  std::string plan_error;                                       // under mu; what set_plan returns
};

State& S() {
  static State* s = new State();  // never destroyed: plugin code may run at exit
  return *s;
}

// Counts a call and says whether it fails, with which code and call number.
bool ShouldFail(Call call, hearth_pstatus* code, int64_t* call_no) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  const int64_t n = ++s.calls[call];
  *call_no = n;
  for (const Rule& r : s.rules) {
    if (r.call == call && (n == r.n || (r.and_after && n > r.n))) {
      *code = r.code;
      ++s.injected;
      return true;
    }
  }
  return false;
}

void Track(std::unordered_set<const void*> State::*set, const void* p, bool add) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (add) {
    (s.*set).insert(p);
  } else {
    (s.*set).erase(p);
  }
}

// ------------------------------------------------------------ host services

const hearth_host_services* g_outer = nullptr;  // the host's table, set at init
hearth_host_services g_inner_host{};            // what the wrapped plugin sees

std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

void Log(int level, const std::string& message) {
  if (g_outer != nullptr) g_outer->log(g_outer->ctx, level, message.c_str());
}

hearth_pstatus Fail(hearth_pstatus code, const std::string& message) {
  if (g_outer != nullptr) g_outer->set_error(g_outer->ctx, code, message.c_str());
  return code;
}

hearth_pstatus Inject(hearth_pstatus code, const char* call, int64_t call_no,
                      const std::string& what) {
  Log(HEARTH_LOG_INFO, Format("fault: failing %s call #%lld", call, (long long)call_no));
  return Fail(code, Format("fault %s: injected: %s (call #%lld of the fault plan)", call,
                           what.c_str(), (long long)call_no));
}

void InnerSetError(void*, hearth_pstatus code, const char* message) {
  g_outer->set_error(g_outer->ctx, code, message);
}
void InnerLog(void*, int level, const char* message) { g_outer->log(g_outer->ctx, level, message); }
void* InnerAlloc(void*, size_t size, size_t alignment) {
  hearth_pstatus code = 0;
  int64_t call_no = 0;
  if (ShouldFail(kHostAlloc, &code, &call_no)) {
    Log(HEARTH_LOG_INFO,
        Format("fault: failing host alloc call #%lld (%zu bytes)", (long long)call_no, size));
    return nullptr;
  }
  return g_outer->alloc(g_outer->ctx, size, alignment);
}
void InnerFree(void*, void* ptr) { g_outer->free(g_outer->ctx, ptr); }

// ------------------------------------------------------------ the wrapped plugin

const hearth_backend_vtable* g_in = nullptr;                     // the wrapped plugin's vtable
hearth_backend_vtable g_vtable{};                                // ours, filled once at init
std::vector<std::string> g_device_names, g_device_descriptions;  // fixed after init
std::string g_init_error;                                        // fixed after init

bool InnerHas(size_t end_of_slot) { return g_in->struct_size >= end_of_slot; }
#define INNER_HAS(member)                                   \
  (InnerHas(offsetof(hearth_backend_vtable, member) +       \
            sizeof(((hearth_backend_vtable*)0)->member)) && \
   g_in->member != nullptr)

int32_t Probe(const char** reason) { return g_in->probe(reason); }
uint32_t DeviceCount(void) { return g_in->device_count(); }

hearth_pstatus DeviceInfo(uint32_t device, hearth_pdevice_info* out) {
  if (out == nullptr) return Fail(HEARTH_P_INVALID_ARGUMENT, "fault device_info: out is NULL");
  if (device >= g_device_names.size()) {
    return Fail(HEARTH_P_NOT_FOUND, Format("fault device_info: device %u does not exist", device));
  }
  const hearth_pstatus st = g_in->device_info(device, out);
  if (st != HEARTH_P_OK) return st;
  if (HEARTH_PLUGIN_HAS_SLOT(out, hearth_pdevice_info, name)) {
    out->name = g_device_names[device].c_str();
  }
  if (HEARTH_PLUGIN_HAS_SLOT(out, hearth_pdevice_info, description)) {
    out->description = g_device_descriptions[device].c_str();
  }
  return HEARTH_P_OK;
}

hearth_pstatus ContextCreate(const hearth_pcontext_options* options, hearth_pcontext** out) {
  hearth_pstatus code = 0;
  int64_t n = 0;
  if (ShouldFail(kContext, &code, &n)) {
    return Inject(code, "context_create", n, "cannot create a device context");
  }
  const hearth_pstatus st = g_in->context_create(options, out);
  if (st == HEARTH_P_OK && out != nullptr) Track(&State::live_contexts, *out, true);
  return st;
}

void ContextFree(hearth_pcontext* ctx) {
  if (ctx != nullptr) Track(&State::live_contexts, ctx, false);
  g_in->context_free(ctx);
}

hearth_pstatus BufferAlloc(hearth_pcontext* ctx, uint64_t size, hearth_pbuffer** out) {
  hearth_pstatus code = 0;
  int64_t n = 0;
  if (ShouldFail(kAlloc, &code, &n)) {
    return Inject(code, "buffer_alloc", n,
                  Format("out of device memory (%llu bytes requested)", (unsigned long long)size));
  }
  const hearth_pstatus st = g_in->buffer_alloc(ctx, size, out);
  if (st == HEARTH_P_OK && out != nullptr) Track(&State::live_buffers, *out, true);
  return st;
}

void BufferFree(hearth_pcontext* ctx, hearth_pbuffer* buf) {
  if (buf != nullptr) Track(&State::live_buffers, buf, false);
  g_in->buffer_free(ctx, buf);
}

hearth_pstatus BufferWrapHost(hearth_pcontext* ctx, void* ptr, uint64_t size,
                              hearth_pbuffer** out) {
  hearth_pstatus code = 0;
  int64_t n = 0;
  if (ShouldFail(kWrap, &code, &n)) {
    return Inject(
        code, "buffer_wrap_host", n,
        Format("this device cannot map host memory (%llu bytes)", (unsigned long long)size));
  }
  const hearth_pstatus st = g_in->buffer_wrap_host(ctx, ptr, size, out);
  if (st == HEARTH_P_OK && out != nullptr) Track(&State::live_buffers, *out, true);
  return st;
}

hearth_pstatus BufferUpload(hearth_pcontext* ctx, hearth_pbuffer* buf, uint64_t offset,
                            const void* data, uint64_t size) {
  hearth_pstatus code = 0;
  int64_t n = 0;
  if (ShouldFail(kUpload, &code, &n)) {
    return Inject(code, "buffer_upload", n,
                  Format("device error copying %llu bytes to offset %llu", (unsigned long long)size,
                         (unsigned long long)offset));
  }
  return g_in->buffer_upload(ctx, buf, offset, data, size);
}

hearth_pstatus BufferDownload(hearth_pcontext* ctx, const hearth_pbuffer* buf, uint64_t offset,
                              void* data, uint64_t size) {
  hearth_pstatus code = 0;
  int64_t n = 0;
  if (ShouldFail(kDownload, &code, &n)) {
    return Inject(code, "buffer_download", n,
                  Format("device error copying %llu bytes from offset %llu",
                         (unsigned long long)size, (unsigned long long)offset));
  }
  return g_in->buffer_download(ctx, buf, offset, data, size);
}

hearth_pstatus BufferCopy(hearth_pcontext* ctx, const hearth_pbuffer* src, uint64_t src_offset,
                          hearth_pbuffer* dst, uint64_t dst_offset, uint64_t size) {
  return g_in->buffer_copy(ctx, src, src_offset, dst, dst_offset, size);
}

void* BufferHostPtr(hearth_pcontext* ctx, hearth_pbuffer* buf) {
  return g_in->buffer_host_ptr(ctx, buf);
}

int32_t Supports(hearth_pcontext* ctx, const hearth_graph* graph, uint32_t index) {
  return g_in->supports(ctx, graph, index);
}

hearth_pstatus GraphCompute(hearth_pcontext* ctx, const hearth_graph* graph) {
  hearth_pstatus code = 0;
  int64_t n = 0;
  if (ShouldFail(kCompute, &code, &n)) {
    return Inject(code, "graph_compute", n,
                  Format("device lost while running a graph of %u nodes",
                         graph != nullptr ? graph->n_nodes : 0u));
  }
  return g_in->graph_compute(ctx, graph);
}

// Replaces the plan; "" on success, else why not.
std::string SetPlan(const char* plan) {
  std::vector<Rule> rules;
  const std::string text = plan != nullptr ? plan : "";
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    Rule r{};
    const std::string why = ParseRule(item, &r);
    if (!why.empty()) return "fault plan rule '" + item + "': " + why;
    rules.push_back(r);
    start = end + 1;
  }
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  s.rules = std::move(rules);
  for (int64_t& c : s.calls) c = 0;
  s.injected = 0;
  return "";
}

// Loads the wrapped plugin and fills our vtable and device names; "" or why not.
std::string LoadInner(const hearth_plugin_init_info& outer_info) {
  const char* path = std::getenv("HEARTH_FAULT_INNER");
  if (path == nullptr || path[0] != '/') {
    return "fault plugin: HEARTH_FAULT_INNER must be the absolute path of the "
           "backend plugin to "
           "wrap";
  }
  const char* plan = std::getenv("HEARTH_FAULT_PLAN");
  if (plan != nullptr) {
    const std::string why = SetPlan(plan);
    if (!why.empty()) return "fault plugin: HEARTH_FAULT_PLAN: " + why;
  }
  // Never dlclose'd, like every plugin (docs/abi/plugins.md).
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return std::string("fault plugin: cannot load ") + path + ": " + (err ? err : "dlopen failed");
  }
  auto init = reinterpret_cast<hearth_plugin_init_fn>(dlsym(handle, HEARTH_PLUGIN_INIT_SYMBOL));
  if (init == nullptr) return std::string("fault plugin: ") + path + " has no hearth_plugin_init";

  g_inner_host.struct_size = sizeof(g_inner_host);
  g_inner_host.ctx = nullptr;
  g_inner_host.set_error = &InnerSetError;
  g_inner_host.log = &InnerLog;
  g_inner_host.alloc = &InnerAlloc;
  g_inner_host.free = &InnerFree;
  hearth_plugin_init_info info{};
  info.struct_size = sizeof(info);
  info.host_abi_major = outer_info.host_abi_major;
  info.host_abi_minor = outer_info.host_abi_minor;
  info.host = &g_inner_host;
  if (init(&info) != HEARTH_P_OK) {
    return std::string("fault plugin: init of ") + path + " failed (its message went to the host)";
  }
  if (info.kind != HEARTH_PLUGIN_KIND_BACKEND || info.vtable == nullptr) {
    return std::string("fault plugin: ") + path + " is not a backend plugin";
  }
  g_in = static_cast<const hearth_backend_vtable*>(info.vtable);
  if (!INNER_HAS(graph_compute)) {
    return std::string("fault plugin: ") + path + "'s vtable lacks required slots";
  }
  g_vtable.struct_size = sizeof(g_vtable);
  g_vtable.probe = &Probe;
  g_vtable.device_count = &DeviceCount;
  g_vtable.device_info = &DeviceInfo;
  g_vtable.context_create = &ContextCreate;
  g_vtable.context_free = &ContextFree;
  g_vtable.buffer_alloc = &BufferAlloc;
  g_vtable.buffer_free = &BufferFree;
  g_vtable.buffer_wrap_host = INNER_HAS(buffer_wrap_host) ? &BufferWrapHost : nullptr;
  g_vtable.buffer_upload = &BufferUpload;
  g_vtable.buffer_download = &BufferDownload;
  g_vtable.buffer_host_ptr = INNER_HAS(buffer_host_ptr) ? &BufferHostPtr : nullptr;
  g_vtable.supports = &Supports;
  g_vtable.graph_compute = &GraphCompute;
  g_vtable.buffer_copy = &BufferCopy;
  // No weight_place: the host then places the whole weight file through
  // buffer_wrap_host / buffer_upload, the paths whose faults these tests
  // inject.
  g_vtable.weight_place = nullptr;

  const uint32_t n = g_in->device_count();
  for (uint32_t i = 0; i < n; ++i) {
    hearth_pdevice_info d{};
    d.struct_size = sizeof(d);
    const bool ok = g_in->device_info(i, &d) == HEARTH_P_OK;
    g_device_names.push_back(i == 0 ? "fault" : Format("fault-%u", i));
    g_device_descriptions.push_back(Format("fault injection over %s device '%s' (%s)",
                                           info.name ? info.name : "?", ok && d.name ? d.name : "?",
                                           ok && d.description ? d.description : ""));
  }
  return "";
}

}  // namespace

extern "C" {

HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  if (info == nullptr || !HEARTH_PLUGIN_HAS_SLOT(info, hearth_plugin_init_info, vtable)) {
    return HEARTH_P_INVALID_ARGUMENT;
  }
  info->plugin_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info->plugin_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  const hearth_host_services* host = info->host;
  if (host == nullptr || !HEARTH_PLUGIN_HAS_SLOT(host, hearth_host_services, free) ||
      host->set_error == nullptr || host->log == nullptr || host->alloc == nullptr ||
      host->free == nullptr) {
    return HEARTH_P_INVALID_ARGUMENT;  // nowhere to say why
  }
  if (info->host_abi_major != HEARTH_PLUGIN_ABI_MAJOR) {
    host->set_error(host->ctx, HEARTH_P_FAILED_PRECONDITION,
                    "fault plugin: built for plugin ABI 1.x");
    return HEARTH_P_FAILED_PRECONDITION;
  }
  // The same answers on every init (several runtimes may load the file).
  static std::once_flag once;
  std::call_once(once, [&] {
    g_outer = host;
    g_init_error = LoadInner(*info);
  });
  if (!g_init_error.empty()) {
    host->set_error(host->ctx, HEARTH_P_FAILED_PRECONDITION, g_init_error.c_str());
    return HEARTH_P_FAILED_PRECONDITION;
  }
  info->kind = HEARTH_PLUGIN_KIND_BACKEND;
  info->name = "fault";
  info->version = "1.0.0-test";
  info->vtable = &g_vtable;
  return HEARTH_P_OK;
}

HEARTH_PLUGIN_EXPORT const char* hearth_fault_set_plan(const char* plan) {
  std::string why = SetPlan(plan);
  if (why.empty()) return nullptr;
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  s.plan_error = std::move(why);
  return s.plan_error.c_str();
}

HEARTH_PLUGIN_EXPORT int64_t hearth_fault_calls(const char* call) {
  const int c = call != nullptr ? CallByName(call) : -1;
  if (c < 0) return -1;
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.calls[c];
}

HEARTH_PLUGIN_EXPORT int64_t hearth_fault_injected(void) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.injected;
}

HEARTH_PLUGIN_EXPORT int64_t hearth_fault_live(const char* what) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (what != nullptr && std::strcmp(what, "buffers") == 0) {
    return static_cast<int64_t>(s.live_buffers.size());
  }
  if (what != nullptr && std::strcmp(what, "contexts") == 0) {
    return static_cast<int64_t>(s.live_contexts.size());
  }
  return -1;
}

}  // extern "C"
