// capi_test_util.h — what the C ABI tests share: an owner for a returned
// hearth_error, and a runtime that loads only the build's own CPU plugin.
#ifndef HEARTH_TESTS_CAPI_CAPI_TEST_UTIL_H_
#define HEARTH_TESTS_CAPI_CAPI_TEST_UTIL_H_

#include <string>

#include "hearth/hearth.h"

namespace hearth_test {

// Frees the error it holds; message() is "" for success.
struct Error {
  hearth_error* e = nullptr;
  ~Error() { hearth_error_free(e); }
  std::string message() const { return e ? hearth_error_message(e) : ""; }
};

// A runtime over the build's plugin directory only (no search of the
// working directory or the environment), or NULL with `err` set.
inline hearth_runtime* TestRuntime(Error* err) {
  hearth_runtime_params rp = HEARTH_RUNTIME_PARAMS_INIT;
  const std::string dir = HEARTH_PLUGIN_DIR;
  rp.plugin_path = dir.c_str();
  rp.explicit_only = 1;
  hearth_runtime* rt = nullptr;
  err->e = hearth_runtime_create(&rp, &rt);
  return rt;
}

}  // namespace hearth_test

#endif  // HEARTH_TESTS_CAPI_CAPI_TEST_UTIL_H_
