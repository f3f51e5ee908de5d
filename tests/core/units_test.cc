#include "firedrill/core/units.h"

#include <gtest/gtest.h>

namespace firedrill {
namespace {

using namespace std::chrono_literals;

TEST(UnitsTest, Durations) {
  EXPECT_EQ(*ParseDuration("250ms"), 250ms);
  EXPECT_EQ(*ParseDuration("30s"), 30s);
  EXPECT_EQ(*ParseDuration("5m"), 5min);
  EXPECT_EQ(*ParseDuration("1h30m"), 90min);
  EXPECT_EQ(*ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(*ParseDuration("2d"), 48h);
  EXPECT_EQ(*ParseDuration("1w"), 168h);
  EXPECT_EQ(*ParseDuration("10us"), 10us);
  EXPECT_EQ(*ParseDuration("10µs"), 10us);
  EXPECT_EQ(*ParseDuration("7ns"), 7ns);
  EXPECT_EQ(*ParseDuration("0"), 0s);
  EXPECT_EQ(*ParseDuration("0s"), 0s);
}

TEST(UnitsTest, BadDurationsSayWhatIsWrong) {
  EXPECT_EQ(ParseDuration("300").status().message(),
            "bad duration \"300\" (missing unit): expected a number and a unit (ns, us, ms, s, m, h, d, w), e.g. 250ms, 30s, 5m, 1h30m");
  EXPECT_NE(ParseDuration("5 minutes").status().message().find("unknown unit \" minutes\""), std::string::npos);
  EXPECT_NE(ParseDuration("30s1m").status().message().find("largest to smallest"), std::string::npos);
  EXPECT_NE(ParseDuration("-5s").status().message().find("negative"), std::string::npos);
  EXPECT_NE(ParseDuration("400d").status().message().find("longer than a year"), std::string::npos);
  for (const char* bad : {"", "s", ".", "5.s", "1h1h", "1e3s", "5S", "1h 30m"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
    EXPECT_EQ(ParseDuration(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(UnitsTest, Rates) {
  EXPECT_DOUBLE_EQ(ParseRate("20/s")->per_second, 20);
  EXPECT_DOUBLE_EQ(ParseRate("3/m")->per_second, 0.05);
  EXPECT_DOUBLE_EQ(ParseRate("360/h")->per_second, 0.1);
  EXPECT_DOUBLE_EQ(ParseRate("0.5/s")->per_second, 0.5);
  EXPECT_DOUBLE_EQ(ParseRate("0/s")->per_second, 0);
  for (const char* bad : {"20", "20/sec", "/s", "20/", "-1/s", "20 /s", "1/d"}) {
    EXPECT_FALSE(ParseRate(bad).ok()) << bad;
  }
}

TEST(UnitsTest, Sizes) {
  EXPECT_EQ(*ParseSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseSize("4GiB"), 4ull << 30);
  EXPECT_EQ(*ParseSize("1.5GB"), 1'500'000'000ull);
  EXPECT_EQ(*ParseSize("64KiB"), 65536ull);
  EXPECT_EQ(*ParseSize("10B"), 10ull);
  EXPECT_EQ(*ParseSize("0"), 0ull);
  for (const char* bad : {"512", "64mb", "4 GiB", "GiB", "-1GiB", "1PiB"}) {
    EXPECT_FALSE(ParseSize(bad).ok()) << bad;
  }
}

TEST(UnitsTest, Ratios) {
  EXPECT_DOUBLE_EQ(*ParseRatio("95%"), 0.95);
  EXPECT_DOUBLE_EQ(*ParseRatio("0.95"), 0.95);
  EXPECT_DOUBLE_EQ(*ParseRatio("100%"), 1.0);
  EXPECT_DOUBLE_EQ(*ParseRatio("0"), 0.0);
  EXPECT_NE(ParseRatio("95").status().message().find("write 95% for a percentage"), std::string::npos);
  EXPECT_FALSE(ParseRatio("150%").ok());
  EXPECT_FALSE(ParseRatio("-0.1").ok());
  EXPECT_FALSE(ParseRatio("half").ok());
}

TEST(UnitsTest, FormattingRoundTrips) {
  EXPECT_EQ(FormatDuration(90s), "1m30s");
  EXPECT_EQ(FormatDuration(250ms), "250ms");
  EXPECT_EQ(FormatDuration(0s), "0s");
  EXPECT_EQ(FormatDuration(2h), "2h");
  EXPECT_EQ(FormatDuration(1500ms), "1.5s");
  EXPECT_EQ(FormatDuration(15us), "15us");
  for (const char* text : {"1h30m", "250ms", "5m", "45s", "2h5m10s"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration(text)), text);
  }
  EXPECT_EQ(FormatRate(Rate{0.5}), "0.5/s");
  EXPECT_EQ(FormatSize(512ull << 20), "512MiB");
  EXPECT_EQ(FormatSize(1536ull << 20), "1.5GiB");
  EXPECT_EQ(FormatRatio(0.95), "95%");
}

}  // namespace
}  // namespace firedrill
