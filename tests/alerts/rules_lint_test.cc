// `rules lint` against expositions written by the test: every kind of
// finding, and the rules that must not be flagged.
#include "firedrill/alerts/rules_lint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace firedrill::alerts {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::int64_t kEnd = 1'800'000'000'000;

class RulesLintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("firedrill-lint-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::vector<std::string> Lint(const std::string& rules, const std::string& exposition,
                                const std::string& job = "") {
    const std::string metrics = (directory_ / "metrics.txt").string();
    std::ofstream(metrics) << exposition;
    auto file = ParseRuleFile("rules.yml", rules);
    EXPECT_TRUE(file.ok()) << file.status();
    SeriesStore store(2 * 3600 * 1000);
    const std::vector<LintSource> sources = {{metrics, job}};
    EXPECT_TRUE(LoadIdleTarget(sources, kEnd, store).ok());
    std::vector<std::string> out;
    for (const LintFinding& finding : LintRules({*file}, store, sources, kEnd)) {
      out.push_back(finding.ToString());
    }
    return out;
  }

  std::filesystem::path directory_;
};

constexpr char kExposition[] = R"(# TYPE gpu_memory_used_bytes gauge
gpu_memory_used_bytes{gpu_id="0"} 10
# TYPE gpu_memory_total_bytes gauge
gpu_memory_total_bytes{gpu="0"} 100
# TYPE jobs_processed_total counter
jobs_processed_total{stage="1"} 42
# TYPE temperature_celsius gauge
temperature_celsius{gpu_id="0"} 40
)";

TEST_F(RulesLintTest, FindsRulesThatCanNeverFireAndSaysWhy) {
  const auto findings = Lint(R"(groups:
  - name: g
    rules:
      - alert: Typo
        expr: temperature_celcius > 85
      - alert: WrongLabel
        expr: temperature_celsius{gpu_id="1"} > 85
      - alert: Mismatch
        expr: gpu_memory_used_bytes / gpu_memory_total_bytes > 0.9
)",
                             kExposition);
  EXPECT_THAT(
      findings,
      ElementsAre(
          "rules.yml:5:15: alert Typo: metric temperature_celcius is not exposed by the target "
          "(did you mean temperature_celsius?); the rule can never fire [unknown-metric]",
          "rules.yml:7:15: alert WrongLabel: no exposed series of temperature_celsius matches the "
          "selector's labels; the target exposes {gpu_id=\"0\"}; the rule can never fire "
          "[no-matching-series]",
          "rules.yml:9:37: alert Mismatch: the two sides of \"/\" share no label set to match on: "
          "left {gpu_id=\"0\"}, right {gpu=\"0\"}; match with on(...) or ignoring(...), or the "
          "rule "
          "can never fire [no-matching-labels]"));
}

TEST_F(RulesLintTest, FlagsAlertsThatFireOnAnIdleTargetAndNothingElse) {
  const auto findings = Lint(R"(groups:
  - name: g
    rules:
      - record: stage:jobs:rate5m
        expr: sum by (stage) (rate(jobs_processed_total[5m]))
      - alert: Stalled
        expr: stage:jobs:rate5m == 0
        for: 10m
      - alert: Hot
        expr: temperature_celsius > 85
      - alert: ScrapeDown
        expr: up{job="gpu"} == 0
)",
                             kExposition, "gpu");
  EXPECT_THAT(findings, ElementsAre("rules.yml:7:15: alert Stalled: fires on the idle target: "
                                    "{alertname=\"Stalled\", stage=\"1\"} = 0 [fires-when-idle]"));
}

TEST_F(RulesLintTest, JobAndInstanceMatchersNeedTheJobToBeChecked) {
  const char* rules = R"(groups:
  - name: g
    rules:
      - alert: Hot
        expr: temperature_celsius{job="hsof"} > 85
)";
  EXPECT_TRUE(Lint(rules, kExposition).empty());
  EXPECT_THAT(Lint(rules, kExposition, "other"), ElementsAre(HasSubstr("[no-matching-series]")));
}

TEST_F(RulesLintTest, BadSourcesAreErrorsThatNameThePlace) {
  SeriesStore store;
  const std::string bad = (directory_ / "bad.txt").string();
  std::ofstream(bad) << "ok 1\nbroken{ 2\n";
  Status status = LoadIdleTarget({{bad, ""}}, kEnd, store);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(bad + ":2:"));
  status = LoadIdleTarget({{(directory_ / "missing.txt").string(), ""}}, kEnd, store);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  status = LoadIdleTarget({{"http://127.0.0.1:1/metrics", ""}}, kEnd, store);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace firedrill::alerts
