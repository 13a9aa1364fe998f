// capi_internal.h — what every sdk/src/capi/*.cc shares: the definitions of
// hearth_error and hearth_runtime, absl::Status → hearth_error* conversion,
// the exception firewall at the boundary, NULL-argument checks, and the
// struct_size rules for parameter structs (read) and info structs (write).
//
// Usage in an entry point:
//
//   hearth_error* hearth_thing_get(const hearth_thing* t, hearth_thing_info* out) {
//     HEARTH_CAPI_TRY
//     HEARTH_CAPI_CHECK_NOT_NULL(t);
//     HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
//     hearth_thing_info full = HEARTH_THING_INFO_INIT;
//     ...
//     hearth::capi::WriteOutStruct(full, out);
//     return nullptr;
//     HEARTH_CAPI_CATCH_ERROR
//   }
//
// The struct_size rules (docs/abi/versioning.md): a struct_size below 4 (the
// caller forgot HEARTH_*_INIT), above kMaxStructSize (uninitialized memory:
// no version of any hearth struct is that big) or ending inside a field of
// the struct (no version of the header has that size: struct_fields.h) is
// INVALID_ARGUMENT. Any other size is accepted: smaller means an older
// caller (we read/write only its prefix), larger means a newer caller (we
// ignore/leave the tail it has and we don't know).
#ifndef HEARTH_SDK_SRC_CAPI_CAPI_INTERNAL_H_
#define HEARTH_SDK_SRC_CAPI_CAPI_INTERNAL_H_

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hearth/hearth.h"
#include "sdk/src/capi/struct_fields.h"
#include "sdk/src/plugin_host/plugin_host.h"
#include "sdk/src/sampling/sampler.h"

struct hearth_error {
  hearth_status_code code;
  std::string message;
};

// Immutable once made (see hearth.h "Threads"); model.cc reaches the plugins
// and devices through `host`.
struct hearth_runtime {
  std::shared_ptr<hearth::PluginHost> host;  // shared: models keep it alive
  pid_t owner_pid = ::getpid();              // see CheckOwner
};

namespace hearth::capi {

// Largest struct_size accepted from a caller; see the file comment.
inline constexpr uint32_t kMaxStructSize = 1u << 16;

// A new error. Never throws: when the error itself cannot be allocated the
// result is a static RESOURCE_EXHAUSTED error that hearth_error_free ignores.
hearth_error* MakeError(hearth_status_code code, const std::string& message) noexcept;
// NULL for an OK status; codes map one to one (unknown codes → HEARTH_UNKNOWN).
hearth_error* ToError(const absl::Status& status) noexcept;
// INVALID_ARGUMENT "<func>: argument '<arg>' is NULL".
hearth_error* NullArgumentError(const char* func, const char* arg) noexcept;
// For use inside a catch block: bad_alloc → RESOURCE_EXHAUSTED, anything else
// → INTERNAL, both naming `func`.
hearth_error* CurrentExceptionToError(const char* func) noexcept;
// True for the static out-of-memory error (hearth_error_free must skip it).
bool IsStaticError(const hearth_error* err) noexcept;

// NULL when `arg`->struct_size is within [4, kMaxStructSize]; else
// INVALID_ARGUMENT "<func>: <arg>->struct_size is 0 (...)".
hearth_error* CheckStructSizeRange(const char* func, const char* arg,
                                   uint32_t struct_size) noexcept;
// INVALID_ARGUMENT "<func>: <arg>->struct_size is 12, which ends inside
// <struct>.<field> (bytes 8 to 16) ...".
hearth_error* StructSizeCutsFieldError(const char* func, const char* arg, uint32_t struct_size,
                                       const char* struct_name, const FieldSpan& field) noexcept;

// NULL when `arg`->struct_size, for a struct of type T, obeys the rules above.
template <class T>
hearth_error* CheckStructSize(const char* func, const char* arg, uint32_t struct_size) noexcept {
  if (hearth_error* err = CheckStructSizeRange(func, arg, struct_size)) return err;
  if (const FieldSpan* cut = FieldCutBy<T>(struct_size)) {
    return StructSizeCutsFieldError(func, arg, struct_size, StructFields<T>::kName, *cut);
  }
  return nullptr;
}

// `*out` = `defaults` overlaid with the first min(user->struct_size, sizeof(T))
// bytes of `*user`; `*out` = `defaults` for a NULL `user`. out->struct_size
// is sizeof(T) afterwards. `arg` names the parameter in errors.
template <class T>
hearth_error* ReadParams(const char* func, const char* arg, const T* user, const T& defaults,
                         T* out) noexcept {
  static_assert(std::is_trivially_copyable_v<T>, "params structs are plain C structs");
  *out = defaults;
  if (user == nullptr) return nullptr;
  if (hearth_error* err = CheckStructSize<T>(func, arg, user->struct_size)) return err;
  std::memcpy(out, user, std::min<size_t>(user->struct_size, sizeof(T)));
  out->struct_size = static_cast<uint32_t>(sizeof(T));
  return nullptr;
}

// Validates an out struct before any work is done, so that a bad one leaves
// everything untouched.
template <class T>
hearth_error* CheckOutStruct(const char* func, const char* arg, const T* out) noexcept {
  if (out == nullptr) return NullArgumentError(func, arg);
  return CheckStructSize<T>(func, arg, out->struct_size);
}

// Writes the fields of `full` that fit in out->struct_size; the caller's
// struct_size is kept (it describes the caller's struct, not ours). Call only
// after CheckOutStruct succeeded.
template <class T>
void WriteOutStruct(const T& full, T* out) noexcept {
  static_assert(std::is_trivially_copyable_v<T>, "info structs are plain C structs");
  const size_t n = std::min<size_t>(out->struct_size, sizeof(T));
  constexpr size_t kHead = sizeof(uint32_t);  // struct_size itself
  if (n > kHead) {
    std::memcpy(reinterpret_cast<char*>(out) + kHead,
                reinterpret_cast<const char*>(&full) + kHead, n - kHead);
  }
}

// The capacity protocol of functions that return arrays or text
// (hearth_tokenize, hearth_detokenize, hearth_chat_format): a NULL `dst`
// with capacity 0 asks for the size; otherwise the result must fit, else
// RESOURCE_EXHAUSTED and *n_out untouched.
template <class T>
hearth_error* CopyOut(const char* func, const T* src, size_t n, T* dst, size_t capacity,
                      size_t* n_out) noexcept {
  if (dst == nullptr && capacity == 0) {
    *n_out = n;
    return nullptr;
  }
  if (dst == nullptr) return NullArgumentError(func, "output buffer");
  if (capacity < n) {
    return MakeError(HEARTH_RESOURCE_EXHAUSTED, std::string(func) + ": capacity " +
                                                    std::to_string(capacity) + " < " +
                                                    std::to_string(n) + " needed");
  }
  if (n) std::memcpy(dst, src, n * sizeof(T));
  *n_out = n;
  return nullptr;
}

// Defined in sampler.cc: the one conversion of hearth_sampling_params
// (hearth_sampler_create and hearth_session_generate both use it).
hearth_error* ReadSamplingParams(const char* func, const char* arg,
                                 const hearth_sampling_params* user,
                                 sampling::SamplerConfig* out) noexcept;

}  // namespace hearth::capi

namespace hearth {
class Model;
}  // namespace hearth

namespace hearth::capi {

// Defined in chat.cc: the chat format of a model (its tokenizer.chat_template,
// else its architecture), or NOT_FOUND saying why there is none.
absl::StatusOr<std::string> ModelChatFormat(const Model& model);

// Defined in chat.cc: a C conversation rendered in the model's chat format
// and tokenized with control tokens parsed in the markup only
// (hearth_chat_tokenize, hearth_session_generate_chat).
hearth_error* EncodeChat(const char* func, const Model& model,
                         const hearth_chat_message* messages, size_t n_messages,
                         bool add_generation_prompt, std::vector<int32_t>* ids);

}  // namespace hearth::capi

// The exception firewall: the body of every entry point sits between
// HEARTH_CAPI_TRY and one of the CATCH macros (they open and close a try
// block, so __func__ inside is still the entry point's name).
#define HEARTH_CAPI_TRY try {
#define HEARTH_CAPI_CATCH_ERROR \
  }                             \
  catch (...) {                 \
    return ::hearth::capi::CurrentExceptionToError(__func__); \
  }
// For entry points that return a value, not an error (counts, borrowed
// strings, void): `value` is what a failure returns (may be empty for void).
#define HEARTH_CAPI_CATCH_RETURN(value) \
  }                                     \
  catch (...) {                         \
    return value;                       \
  }

// fork() gives a child the parent's handles but not the threads behind them
// (the CPU plugin's pool), so computing with a runtime, model or session made
// before fork() would wait forever for workers that are not there. Handles
// note the process that made them (`owner_pid`); the entry points that
// compute or reach a plugin refuse them in any other process, at once, and
// the *_free functions there let go of them without destroying them.
namespace hearth::capi {
// Frees `handle` unless this process is a fork() of the one that made it:
// destroying it there would wait on the parent's threads (a plugin's
// condition variables), so the child leaves it to the exit instead.
template <typename Handle>
void FreeHandle(Handle* handle) {
  if (handle != nullptr && handle->owner_pid == ::getpid()) delete handle;
}

inline hearth_error* CheckOwner(const char* func, const char* arg, pid_t owner) {
  const pid_t self = ::getpid();
  if (owner == self) return nullptr;
  return MakeError(
      HEARTH_FAILED_PRECONDITION,
      std::string(func) + ": '" + arg + "' was created in process " + std::to_string(owner) +
          " and this is process " + std::to_string(self) +
          ", a fork() of it: the threads behind the handle did not come with fork(). Create "
          "runtimes, models and sessions after fork(), or start workers with 'spawn' or "
          "'forkserver' (Python's multiprocessing)");
}
}  // namespace hearth::capi

#define HEARTH_CAPI_CHECK_OWNER(handle) \
  HEARTH_CAPI_RETURN_IF_ERROR(::hearth::capi::CheckOwner(__func__, #handle, (handle)->owner_pid))

#define HEARTH_CAPI_CHECK_NOT_NULL(arg)                                  \
  do {                                                                   \
    if ((arg) == nullptr) return ::hearth::capi::NullArgumentError(__func__, #arg); \
  } while (0)

#define HEARTH_CAPI_RETURN_IF_ERROR(expr)           \
  do {                                              \
    if (hearth_error* hearth_capi_err_ = (expr)) {  \
      return hearth_capi_err_;                      \
    }                                               \
  } while (0)

#endif  // HEARTH_SDK_SRC_CAPI_CAPI_INTERNAL_H_
