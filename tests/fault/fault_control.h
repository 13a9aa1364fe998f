// fault_control.h — the test-side view of libhearth-backend-fault.so: the
// extra C symbols it exports so a test can change the fault plan at run time
// and read what happened. The plugin itself is tests/fault/fault_plugin.cc;
// a test resolves these with dlsym on the plugin file that hearth loaded.
//
// A plan is a comma-separated list of rules, e.g. "wrap>=1,alloc=2:internal":
//   <call>=N        fail the Nth call (1-based, counted from when the plan was set)
//   <call>>=N       fail every call from the Nth on
//   ...:<code>      the status returned: a name (resource_exhausted, internal,
//                   unavailable, ...) or a number; default per call below
// <call> is one of
//   context     context_create         (default resource_exhausted)
//   alloc       buffer_alloc           (default resource_exhausted)
//   wrap        buffer_wrap_host       (default unimplemented: "cannot map host memory")
//   upload      buffer_upload          (default internal)
//   download    buffer_download        (default internal)
//   compute     graph_compute          (default internal)
//   host_alloc  host->alloc as the wrapped plugin sees it (returns NULL; the
//               wrapped plugin reports its own out-of-memory error)
// "" is the empty plan: nothing fails, calls are only counted.
#ifndef HEARTH_TESTS_FAULT_FAULT_CONTROL_H_
#define HEARTH_TESTS_FAULT_FAULT_CONTROL_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Replaces the plan and zeroes the call counters. NULL on success, else a
// static message naming the rule that could not be parsed (the old plan stays).
typedef const char* (*hearth_fault_set_plan_fn)(const char* plan);
#define HEARTH_FAULT_SET_PLAN_SYMBOL "hearth_fault_set_plan"

// Calls of `call` (a name above) since the plan was set, failed ones
// included; -1 for an unknown name.
typedef int64_t (*hearth_fault_calls_fn)(const char* call);
#define HEARTH_FAULT_CALLS_SYMBOL "hearth_fault_calls"

// Failures injected since the plan was set.
typedef int64_t (*hearth_fault_injected_fn)(void);
#define HEARTH_FAULT_INJECTED_SYMBOL "hearth_fault_injected"

// Objects alive now, whatever the plan: "buffers" (allocated or wrapped and
// not yet freed) or "contexts"; -1 for an unknown name. Leak checks on the
// error paths read these.
typedef int64_t (*hearth_fault_live_fn)(const char* what);
#define HEARTH_FAULT_LIVE_SYMBOL "hearth_fault_live"

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // HEARTH_TESTS_FAULT_FAULT_CONTROL_H_
