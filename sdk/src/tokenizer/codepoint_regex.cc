// codepoint_regex.cc — compiler and backtracking matcher for CodepointRegex.
// The pattern is parsed to a tree (codepoint_regex_parse.cc), compiled to a tiny
// instruction program (class test, split, jump, lookahead, anchors) and run
// by an explicit-stack backtracker. A visited bitset over (instruction,
// position) keeps the search linear per start position, and stays valid
// across failed start positions (a state that failed once fails again: there
// are no backreferences), so long gaps do not go quadratic.
#include "sdk/src/tokenizer/codepoint_regex.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/tokenizer/codepoint_regex_internal.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {
namespace regex_internal {
namespace {

constexpr size_t kMaxProgramSize = 1 << 16;
constexpr uint64_t kMaxMemoBits = uint64_t{1} << 26;  // 8 MiB of visited bits

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Node::kClass:
      return false;
    case Node::kCat:
      return std::all_of(n.kids.begin(), n.kids.end(), Nullable);
    case Node::kAlt:
      return std::any_of(n.kids.begin(), n.kids.end(), Nullable);
    case Node::kRepeat:
      return n.min == 0 || Nullable(n.kids[0]);
    default:
      return true;
  }
}

class Compiler {
 public:
  explicit Compiler(CodepointRegex::Program* prog) : prog_(prog) {}

  absl::Status Emit(const Node& n, size_t code) {
    if (prog_->codes[code].size() > kMaxProgramSize) {
      return absl::InvalidArgumentError("pattern compiles to too many instructions");
    }
    switch (n.kind) {
      case Node::kClass:
        Push(code, {kOpClass, n.cls, 0});
        return absl::OkStatus();
      case Node::kBol:
        Push(code, {kOpBol, 0, 0});
        return absl::OkStatus();
      case Node::kEol:
        Push(code, {kOpEol, 0, 0});
        return absl::OkStatus();
      case Node::kCat:
        for (const Node& k : n.kids) HEARTH_RETURN_IF_ERROR(Emit(k, code));
        return absl::OkStatus();
      case Node::kAlt: {
        std::vector<size_t> jumps;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          size_t split = 0;
          const bool last = i + 1 == n.kids.size();
          if (!last) split = Push(code, {kOpSplit, Here(code) + 1, 0});
          HEARTH_RETURN_IF_ERROR(Emit(n.kids[i], code));
          if (!last) {
            jumps.push_back(Push(code, {kOpJmp, 0, 0}));
            prog_->codes[code][split].y = Here(code);
          }
        }
        for (size_t j : jumps) prog_->codes[code][j].x = Here(code);
        return absl::OkStatus();
      }
      case Node::kRepeat: {
        const Node& body = n.kids[0];
        if (n.max < 0 && Nullable(body)) {
          return absl::InvalidArgumentError("unbounded repeat of something that can match empty");
        }
        if (n.min > 1000 || n.max > 1000) {
          return absl::InvalidArgumentError("repeat count above 1000");
        }
        for (int i = 0; i < n.min; ++i) HEARTH_RETURN_IF_ERROR(Emit(body, code));
        if (n.max < 0) {
          const int32_t loop = Here(code);
          const size_t split = Push(code, {kOpSplit, 0, 0});
          HEARTH_RETURN_IF_ERROR(Emit(body, code));
          Push(code, {kOpJmp, loop, 0});
          PatchSplit(code, split, loop + 1, Here(code), n.greedy);
          return absl::OkStatus();
        }
        std::vector<size_t> splits;
        for (int i = n.min; i < n.max; ++i) {
          splits.push_back(Push(code, {kOpSplit, 0, 0}));
          HEARTH_RETURN_IF_ERROR(Emit(body, code));
        }
        for (size_t s : splits)
          PatchSplit(code, s, static_cast<int32_t>(s) + 1, Here(code), n.greedy);
        return absl::OkStatus();
      }
      case Node::kLook: {
        const size_t sub = prog_->codes.size();
        prog_->codes.emplace_back();
        HEARTH_RETURN_IF_ERROR(Emit(n.kids[0], sub));
        Push(sub, {kOpMatch, 0, 0});
        Push(code, {n.negative ? kOpNegLook : kOpLook, static_cast<int32_t>(sub), 0});
        return absl::OkStatus();
      }
    }
    return absl::InternalError("unknown regex node");
  }

 private:
  int32_t Here(size_t code) const { return static_cast<int32_t>(prog_->codes[code].size()); }
  size_t Push(size_t code, Inst inst) {
    prog_->codes[code].push_back(inst);
    return prog_->codes[code].size() - 1;
  }
  void PatchSplit(size_t code, size_t at, int32_t body, int32_t skip, bool greedy) {
    Inst& s = prog_->codes[code][at];
    s.x = greedy ? body : skip;
    s.y = greedy ? skip : body;
  }
  CodepointRegex::Program* prog_;
};

// Visited (instruction, position) states of the main program; see the file
// comment for why it may persist across failed start positions.
struct Memo {
  std::vector<uint64_t> bits;
  size_t base = 0;
  size_t width = 0;  // instructions per position
  bool Visit(int32_t pc, size_t pos) {
    const size_t i = (pos - base) * width + static_cast<size_t>(pc);
    const uint64_t bit = uint64_t{1} << (i & 63);
    if (bits[i >> 6] & bit) return false;
    bits[i >> 6] |= bit;
    return true;
  }
  void ClearFrom(size_t pos_lo, size_t pos_hi) {  // positions [pos_lo, pos_hi]
    for (size_t pos = pos_lo; pos <= pos_hi; ++pos) {
      for (size_t k = 0; k < width; ++k) {
        const size_t i = (pos - base) * width + k;
        bits[i >> 6] &= ~(uint64_t{1} << (i & 63));
      }
    }
  }
};

struct Runner {
  const CodepointRegex::Program& prog;
  const CodepointText& text;
  size_t begin, end;
  size_t max_pos = 0;  // furthest position a main-program state reached

  // Runs program `code` from `start`; returns the match end or -1.
  int64_t Run(size_t code, size_t start, Memo* memo) {
    const std::vector<Inst>& insts = prog.codes[code];
    std::vector<std::pair<int32_t, size_t>> stack;
    stack.emplace_back(0, start);
    while (!stack.empty()) {
      int32_t pc = stack.back().first;
      size_t pos = stack.back().second;
      stack.pop_back();
      while (true) {
        if (memo != nullptr) {
          if (!memo->Visit(pc, pos)) break;
          max_pos = std::max(max_pos, pos);
        }
        const Inst& in = insts[pc];
        bool ok = true;
        switch (in.op) {
          case kOpClass:
            ok = pos < end && prog.classes[in.x].Matches(text.cps[pos], text.masks[pos]);
            if (ok) {
              ++pos;
              ++pc;
            }
            break;
          case kOpSplit:
            stack.emplace_back(in.y, pos);
            pc = in.x;
            break;
          case kOpJmp:
            pc = in.x;
            break;
          case kOpMatch:
            return static_cast<int64_t>(pos);
          case kOpBol:
            ok = pos == begin || text.cps[pos - 1] == '\n';
            ++pc;
            break;
          case kOpEol:
            ok = pos == end || text.cps[pos] == '\n';
            ++pc;
            break;
          case kOpLook:
          case kOpNegLook: {
            const bool found = Run(static_cast<size_t>(in.x), pos, nullptr) >= 0;
            ok = found == (in.op == kOpLook);
            ++pc;
            break;
          }
        }
        if (!ok) break;
      }
    }
    return -1;
  }
};

}  // namespace
}  // namespace regex_internal

using regex_internal::Compiler;
using regex_internal::kMaxMemoBits;
using regex_internal::kOpMatch;
using regex_internal::Memo;
using regex_internal::Node;
using regex_internal::Nullable;
using regex_internal::Runner;

void CodepointText::Assign(std::string_view utf8) {
  DecodeUtf8(utf8, &cps, &offsets);
  masks.resize(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    const uint32_t cp = cps[i];
    // ASCII is most text: skip the table search for it.
    masks[i] = cp < 128 ? ((cp >= 'a' && cp <= 'z')   ? CategoryBit(kLl)
                           : (cp >= 'A' && cp <= 'Z') ? CategoryBit(kLu)
                           : (cp >= '0' && cp <= '9') ? CategoryBit(kNd)
                                                      : ClassMask(cp))
                        : ClassMask(cp);
  }
}

CodepointRegex::~CodepointRegex() = default;

absl::StatusOr<std::unique_ptr<CodepointRegex>> CodepointRegex::Compile(std::string_view pattern) {
  auto fail = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat("regex \"", Absl(pattern), "\": ", s.message()));
  };
  if (ValidUtf8Prefix(pattern) != pattern.size()) {
    return fail(absl::InvalidArgumentError("not UTF-8"));
  }
  std::vector<uint32_t> cps, offsets;
  DecodeUtf8(pattern, &cps, &offsets);
  auto prog = std::make_unique<Program>();
  prog->codes.emplace_back();
  absl::StatusOr<Node> root = regex_internal::ParsePattern(std::move(cps), &prog->classes);
  if (!root.ok()) return fail(root.status());
  if (Nullable(*root)) {
    return fail(absl::InvalidArgumentError("pattern can match the empty string"));
  }
  Compiler compiler(prog.get());
  absl::Status st = compiler.Emit(*root, 0);
  if (!st.ok()) return fail(st);
  prog->codes[0].push_back({kOpMatch, 0, 0});
  std::unique_ptr<CodepointRegex> re(new CodepointRegex());
  re->pattern_ = std::string(pattern);
  re->program_ = std::move(prog);
  return re;
}

void CodepointRegex::SplitIsolated(const CodepointText& text, size_t begin, size_t end,
                                   std::vector<std::pair<size_t, size_t>>* out) const {
  Runner runner{*program_, text, begin, end};
  Memo memo;
  Memo* memo_ptr = nullptr;
  const size_t width = program_->codes[0].size();
  const uint64_t nbits = static_cast<uint64_t>(end - begin + 1) * width;
  if (nbits <= kMaxMemoBits) {
    memo.bits.assign((nbits + 63) / 64, 0);
    memo.base = begin;
    memo.width = width;
    memo_ptr = &memo;
  }
  size_t gap = begin;
  size_t pos = begin;
  while (pos < end) {
    runner.max_pos = pos;
    const int64_t m = runner.Run(0, pos, memo_ptr);
    if (m > static_cast<int64_t>(pos)) {
      const size_t stop = static_cast<size_t>(m);
      if (gap < pos) out->emplace_back(gap, pos);
      out->emplace_back(pos, stop);
      // States at or after the match end may lie on the successful path.
      if (memo_ptr != nullptr) memo.ClearFrom(stop, std::min(runner.max_pos, end));
      pos = gap = stop;
    } else {
      ++pos;
    }
  }
  if (gap < end) out->emplace_back(gap, end);
}

}  // namespace hearth::tok
