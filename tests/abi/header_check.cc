// header_check.cc — hearth.hpp (and with it hearth.h) compiled as C++17 with
// -pedantic -Wall -Wextra -Werror: the wrapper must build warning-free in the
// strictest app, and the C INIT macros must be complete C++ initializers.
// Build-time only; nothing here runs.
#include "hearth/hearth.hpp"

#include <type_traits>

namespace {

static_assert(!std::is_copy_constructible_v<hearth::Runtime>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<hearth::Runtime>, "handles move");
static_assert(!std::is_copy_constructible_v<hearth::Model>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<hearth::Model>, "handles move");
static_assert(!std::is_copy_constructible_v<hearth::Session>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<hearth::Session>, "handles move");
static_assert(!std::is_copy_constructible_v<hearth::Sampler>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<hearth::Sampler>, "handles move");
static_assert(std::is_base_of_v<std::runtime_error, hearth::Error>, "catchable as std::exception");

}  // namespace

// Referenced so nothing above is unused; never called.
uint32_t HearthHeaderCheckTotal();
uint32_t HearthHeaderCheckTotal() {
  const hearth_runtime_params runtime = HEARTH_RUNTIME_PARAMS_INIT;
  const hearth_plugin_info plugin = HEARTH_PLUGIN_INFO_INIT;
  const hearth_device_info device = HEARTH_DEVICE_INFO_INIT;
  const hearth_model_params model = HEARTH_MODEL_PARAMS_INIT;
  const hearth_model_info model_info = HEARTH_MODEL_INFO_INIT;
  const hearth_sampling_params sampling = HEARTH_SAMPLING_PARAMS_INIT;
  const hearth_session_params session = HEARTH_SESSION_PARAMS_INIT;
  const hearth_generate_params generate = HEARTH_GENERATE_PARAMS_INIT;
  const hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
  return runtime.struct_size + plugin.struct_size + device.struct_size + model.struct_size +
         model_info.struct_size + sampling.struct_size + session.struct_size +
         generate.struct_size + result.struct_size;
}
