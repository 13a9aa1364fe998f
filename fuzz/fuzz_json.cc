// fuzz_json.cc — libFuzzer target for hearth's strict JSON reader
// (format::ParseStrictJson), checked against nlohmann's own parser as an
// independent oracle:
//  - what the strict reader accepts, nlohmann accepts too (the strict reader
//    only ever refuses more);
//  - an accepted value survives a round trip: dumped and read again it is the
//    same value (no key dropped or reordered, no number changed);
//  - what nlohmann accepts and the strict reader refuses has a named reason:
//    a duplicate key, nesting deeper than the limit, or a NUL byte;
//  - every refusal starts with the caller's `what` (the file's name).
// The first byte picks the depth limit (1..64), the rest is the document.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sdk/src/format/strict_json.h"

namespace {

int Depth(const nlohmann::ordered_json& v) {
  int d = 0;
  if (v.is_object() || v.is_array()) {
    for (const auto& child : v) d = std::max(d, Depth(child));
    return d + 1;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int max_depth = 1 + data[0] % 64;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto parsed = hearth::format::ParseStrictJson(text, "fuzz.json", max_depth);
  // nlohmann's accept() also recurses per nesting level; keep the oracle to
  // documents whose bracket count cannot blow its stack.
  size_t brackets = 0;
  for (char c : text) brackets += (c == '[' || c == '{');
  const bool oracle = brackets < 10000;
  if (parsed.ok()) {
    if (oracle && !nlohmann::ordered_json::accept(text)) __builtin_trap();
    if (Depth(*parsed) > max_depth) __builtin_trap();
    const std::string dumped = parsed->dump();
    auto again = hearth::format::ParseStrictJson(dumped, "dump", max_depth);
    if (!again.ok() || *again != *parsed) __builtin_trap();
    return 0;
  }
  const std::string msg(parsed.status().message());
  if (msg.substr(0, 9) != "fuzz.json") __builtin_trap();
  if (oracle && nlohmann::ordered_json::accept(text)) {
    const bool named = msg.find("duplicate") != std::string::npos ||
                       msg.find("nest") != std::string::npos ||
                       msg.find("NUL") != std::string::npos;
    if (!named) __builtin_trap();
  }
  return 0;
}
