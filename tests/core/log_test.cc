#include "firedrill/core/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace firedrill {
namespace {

using namespace std::chrono_literals;

// 2026-01-01T00:00:00Z, so lines are exact.
const WallTime kStart{std::chrono::seconds(1'767'225'600)};

TEST(LoggerTest, HumanLinesCarryTimeLevelComponentAndFields) {
  SimulatedClock clock(kStart);
  clock.Advance(1234ms);
  std::ostringstream out;
  Logger logger(out, clock);
  logger.Info("gpu", "using the cpu backend", {{"reason", "no CUDA device present"}, {"count", 0}, {"ok", true}});
  EXPECT_EQ(out.str(),
            "2026-01-01T00:00:01.234Z INFO    gpu: using the cpu backend reason=\"no CUDA device present\" count=0 ok=true\n");
}

TEST(LoggerTest, JsonLinesAreOneObjectEach) {
  SimulatedClock clock(kStart);
  std::ostringstream out;
  Logger logger(out, clock, LogFormat::kJson);
  logger.Warn("engine", "guardrail tripped", {{"guardrail", "errorRate"}, {"value", 0.75}});
  logger.Error("engine", "second \"quoted\"\nline");
  std::istringstream lines(out.str());
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  const auto first = nlohmann::json::parse(line);
  EXPECT_EQ(first["ts"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(first["level"], "warning");
  EXPECT_EQ(first["component"], "engine");
  EXPECT_EQ(first["msg"], "guardrail tripped");
  EXPECT_EQ(first["guardrail"], "errorRate");
  EXPECT_DOUBLE_EQ(first["value"].get<double>(), 0.75);
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(nlohmann::json::parse(line)["msg"], "second \"quoted\"\nline");
  EXPECT_FALSE(std::getline(lines, line));
}

TEST(LoggerTest, FiltersBelowTheMinimumLevel) {
  SimulatedClock clock(kStart);
  std::ostringstream out;
  Logger logger(out, clock, LogFormat::kHuman, LogLevel::kWarning);
  logger.Debug("x", "hidden");
  logger.Info("x", "hidden");
  logger.Warn("x", "shown");
  EXPECT_EQ(out.str(), "2026-01-01T00:00:00.000Z WARNING x: shown\n");
}

TEST(LoggerTest, ParsesLevelNames) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("warn", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("loud", &level));
}

}  // namespace
}  // namespace firedrill
