#include "firedrill/core/text.h"

#include <gtest/gtest.h>

namespace firedrill {
namespace {

TEST(TextTest, EditDistance) {
  EXPECT_EQ(EditDistance("timeline", "timeline"), 0u);
  EXPECT_EQ(EditDistance("timline", "timeline"), 1u);
  EXPECT_EQ(EditDistance("poisson", "possion"), 2u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("Timeline", "timeline"), 0u);
}

TEST(TextTest, ClosestMatchSuggestsOnlyLikelyTypos) {
  const std::vector<std::string> keys = {"timeline", "target", "timeScale", "workload"};
  EXPECT_EQ(ClosestMatch("timline", keys), "timeline");
  EXPECT_EQ(ClosestMatch("targte", keys), "target");
  EXPECT_EQ(ClosestMatch("banana", keys), "");
  EXPECT_EQ(ClosestMatch("x", keys), "");
  EXPECT_EQ(ClosestMatch(std::string(1000, 'a'), keys), "");
}

TEST(TextTest, JoinNames) {
  EXPECT_EQ(JoinNames({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(JoinNames({"a", "b"}, " or "), "a or b");
  EXPECT_EQ(JoinNames({}), "");
}

}  // namespace
}  // namespace firedrill
