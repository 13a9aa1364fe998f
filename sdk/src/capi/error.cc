// error.cc — the hearth_error object: its three public accessors and the
// helpers of capi_internal.h that make errors (Status conversion, NULL
// arguments, struct_size checks, exceptions caught at the boundary).
#include <exception>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "sdk/src/capi/capi_internal.h"

namespace hearth::capi {
namespace {

// Returned when an error cannot be allocated; never freed. The message fits
// std::string's inline buffer, so making it cannot fail either.
hearth_error& OutOfMemoryError() noexcept {
  static hearth_error err{HEARTH_RESOURCE_EXHAUSTED, "out of memory"};
  return err;
}

}  // namespace

bool IsStaticError(const hearth_error* err) noexcept { return err == &OutOfMemoryError(); }

hearth_error* MakeError(hearth_status_code code, const std::string& message) noexcept {
  try {
    return new hearth_error{code, message};
  } catch (...) {
    return &OutOfMemoryError();
  }
}

hearth_error* ToError(const absl::Status& status) noexcept {
  if (status.ok()) return nullptr;
  const int raw = static_cast<int>(status.code());
  const hearth_status_code code = (raw > HEARTH_OK && raw <= HEARTH_UNAUTHENTICATED)
                                      ? static_cast<hearth_status_code>(raw)
                                      : HEARTH_UNKNOWN;
  try {
    return MakeError(code, std::string(status.message()));
  } catch (...) {
    return &OutOfMemoryError();
  }
}

hearth_error* NullArgumentError(const char* func, const char* arg) noexcept {
  try {
    return MakeError(HEARTH_INVALID_ARGUMENT, absl::StrCat(func, ": argument '", arg, "' is NULL"));
  } catch (...) {
    return &OutOfMemoryError();
  }
}

hearth_error* CheckStructSizeRange(const char* func, const char* arg,
                                   uint32_t struct_size) noexcept {
  if (struct_size >= sizeof(uint32_t) && struct_size <= kMaxStructSize) return nullptr;
  try {
    const char* why = struct_size < sizeof(uint32_t)
                          ? " (set it with the struct's HEARTH_*_INIT macro or sizeof)"
                          : " (larger than any hearth struct; is the struct initialized?)";
    return MakeError(HEARTH_INVALID_ARGUMENT,
                     absl::StrCat(func, ": ", arg, "->struct_size is ", struct_size, why));
  } catch (...) {
    return &OutOfMemoryError();
  }
}

hearth_error* StructSizeCutsFieldError(const char* func, const char* arg, uint32_t struct_size,
                                       const char* struct_name, const FieldSpan& field) noexcept {
  try {
    return MakeError(
        HEARTH_INVALID_ARGUMENT,
        absl::StrCat(func, ": ", arg, "->struct_size is ", struct_size, ", which ends inside ",
                     struct_name, ".", field.name, " (bytes ", field.offset, " to ",
                     field.offset + field.size, "); no version of ", struct_name,
                     " has that size (set it with the struct's HEARTH_*_INIT macro or sizeof)"));
  } catch (...) {
    return &OutOfMemoryError();
  }
}

hearth_error* CurrentExceptionToError(const char* func) noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    try {
      return MakeError(HEARTH_RESOURCE_EXHAUSTED, std::string(func) + ": out of memory");
    } catch (...) {
      return &OutOfMemoryError();
    }
  } catch (const std::exception& e) {
    try {
      return MakeError(HEARTH_INTERNAL, absl::StrCat(func, ": internal error: ", e.what()));
    } catch (...) {
      return &OutOfMemoryError();
    }
  } catch (...) {
    try {
      return MakeError(HEARTH_INTERNAL, absl::StrCat(func, ": internal error (unknown exception)"));
    } catch (...) {
      return &OutOfMemoryError();
    }
  }
}

}  // namespace hearth::capi

extern "C" {

hearth_status_code hearth_error_code(const hearth_error* err) {
  return err == nullptr ? HEARTH_OK : err->code;
}

const char* hearth_error_message(const hearth_error* err) {
  return err == nullptr ? "" : err->message.c_str();
}

void hearth_error_free(hearth_error* err) {
  if (err == nullptr || hearth::capi::IsStaticError(err)) return;
  delete err;
}

}  // extern "C"
