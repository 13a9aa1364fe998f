/* test_backend.c — test fixture: a small but valid backend plugin over host
 * memory. It runs one op (SCALE on contiguous F32) so the host's Backend
 * wrapper can be tested end to end, and refuses every other op with a
 * set_error message. Built several times with different settings:
 *
 *   TEST_NAME          plugin name (string)
 *   TEST_PROBE         what probe() answers
 *   TEST_MINOR         the ABI minor the plugin declares
 *   TEST_VTABLE_SIZE   the vtable's struct_size (to fake an old/broken plugin)
 *   TEST_DEVICE_NAME   the name of its one device
 */
#include <string.h>

#include "hearth/hearth_plugin.h"

#ifndef TEST_NAME
#error "define TEST_NAME"
#endif
#ifndef TEST_PROBE
#define TEST_PROBE 1
#endif
#ifndef TEST_MINOR
#define TEST_MINOR HEARTH_PLUGIN_ABI_MINOR
#endif
#ifndef TEST_VTABLE_SIZE
#define TEST_VTABLE_SIZE sizeof(hearth_backend_vtable)
#endif
#ifndef TEST_DEVICE_NAME
#define TEST_DEVICE_NAME "fake"
#endif

struct hearth_pcontext {
  uint32_t device;
};

struct hearth_pbuffer {
  unsigned char* data;
  uint64_t size;
  int owned; /* 0 when it wraps host memory */
};

static const hearth_host_services* g_host;

static hearth_pstatus Fail(hearth_pstatus code, const char* message) {
  g_host->set_error(g_host->ctx, code, message);
  return code;
}

static int32_t Probe(const char** reason) {
  *reason = TEST_PROBE > 0 ? "" : "test plugin built with TEST_PROBE=0: no device";
  return TEST_PROBE;
}

static uint32_t DeviceCount(void) { return 1; }

static hearth_pstatus DeviceInfo(uint32_t device, hearth_pdevice_info* out) {
  if (device != 0) return Fail(HEARTH_P_OUT_OF_RANGE, "device index out of range");
  out->name = TEST_DEVICE_NAME;
  out->vendor = "hearth tests";
  out->description = "host memory test backend (" TEST_NAME ")";
  out->memory_total = 1u << 20;
  out->memory_free = 1u << 19;
  if (HEARTH_PLUGIN_HAS_SLOT(out, hearth_pdevice_info, host_visible)) out->host_visible = 1;
  return HEARTH_P_OK;
}

static hearth_pstatus ContextCreate(const hearth_pcontext_options* options,
                                    hearth_pcontext** out) {
  hearth_pcontext* ctx;
  if (options->device != 0) return Fail(HEARTH_P_OUT_OF_RANGE, "context_create: no such device");
  ctx = (hearth_pcontext*)g_host->alloc(g_host->ctx, sizeof(*ctx), 8);
  if (ctx == NULL) return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "out of memory");
  ctx->device = options->device;
  *out = ctx;
  return HEARTH_P_OK;
}

static void ContextFree(hearth_pcontext* ctx) { g_host->free(g_host->ctx, ctx); }

static hearth_pstatus BufferAlloc(hearth_pcontext* ctx, uint64_t size, hearth_pbuffer** out) {
  hearth_pbuffer* buf;
  (void)ctx;
  if (size > (1u << 30)) return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "buffer_alloc: over 1 GiB");
  buf = (hearth_pbuffer*)g_host->alloc(g_host->ctx, sizeof(*buf), 8);
  if (buf == NULL) return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "out of memory");
  buf->data = (unsigned char*)g_host->alloc(g_host->ctx, (size_t)size, 64);
  if (buf->data == NULL) {
    g_host->free(g_host->ctx, buf);
    return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "out of memory");
  }
  buf->size = size;
  buf->owned = 1;
  *out = buf;
  return HEARTH_P_OK;
}

static void BufferFree(hearth_pcontext* ctx, hearth_pbuffer* buf) {
  (void)ctx;
  if (buf == NULL) return;
  if (buf->owned) g_host->free(g_host->ctx, buf->data);
  g_host->free(g_host->ctx, buf);
}

static hearth_pstatus BufferWrapHost(hearth_pcontext* ctx, void* ptr, uint64_t size,
                                     hearth_pbuffer** out) {
  hearth_pbuffer* buf;
  (void)ctx;
  /* Like a real backend that needs aligned weights: refuse, host copies. */
  if (((uintptr_t)ptr & 63u) != 0) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "buffer_wrap_host: pointer is not 64-byte aligned");
  }
  buf = (hearth_pbuffer*)g_host->alloc(g_host->ctx, sizeof(*buf), 8);
  if (buf == NULL) return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "out of memory");
  buf->data = (unsigned char*)ptr;
  buf->size = size;
  buf->owned = 0;
  *out = buf;
  return HEARTH_P_OK;
}

static int InRange(const hearth_pbuffer* buf, uint64_t offset, uint64_t size) {
  return offset <= buf->size && size <= buf->size - offset;
}

static void CopyBytes(unsigned char* dst, const unsigned char* src, uint64_t n) {
  uint64_t i;
  for (i = 0; i < n; ++i) dst[i] = src[i];
}

static hearth_pstatus BufferUpload(hearth_pcontext* ctx, hearth_pbuffer* buf, uint64_t offset,
                                   const void* data, uint64_t size) {
  (void)ctx;
  if (!InRange(buf, offset, size)) {
    return Fail(HEARTH_P_OUT_OF_RANGE, "buffer_upload: range is past the end of the buffer");
  }
  CopyBytes(buf->data + offset, (const unsigned char*)data, size);
  return HEARTH_P_OK;
}

static hearth_pstatus BufferDownload(hearth_pcontext* ctx, const hearth_pbuffer* buf,
                                     uint64_t offset, void* data, uint64_t size) {
  (void)ctx;
  if (!InRange(buf, offset, size)) {
    return Fail(HEARTH_P_OUT_OF_RANGE, "buffer_download: range is past the end of the buffer");
  }
  CopyBytes((unsigned char*)data, buf->data + offset, size);
  return HEARTH_P_OK;
}

static void* BufferHostPtr(hearth_pcontext* ctx, hearth_pbuffer* buf) {
  (void)ctx;
  return buf->data;
}

static int IsContiguousF32(const hearth_tensor_desc* t) {
  return t->dtype == HEARTH_DTYPE_F32 && t->nb[0] == 4 && t->nb[1] == 4 * t->ne[0] &&
         t->nb[2] == t->nb[1] * t->ne[1] && t->nb[3] == t->nb[2] * t->ne[2];
}

static int32_t Supports(hearth_pcontext* ctx, const hearth_graph* graph, uint32_t index) {
  (void)ctx;
  return index < graph->n_nodes && graph->nodes[index].op == HEARTH_OP_SCALE;
}

static hearth_pstatus GraphCompute(hearth_pcontext* ctx, const hearth_graph* graph) {
  uint32_t i;
  (void)ctx;
  for (i = 0; i < graph->n_nodes; ++i) {
    const hearth_node* node = &graph->nodes[i];
    const hearth_tensor_desc* out;
    const hearth_tensor_desc* in;
    int64_t n, j;
    int32_t in_id;
    hearth_scale_params params;
    const float* x;
    float* y;
    if (node->op != HEARTH_OP_SCALE) {
      return Fail(HEARTH_P_UNIMPLEMENTED, "only SCALE is supported by the test backend");
    }
    if (node->n_inputs < 1 || node->first_input >= graph->n_node_inputs ||
        node->params_size < sizeof(hearth_scale_params) ||
        node->params_offset + sizeof(hearth_scale_params) > graph->params_bytes) {
      return Fail(HEARTH_P_INVALID_ARGUMENT, "SCALE: no input or no params");
    }
    in_id = graph->node_inputs[node->first_input];
    if (node->output < 0 || (uint32_t)node->output >= graph->n_tensors || in_id < 0 ||
        (uint32_t)in_id >= graph->n_tensors) {
      return Fail(HEARTH_P_INVALID_ARGUMENT, "node tensor index out of range");
    }
    memcpy(&params, (const uint8_t*)graph->params + node->params_offset, sizeof(params));
    out = &graph->tensors[node->output];
    in = &graph->tensors[in_id];
    if (!IsContiguousF32(out) || !IsContiguousF32(in)) {
      return Fail(HEARTH_P_UNIMPLEMENTED, "SCALE: only contiguous F32 is supported");
    }
    n = out->ne[0] * out->ne[1] * out->ne[2] * out->ne[3];
    if (n != in->ne[0] * in->ne[1] * in->ne[2] * in->ne[3] ||
        !InRange(out->buffer, out->offset, (uint64_t)n * 4) ||
        !InRange(in->buffer, in->offset, (uint64_t)n * 4)) {
      return Fail(HEARTH_P_INVALID_ARGUMENT, "SCALE: tensor does not fit its buffer");
    }
    x = (const float*)(in->buffer->data + in->offset);
    y = (float*)(out->buffer->data + out->offset);
    for (j = 0; j < n; ++j) y[j] = x[j] * params.scale;
  }
  return HEARTH_P_OK;
}

static hearth_pstatus BufferCopy(hearth_pcontext* ctx, const hearth_pbuffer* src,
                                 uint64_t src_offset, hearth_pbuffer* dst, uint64_t dst_offset,
                                 uint64_t size) {
  (void)ctx;
  if (!InRange(src, src_offset, size) || !InRange(dst, dst_offset, size)) {
    return Fail(HEARTH_P_OUT_OF_RANGE, "buffer_copy: range past the end of a buffer");
  }
  memmove(dst->data + dst_offset, src->data + src_offset, size);
  return HEARTH_P_OK;
}

static const hearth_backend_vtable kVtable = {
    TEST_VTABLE_SIZE, Probe,        DeviceCount,    DeviceInfo,   ContextCreate,  ContextFree,
    BufferAlloc,      BufferFree,   BufferWrapHost, BufferUpload, BufferDownload, BufferHostPtr,
    Supports,         GraphCompute, BufferCopy,     NULL,
};

HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  info->plugin_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info->plugin_abi_minor = TEST_MINOR;
  g_host = info->host;
  if (info->host_abi_major != HEARTH_PLUGIN_ABI_MAJOR) {
    return Fail(HEARTH_P_FAILED_PRECONDITION, "built for another host ABI major");
  }
  info->kind = HEARTH_PLUGIN_KIND_BACKEND;
  info->name = TEST_NAME;
  info->version = "0.0.1-test";
  info->vtable = &kVtable;
  g_host->log(g_host->ctx, HEARTH_LOG_INFO, "test backend " TEST_NAME " ready");
  return HEARTH_P_OK;
}
