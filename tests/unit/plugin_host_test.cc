// plugin_host_test.cc — discovery, loading and the init handshake of
// hearth::PluginHost, against the fixture plugins of tests/plugins (built into
// HEARTH_BUILD_DIR/test_plugins) and, when it is built, the real CPU plugin.
#include "sdk/src/plugin_host/plugin_host.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

// gmock is not linked; this gives the same readable failure as HasSubstr.
::testing::AssertionResult HasSubstr(absl::string_view haystack, absl::string_view needle) {
  if (haystack.find(needle) != absl::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << haystack << "\"\n  does not contain \""
                                       << needle << "\"";
}

const std::string kPluginDir = HEARTH_BUILD_DIR "/test_plugins";

std::string Fixture(const std::string& name) {
  return kPluginDir + "/libhearth-test-" + name + ".so";
}

// A fresh folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hearth-plugin-test-XXXXXX").string();
    // Canonical, as the host reports real paths.
    path_ = fs::canonical(mkdtemp(tmpl.data())).string();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets (or unsets, for nullopt) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class ScopedCwd {
 public:
  explicit ScopedCwd(const std::string& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() { fs::current_path(old_); }

 private:
  fs::path old_;
};

struct LogLines {
  std::vector<std::pair<int, std::string>> lines;
  static void Callback(int level, const char* message, void* user_data) {
    static_cast<LogLines*>(user_data)->lines.emplace_back(level, message);
  }
  bool Contains(const std::string& text) const {
    for (const auto& l : lines) {
      if (l.second.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

// Options that see only `paths` and record log lines in `log`.
PluginHostOptions ExplicitOnly(std::vector<std::string> paths, LogLines* log, int level = 1) {
  PluginHostOptions o;
  o.explicit_paths = std::move(paths);
  o.explicit_only = true;
  o.log = &LogLines::Callback;
  o.log_user_data = log;
  o.log_level = level;
  return o;
}

std::unique_ptr<PluginHost> MustCreate(const PluginHostOptions& options) {
  auto host = PluginHost::Create(options);
  EXPECT_TRUE(host.ok()) << host.status();
  return host.ok() ? std::move(*host) : nullptr;
}

std::vector<std::string> PluginNames(const PluginHost& host) {
  std::vector<std::string> names;
  for (const LoadedPlugin& p : host.plugins()) names.push_back(p.name);
  return names;
}

TEST(PluginHostTest, WrongMajorIsRefusedNamingBothMajors) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({Fixture("wrongmajor")}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  const LoadedPlugin& p = host->plugins()[0];
  EXPECT_TRUE(HasSubstr(p.load_error, "plugin ABI major 2"));
  EXPECT_TRUE(HasSubstr(p.load_error, "host's ABI major 1"));
  EXPECT_TRUE(HasSubstr(p.load_error, "libhearth-test-wrongmajor.so"));
  EXPECT_EQ(p.abi_major, 2u);
  EXPECT_EQ(p.backend, nullptr);
  EXPECT_TRUE(host->devices().empty());
  EXPECT_TRUE(log.Contains("plugin ABI major 2"));  // warned about, too
}

TEST(PluginHostTest, MissingInitSymbolIsRefused) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({Fixture("nosymbol")}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  const LoadedPlugin& p = host->plugins()[0];
  EXPECT_TRUE(HasSubstr(p.load_error, "libhearth-test-nosymbol.so: no symbol hearth_plugin_init "
                                      "(not a hearth plugin?)"));
  EXPECT_EQ(p.name, "libhearth-test-nosymbol.so");
  EXPECT_EQ(p.abi_major, 0u);
}

TEST(PluginHostTest, InitFailureReportsThePluginsMessage) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({Fixture("initfail")}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  EXPECT_TRUE(HasSubstr(host->plugins()[0].load_error, "hearth_plugin_init: libfakegpu.so.3 not found (driver not installed?)"));
}

TEST(PluginHostTest, TooSmallVtableNamesTheMissingSlot) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({Fixture("smallvtable")}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  const LoadedPlugin& p = host->plugins()[0];
  EXPECT_TRUE(HasSubstr(p.load_error, "struct_size 24 is too small for the required slot "
                                      "'device_info'"));
  EXPECT_EQ(p.backend, nullptr);
  EXPECT_TRUE(host->devices().empty());
}

TEST(PluginHostTest, ZeroProbeLoadsButContributesNoDevice) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({Fixture("noprobe")}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  const LoadedPlugin& p = host->plugins()[0];
  EXPECT_EQ(p.load_error, "");
  EXPECT_EQ(p.name, "noprobe");
  EXPECT_EQ(p.version, "0.0.1-test");
  EXPECT_EQ(p.kind, static_cast<uint32_t>(HEARTH_PLUGIN_KIND_BACKEND));
  EXPECT_EQ(p.probe_score, 0);
  EXPECT_EQ(p.probe_reason, "test plugin built with TEST_PROBE=0: no device");
  EXPECT_NE(p.backend, nullptr);
  EXPECT_TRUE(host->devices().empty());
  auto best = host->FindDevice("");
  ASSERT_FALSE(best.ok());
  EXPECT_EQ(best.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(best.status().message(),
                        "libhearth-test-noprobe.so (probe 0: test plugin built "
                        "with TEST_PROBE=0: "
                        "no device)"));
}

TEST(PluginHostTest, FolderLoadsPluginFilesInNameOrder) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({kPluginDir}, &log));
  EXPECT_EQ(PluginNames(*host),
            (std::vector<std::string>{"fake-a", "fake-b", "libhearth-test-initfail.so", "noprobe",
                                      "libhearth-test-nosymbol.so",
                                      "libhearth-test-smallvtable.so",
                                      "libhearth-test-wrongmajor.so"}));
}

TEST(PluginHostTest, FolderSkipsFilesNotNamedLikePlugins) {
  TempDir dir;
  fs::copy_file(Fixture("noprobe"), dir.path() + "/libhearth-noprobe.so");
  fs::copy_file(Fixture("fake-a"), dir.path() + "/fake-a.so");              // no prefix
  fs::copy_file(Fixture("fake-b"), dir.path() + "/libhearth-fake-b.so.1");  // wrong suffix
  LogLines log;
  auto host = MustCreate(ExplicitOnly({dir.path()}, &log));
  EXPECT_EQ(PluginNames(*host), (std::vector<std::string>{"noprobe"}));
}

TEST(PluginHostTest, DevicesAreBestFirstWithUniqueNames) {
  LogLines log;
  // fake-a (probe 2) loads before fake-b (probe 3); both call their device
  // "fake". The first loaded keeps the name; the best comes first.
  auto host = MustCreate(ExplicitOnly({Fixture("fake-a"), Fixture("fake-b")}, &log, 2));
  ASSERT_EQ(host->devices().size(), 2u);
  const DeviceRef& first = host->devices()[0];
  const DeviceRef& second = host->devices()[1];
  EXPECT_EQ(first.name, "fake:1");
  EXPECT_EQ(first.plugin->name, "fake-b");
  EXPECT_EQ(second.name, "fake");
  EXPECT_EQ(second.plugin->name, "fake-a");
  EXPECT_EQ(first.vendor, "hearth tests");
  EXPECT_EQ(first.description, "host memory test backend (fake-b)");
  EXPECT_EQ(first.memory_total, 1u << 20);
  EXPECT_EQ(first.memory_free, 1u << 19);
  EXPECT_TRUE(first.host_visible);
  EXPECT_TRUE(log.Contains("device name 'fake' is taken; this one is 'fake:1'"));

  auto best = host->FindDevice("");
  ASSERT_TRUE(best.ok()) << best.status();
  EXPECT_EQ(*best, &first);
  auto by_name = host->FindDevice("fake");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(*by_name, &second);
  auto missing = host->FindDevice("cuda:0");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(missing.status().message(), "device 'cuda:0' not found; devices here: fake:1, fake"));
}

TEST(PluginHostTest, MinorInUseIsTheSmallerOfHostAndPlugin) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({Fixture("fake-a")}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  // fake-a declares minor 7; this host speaks HEARTH_PLUGIN_ABI_MINOR.
  EXPECT_EQ(host->plugins()[0].abi_major, 1u);
  EXPECT_EQ(host->plugins()[0].abi_minor, static_cast<uint32_t>(HEARTH_PLUGIN_ABI_MINOR));
}

TEST(PluginHostTest, DiscoveryOrderIsExplicitThenEnvThenLibdir) {
  TempDir env_dir, lib_dir;
  fs::create_directories(lib_dir.path() + "/hearth/plugins");
  fs::copy_file(Fixture("fake-a"), lib_dir.path() + "/hearth/plugins/libhearth-lib.so");
  fs::copy_file(Fixture("fake-b"), env_dir.path() + "/libhearth-env.so");
  ScopedEnv env("HEARTH_PLUGIN_PATH", "/nonexistent-hearth-dir:" + env_dir.path());
  LogLines log;
  PluginHostOptions o = ExplicitOnly({Fixture("noprobe")}, &log);
  o.explicit_only = false;
  o.libdir = lib_dir.path();
  auto host = MustCreate(o);
  ASSERT_EQ(host->plugins().size(), 3u);
  EXPECT_EQ(host->plugins()[0].path, fs::canonical(Fixture("noprobe")).string());
  EXPECT_EQ(host->plugins()[1].path, env_dir.path() + "/libhearth-env.so");
  EXPECT_EQ(host->plugins()[2].path, lib_dir.path() + "/hearth/plugins/libhearth-lib.so");
  // The env plugin was found before the libdir one, so it keeps "fake".
  ASSERT_EQ(host->devices().size(), 2u);
  EXPECT_EQ(host->devices()[0].name, "fake");
  EXPECT_EQ(host->devices()[0].plugin->name, "fake-b");
  EXPECT_EQ(host->devices()[1].name, "fake:1");
  // Absent default folders are not errors.
  for (const LoadedPlugin& p : host->plugins()) EXPECT_EQ(p.load_error, "") << p.path;
}

TEST(PluginHostTest, ExplicitOnlySkipsEnvAndLibdir) {
  TempDir env_dir, lib_dir;
  fs::create_directories(lib_dir.path() + "/hearth/plugins");
  fs::copy_file(Fixture("fake-a"), lib_dir.path() + "/hearth/plugins/libhearth-lib.so");
  fs::copy_file(Fixture("fake-b"), env_dir.path() + "/libhearth-env.so");
  ScopedEnv env("HEARTH_PLUGIN_PATH", env_dir.path());
  LogLines log;
  PluginHostOptions o = ExplicitOnly({}, &log);
  o.libdir = lib_dir.path();
  auto host = MustCreate(o);
  EXPECT_TRUE(host->plugins().empty());
}

TEST(PluginHostTest, EnvPathIsHonoured) {
  TempDir env_dir, empty_lib;
  fs::copy_file(Fixture("fake-b"), env_dir.path() + "/libhearth-env.so");
  ScopedEnv env("HEARTH_PLUGIN_PATH", env_dir.path() + "/libhearth-env.so");  // a file works too
  LogLines log;
  PluginHostOptions o = ExplicitOnly({}, &log);
  o.explicit_only = false;
  o.libdir = empty_lib.path();
  auto host = MustCreate(o);
  EXPECT_EQ(PluginNames(*host), (std::vector<std::string>{"fake-b"}));
}

TEST(PluginHostTest, WorkingDirectoryIsNeverSearched) {
  TempDir cwd, empty_lib;
  fs::copy_file(Fixture("fake-b"), cwd.path() + "/libhearth-evil.so");
  fs::create_directories(cwd.path() + "/sub");
  fs::copy_file(Fixture("fake-a"), cwd.path() + "/sub/libhearth-evil2.so");
  ScopedCwd in(cwd.path());
  // Empty entries, "." and relative folders would all mean the working
  // directory to a naive loader.
  ScopedEnv env("HEARTH_PLUGIN_PATH", ":.::sub:./libhearth-evil.so:");
  LogLines log;
  PluginHostOptions o = ExplicitOnly({}, &log);
  o.explicit_only = false;
  o.libdir = empty_lib.path();
  auto host = MustCreate(o);
  EXPECT_TRUE(host->plugins().empty()) << PluginNames(*host)[0];
  EXPECT_TRUE(log.Contains("ignoring relative entry '.'"));
  EXPECT_TRUE(log.Contains("ignoring relative entry 'sub'"));
}

TEST(PluginHostTest, SamePluginThroughTwoPathsLoadsOnce) {
  TempDir dir;
  fs::create_symlink(Fixture("noprobe"), dir.path() + "/libhearth-link.so");
  LogLines log;
  auto host = MustCreate(ExplicitOnly({Fixture("noprobe"), dir.path(),
                                       kPluginDir + "/../test_plugins/libhearth-test-noprobe.so",
                                       dir.path() + "/libhearth-link.so"},
                                      &log));
  EXPECT_EQ(PluginNames(*host), (std::vector<std::string>{"noprobe"}));
}

TEST(PluginHostTest, MissingExplicitPathIsRecorded) {
  LogLines log;
  auto host = MustCreate(ExplicitOnly({"/nonexistent-hearth/libhearth-x.so"}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  EXPECT_TRUE(HasSubstr(host->plugins()[0].load_error, "/nonexistent-hearth/libhearth-x.so: No such file or directory"));
}

TEST(PluginHostTest, NotASharedLibraryIsRecorded) {
  TempDir dir;
  std::ofstream(dir.path() + "/libhearth-garbage.so") << "not an ELF file";
  LogLines log;
  auto host = MustCreate(ExplicitOnly({dir.path()}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  EXPECT_TRUE(HasSubstr(host->plugins()[0].load_error, "libhearth-garbage.so"));
  EXPECT_EQ(host->plugins()[0].backend, nullptr);
}

TEST(PluginHostTest, PluginLogLinesAreRoutedAndFiltered) {
  {
    LogLines log;
    auto host = MustCreate(ExplicitOnly({Fixture("fake-a")}, &log, HEARTH_LOG_INFO));
    // During init the plugin has no name yet: its file name labels the line.
    EXPECT_TRUE(log.Contains("libhearth-test-fake-a.so: test backend fake-a ready"));
  }
  {
    LogLines log;
    auto host = MustCreate(ExplicitOnly({Fixture("fake-a")}, &log, HEARTH_LOG_WARN));
    EXPECT_FALSE(log.Contains("ready"));
  }
}

TEST(PluginHostTest, BadLogLevelIsAnError) {
  PluginHostOptions o;
  o.explicit_only = true;
  o.log_level = 9;
  auto host = PluginHost::Create(o);
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(host.status().message(), "log_level 9"));
}

TEST(PluginHostTest, RealCpuPluginLoadsWithOneDevice) {
  const std::string cpu = HEARTH_PLUGIN_DIR "/libhearth-backend-cpu.so";
  if (!fs::exists(cpu)) {
    GTEST_SKIP() << cpu << " is not built (target hearth_backend_cpu); nothing to check";
  }
  LogLines log;
  auto host = MustCreate(ExplicitOnly({cpu}, &log));
  ASSERT_EQ(host->plugins().size(), 1u);
  const LoadedPlugin& p = host->plugins()[0];
  EXPECT_EQ(p.load_error, "");
  EXPECT_EQ(p.name, "cpu");
  EXPECT_EQ(p.probe_score, 1);
  ASSERT_EQ(host->devices().size(), 1u);
  EXPECT_EQ(host->devices()[0].name, "cpu");
  EXPECT_TRUE(host->devices()[0].host_visible);
}

}  // namespace
}  // namespace hearth
