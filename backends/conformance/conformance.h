// conformance.h — the conformance tool as a library: loads a backend plugin
// by path (as a host, through hearth_plugin.h alone), runs every op of the
// op set over every dtype combination the plugin claims and many shapes
// against float64 references, and prints a pass/fail table.
// docs/abi/conformance.md says what is checked and with which tolerances.
#ifndef HEARTH_BACKENDS_CONFORMANCE_CONFORMANCE_H_
#define HEARTH_BACKENDS_CONFORMANCE_CONFORMANCE_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/conformance/harness.h"

namespace hearth::conformance {

struct Options {
  std::string plugin;  // path of the plugin file
  uint32_t device = 0;
  std::string op;  // only this op ("" = all), by name: MUL_MAT, get_rows …
  uint64_t seed = 1;
  bool quick = false;    // fewer shapes (ctest)
  bool verbose = false;  // print every failing case, not only the first per row
};

// Exit codes of the tool.
constexpr int kExitPass = 0, kExitFail = 1, kExitUsage = 2;

// The per-op generators see this: the current table row and the cases.
class Suite {
 public:
  Suite(PluginUnderTest* plugin, bool quick, bool verbose, std::FILE* out)
      : plugin_(plugin), quick_(quick), verbose_(verbose), out_(out) {}
  bool quick() const { return quick_; }
  Rng& rng() { return rng_; }
  void Seed(uint64_t s) { rng_.seed(s); }
  // Starts (or continues) the table row of `op` with these dtypes.
  void Row(const char* op, const std::string& dtypes);
  // Runs a case and books its result under the current row.
  void Run(const Case& c);
  // Books a result obtained otherwise (checks that are not one graph).
  void Book(const CaseResult& r, const std::string& what);
  PluginUnderTest& plugin() { return *plugin_; }

  struct RowResult {
    std::string op, dtypes;
    int run = 0, failed = 0, unclaimed = 0;
    double worst_ratio = 0, worst_err = 0, worst_tol = 0;
    std::string first_failure;
  };
  const std::vector<RowResult>& rows() const { return rows_; }

 private:
  PluginUnderTest* plugin_;
  bool quick_, verbose_;
  std::FILE* out_;
  Rng rng_;
  std::vector<RowResult> rows_;
  int current_ = -1;
};

// The op generators (ops_forward.cc, ops_backward.cc).
struct OpEntry {
  uint32_t op;
  const char* name;
  void (*run)(Suite& s);
};
const std::vector<OpEntry>& Ops();

// Runs the tool; prints the table to `out`. Returns an exit code.
int RunConformance(const Options& options, std::FILE* out);

}  // namespace hearth::conformance

#endif  // HEARTH_BACKENDS_CONFORMANCE_CONFORMANCE_H_
