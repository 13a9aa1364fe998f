// cpu_host.h — the plugin host the runtime tests load models with: the
// build tree's CPU plugin and nothing else.
#ifndef HEARTH_TESTS_UNIT_CPU_HOST_H_
#define HEARTH_TESTS_UNIT_CPU_HOST_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "sdk/src/plugin_host/plugin_host.h"

namespace hearth::testing {

inline std::shared_ptr<PluginHost> CpuHost() {
  PluginHostOptions o;
  o.explicit_paths = {std::string(HEARTH_PLUGIN_DIR) + "/libhearth-backend-cpu.so"};
  o.explicit_only = true;
  auto host = PluginHost::Create(o);
  EXPECT_TRUE(host.ok()) << host.status();
  return std::shared_ptr<PluginHost>(std::move(host).value());
}

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_UNIT_CPU_HOST_H_
