// progress.h — the progress line long commands (convert, quantize,
// perplexity, finetune) draw on stderr: a bar, done/total, the rate and the
// time left, redrawn in place at most ten times a second.
//
// Why only on a terminal: "\r" redraws and ANSI erases are noise in a log
// file or a pipe, so when stderr is not a terminal, or with --quiet, nothing
// is drawn at all.
// Commands whose per-step lines are data (finetune's losses) print those
// themselves when there is no terminal.
#ifndef HEARTH_SDK_CLI_PROGRESS_H_
#define HEARTH_SDK_CLI_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::cli {

// "0s", "45s", "1m05s", "2h03m", "3d04h": whole seconds, rounded; "?" when
// unknown (NaN, negative or infinite).
std::string FormatDuration(double seconds);

// "12.3 tensors/s", "0.52 windows/s", "1234 steps/s": three significant
// digits below 1000; "? unit/s" when unknown. Unit "bytes": "61.2 MiB/s".
std::string FormatRate(double per_second, std::string_view unit);

// "512 B", "1.50 KiB", "61.2 MiB", "2.06 GiB" (powers of 1024).
std::string FormatBytes(double bytes);
// "0.64/2.06 GiB": both in the total's unit and precision.
std::string FormatBytesOf(uint64_t done, uint64_t total);

// Seconds left at the average rate so far: elapsed / done * (total - done);
// NaN while nothing is done.
double EstimateRemaining(uint64_t done, uint64_t total, double elapsed);

// What one progress line shows.
struct ProgressState {
  std::string_view label;  // "quantize"
  std::string_view unit;   // "tensors"; "bytes" is shown in KiB/MiB/GiB
  uint64_t done = 0;       // of total
  uint64_t total = 0;
  uint64_t counted = 0;     // items the rate counts (done in this process)
  double elapsed = 0;       // seconds the counted items took
  bool finished = false;    // "in 12s" instead of "ETA 3s"
  std::string_view detail;  // shown last, already made printable
};

// The line, cut to `columns` - 1 columns so the terminal never wraps it
// (a wrapped line cannot be redrawn with "\r"). Pure, for the tests:
//   quantize [########............] 58/147 tensors  12.3 tensors/s  ETA 7s  blk.9.attn_q.weight
std::string RenderProgressLine(const ProgressState& state, int columns);

// Whether progress is drawn: stderr is a terminal and not --quiet.
bool ProgressShown(bool quiet);

class ProgressLine {
 public:
  // Draws nothing unless ProgressShown(quiet). `unit` names what is counted
  // ("tensors", "steps"; "bytes" is shown in KiB/MiB/GiB). `total` may be 0
  // while unknown (set_total later).
  ProgressLine(std::string label, std::string unit, uint64_t total, bool quiet);
  ~ProgressLine();  // Finish()es a line still drawn
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool shown() const { return shown_; }
  uint64_t total() const { return total_; }
  void set_total(uint64_t total) { total_ = total; }
  // Items already done before this process started (a resumed run): they
  // count towards done/total but not towards the rate or the ETA.
  void set_done_before(uint64_t done) { done_before_ = done; }

  // `done` of total; `detail` (a tensor name, the loss) is made printable
  // here. Redraws when 100 ms passed since the last draw, at the first item
  // done (the first rate) and at the end.
  void Update(uint64_t done, std::string_view detail = {});
  // The last draw ("in 12s", the last detail) and a newline, so what
  // follows starts on a line of its own. Nothing when not shown or already
  // finished.
  void Finish();
  // Erases the line instead (an error message follows).
  void Clear();

  double elapsed() const;  // seconds since construction
  // Seconds left for `done` of total at this run's rate (NaN: unknown).
  double Remaining(uint64_t done) const;

 private:
  void Draw(bool finished);

  std::string label_, unit_, detail_;
  uint64_t total_ = 0, done_ = 0, done_before_ = 0;
  bool shown_ = false, drawn_ = false, rate_drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_PROGRESS_H_
