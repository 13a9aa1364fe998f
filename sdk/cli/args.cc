// args.cc — the flag parser of args.h.
#include "args.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace hearth::cli {
namespace {

std::vector<std::string> SplitNames(const char* names) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = names; *p; ++p) {
    if (*p == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += *p;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool LooksLikeNumber(const std::string& s) {
  return s.size() >= 2 && s[0] == '-' &&
         (std::isdigit(static_cast<unsigned char>(s[1])) || s[1] == '.');
}

constexpr size_t kHelpColumn = 28;
constexpr size_t kHelpWidth = 100;

// Breaks a flag's help at spaces so no line passes kHelpWidth columns.
std::string WrapHelp(const std::string& text) {
  std::string out;
  size_t col = kHelpColumn, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(pos, end - pos);
    if (col > kHelpColumn && col + 1 + word.size() > kHelpWidth) {
      out += "\n" + std::string(kHelpColumn, ' ');
      col = kHelpColumn;
    } else if (col > kHelpColumn) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    pos = end + 1;
  }
  return out;
}

}  // namespace

bool ParseInt64(const std::string& text, int64_t* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  *out = v;
  return true;
}

bool ParseFloat(const std::string& text, float* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

namespace {

bool ParseUint64(const std::string& text, uint64_t* out) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  const char* begin = text.c_str() + (hex ? 2 : 0);
  if (!std::isxdigit(static_cast<unsigned char>(*begin))) return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(begin, &end, hex ? 16 : 10);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  *out = v;
  return true;
}

}  // namespace

ArgParser::ArgParser(std::string command, std::string usage, std::string description)
    : command_(std::move(command)),
      usage_(std::move(usage)),
      description_(std::move(description)) {}

void ArgParser::Add(const char* names, const char* metavar, Kind kind, void* out, const char* help,
                    int64_t min, int64_t max) {
  Flag f;
  f.names = SplitNames(names);
  f.metavar = metavar ? metavar : "";
  f.help = help;
  f.kind = kind;
  f.out = out;
  f.min = min;
  f.max = max;
  flags_.push_back(std::move(f));
}

void ArgParser::AddString(const char* names, const char* metavar, std::string* out,
                          const char* help) {
  Add(names, metavar, Kind::kString, out, help);
}
void ArgParser::AddStringList(const char* names, const char* metavar, std::vector<std::string>* out,
                              const char* help) {
  Add(names, metavar, Kind::kStringList, out, help);
}
void ArgParser::AddInt(const char* names, const char* metavar, int64_t* out, int64_t min,
                       int64_t max, const char* help) {
  Add(names, metavar, Kind::kInt, out, help, min, max);
}
void ArgParser::AddUint64(const char* names, const char* metavar, uint64_t* out, const char* help) {
  Add(names, metavar, Kind::kUint64, out, help);
}
void ArgParser::AddFloat(const char* names, const char* metavar, float* out, const char* help) {
  Add(names, metavar, Kind::kFloat, out, help);
}
void ArgParser::AddSwitch(const char* names, bool* out, const char* help) {
  Add(names, nullptr, Kind::kSwitch, out, help);
}

ArgParser::Flag* ArgParser::Find(const std::string& name) {
  for (Flag& f : flags_) {
    for (const std::string& n : f.names) {
      if (n == name) return &f;
    }
  }
  return nullptr;
}

bool ArgParser::Seen(const char* name) const {
  for (const Flag& f : flags_) {
    for (const std::string& n : f.names) {
      if (n == name) return f.seen;
    }
  }
  return false;
}

bool ArgParser::Store(Flag& flag, const std::string& spelled, const std::string& value) {
  flag.seen = true;
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.out) = value;
      return true;
    case Kind::kStringList:
      static_cast<std::vector<std::string>*>(flag.out)->push_back(value);
      return true;
    case Kind::kInt: {
      int64_t v = 0;
      if (!ParseInt64(value, &v)) {
        error_ = spelled + ": '" + value + "' is not an integer";
        return false;
      }
      if (v < flag.min || v > flag.max) {
        error_ = spelled + ": " + value + " is out of range [" + std::to_string(flag.min) + ", " +
                 std::to_string(flag.max) + "]";
        return false;
      }
      *static_cast<int64_t*>(flag.out) = v;
      return true;
    }
    case Kind::kUint64:
      if (!ParseUint64(value, static_cast<uint64_t*>(flag.out))) {
        error_ = spelled + ": '" + value + "' is not an unsigned 64-bit integer";
        return false;
      }
      return true;
    case Kind::kFloat:
      if (!ParseFloat(value, static_cast<float*>(flag.out))) {
        error_ = spelled + ": '" + value + "' is not a finite number";
        return false;
      }
      return true;
    case Kind::kSwitch:
      *static_cast<bool*>(flag.out) = true;
      return true;
  }
  return false;
}

bool ArgParser::Parse(int argc, char** argv, int first) {
  bool flags_done = false;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      help_requested_ = true;
      return true;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      const size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
    }
    Flag* flag = Find(name);
    if (flag == nullptr) {
      if (LooksLikeNumber(arg)) {
        positional_.push_back(arg);
        continue;
      }
      error_ = "unknown flag " + name;
      return false;
    }
    if (flag->kind == Kind::kSwitch) {
      if (has_value) {
        error_ = name + " takes no value";
        return false;
      }
    } else if (!has_value) {
      if (i + 1 >= argc) {
        error_ = name + " needs a value (" + flag->metavar + ")";
        return false;
      }
      value = argv[++i];
    }
    if (!Store(*flag, name, value)) return false;
  }
  return true;
}

std::string ArgParser::Help() const {
  std::string out = "usage: hearth " + usage_ + "\n\n" + description_ + "\n\nflags:\n";
  for (const Flag& f : flags_) {
    std::string left = "  ";
    for (size_t i = 0; i < f.names.size(); ++i) left += (i ? ", " : "") + f.names[i];
    if (!f.metavar.empty()) left += " " + f.metavar;
    if (left.size() < kHelpColumn) {
      left.resize(kHelpColumn, ' ');
    } else {
      left += "\n" + std::string(kHelpColumn, ' ');
    }
    out += left + WrapHelp(f.help) + "\n";
  }
  out += "  -h, --help                show this help\n";
  return out;
}

int ArgParser::UsageError(const std::string& message) const {
  std::fprintf(stderr, "hearth %s: %s\n(run 'hearth %s --help' for usage)\n", command_.c_str(),
               message.c_str(), command_.c_str());
  return kExitUsage;
}

int ArgParser::Finish(bool parsed) const {
  if (!parsed) return UsageError(error_);
  if (help_requested_) {
    std::fputs(Help().c_str(), stdout);
    return kExitOk;
  }
  return -1;
}

}  // namespace hearth::cli
