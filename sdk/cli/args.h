// args.h — the small flag parser every `hearth` subcommand uses.
//
// Flags are declared with a pointer to where their value goes, so a
// subcommand's options are one plain struct with its defaults in place.
// "--flag value" and "--flag=value" both work; "--" ends the flags. A word
// that starts with '-' but is no declared flag is a usage error unless it is
// a number (so `hearth detokenize -m x.gguf -1` reaches the library, which
// names the bad id). Bad numbers are usage errors naming the flag.
#ifndef HEARTH_SDK_CLI_ARGS_H_
#define HEARTH_SDK_CLI_ARGS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::cli {

// Process exit codes of `hearth`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeError = 1;
inline constexpr int kExitUsage = 2;
// Memory ran out where unwinding is not safe: main.cc's new-handler ends
// the process with one line (docs/reliability.md, "Out of memory").
inline constexpr int kExitOutOfMemory = 3;

class ArgParser {
 public:
  // `usage` is the synopsis after "usage: hearth ", e.g. "tokenize -m MODEL TEXT".
  ArgParser(std::string command, std::string usage, std::string description);

  // `names` is a comma-separated list such as "-m,--model"; `metavar` names
  // the value in the help text.
  void AddString(const char* names, const char* metavar, std::string* out, const char* help);
  void AddStringList(const char* names, const char* metavar, std::vector<std::string>* out,
                     const char* help);
  void AddInt(const char* names, const char* metavar, int64_t* out, int64_t min, int64_t max,
              const char* help);
  void AddUint64(const char* names, const char* metavar, uint64_t* out, const char* help);
  void AddFloat(const char* names, const char* metavar, float* out, const char* help);
  void AddSwitch(const char* names, bool* out, const char* help);

  // Parses argv[first..argc). Returns false on a usage error (see error()).
  // help_requested() is true after -h/--help, which stops parsing.
  bool Parse(int argc, char** argv, int first);

  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_requested_; }
  const std::string& error() const { return error_; }
  // Whether the flag with this name (any of its spellings) appeared.
  bool Seen(const char* name) const;

  std::string Help() const;
  // Prints "hearth <command>: <error>" and a hint to stderr; returns kExitUsage.
  int UsageError(const std::string& message) const;
  // Handles the end of Parse(): help to stdout (kExitOk), a parse error
  // (kExitUsage), or -1 when the command should go on.
  int Finish(bool parsed) const;

 private:
  enum class Kind { kString, kStringList, kInt, kUint64, kFloat, kSwitch };
  struct Flag {
    std::vector<std::string> names;
    std::string metavar;
    std::string help;
    Kind kind;
    void* out;
    int64_t min = 0, max = 0;
    bool seen = false;
  };

  void Add(const char* names, const char* metavar, Kind kind, void* out, const char* help,
           int64_t min = 0, int64_t max = 0);
  Flag* Find(const std::string& name);
  bool Store(Flag& flag, const std::string& spelled, const std::string& value);

  std::string command_, usage_, description_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
  std::string error_;
};

// Strict number parsing: the whole string must be the number. Exposed for
// positional arguments (token ids).
bool ParseInt64(const std::string& text, int64_t* out);
bool ParseFloat(const std::string& text, float* out);

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_ARGS_H_
