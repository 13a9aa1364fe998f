// codepoint_regex.cc — parser, compiler and backtracking matcher for
// CodepointRegex. The pattern is parsed to a tree, compiled to a tiny
// instruction program (class test, split, jump, lookahead, anchors) and run
// by an explicit-stack backtracker. A visited bitset over (instruction,
// position) keeps the search linear per start position, and stays valid
// across failed start positions (a state that failed once fails again: there
// are no backreferences), so long gaps do not go quadratic.
#include "sdk/src/tokenizer/codepoint_regex.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "sdk/src/common/status.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {
namespace {

constexpr size_t kMaxProgramSize = 1 << 16;
constexpr uint64_t kMaxMemoBits = uint64_t{1} << 26;  // 8 MiB of visited bits

struct CharClass {
  bool negated = false;
  uint32_t any_mask = 0;             // matches if the code point has any of these bits
  std::vector<uint32_t> none_masks;  // matches if it has none of one of these (\S, \P{L})
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  uint64_t ascii[2] = {0, 0};  // the final answer for code points < 128

  bool MatchesSlow(uint32_t cp, uint32_t mask) const {
    bool hit = (mask & any_mask) != 0;
    for (uint32_t m : none_masks) hit = hit || (mask & m) == 0;
    for (const auto& r : ranges) hit = hit || (cp >= r.first && cp <= r.second);
    return hit != negated;
  }
  void Finalize() {
    for (uint32_t cp = 0; cp < 128; ++cp) {
      if (MatchesSlow(cp, ClassMask(cp))) ascii[cp >> 6] |= uint64_t{1} << (cp & 63);
    }
  }
  bool Matches(uint32_t cp, uint32_t mask) const {
    if (cp < 128) return (ascii[cp >> 6] >> (cp & 63)) & 1;
    return MatchesSlow(cp, mask);
  }
  // ASCII case folding for (?i:...): adds the other case of every letter.
  void FoldAsciiCase() {
    std::vector<std::pair<uint32_t, uint32_t>> extra;
    for (const auto& r : ranges) {
      for (uint32_t base : {uint32_t{'A'}, uint32_t{'a'}}) {
        const uint32_t lo = std::max(r.first, base), hi = std::min(r.second, base + 25);
        if (lo <= hi) extra.emplace_back(lo ^ 0x20, hi ^ 0x20);
      }
    }
    ranges.insert(ranges.end(), extra.begin(), extra.end());
  }
};

struct Node {
  enum Kind { kClass, kCat, kAlt, kRepeat, kLook, kBol, kEol } kind = kCat;
  int cls = -1;
  std::vector<Node> kids;
  int min = 0, max = 0;  // kRepeat; max < 0 means unbounded
  bool greedy = true;
  bool negative = false;  // kLook
};

enum Op : uint8_t { kOpClass, kOpSplit, kOpJmp, kOpMatch, kOpBol, kOpEol, kOpLook, kOpNegLook };
struct Inst {
  Op op;
  int32_t x = 0;  // class, preferred branch, jump target or lookahead program
  int32_t y = 0;  // alternative branch of a split
};

}  // namespace

struct CodepointRegex::Program {
  std::vector<CharClass> classes;
  std::vector<std::vector<Inst>> codes;  // [0] is the pattern, the rest are lookahead bodies
};

namespace {

class Parser {
 public:
  Parser(std::vector<uint32_t> pattern, CodepointRegex::Program* prog)
      : p_(std::move(pattern)), prog_(prog) {}

  absl::StatusOr<Node> Parse() {
    HEARTH_ASSIGN_OR_RETURN(Node n, ParseAlt());
    if (pos_ != p_.size()) return Error("unmatched ')'");
    return n;
  }

 private:
  bool AtEnd() const { return pos_ >= p_.size(); }
  uint32_t Peek(size_t ahead = 0) const {
    return pos_ + ahead < p_.size() ? p_[pos_ + ahead] : 0xFFFFFFFFu;
  }
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrFormat("at code point %d: %s", pos_, what));
  }

  absl::StatusOr<Node> ParseAlt() {
    Node alt;
    alt.kind = Node::kAlt;
    while (true) {
      HEARTH_ASSIGN_OR_RETURN(Node cat, ParseCat());
      alt.kids.push_back(std::move(cat));
      if (Peek() != '|') break;
      ++pos_;
    }
    if (alt.kids.size() == 1) return std::move(alt.kids[0]);
    return alt;
  }

  absl::StatusOr<Node> ParseCat() {
    Node cat;
    cat.kind = Node::kCat;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      HEARTH_ASSIGN_OR_RETURN(Node atom, ParseAtom());
      while (true) {
        int min, max;
        if (!ParseQuantifier(&min, &max)) break;
        if (atom.kind == Node::kBol || atom.kind == Node::kEol || atom.kind == Node::kLook) {
          return Error("quantifier on an anchor or lookahead");
        }
        Node rep;
        rep.kind = Node::kRepeat;
        rep.min = min;
        rep.max = max;
        if (Peek() == '?') {
          rep.greedy = false;
          ++pos_;
        } else if (Peek() == '+') {
          return Error("possessive quantifiers are not supported");
        }
        rep.kids.push_back(std::move(atom));
        atom = std::move(rep);
      }
      cat.kids.push_back(std::move(atom));
    }
    if (cat.kids.size() == 1) return std::move(cat.kids[0]);
    return cat;
  }

  // Reads ?, *, +, {n}, {n,}, {n,m}. A '{' that does not start a valid
  // quantifier is a literal, as in Perl.
  bool ParseQuantifier(int* min, int* max) {
    const uint32_t c = Peek();
    if (c == '?' || c == '*' || c == '+') {
      ++pos_;
      *min = c == '+' ? 1 : 0;
      *max = c == '?' ? 1 : -1;
      return true;
    }
    if (c != '{') return false;
    size_t i = pos_ + 1;
    auto read_int = [&](int* v) {
      const size_t start = i;
      int64_t n = 0;
      while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9' && n <= 100000) {
        n = n * 10 + (p_[i++] - '0');
      }
      *v = static_cast<int>(std::min<int64_t>(n, 100001));
      return i > start;
    };
    int lo = 0, hi = 0;
    if (!read_int(&lo)) return false;
    if (i < p_.size() && p_[i] == '}') {
      hi = lo;
    } else if (i < p_.size() && p_[i] == ',') {
      ++i;
      if (!read_int(&hi)) hi = -1;
      if (i >= p_.size() || p_[i] != '}') return false;
    } else {
      return false;
    }
    pos_ = i + 1;
    *min = lo;
    *max = hi;
    return true;
  }

  int AddClass(CharClass c) {
    if (icase_) c.FoldAsciiCase();
    c.Finalize();
    prog_->classes.push_back(std::move(c));
    return static_cast<int>(prog_->classes.size() - 1);
  }
  Node ClassNode(CharClass c) {
    Node n;
    n.kind = Node::kClass;
    n.cls = AddClass(std::move(c));
    return n;
  }

  absl::StatusOr<Node> ParseAtom() {
    const uint32_t c = Peek();
    switch (c) {
      case '(':
        return ParseGroup();
      case '[':
        return ParseClass();
      case '.': {
        ++pos_;
        CharClass cc;
        cc.negated = true;
        cc.ranges.emplace_back('\n', '\n');
        return ClassNode(std::move(cc));
      }
      case '^':
      case '$': {
        ++pos_;
        Node n;
        n.kind = c == '^' ? Node::kBol : Node::kEol;
        return n;
      }
      case '*':
      case '+':
      case '?':
        return Error("nothing to repeat");
      case '\\': {
        ++pos_;
        CharClass cc;
        HEARTH_RETURN_IF_ERROR(ParseEscape(&cc));
        return ClassNode(std::move(cc));
      }
      default: {
        ++pos_;
        CharClass cc;
        cc.ranges.emplace_back(c, c);
        return ClassNode(std::move(cc));
      }
    }
  }

  absl::StatusOr<Node> ParseGroup() {
    ++pos_;  // '('
    const bool saved_icase = icase_;
    Node look;
    bool is_look = false;
    if (Peek() == '?') {
      const uint32_t k = Peek(1);
      if (k == ':') {
        pos_ += 2;
      } else if (k == '=' || k == '!') {
        pos_ += 2;
        is_look = true;
        look.kind = Node::kLook;
        look.negative = k == '!';
      } else if (k == 'i' && Peek(2) == ':') {
        pos_ += 3;
        icase_ = true;
      } else {
        return Error("unsupported group syntax");
      }
    }
    HEARTH_ASSIGN_OR_RETURN(Node inner, ParseAlt());
    icase_ = saved_icase;
    if (Peek() != ')') return Error("missing ')'");
    ++pos_;
    if (!is_look) return inner;
    look.kids.push_back(std::move(inner));
    return look;
  }

  absl::StatusOr<Node> ParseClass() {
    ++pos_;  // '['
    CharClass cc;
    if (Peek() == '^') {
      cc.negated = true;
      ++pos_;
    }
    bool first = true;
    while (true) {
      if (AtEnd()) return Error("missing ']'");
      uint32_t c = Peek();
      if (c == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      ++pos_;
      uint32_t lo = c;
      if (c == '\\') {
        CharClass esc;
        HEARTH_RETURN_IF_ERROR(ParseEscape(&esc));
        if (esc.ranges.size() != 1 || esc.any_mask != 0 || !esc.none_masks.empty()) {
          cc.any_mask |= esc.any_mask;
          cc.none_masks.insert(cc.none_masks.end(), esc.none_masks.begin(), esc.none_masks.end());
          continue;  // a property escape cannot start a range
        }
        lo = esc.ranges[0].first;
      }
      uint32_t hi = lo;
      if (Peek() == '-' && Peek(1) != ']' && pos_ + 1 < p_.size()) {
        ++pos_;
        hi = Peek();
        ++pos_;
        if (hi == '\\') {
          CharClass esc;
          HEARTH_RETURN_IF_ERROR(ParseEscape(&esc));
          if (esc.ranges.size() != 1 || esc.any_mask != 0 || !esc.none_masks.empty()) {
            return Error("a range cannot end in a class escape");
          }
          hi = esc.ranges[0].first;
        }
        if (hi < lo) return Error("range out of order");
      }
      cc.ranges.emplace_back(lo, hi);
    }
    return ClassNode(std::move(cc));
  }

  // After a backslash: fills `cc` with one literal code point or a property.
  absl::Status ParseEscape(CharClass* cc) {
    if (AtEnd()) return Error("pattern ends with '\\'");
    const uint32_t c = Peek();
    ++pos_;
    auto literal = [&](uint32_t cp) { cc->ranges.emplace_back(cp, cp); };
    switch (c) {
      case 's':
        cc->any_mask = kWhiteSpaceBit;
        return absl::OkStatus();
      case 'S':
        cc->none_masks.push_back(kWhiteSpaceBit);
        return absl::OkStatus();
      case 'd':
        cc->any_mask = CategoryBit(kNd);
        return absl::OkStatus();
      case 'D':
        cc->none_masks.push_back(CategoryBit(kNd));
        return absl::OkStatus();
      case 'w':
        cc->any_mask = kLetterMask | kMarkMask | CategoryBit(kNd) | CategoryBit(kPc);
        return absl::OkStatus();
      case 'W':
        cc->none_masks.push_back(kLetterMask | kMarkMask | CategoryBit(kNd) | CategoryBit(kPc));
        return absl::OkStatus();
      case 'p':
      case 'P': {
        std::string name;
        bool negate = c == 'P';
        if (Peek() == '{') {
          ++pos_;
          if (Peek() == '^') {
            negate = !negate;
            ++pos_;
          }
          while (!AtEnd() && Peek() != '}' && Peek() < 128)
            name.push_back(static_cast<char>(p_[pos_++]));
          if (Peek() != '}') return Error("missing '}' after \\p{");
          ++pos_;
        } else if (!AtEnd() && Peek() < 128) {
          name.push_back(static_cast<char>(p_[pos_++]));
        }
        const uint32_t mask = PropertyMask(name);
        if (mask == 0) return Error(absl::StrFormat("unknown property \\p{%s}", name));
        if (negate) {
          cc->none_masks.push_back(mask);
        } else {
          cc->any_mask = mask;
        }
        return absl::OkStatus();
      }
      case 'r':
        literal('\r');
        return absl::OkStatus();
      case 'n':
        literal('\n');
        return absl::OkStatus();
      case 't':
        literal('\t');
        return absl::OkStatus();
      case 'f':
        literal('\f');
        return absl::OkStatus();
      case 'v':
        literal('\v');
        return absl::OkStatus();
      case 'a':
        literal(7);
        return absl::OkStatus();
      case 'e':
        literal(27);
        return absl::OkStatus();
      case '0':
        literal(0);
        return absl::OkStatus();
      case 'x':
      case 'u': {
        const bool braced = c == 'x' && Peek() == '{';
        if (braced) ++pos_;
        const size_t max_digits = braced ? 6 : (c == 'x' ? 2 : 4);
        uint32_t v = 0;
        size_t n = 0;
        while (n < max_digits && !AtEnd()) {
          const uint32_t h = Peek();
          int d = h >= '0' && h <= '9'   ? int(h - '0')
                  : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
                  : h >= 'A' && h <= 'F' ? int(h - 'A' + 10)
                                         : -1;
          if (d < 0) break;
          v = v * 16 + static_cast<uint32_t>(d);
          ++n;
          ++pos_;
        }
        if (n == 0 || (!braced && n != max_digits)) return Error("bad hex escape");
        if (braced) {
          if (Peek() != '}') return Error("missing '}' in \\x{...}");
          ++pos_;
        }
        if (v > 0x10FFFF) return Error("code point past U+10FFFF");
        literal(v);
        return absl::OkStatus();
      }
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
          return Error(absl::StrFormat("unsupported escape \\%c", static_cast<char>(c)));
        }
        literal(c);
        return absl::OkStatus();
    }
  }

  std::vector<uint32_t> p_;
  size_t pos_ = 0;
  bool icase_ = false;
  CodepointRegex::Program* prog_;
};

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
    return absl::InvalidArgumentError(
        absl::StrFormat("regex \"%s\": %s", std::string(pattern), s.message()));
  };
  if (ValidUtf8Prefix(pattern) != pattern.size())
    return fail(absl::InvalidArgumentError("not UTF-8"));
  std::vector<uint32_t> cps, offsets;
  DecodeUtf8(pattern, &cps, &offsets);
  auto prog = std::make_unique<Program>();
  prog->codes.emplace_back();
  Parser parser(std::move(cps), prog.get());
  absl::StatusOr<Node> root = parser.Parse();
  if (!root.ok()) return fail(root.status());
  if (Nullable(*root))
    return fail(absl::InvalidArgumentError("pattern can match the empty string"));
  Compiler compiler(prog.get());
  absl::Status st = compiler.Emit(*root, 0);
  if (!st.ok()) return fail(st);
  prog->codes[0].push_back({kOpMatch, 0, 0});
  std::unique_ptr<CodepointRegex> re(new CodepointRegex());
  re->pattern_ = std::string(pattern);
  re->program_ = std::move(prog);
  return re;
}

int64_t CodepointRegex::MatchAt(const CodepointText& text, size_t begin, size_t end,
                                size_t start) const {
  Runner runner{*program_, text, begin, end};
  return runner.Run(0, start, nullptr);
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
