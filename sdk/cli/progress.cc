// progress.cc — the terminal progress line (progress.h).
#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "terminal_text.h"

namespace hearth::cli {
namespace {

constexpr int kBarWidth = 20;
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);

constexpr const char* kByteUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};

// The power of 1024 `bytes` is shown in: below 1000 there (up to TiB).
int ByteScale(double bytes) {
  int k = 0;
  while (k < 4 && bytes >= 999.5) {
    bytes /= 1024;
    ++k;
  }
  return k;
}

// Three significant digits below 1000 ("0.52", "12.3", "1234").
std::string ThreeDigits(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), v < 9.995 ? "%.2f" : v < 99.95 ? "%.1f" : "%.0f", v);
  return buf;
}

// Columns of stderr's terminal; 80 when it does not say.
int TerminalColumns() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

// `s` cut to at most `columns` characters, counting a UTF-8 sequence as one
// (Printable text holds no control characters; wide glyphs may overshoot).
std::string FitColumns(const std::string& s, size_t columns) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool starts_char = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    if (starts_char && n++ == columns) return s.substr(0, i);
  }
  return s;
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = std::llround(seconds);
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", s / 3600, s / 60 % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh", s / 86400, s / 3600 % 24);
  }
  return buf;
}

std::string FormatRate(double per_second, std::string_view unit) {
  const bool known = std::isfinite(per_second) && per_second >= 0;
  if (unit == "bytes") return (known ? FormatBytes(per_second) : "? B") + "/s";
  return (known ? ThreeDigits(per_second) : "?") + " " + std::string(unit) + "/s";
}

std::string FormatBytes(double bytes) {
  const int k = ByteScale(bytes);
  const std::string value = k == 0 ? std::to_string(static_cast<uint64_t>(bytes))
                                   : ThreeDigits(bytes / std::pow(1024.0, k));
  return value + " " + kByteUnits[k];
}

std::string FormatBytesOf(uint64_t done, uint64_t total) {
  const int k = ByteScale(static_cast<double>(total));
  const double scale = std::pow(1024.0, k);
  const double t = static_cast<double>(total) / scale;
  const char* format = k == 0 || t >= 99.95 ? "%.0f/%.0f %s"
                       : t >= 9.995         ? "%.1f/%.1f %s"
                                            : "%.2f/%.2f %s";
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, static_cast<double>(done) / scale, t, kByteUnits[k]);
  return buf;
}

double EstimateRemaining(uint64_t done, uint64_t total, double elapsed) {
  if (done == 0 || !(elapsed >= 0)) return NAN;
  if (done >= total) return 0;
  return elapsed / static_cast<double>(done) * static_cast<double>(total - done);
}

std::string RenderProgressLine(const ProgressState& st, int columns) {
  std::string line(st.label);
  const bool bytes = st.unit == "bytes";
  if (st.total > 0) {
    const uint64_t done = st.done < st.total ? st.done : st.total;
    const int filled = static_cast<int>(done * kBarWidth / st.total);
    line += " [" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "]";
    line += " " + (bytes ? FormatBytesOf(st.done, st.total)
                         : std::to_string(st.done) + "/" + std::to_string(st.total));
  } else {
    line += " " + (bytes ? FormatBytes(static_cast<double>(st.done)) : std::to_string(st.done));
  }
  if (!bytes) line += " " + std::string(st.unit);
  const double rate = st.counted > 0 && st.elapsed > 0 ? st.counted / st.elapsed : NAN;
  line += "  " + FormatRate(rate, st.unit);
  if (st.finished) {
    line += "  in " + FormatDuration(st.elapsed);
  } else if (st.total > 0) {
    const uint64_t left = st.done < st.total ? st.total - st.done : 0;
    line += "  ETA " + FormatDuration(EstimateRemaining(st.counted, st.counted + left, st.elapsed));
  }
  if (!st.detail.empty()) line += "  " + std::string(st.detail);
  return FitColumns(line, columns > 1 ? static_cast<size_t>(columns - 1) : 0);
}

bool ProgressShown(bool quiet) { return !quiet && isatty(STDERR_FILENO) != 0; }

ProgressLine::ProgressLine(std::string label, std::string unit, uint64_t total, bool quiet)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      shown_(ProgressShown(quiet)),
      start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { Finish(); }

double ProgressLine::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressLine::Remaining(uint64_t done) const {
  if (done < done_before_) return NAN;
  const uint64_t left = done < total_ ? total_ - done : 0;
  const uint64_t counted = done - done_before_;
  return EstimateRemaining(counted, counted + left, elapsed());
}

void ProgressLine::Update(uint64_t done, std::string_view detail) {
  if (!shown_) return;
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  const bool at_end = total_ > 0 && done >= total_;
  // The first item done is the first moment a rate and an ETA are known:
  // drawn at once, however soon.
  const bool first_rate = !rate_drawn_ && done > done_before_;
  if (drawn_ && !at_end && !first_rate && now - last_draw_ < kRedrawEvery) return;
  rate_drawn_ = rate_drawn_ || first_rate;
  detail_ = Printable(detail);
  last_draw_ = now;
  Draw(false);
}

void ProgressLine::Finish() {
  if (!shown_) return;
  Draw(true);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  shown_ = false;
}

void ProgressLine::Clear() {
  if (!shown_) return;
  if (drawn_) std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  shown_ = false;
}

void ProgressLine::Draw(bool finished) {
  ProgressState st;
  st.label = label_;
  st.unit = unit_;
  st.done = done_;
  st.total = total_;
  st.counted = done_ > done_before_ ? done_ - done_before_ : 0;
  st.elapsed = elapsed();
  st.finished = finished;
  st.detail = detail_;
  // "\r" back to the line's start, "ESC[K" erases what a longer line left.
  std::fprintf(stderr, "\r%s\033[K", RenderProgressLine(st, TerminalColumns()).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace hearth::cli
