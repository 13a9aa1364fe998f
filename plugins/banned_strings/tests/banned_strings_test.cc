// banned_strings_test.cc — the banned-strings extension plugin through its
// vtable: which tokens it masks, its config and input errors, and a random
// walk over a small vocabulary checking both directions of its promise (no
// banned string ever appears; every masked token would have made one).
#include "plugins/banned_strings/banned_strings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace hearth::banned_strings {
namespace {

std::string g_last_error;

void SetError(void*, hearth_pstatus, const char* message) { g_last_error = message; }
void LogNothing(void*, int, const char*) {}

const hearth_extension_vtable* Init() {
  static const hearth_host_services host = {
      sizeof(hearth_host_services), nullptr, SetError, LogNothing, nullptr, nullptr};
  hearth_plugin_init_info info{};
  info.struct_size = sizeof(info);
  info.host_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info.host_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  info.host = &host;
  EXPECT_EQ(PluginInit(&info), HEARTH_P_OK);
  EXPECT_EQ(info.kind, static_cast<uint32_t>(HEARTH_PLUGIN_KIND_EXTENSION));
  EXPECT_STREQ(info.name, "banned-strings");
  return static_cast<const hearth_extension_vtable*>(info.vtable);
}

// A vocabulary view over `pieces` ("" for control tokens).
struct Vocab {
  explicit Vocab(std::vector<std::string> pieces_in) : pieces(std::move(pieces_in)) {
    for (const std::string& p : pieces) {
      offsets.push_back(text.size());
      text += p;
      control.push_back(p.empty() ? 1 : 0);
    }
    offsets.push_back(text.size());
    view.struct_size = sizeof(view);
    view.n_vocab = static_cast<uint32_t>(pieces.size());
    view.text = text.data();
    view.offsets = offsets.data();
    view.is_control = control.data();
  }
  std::vector<std::string> pieces;
  std::string text;
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> control;
  hearth_pvocab view{};
};

class BannedStringsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vt_ = Init();
    ASSERT_NE(vt_, nullptr);
  }
  hearth_pmask* Create(const char* config, const Vocab& v) {
    hearth_pmask* m = nullptr;
    EXPECT_EQ(vt_->mask_create(config, &v.view, &m), HEARTH_P_OK) << g_last_error;
    return m;
  }
  std::vector<uint8_t> Allowed(hearth_pmask* m, const std::vector<int32_t>& generated,
                               size_t n_vocab) {
    std::vector<uint8_t> allowed(n_vocab, 1);
    EXPECT_EQ(vt_->mask_apply(m, generated.data(), static_cast<uint32_t>(generated.size()),
                              allowed.data(), static_cast<uint32_t>(n_vocab)),
              HEARTH_P_OK)
        << g_last_error;
    return allowed;
  }
  const hearth_extension_vtable* vt_ = nullptr;
};

TEST_F(BannedStringsTest, MasksExactlyTheTokensThatCompleteABannedString) {
  //           0    1    2    3     4    5      6
  Vocab v({"", "a", "b", "ab", "c", "abc", "bc"});
  hearth_pmask* m = Create("abc\n", v);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Allowed(m, {}, 7), (std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 1}));
  EXPECT_EQ(Allowed(m, {1}, 7), (std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 0}));     // "a" + "bc"
  EXPECT_EQ(Allowed(m, {1, 2}, 7), (std::vector<uint8_t>{1, 1, 1, 1, 0, 0, 1}));  // "ab" + "c"
  // A control token in between adds no text: "ab" is still the tail.
  EXPECT_EQ(Allowed(m, {1, 2, 0}, 7), (std::vector<uint8_t>{1, 1, 1, 1, 0, 0, 1}));
  vt_->mask_free(m);
}

TEST_F(BannedStringsTest, SeveralStringsOneLineEachCrlfAndBlankLinesIgnored) {
  Vocab v({"x", "y", "zz", "xy"});
  hearth_pmask* m = Create("\r\nxy\r\n\nzzz\n", v);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Allowed(m, {}, 4), (std::vector<uint8_t>{1, 1, 1, 0}));
  EXPECT_EQ(Allowed(m, {0}, 4), (std::vector<uint8_t>{1, 0, 1, 0}));
  // "xzz" + "zz" holds "zzz"; + "xy" holds "xy".
  EXPECT_EQ(Allowed(m, {0, 2}, 4), (std::vector<uint8_t>{1, 1, 0, 0}));
  vt_->mask_free(m);
}

TEST_F(BannedStringsTest, BadConfigAndBadIdsAreErrorsWithMessages) {
  Vocab v({"a", "b"});
  hearth_pmask* m = nullptr;
  g_last_error.clear();
  EXPECT_EQ(vt_->mask_create("\n\r\n", &v.view, &m), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_NE(g_last_error.find("no string to ban"), std::string::npos) << g_last_error;
  EXPECT_EQ(vt_->mask_create(nullptr, &v.view, &m), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_EQ(m, nullptr);
  m = Create("ab", v);
  ASSERT_NE(m, nullptr);
  std::vector<uint8_t> allowed(2, 1);
  const int32_t bad[] = {0, 7};
  g_last_error.clear();
  EXPECT_EQ(vt_->mask_apply(m, bad, 2, allowed.data(), 2), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_NE(g_last_error.find("generated[1] = 7"), std::string::npos) << g_last_error;
  vt_->mask_free(m);
}

TEST_F(BannedStringsTest, RandomWalksNeverProduceABannedStringAndMaskNothingElse) {
  std::mt19937 rng(11);
  auto word = [&](int max_len) {
    std::string s(1 + rng() % max_len, 'a');
    for (char& c : s) c = static_cast<char>('a' + rng() % 3);
    return s;
  };
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<std::string> pieces;
    for (int i = 0; i < 24; ++i) pieces.push_back(i == 0 ? "" : word(4));
    for (char c : std::string("abc")) pieces.push_back(std::string(1, c));  // always a way on
    Vocab v(pieces);
    std::vector<std::string> banned = {word(5), word(5)};
    std::string config = banned[0] + "\n" + banned[1];
    hearth_pmask* m = Create(config.c_str(), v);
    ASSERT_NE(m, nullptr);
    std::vector<int32_t> generated;
    std::string text;
    auto contains_banned = [&](const std::string& s) {
      for (const std::string& b : banned) {
        if (s.find(b) != std::string::npos) return true;
      }
      return false;
    };
    for (int step = 0; step < 60; ++step) {
      const std::vector<uint8_t> allowed = Allowed(m, generated, pieces.size());
      std::vector<int32_t> choices;
      for (size_t id = 0; id < pieces.size(); ++id) {
        const bool would_ban = contains_banned(text + pieces[id]);
        ASSERT_EQ(allowed[id] == 0, would_ban)
            << "token '" << pieces[id] << "' after '" << text << "', banned '" << banned[0]
            << "', '" << banned[1] << "'";
        if (allowed[id]) choices.push_back(static_cast<int32_t>(id));
      }
      if (choices.empty()) break;
      const int32_t id = choices[rng() % choices.size()];
      generated.push_back(id);
      text += pieces[id];
      ASSERT_FALSE(contains_banned(text)) << text;
    }
    vt_->mask_free(m);
  }
}

}  // namespace
}  // namespace hearth::banned_strings
