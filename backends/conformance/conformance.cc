// conformance.cc — the driver: every op's generator in turn, the results
// booked per (op, dtypes) row, the table and the exit code.
#include "backends/conformance/conformance.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "backends/common/plugin_common.h"

namespace hearth::conformance {

void Suite::Row(const char* op, const std::string& dtypes) {
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (rows_[i].op == op && rows_[i].dtypes == dtypes) {
      current_ = static_cast<int>(i);
      return;
    }
  }
  RowResult r;
  r.op = op;
  r.dtypes = dtypes;
  rows_.push_back(r);
  current_ = static_cast<int>(rows_.size()) - 1;
}

void Suite::Run(const Case& c) { Book(plugin_->Run(c), c.what()); }

void Suite::Book(const CaseResult& r, const std::string& what) {
  RowResult& row = rows_[current_];
  if (r.status == CaseResult::kNotClaimed) {
    ++row.unclaimed;
    return;
  }
  ++row.run;
  if (r.worst_ratio > row.worst_ratio) {
    row.worst_ratio = r.worst_ratio;
    row.worst_err = r.worst_err;
    row.worst_tol = r.worst_tol;
  }
  if (r.status == CaseResult::kFail) {
    ++row.failed;
    const std::string text = what + ": " + r.failure;
    if (row.first_failure.empty()) row.first_failure = text;
    if (verbose_)
      std::fprintf(out_, "FAIL %s %s: %s\n", row.op.c_str(), row.dtypes.c_str(), text.c_str());
  }
}

namespace {

std::string Upper(const std::string& s) {
  std::string u = s;
  for (char& ch : u) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    if (ch == '-') ch = '_';
  }
  return u;
}

std::string Ratio(double r) {
  if (!std::isfinite(r)) return "inf";
  char b[32];
  std::snprintf(b, sizeof(b), "%.3g", r);
  return b;
}

}  // namespace

int RunConformance(const Options& o, std::FILE* out) {
  const std::string want_op = Upper(o.op);
  if (!want_op.empty()) {
    bool known = false;
    for (const OpEntry& e : Ops()) known |= want_op == e.name;
    if (!known) {
      std::fprintf(stderr, "hearth-conformance: unknown op '%s' (--list shows them)\n",
                   o.op.c_str());
      return kExitUsage;
    }
  }
  PluginUnderTest plugin;
  const std::string why = plugin.Open(o.plugin, o.device);
  if (!why.empty()) {
    std::fprintf(stderr, "hearth-conformance: %s\n", why.c_str());
    return kExitFail;
  }
  std::fprintf(out, "plugin: %s (%s), device %u: %s\nseed %llu%s\n\n", plugin.name(),
               o.plugin.c_str(), o.device, plugin.DeviceName().c_str(),
               static_cast<unsigned long long>(o.seed), o.quick ? ", quick" : "");
  const auto t0 = std::chrono::steady_clock::now();
  Suite suite(&plugin, o.quick, o.verbose, out);
  for (const OpEntry& e : Ops()) {
    if (!want_op.empty() && want_op != e.name) continue;
    // The same cases whatever --op selects: each op has its own stream.
    suite.Seed(o.seed * 1000003u + e.op);
    e.run(suite);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // err/tol: the worst |got - want| / tolerance over every checked element
  // (a case fails above 1), with that element's error and tolerance.
  std::fprintf(out, "%-19s %-22s %6s %6s %11s %8s %-19s %s\n", "op", "dtypes", "cases", "failed",
               "result", "err/tol", "worst err (tol)", "first failure");
  int total = 0, failed = 0, failed_rows = 0, unclaimed_rows = 0;
  for (const Suite::RowResult& r : suite.rows()) {
    const char* result = r.failed > 0 ? "FAIL" : r.run == 0 ? "not claimed" : "pass";
    const std::string worst =
        r.run ? Ratio(r.worst_err) + " (" + Ratio(r.worst_tol) + ")" : std::string("-");
    std::fprintf(out, "%-19s %-22s %6d %6d %11s %8s %-19s %s\n", r.op.c_str(), r.dtypes.c_str(),
                 r.run, r.failed, result, r.run ? Ratio(r.worst_ratio).c_str() : "-", worst.c_str(),
                 r.first_failure.c_str());
    total += r.run;
    failed += r.failed;
    failed_rows += r.failed > 0;
    unclaimed_rows += r.run == 0;
  }
  std::fprintf(out,
               "\n%d cases, %d failed; %d of %zu rows failed, %d not claimed by the plugin "
               "(%.1f s)\n",
               total, failed, failed_rows, suite.rows().size(), unclaimed_rows, secs);
  if (failed > 0) {
    std::fprintf(out, "FAIL: ");
    bool first = true;
    std::string last;
    for (const Suite::RowResult& r : suite.rows()) {
      if (r.failed == 0 || r.op == last) continue;
      std::fprintf(out, "%s%s", first ? "" : ", ", r.op.c_str());
      first = false;
      last = r.op;
    }
    std::fprintf(out, "\n");
    return kExitFail;
  }
  std::fprintf(out, "PASS\n");
  return kExitPass;
}

}  // namespace hearth::conformance
