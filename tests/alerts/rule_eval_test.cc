// Rule evaluation and promtool-format unit tests. Alert behaviour here was
// checked against `promtool test rules` 2.42 on the same input.
#include "firedrill/alerts/rule_eval.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "firedrill/alerts/rules_test.h"

namespace firedrill::alerts {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::int64_t kMinute = 60'000;

std::unique_ptr<RuleEngine> EngineFor(const std::string& yaml) {
  auto file = ParseRuleFile("rules.yml", yaml);
  EXPECT_TRUE(file.ok()) << file.status();
  auto engine = RuleEngine::Create({*file}, RuleEngineOptions{});
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

std::vector<std::string> States(const RuleEngine& engine) {
  std::vector<std::string> out;
  for (const AlertTransition& change : engine.Timeline()) {
    out.push_back(std::to_string(change.t_ms / kMinute) + "m " +
                  std::string(AlertStateName(change.from)) + "->" +
                  std::string(AlertStateName(change.to)));
  }
  return out;
}

TEST(RuleEngine, AlertGoesPendingFiringAndKeepsFiringForItsGracePeriod) {
  auto engine = EngineFor(R"(groups:
  - name: g
    rules:
      - alert: High
        expr: x > 5
        for: 2m
        keep_firing_for: 3m
        labels: {severity: page}
)");
  SeriesStore store;
  const LabelSet x = {{"__name__", "x"}, {"job", "a"}};
  const double values[] = {9, 9, 9, 9, 1, 1, 1, 1, 1};
  for (int minute = 0; minute < 9; ++minute) {
    store.Append(x, minute * kMinute, values[minute]);
    ASSERT_TRUE(engine->EvaluateAll(store, minute * kMinute).ok());
    const auto firing = engine->AlertsOf("High", AlertState::kFiring);
    // Pending at 0 and 1m, firing from 2m; false from 4m but kept firing
    // until 3m have passed (7m), as keep_firing_for does.
    EXPECT_EQ(firing.size(), minute >= 2 && minute < 7 ? 1u : 0u) << "minute " << minute;
  }
  EXPECT_THAT(States(*engine),
              ElementsAre("0m inactive->pending", "2m pending->firing", "7m firing->inactive"));
  const auto inactive = engine->AlertsOf("High", AlertState::kInactive);
  ASSERT_EQ(inactive.size(), 1u);  // remembered as resolved for 15 minutes
  EXPECT_EQ(inactive[0].labels,
            (LabelSet{{"alertname", "High"}, {"job", "a"}, {"severity", "page"}}));
}

TEST(RuleEngine, PendingAlertThatClearsIsForgottenAndRestartsItsClock) {
  auto engine = EngineFor(R"(groups:
  - name: g
    rules:
      - alert: High
        expr: x > 5
        for: 2m
)");
  SeriesStore store;
  const LabelSet x = {{"__name__", "x"}};
  const double values[] = {9, 1, 9, 9, 9};
  for (int minute = 0; minute < 5; ++minute) {
    store.Append(x, minute * kMinute, values[minute]);
    ASSERT_TRUE(engine->EvaluateAll(store, minute * kMinute).ok());
  }
  EXPECT_THAT(States(*engine), ElementsAre("0m inactive->pending", "1m pending->inactive",
                                           "2m inactive->pending", "4m pending->firing"));
}

TEST(RuleEngine, RecordingRulesFeedLaterRulesAndGoStaleWhenTheirSeriesVanish) {
  auto engine = EngineFor(R"(groups:
  - name: g
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
      - alert: Sum
        expr: job:x:sum > 10
)");
  SeriesStore store;
  store.Append({{"__name__", "x"}, {"job", "a"}, {"i", "1"}}, 0, 6);
  store.Append({{"__name__", "x"}, {"job", "a"}, {"i", "2"}}, 0, 6);
  ASSERT_TRUE(engine->EvaluateAll(store, 0).ok());
  EXPECT_EQ(engine->AlertsOf("Sum", AlertState::kFiring).size(), 1u);
  // The input goes stale: the recorded series must go stale with it, not
  // linger for the 5-minute lookback.
  store.Append({{"__name__", "x"}, {"job", "a"}, {"i", "1"}}, kMinute, StaleMarker());
  store.Append({{"__name__", "x"}, {"job", "a"}, {"i", "2"}}, kMinute, StaleMarker());
  ASSERT_TRUE(engine->EvaluateAll(store, kMinute).ok());
  EXPECT_TRUE(engine->AlertsOf("Sum", AlertState::kFiring).empty());
  const auto recorded = store.Select({{"__name__", "job:x:sum"}});
  ASSERT_EQ(recorded.size(), 1u);
  ASSERT_EQ(recorded[0].points.size(), 2u);
  EXPECT_TRUE(IsStaleMarker(recorded[0].points[1].value));
  const auto alerts = store.Select({{"__name__", "ALERTS"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_TRUE(IsStaleMarker(alerts[0].points.back().value));
}

TEST(RuleEngine, ErrorsNameTheRuleFileLine) {
  auto file = ParseRuleFile("bad.yml", R"(groups:
  - name: g
    rules:
      - alert: Broken
        expr: rate(x)
)");
  ASSERT_TRUE(file.ok());
  auto engine = RuleEngine::Create({*file}, RuleEngineOptions{});
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(
      engine.status().message(),
      HasSubstr("bad.yml:5:15: alert Broken: 1:6: parse error: expected type range vector"));
}

TEST(AlertTemplates, ExpandLikePrometheus) {
  const LabelSet labels = {{"__name__", "up"}, {"gpu_id", "0"}, {"job", "hsof"}};
  auto expand = [&](const std::string& text, double value) {
    return ExpandAlertTemplate(text, labels, value, {{"dc", "eu"}}, "http://prom");
  };
  EXPECT_EQ(expand("GPU {{ $labels.gpu_id }} at {{ $value }}%", 93.33333333333333),
            "GPU 0 at 93.33333333333333%");
  EXPECT_EQ(expand("{{ $value }}", 1e6), "1e+06");
  EXPECT_EQ(expand("{{ $value | humanize }}", 1234567), "1.235M");
  EXPECT_EQ(expand("{{ humanize $value }}", 0.00123), "1.23m");
  EXPECT_EQ(expand("{{ $value | humanize1024 }}", 1073741824), "1Gi");
  EXPECT_EQ(expand("{{ $value | humanizePercentage }}", 0.1234), "12.34%");
  EXPECT_EQ(expand("{{ $value | humanizeDuration }}", 3725), "1h 2m 5s");
  EXPECT_EQ(expand("{{ printf \"%.2f\" $value }}", 2.0 / 3), "0.67");
  EXPECT_EQ(expand("{{ $labels.missing }}|{{ $externalLabels.dc }}|{{ $externalURL }}", 1),
            "|eu|http://prom");
  EXPECT_EQ(expand("{{ if gt 1 2 }}x{{ end }}", 1),
            "<error expanding template: function \"gt\" not defined>");
  EXPECT_EQ(expand("{{ if $labels.job }}job {{ .Labels.job }}{{ else }}none{{ end }}", 1),
            "job hsof");
  EXPECT_EQ(expand("a  {{- $value -}}  b", 2), "a2b");
  EXPECT_EQ(expand("{{ $value", 1), "<error expanding template: unclosed action>");
}

TEST(SeriesNotation, ExpandsAsPromtoolDoes) {
  auto values = ExpandSeriesValues("1+2x3 _ stale _x2 4 -1-1x1 Inf");
  ASSERT_TRUE(values.ok()) << values.status();
  std::vector<std::string> text;
  for (const SeriesValue& v : *values) {
    text.push_back(v.omitted ? "_"
                   : IsStaleMarker(v.value)
                       ? "stale"
                       : std::to_string(static_cast<int>(std::isinf(v.value) ? 999 : v.value)));
  }
  EXPECT_THAT(text,
              ElementsAre("1", "3", "5", "7", "_", "stale", "_", "_", "4", "-1", "-2", "999"));
  auto bad = ExpandSeriesValues("1 2 x3");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "column 5: bad value \"x3\"");
  // Found by promql_fuzzer: a huge run of blanks is refused, not allocated.
  auto huge = ExpandSeriesValues("_x088888888 offset");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().message(), "column 1: series longer than 1000000 values");
  EXPECT_TRUE(ExpandSeriesValues("_x999999").ok());
}

class RulesTestFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("firedrill-rules-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(directory_);
    Write("rules.yml", R"(groups:
  - name: g
    rules:
      - alert: High
        expr: x > 5
        for: 1m
        annotations: {summary: "x is {{ $value }}"}
)");
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(directory_ / name) << text;
    return (directory_ / name).string();
  }
  int Run(const std::string& path, RulesTestOptions options = {}) {
    out_.str("");
    err_.str("");
    const auto outcome = RunRulesTests({path}, options, out_, err_);
    return outcome.invalid > 0 ? 2 : outcome.failed > 0 ? 1 : 0;
  }
  std::filesystem::path directory_;
  std::ostringstream out_, err_;
};

TEST_F(RulesTestFiles, PassingAndFailingFilesGetPromtoolsVerdictAndReport) {
  const std::string passing = Write("pass.yml", R"(rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - {series: 'x{job="a"}', values: '1 9 9 9'}
    alert_rule_test:
      - eval_time: 1m
        alertname: High
      - eval_time: 2m
        alertname: High
        exp_alerts:
          - exp_labels: {job: a}
            exp_annotations: {summary: "x is 9"}
    promql_expr_test:
      - expr: x * 2
        eval_time: 3m
        exp_samples: [{labels: '{job="a"}', value: 18}]
)");
  EXPECT_EQ(Run(passing), 0) << err_.str();
  EXPECT_EQ(out_.str(), "Unit Testing:  " + passing + "\n  SUCCESS\n\n");

  const std::string failing = Write("fail.yml", R"(rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - {series: 'x{job="a"}', values: '1 9 9 9'}
    alert_rule_test:
      - eval_time: 1m
        alertname: High
        exp_alerts: [{exp_labels: {job: a}}]
    promql_expr_test:
      - expr: x * 2
        eval_time: 3m
        exp_samples: [{labels: '{job="a"}', value: 18.000000000000004}]
)");
  EXPECT_EQ(Run(failing), 1);
  EXPECT_EQ(err_.str(), R"(  FAILED:
    alertname: High, time: 1m, 
        exp:[
            0:
              Labels:{alertname="High", job="a"}
              Annotations:{}
            ], 
        got:[]
    expr: "x * 2", time: 3m,
        exp: {job="a"} 1.8000000000000004E+01
        got: {job="a"} 1.8E+01
)");
  // Opt-in: a tolerance accepts the last-bit difference, --pending sees the pending alert.
  RulesTestOptions lenient;
  lenient.tolerance = 1e-9;
  lenient.pending = true;
  const std::string pending = Write("pending.yml", R"(rule_files: [rules.yml]
tests:
  - interval: 1m
    input_series:
      - {series: 'x{job="a"}', values: '1 9 9 9'}
    alert_rule_test:
      - eval_time: 1m
        alertname: High
        exp_alerts: [{exp_labels: {job: a}, exp_annotations: {summary: "x is 9"}, exp_state: pending}]
    promql_expr_test:
      - expr: x * 2
        eval_time: 3m
        exp_samples: [{labels: '{job="a"}', value: 18.000000000000004}]
)");
  EXPECT_EQ(Run(pending, lenient), 0) << err_.str();
  EXPECT_EQ(Run(pending), 2) << "exp_state is an extension: unknown without --pending";
}

TEST_F(RulesTestFiles, BrokenFilesGetPlacedErrorsAndExitTwo) {
  EXPECT_EQ(Run(Write("bad-yaml.yml", "rule_files: [rules.yml]\ntests:\n  - interval: [\n")), 2);
  EXPECT_THAT(err_.str(), HasSubstr("bad-yaml.yml:4:1: "));
  EXPECT_EQ(Run(Write("unknown.yml", "rule_files: [rules.yml]\ntests:\n  - intervall: 1m\n")), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown.yml:3:5: field intervall not found in testGroup"));
  EXPECT_EQ(Run(Write("series.yml",
                      "rule_files: [rules.yml]\ntests:\n  - input_series:\n"
                      "      - {series: 'x{', values: '1'}\n")),
            2);
  EXPECT_THAT(err_.str(), HasSubstr("series.yml:4:18: 1:3: parse error"));
  Write("broken-rules.yml",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n");
  EXPECT_EQ(
      Run(Write("rules-bad.yml", "rule_files: [broken-rules.yml]\ntests:\n  - interval: 1m\n")), 2);
  EXPECT_THAT(err_.str(), HasSubstr("broken-rules.yml:5:15: alert A: 1:5: parse error"));
  EXPECT_EQ(Run((directory_ / "missing.yml").string()), 2);
  EXPECT_THAT(err_.str(), HasSubstr("missing.yml: cannot read the file"));
}

}  // namespace
}  // namespace firedrill::alerts
