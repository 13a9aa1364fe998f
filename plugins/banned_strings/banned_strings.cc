// banned_strings.cc — a token is forbidden when the text generated so far
// (its last max_len - 1 bytes suffice) followed by the token's bytes holds a
// banned string that ends inside those bytes. Every occurrence in the final
// text ends in some token, and at that token's step it lay in exactly such a
// window, so none can appear.
#include "plugins/banned_strings/banned_strings.h"

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "backends/common/plugin_common.h"

#ifndef HEARTH_BANNED_STRINGS_VERSION
#define HEARTH_BANNED_STRINGS_VERSION "0.0.0"
#endif

struct hearth_pmask {
  std::vector<std::string> banned;
  size_t max_len = 0;
  const hearth_pvocab* vocab = nullptr;
  // The generated text so far (its tail is what matters) and how many of
  // the request's tokens it covers: each call adds only the new ones.
  std::string text;
  uint32_t n_seen = 0;
  std::string window;  // scratch: tail + one token's bytes
};

namespace hearth::banned_strings {
namespace {

using plugin::Fail;
using plugin::StrFormat;

std::string_view Piece(const hearth_pvocab& v, uint32_t id) {
  return std::string_view(v.text + v.offsets[id], v.offsets[id + 1] - v.offsets[id]);
}

hearth_pstatus MaskCreate(const char* config, const hearth_pvocab* vocab, hearth_pmask** out) try {
  if (out == nullptr || vocab == nullptr) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "banned-strings mask_create: vocab or out is NULL");
  }
  if (!HEARTH_PLUGIN_HAS_SLOT(vocab, hearth_pvocab, is_control) || vocab->offsets == nullptr ||
      (vocab->n_vocab > 0 && vocab->text == nullptr)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "banned-strings mask_create: incomplete vocabulary");
  }
  auto mask = std::make_unique<hearth_pmask>();
  std::string_view rest = config != nullptr ? config : "";
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    mask->banned.emplace_back(line);
    mask->max_len = std::max(mask->max_len, line.size());
  }
  if (mask->banned.empty()) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                "banned-strings: the config holds no string to ban (give them one per line)");
  }
  mask->vocab = vocab;
  *out = mask.release();
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "banned-strings mask_create: out of memory");
}

void MaskFree(hearth_pmask* mask) { delete mask; }

hearth_pstatus MaskApply(hearth_pmask* m, const int32_t* generated, uint32_t n_generated,
                         uint8_t* allowed, uint32_t n_vocab) try {
  if (m == nullptr || allowed == nullptr || (generated == nullptr && n_generated > 0)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "banned-strings mask_apply: an argument is NULL");
  }
  const hearth_pvocab& v = *m->vocab;
  if (n_generated < m->n_seen) {  // a new request reusing the mask: start over
    m->text.clear();
    m->n_seen = 0;
  }
  for (uint32_t i = m->n_seen; i < n_generated; ++i) {
    const int32_t id = generated[i];
    if (id < 0 || static_cast<uint32_t>(id) >= v.n_vocab) {
      return Fail(HEARTH_P_INVALID_ARGUMENT,
                  StrFormat("banned-strings mask_apply: generated[%u] = %d is outside the "
                            "vocabulary [0, %u)",
                            i, id, v.n_vocab));
    }
    m->text.append(Piece(v, static_cast<uint32_t>(id)));
  }
  m->n_seen = n_generated;
  // Only the last max_len - 1 bytes can be part of an occurrence that ends
  // in the next token.
  const size_t keep = m->max_len - 1;
  if (m->text.size() > keep) m->text.erase(0, m->text.size() - keep);
  const uint32_t n = std::min(n_vocab, v.n_vocab);
  for (uint32_t id = 0; id < n; ++id) {
    const std::string_view piece = Piece(v, id);
    if (piece.empty()) continue;
    m->window.assign(m->text);
    m->window.append(piece);
    for (const std::string& b : m->banned) {
      // An occurrence must end inside the piece: start after text.size() - b.size().
      const size_t from = m->text.size() >= b.size() ? m->text.size() - b.size() + 1 : 0;
      if (m->window.find(b, from) != std::string::npos) {
        allowed[id] = 0;
        break;
      }
    }
  }
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "banned-strings mask_apply: out of memory");
}

const hearth_extension_vtable kVtable = {
    sizeof(hearth_extension_vtable),
    MaskCreate,
    MaskFree,
    MaskApply,
};

}  // namespace

const hearth_extension_vtable* Vtable() { return &kVtable; }

hearth_pstatus PluginInit(hearth_plugin_init_info* info) {
  return plugin::Handshake(info, {"banned-strings", HEARTH_BANNED_STRINGS_VERSION,
                                  HEARTH_PLUGIN_KIND_EXTENSION, &kVtable});
}

}  // namespace hearth::banned_strings
