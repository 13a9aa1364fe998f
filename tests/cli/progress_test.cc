// progress_test.cc — the pure parts of the CLI's progress line
// (sdk/cli/progress.h): durations, rates, the ETA and the rendered line.
// Drawing on a real terminal is tested end to end under a pty
// (tests/cli/run_in_pty.py, the cli_progress_* tests).
#include "sdk/cli/progress.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace hearth::cli {
namespace {

TEST(ProgressFormat, Duration) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(0.4), "0s");
  EXPECT_EQ(FormatDuration(45), "45s");
  EXPECT_EQ(FormatDuration(59.6), "1m00s");
  EXPECT_EQ(FormatDuration(65), "1m05s");
  EXPECT_EQ(FormatDuration(3599), "59m59s");
  EXPECT_EQ(FormatDuration(3600 + 3 * 60 + 20), "1h03m");
  EXPECT_EQ(FormatDuration(2 * 86400 + 5 * 3600), "2d05h");
  EXPECT_EQ(FormatDuration(NAN), "?");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatDuration(INFINITY), "?");
}

TEST(ProgressFormat, Rate) {
  EXPECT_EQ(FormatRate(0.523, "windows"), "0.52 windows/s");
  EXPECT_EQ(FormatRate(12.34, "tensors"), "12.3 tensors/s");
  EXPECT_EQ(FormatRate(1234.4, "steps"), "1234 steps/s");
  EXPECT_EQ(FormatRate(NAN, "steps"), "? steps/s");
  EXPECT_EQ(FormatRate(INFINITY, "steps"), "? steps/s");
}

TEST(ProgressFormat, Bytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(61.2 * 1024 * 1024), "61.2 MiB");
  EXPECT_EQ(FormatBytes(2209304000.0), "2.06 GiB");
  EXPECT_EQ(FormatBytes(1023 * 1024.0), "1.00 MiB");  // never four digits
  EXPECT_EQ(FormatBytes(1000), "0.98 KiB");
  EXPECT_EQ(FormatRate(64 * 1024 * 1024, "bytes"), "64.0 MiB/s");
  EXPECT_EQ(FormatRate(NAN, "bytes"), "? B/s");
  EXPECT_EQ(FormatBytesOf(687194767, 2209304000), "0.64/2.06 GiB");
  EXPECT_EQ(FormatBytesOf(12 * 1024 * 1024, 147 * 1024 * 1024), "12/147 MiB");
  EXPECT_EQ(FormatBytesOf(100, 900), "100/900 B");
}

TEST(ProgressFormat, EstimateRemaining) {
  EXPECT_TRUE(std::isnan(EstimateRemaining(0, 10, 5)));
  EXPECT_DOUBLE_EQ(EstimateRemaining(2, 10, 5), 20);  // 2.5 s each, 8 left
  EXPECT_DOUBLE_EQ(EstimateRemaining(10, 10, 5), 0);
  EXPECT_DOUBLE_EQ(EstimateRemaining(12, 10, 5), 0);
}

ProgressState State(uint64_t done, uint64_t total, double elapsed) {
  ProgressState st;
  st.label = "quantize";
  st.unit = "tensors";
  st.done = done;
  st.total = total;
  st.counted = done;
  st.elapsed = elapsed;
  return st;
}

TEST(ProgressLine, RendersBarCountRateAndEta) {
  ProgressState st = State(5, 20, 2);
  st.detail = "blk.0.attn_q.weight";
  EXPECT_EQ(RenderProgressLine(st, 200),
            "quantize [#####...............] 5/20 tensors  2.50 tensors/s  ETA 6s  "
            "blk.0.attn_q.weight");
}

TEST(ProgressLine, FinishedShowsTheTimeTaken) {
  ProgressState st = State(20, 20, 65);
  st.finished = true;
  EXPECT_EQ(RenderProgressLine(st, 200),
            "quantize [####################] 20/20 tensors  0.31 tensors/s  in 1m05s");
}

TEST(ProgressLine, NothingDoneYetHasNoRateNorEta) {
  EXPECT_EQ(RenderProgressLine(State(0, 4, 0), 200),
            "quantize [....................] 0/4 tensors  ? tensors/s  ETA ?");
}

TEST(ProgressLine, ResumedRunCountsOnlyThisRunsItems) {
  // 6 of 10 steps, 4 of them before a resume: the rate and ETA use the 2
  // done in 4 s (2 s each, 4 left).
  ProgressState st = State(6, 10, 4);
  st.label = "finetune";
  st.unit = "steps";
  st.counted = 2;
  EXPECT_EQ(RenderProgressLine(st, 200),
            "finetune [############........] 6/10 steps  0.50 steps/s  ETA 8s");
}

TEST(ProgressLine, BytesWithTensorsBeside) {
  ProgressState st = State(512 * 1024 * 1024, 2048ull * 1024 * 1024, 8);
  st.unit = "bytes";
  st.detail = "46/147 tensors  blk.4.ffn_up.weight";
  EXPECT_EQ(RenderProgressLine(st, 200),
            "quantize [#####...............] 0.50/2.00 GiB  64.0 MiB/s  ETA 24s  46/147 tensors  "
            "blk.4.ffn_up.weight");
}

TEST(ProgressLine, UnknownTotalIsACounter) {
  EXPECT_EQ(RenderProgressLine(State(7, 0, 1), 200), "quantize 7 tensors  7.00 tensors/s");
}

TEST(ProgressLine, CutToTheTerminalWidthNeverWraps) {
  ProgressState st = State(5, 20, 2);
  st.detail = "blk.0.attn_q.weight";
  const std::string line = RenderProgressLine(st, 40);
  EXPECT_EQ(line.size(), 39u);
  EXPECT_EQ(line, "quantize [#####...............] 5/20 te");
  // A multi-byte character counts as one column and is never split.
  st.detail = "\xC3\xA9\xC3\xA9\xC3\xA9";  // "ééé"
  const std::string full = RenderProgressLine(st, 200);
  const std::string cut = RenderProgressLine(st, 73);  // 72 columns: 70 + "éé"
  EXPECT_EQ(cut, full.substr(0, full.size() - 2));
}

}  // namespace
}  // namespace hearth::cli
