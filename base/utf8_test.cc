#include "base/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace cloudplane {
namespace {

TEST(Utf8, ValidBoundaries) {
  for (const char* s : {"", "ascii", "\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80",
                        "\xEF\xBF\xBF", "\xED\x9F\xBF", "\xEE\x80\x80", "\xF0\x90\x80\x80",
                        "\xF4\x8F\xBF\xBF", "caf\xC3\xA9"}) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
  }
}

TEST(Utf8, Invalid) {
  for (const char* s : {"\x80", "\xBF", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF",
                        "\xED\xA0\x80", "\xED\xBF\xBF", "\xF0\x80\x80\x80", "\xF4\x90\x80\x80",
                        "\xF5\x80\x80\x80", "\xFF", "\xC3", "\xE2\x82", "\xF0\x9F\x98",
                        "a\xC3(b"}) {
    EXPECT_FALSE(IsValidUtf8(s)) << s;
  }
}

TEST(Utf8, RepairReplacesEachBrokenSequenceOnce) {
  EXPECT_EQ(RepairUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(RepairUtf8("a\xED\xB5\x9D" "b"), "a\xEF\xBF\xBD" "b");  // lone surrogate
  EXPECT_EQ(RepairUtf8("a\xC3"), "a\xEF\xBF\xBD");                   // truncated
  EXPECT_EQ(RepairUtf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(RepairUtf8("\xF0\x9F\x98" "x\xC0\x80")));
}

TEST(Utf8, CutNeverSplitsACharacter) {
  const std::string s = std::string(199, 'a') + "\xC3\xA9";  // 201 bytes
  EXPECT_EQ(CutUtf8(s, 200), std::string(199, 'a'));
  EXPECT_EQ(CutUtf8(s, 201), s);
  EXPECT_EQ(CutUtf8("\xF0\x9F\x98\x80", 3), "");
  EXPECT_EQ(CutUtf8("ab\xE2\x82\xAC", 4), "ab");
  EXPECT_EQ(CutUtf8("abc", 2), "ab");
}

}  // namespace
}  // namespace cloudplane

namespace cloudplane {
namespace {

TEST(ShortTextTest, RepairsThenCutsBetweenCharacters) {
  EXPECT_EQ(ShortText("  busy \n", 10), "busy");
  EXPECT_EQ(ShortText(std::string(199, 'a') + "\xC3\xA9", 200), std::string(199, 'a') + "...");
  // 300 invalid bytes are 300 U+FFFD (900 bytes) repaired: the limit holds
  // for what comes out, never the 3x of repairing after the cut.
  const std::string text = ShortText(std::string(300, '\xFF'), 200);
  EXPECT_EQ(text.size(), 198u + 3u);  // 66 whole U+FFFD, then "..."
  EXPECT_TRUE(IsValidUtf8(text));
}

}  // namespace
}  // namespace cloudplane
