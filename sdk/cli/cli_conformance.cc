// cli_conformance.cc — `hearth conformance`: runs the conformance tool,
// hearth-conformance, from the directory of this executable with the same
// arguments. The CLI stays a client of hearth.h: the tool is a separate
// program (backends/conformance) that loads a plugin as a host does.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"

namespace hearth::cli {

namespace {

// Directory of /proc/self/exe, with a trailing '/'; "" if unknown.
std::string SelfDir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

}  // namespace

int RunConformance(int argc, char** argv) {
  const std::string tool = SelfDir() + "hearth-conformance";
  if (access(tool.c_str(), X_OK) != 0) {
    const bool help =
        argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
    std::fprintf(help ? stdout : stderr,
                 "%shearth: the conformance tool is missing: %s (%s). It is built with hearth "
                 "(target hearth_conformance_tool) and installed beside it.\n",
                 help ? "usage: hearth conformance --plugin PATH [--device N] [--op NAME] "
                        "[--seed N] [--quick] [--list] [--help]\n"
                      : "",
                 tool.c_str(), std::strerror(errno));
    return kExitRuntimeError;
  }
  std::vector<char*> args;
  std::string name = "hearth-conformance";
  args.push_back(name.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  std::fflush(stdout);
  execv(tool.c_str(), args.data());
  std::fprintf(stderr, "hearth: cannot run %s: %s\n", tool.c_str(), std::strerror(errno));
  return kExitRuntimeError;
}

}  // namespace hearth::cli
