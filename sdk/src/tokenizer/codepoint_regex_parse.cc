// codepoint_regex_parse.cc — the recursive-descent parser of CodepointRegex
// patterns: alternation, concatenation, quantifiers, groups, lookahead,
// classes and escapes, into the tree that codepoint_regex.cc compiles.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/tokenizer/codepoint_regex_internal.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok::regex_internal {
namespace {

class Parser {
 public:
  Parser(std::vector<uint32_t> pattern, std::vector<CharClass>* classes)
      : p_(std::move(pattern)), classes_(classes) {}

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
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("at code point ", pos_, ": ", what));
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
    classes_->push_back(std::move(c));
    return static_cast<int>(classes_->size() - 1);
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
        if (mask == 0) return Error(absl::StrCat("unknown property \\p{", name, "}"));
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
          return Error(absl::StrCat("unsupported escape \\", std::string(1, static_cast<char>(c))));
        }
        literal(c);
        return absl::OkStatus();
    }
  }

  std::vector<uint32_t> p_;
  size_t pos_ = 0;
  bool icase_ = false;
  std::vector<CharClass>* classes_;
};

}  // namespace

absl::StatusOr<Node> ParsePattern(std::vector<uint32_t> pattern, std::vector<CharClass>* classes) {
  Parser parser(std::move(pattern), classes);
  return parser.Parse();
}

}  // namespace hearth::tok::regex_internal
