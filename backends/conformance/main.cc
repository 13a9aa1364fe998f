// main.cc — `hearth-conformance`: validates a backend plugin with one
// command. `hearth conformance` runs this binary. docs/abi/conformance.md.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backends/conformance/conformance.h"

namespace {

using hearth::conformance::kExitUsage;

void Help(std::FILE* out) {
  std::fprintf(out,
               "usage: hearth-conformance --plugin PATH [flags]\n\n"
               "Runs every op of the plugin ABI over every dtype combination the plugin\n"
               "claims (supports()) and many shapes, against float64 references, and prints\n"
               "a pass/fail table. Exit code 0: every case passed; 1: a case failed or the\n"
               "plugin could not be loaded; 2: usage error. docs/abi/conformance.md\n\n"
               "flags:\n"
               "  --plugin PATH  the backend plugin file (required)\n"
               "  --device N     device index (default 0)\n"
               "  --op NAME      only this op (e.g. MUL_MAT, attention); --list shows them\n"
               "  --seed N       random seed (default 1)\n"
               "  --quick        fewer shapes (what the ctest runs)\n"
               "  --verbose      print every failing case, not only the first per row\n"
               "  --list         list the ops and exit\n"
               "  -h, --help     this text\n");
}

bool ParseU64(const char* s, uint64_t* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  hearth::conformance::Options o;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "hearth-conformance: %s needs a value\n", flag);
        return nullptr;
      }
      return argv[++i];
    };
    uint64_t n = 0;
    if (a == "-h" || a == "--help") {
      Help(stdout);
      return 0;
    } else if (a == "--plugin") {
      const char* v = value("--plugin");
      if (!v) return kExitUsage;
      o.plugin = v;
    } else if (a == "--device") {
      const char* v = value("--device");
      if (!v) return kExitUsage;
      if (!ParseU64(v, &n) || n > 0xffffffffu) {
        std::fprintf(stderr, "hearth-conformance: --device: '%s' is not a device index\n", v);
        return kExitUsage;
      }
      o.device = static_cast<uint32_t>(n);
    } else if (a == "--op") {
      const char* v = value("--op");
      if (!v) return kExitUsage;
      o.op = v;
    } else if (a == "--seed") {
      const char* v = value("--seed");
      if (!v) return kExitUsage;
      if (!ParseU64(v, &o.seed)) {
        std::fprintf(stderr, "hearth-conformance: --seed: '%s' is not a whole number\n", v);
        return kExitUsage;
      }
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--list") {
      list = true;
    } else {
      std::fprintf(stderr, "hearth-conformance: unknown flag %s\n\n", a.c_str());
      Help(stderr);
      return kExitUsage;
    }
  }
  if (list) {
    for (const auto& e : hearth::conformance::Ops()) std::printf("%s\n", e.name);
    return 0;
  }
  if (o.plugin.empty()) {
    std::fprintf(stderr, "hearth-conformance: --plugin PATH is required\n\n");
    Help(stderr);
    return kExitUsage;
  }
  return hearth::conformance::RunConformance(o, stdout);
}
