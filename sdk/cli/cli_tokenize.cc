// cli_tokenize.cc — `hearth tokenize` and `hearth detokenize`: text <-> token ids.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"

namespace hearth::cli {

int RunTokenize(int argc, char** argv) {
  ModelFlags mf;
  bool add_special = false, parse_special = false;
  std::string file;
  ArgParser p("tokenize", "tokenize -m MODEL [flags] (TEXT | -f FILE)",
              "Prints the token ids of TEXT on one line, separated by spaces.");
  AddModelFlags(p, &mf);
  p.AddString("-f,--file", "FILE", &file, "read the text from a file");
  p.AddSwitch("--add-special", &add_special, "add BOS/EOS as the model asks");
  p.AddSwitch("--parse-special", &parse_special,
              "turn special-token texts (e.g. <|im_start|>) into their tokens");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  std::string text;
  if (p.Seen("-f")) {
    if (!p.positional().empty()) return p.UsageError("give TEXT or -f FILE, not both");
    std::string error;
    if (!ReadFile(file, &text, &error)) {
      std::fprintf(stderr, "hearth: %s\n", error.c_str());
      return kExitRuntimeError;
    }
  } else {
    if (p.positional().size() != 1) {
      return p.UsageError(p.positional().empty() ? "TEXT is missing"
                                                 : "expected one TEXT argument (quote it), got " +
                                                       std::to_string(p.positional().size()));
    }
    text = p.positional()[0];
  }

  Runtime rt;
  if (int rc = OpenRuntime(mf, &rt)) return rc;
  Model model;
  if (int rc = OpenModel(rt.get(), mf, &model)) return rc;
  const uint32_t flags = (add_special ? HEARTH_TOKENIZE_ADD_SPECIAL : 0u) |
                         (parse_special ? HEARTH_TOKENIZE_PARSE_SPECIAL : 0u);
  std::vector<int32_t> ids;
  if (int rc = Tokenize(model.get(), text, flags, &ids)) return rc;
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
}

int RunDetokenize(int argc, char** argv) {
  ModelFlags mf;
  bool render_special = false;
  ArgParser p("detokenize", "detokenize -m MODEL [flags] ID...",
              "Prints the text of the token ids (given as separate arguments, or as one\n"
              "space-separated argument such as the output of 'hearth tokenize').");
  AddModelFlags(p, &mf);
  p.AddSwitch("--render-special", &render_special,
              "write special tokens (<s>, <|im_end|> …) instead of skipping them");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");

  std::vector<int32_t> ids;
  for (const std::string& arg : p.positional()) {
    size_t pos = 0;
    while (pos < arg.size()) {
      const size_t start = arg.find_first_not_of(" \t\n", pos);
      if (start == std::string::npos) break;
      size_t end = arg.find_first_of(" \t\n", start);
      if (end == std::string::npos) end = arg.size();
      const std::string word = arg.substr(start, end - start);
      int64_t v = 0;
      if (!ParseInt64(word, &v) || v < INT32_MIN || v > INT32_MAX) {
        return p.UsageError("token id '" + word + "' is not a 32-bit integer");
      }
      ids.push_back(static_cast<int32_t>(v));
      pos = end;
    }
  }
  if (ids.empty()) return p.UsageError("no token ids given");

  Runtime rt;
  if (int rc = OpenRuntime(mf, &rt)) return rc;
  Model model;
  if (int rc = OpenModel(rt.get(), mf, &model)) return rc;
  const uint32_t flags = render_special ? HEARTH_DETOKENIZE_RENDER_SPECIAL : 0u;
  size_t len = 0;
  if (hearth_error* err =
          hearth_detokenize(model.get(), ids.data(), ids.size(), flags, nullptr, 0, &len)) {
    return ReportError(err);
  }
  std::string text(len, '\0');
  if (len > 0) {
    if (hearth_error* err = hearth_detokenize(model.get(), ids.data(), ids.size(), flags,
                                              text.data(), text.size(), &len)) {
      return ReportError(err);
    }
    text.resize(len);
  }
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
}

}  // namespace hearth::cli
