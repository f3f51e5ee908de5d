// Each expectation judged from a drill record built by hand: when it holds,
// when it fails, and what the verdict says it saw. Also the reports that
// carry the verdicts, and the rules a compressed drill gives Prometheus.
#include <gtest/gtest.h>

#include "firedrill/alerts/rule_file.h"
#include "firedrill/engine/drill.h"
#include "firedrill/reports/writers.h"

namespace firedrill::engine {
namespace {

using nlohmann::json;

Expectation Expect(const std::string& kind, json fields) {
  Expectation expectation;
  expectation.name = kind;
  expectation.spec.kind = kind;
  expectation.spec.fields = std::move(fields);
  return expectation;
}

// The fault at +60 s, the alert pending at +75 s and firing at +90 s, the
// runbook from +90 s to +100 s, resolved at +130 s; health CRITICAL from
// +80 s, HEALTHY again at +115 s.
DrillRecord Record() {
  DrillRecord record;
  record.events = {{0, "drill", "start", {}},         {60'000, "fault", "hog.start", {}},
                   {90'000, "runbook", "recovery.start", {}}, {100'000, "runbook", "recovery.end", {}},
                   {110'000, "fault", "hog.end", {}}};
  record.alerts = {{75'000, "GpuFull", "pending"}, {90'000, "GpuFull", "firing"}, {130'000, "GpuFull", "resolved"}};
  for (std::int64_t t = 0; t <= 200'000; t += 5'000) {
    record.health.push_back({t, t >= 80'000 && t < 115'000 ? "CRITICAL" : "HEALTHY"});
  }
  PhaseLoad before{"before", 0, 60'000, 60, 60, 0, {{99, 800}}, {60, 0.9, 0.85}};
  PhaseLoad during{"during", 60'000, 120'000, 60, 40, 6, {{99, 4'500}}, {40, 0.7, 0.61}};
  record.phases = {before, during};
  record.end_ms = 200'000;
  record.quality = {100, 0.82, 0.61};
  return record;
}

TEST(Verdicts, AlertFiresWithinItsDeadlineOfTheEvent) {
  const DrillRecord record = Record();
  Verdict held = Judge(Expect("alertFires", {{"alert", "GpuFull"}, {"after", "hog.start"}, {"within", "45s"}}), record);
  EXPECT_TRUE(held.held) << held.seen;
  EXPECT_DOUBLE_EQ(*held.value_seconds, 30);
  EXPECT_EQ(held.seen, "fired 30.0s after hog.start (at +90.0s)");
  Verdict late = Judge(Expect("alertFires", {{"alert", "GpuFull"}, {"after", "hog.start"}, {"within", "20s"}}), record);
  EXPECT_FALSE(late.held);
  Verdict never = Judge(Expect("alertFires", {{"alert", "Other"}, {"after", "hog.start"}, {"within", "5m"}}), record);
  EXPECT_FALSE(never.held);
  EXPECT_EQ(never.seen, "never fired by the end (+200.0s); never even pending");
  Verdict no_event = Judge(Expect("alertFires", {{"alert", "GpuFull"}, {"after", "kill.start"}, {"within", "5m"}}), record);
  EXPECT_FALSE(no_event.held);
  EXPECT_EQ(no_event.seen, "kill.start never happened");
}

TEST(Verdicts, AlertNeverFiresOverTheDrillOrAPhase) {
  const DrillRecord record = Record();
  EXPECT_FALSE(Judge(Expect("alertNeverFires", {{"alert", "GpuFull"}}), record).held);
  EXPECT_TRUE(Judge(Expect("alertNeverFires", {{"alert", "GpuFull"}, {"during", "before"}}), record).held);
  const Verdict during = Judge(Expect("alertNeverFires", {{"alert", "GpuFull"}, {"during", "during"}}), record);
  EXPECT_FALSE(during.held);
  EXPECT_EQ(during.seen, "fired at +90.0s");
}

TEST(Verdicts, AlertResolvesCountsFromRecoveryEndByDefault) {
  const DrillRecord record = Record();
  const Verdict held = Judge(Expect("alertResolves", {{"alert", "GpuFull"}, {"within", "1m"}}), record);
  EXPECT_TRUE(held.held) << held.seen;
  EXPECT_DOUBLE_EQ(*held.value_seconds, 30);
  EXPECT_FALSE(Judge(Expect("alertResolves", {{"alert", "GpuFull"}, {"within", "10s"}}), record).held);
  // Not firing at the event: nothing to resolve.
  const Verdict quiet = Judge(Expect("alertResolves", {{"alert", "GpuFull"}, {"after", "start"}, {"within", "1s"}}), record);
  EXPECT_TRUE(quiet.held);
  EXPECT_EQ(quiet.seen, "was not firing at start (+0.0s)");
  DrillRecord stuck = Record();
  stuck.alerts.pop_back();
  const Verdict never = Judge(Expect("alertResolves", {{"alert", "GpuFull"}, {"within", "5m"}}), stuck);
  EXPECT_FALSE(never.held);
  EXPECT_EQ(never.seen, "still firing at the end of the drill, 100.0s after recovery.end");
}

// Two series: the one that fired resolves while the other is pending. The
// alert stopped firing then, and the verdicts count that as its resolution.
TEST(Verdicts, FiringBackToPendingIsTheEndOfTheFiring) {
  DrillRecord record = Record();
  record.alerts.back().state = "pending";
  const Verdict resolves = Judge(Expect("alertResolves", {{"alert", "GpuFull"}, {"within", "1m"}}), record);
  EXPECT_TRUE(resolves.held) << resolves.seen;
  EXPECT_DOUBLE_EQ(*resolves.value_seconds, 30);
  const Verdict recover = Judge(Expect("timeToRecover", {{"alert", "GpuFull"}, {"max", "1m"}}), record);
  EXPECT_TRUE(recover.held) << recover.seen;
}

TEST(Verdicts, HealthyIsTheFirstSampleWithTheStatusAfterTheEvent) {
  const DrillRecord record = Record();
  const Verdict held = Judge(Expect("healthy", {{"within", "30s"}}), record);
  EXPECT_TRUE(held.held) << held.seen;
  EXPECT_DOUBLE_EQ(*held.value_seconds, 15);
  EXPECT_FALSE(Judge(Expect("healthy", {{"within", "10s"}}), record).held);
  const Verdict critical = Judge(Expect("healthy", {{"within", "1s"}, {"after", "hog.start"}, {"status", "CRITICAL"}}), record);
  EXPECT_FALSE(critical.held) << "CRITICAL came 20 s after the fault";
  DrillRecord down = Record();
  for (auto& sample : down.health) sample.status = "unreachable";
  EXPECT_EQ(Judge(Expect("healthy", {{"within", "5m"}}), down).seen,
            "not HEALTHY by the end of the drill (last seen: unreachable)");
}

TEST(Verdicts, LoadObjectivesArePerPhaseOrEveryPhase) {
  const DrillRecord record = Record();
  EXPECT_TRUE(Judge(Expect("latency", {{"phase", "before"}, {"percentile", "99"}, {"max", "1s"}}), record).held);
  const Verdict every = Judge(Expect("latency", {{"percentile", "99"}, {"max", "1s"}}), record);
  EXPECT_FALSE(every.held);
  EXPECT_EQ(every.seen, "before: p99 800.0 ms; during: p99 4500.0 ms (over)");
  EXPECT_FALSE(Judge(Expect("latency", {{"percentile", "50"}, {"max", "1s"}}), record).held)
      << "a percentile the drill did not compute is not a pass";

  EXPECT_TRUE(Judge(Expect("errorRate", {{"phase", "before"}, {"max", "0%"}}), record).held);
  const Verdict errors = Judge(Expect("errorRate", {{"max", "5%"}}), record);
  EXPECT_FALSE(errors.held);
  EXPECT_EQ(errors.seen, "before: 0.00% (0 of 60); during: 10.00% (6 of 60) over");

  EXPECT_TRUE(Judge(Expect("throughput", {{"phase", "before"}, {"min", "1/s"}}), record).held);
  const Verdict slow = Judge(Expect("throughput", {{"phase", "during"}, {"min", "1/s"}}), record);
  EXPECT_FALSE(slow.held);
  EXPECT_EQ(slow.seen, "during: 0.667/s (40 in 60s) under");
  EXPECT_EQ(Judge(Expect("throughput", {{"phase", "nope"}, {"min", "1/s"}}), record).seen, "phase nope never ran");
}

TEST(Verdicts, LostJobsQualityAndTimes) {
  DrillRecord record = Record();
  EXPECT_TRUE(Judge(Expect("lostJobs", json::object()), record).held);
  record.lost_jobs = 2;
  EXPECT_FALSE(Judge(Expect("lostJobs", json::object()), record).held);
  EXPECT_TRUE(Judge(Expect("lostJobs", {{"max", "2"}}), record).held);

  EXPECT_TRUE(Judge(Expect("quality", {{"min", "0.8"}}), record).held);
  EXPECT_FALSE(Judge(Expect("quality", {{"min", "0.9"}}), record).held);
  const Verdict before = Judge(Expect("quality", {{"min", "0.88"}, {"phase", "before"}}), record);
  EXPECT_TRUE(before.held) << before.seen;
  EXPECT_EQ(before.seen, "mean 0.900 over 60 jobs (lowest 0.850)");
  EXPECT_EQ(before.expected, "mean selection quality at least 0.880 for the jobs phase before sent");
  EXPECT_FALSE(Judge(Expect("quality", {{"min", "0.8"}, {"phase", "during"}}), record).held);
  EXPECT_EQ(Judge(Expect("quality", {{"min", "0.8"}, {"phase", "nope"}}), record).seen, "phase nope never ran");
  record.quality.count = 0;
  EXPECT_EQ(Judge(Expect("quality", {{"min", "0.1"}}), record).seen, "no job completed");

  const Verdict detect = Judge(Expect("timeToDetect", {{"alert", "GpuFull"}, {"after", "hog.start"}, {"max", "30s"}}), record);
  EXPECT_TRUE(detect.held);
  EXPECT_DOUBLE_EQ(*detect.value_seconds, 30);
  const Verdict recover = Judge(Expect("timeToRecover", {{"alert", "GpuFull"}, {"max", "30s"}}), record);
  EXPECT_FALSE(recover.held);
  EXPECT_DOUBLE_EQ(*recover.value_seconds, 40);
  EXPECT_EQ(recover.seen, "recovered in 40.0s (fired +90.0s, resolved +130.0s)");
}

// A `for: 0s` rule goes pending and firing in the same round: the pending
// change beside the firing one is not the alert resolving.
TEST(Verdicts, PendingAndFiringAtOneTimeIsNotARecovery) {
  DrillRecord record = Record();
  record.alerts = {{100'000, "Overdue", "pending"}, {100'000, "Overdue", "firing"}, {115'000, "Overdue", "resolved"}};
  const Verdict recover = Judge(Expect("timeToRecover", {{"alert", "Overdue"}, {"max", "1m"}}), record);
  EXPECT_TRUE(recover.held) << recover.seen;
  EXPECT_DOUBLE_EQ(*recover.value_seconds, 15);
  const Verdict resolves =
      Judge(Expect("alertResolves", {{"alert", "Overdue"}, {"after", "recovery.end"}, {"within", "5m"}}), record);
  EXPECT_EQ(resolves.seen, "resolved 15.0s after recovery.end");
  record.alerts.push_back({200'000, "Overdue", "pending"});
  record.alerts.push_back({200'000, "Overdue", "firing"});
  record.alerts.push_back({200'000, "Overdue", "resolved"});
  EXPECT_DOUBLE_EQ(*Judge(Expect("timeToRecover", {{"alert", "Overdue"}, {"max", "1m"}}), record).value_seconds, 15)
      << "the first firing counts";
}

// One round: a firing series clears while another goes pending then firing.
// The alert never stopped firing.
TEST(Verdicts, OneSeriesClearingAsAnotherFiresIsNotARecovery) {
  DrillRecord record = Record();
  record.alerts = {{90'000, "Hot", "firing"},     {105'000, "Hot", "pending"},
                   {105'000, "Hot", "firing"},    {140'000, "Hot", "resolved"}};
  const Verdict recover = Judge(Expect("timeToRecover", {{"alert", "Hot"}, {"max", "1m"}}), record);
  EXPECT_DOUBLE_EQ(*recover.value_seconds, 50) << recover.seen;
}

json Result(bool held) {
  return {{"schemaVersion", 1},
          {"firedrill", {{"version", "0.1.0"}}},
          {"scenario", {{"name", "gpu <full> & \"hot\""}, {"description", "a | b"}, {"parameters", json::object()}}},
          {"seed", 7},
          {"timeScale", 20},
          {"hardware", {{"cpu", "x"}, {"gpu", nullptr}}},
          {"target", {{"kind", "embedded"}}},
          {"monitoring", {{"kind", "embedded"}}},
          {"startedAt", "2026-12-03T10:00:00.000Z"},
          {"drillSeconds", 600},
          {"wallSeconds", 30},
          {"verdict", held ? "held" : "failed"},
          {"exitCode", held ? 0 : 1},
          {"reason", held ? "" : "detected: expected A; saw B"},
          {"expectations",
           {{{"name", "steady-state"}, {"kind", "steadyState"}, {"held", true}, {"expected", "e"}, {"seen", "held"}},
            {{"name", "detected"}, {"kind", "alertFires"}, {"held", held}, {"expected", "fires <2m"},
             {"seen", "never fired | \"ever\""}}}},
          {"events", {{{"t", 1.5}, {"type", "fault"}, {"name", "hog.start"}, {"detail", {{"what", "hog"}}}}}},
          {"samples", json::array()},
          {"load", nullptr}};
}

TEST(Reports, JunitHasOneCasePerVerdictWithFailuresEscaped) {
  const std::string failed = reports::JunitXml(Result(false));
  EXPECT_NE(failed.find("tests=\"2\" failures=\"1\" errors=\"0\""), std::string::npos) << failed;
  EXPECT_NE(failed.find("<testsuite name=\"gpu &lt;full&gt; &amp; &quot;hot&quot;\""), std::string::npos) << failed;
  EXPECT_NE(failed.find("<failure message=\"never fired | &quot;ever&quot;\" type=\"alertFires\">"), std::string::npos)
      << failed;
  const std::string held = reports::JunitXml(Result(true));
  EXPECT_EQ(held.find("<failure"), std::string::npos);
  json skipped = Result(false);
  skipped["expectations"][1]["skipped"] = true;
  const std::string skip = reports::JunitXml(skipped);
  EXPECT_NE(skip.find("failures=\"0\""), std::string::npos) << skip;
  EXPECT_NE(skip.find("<skipped message=\"never fired | &quot;ever&quot;\"/>"), std::string::npos) << skip;
  json aborted = Result(true);
  aborted["verdict"] = "aborted";
  aborted["reason"] = "guardrail alertFires: SystemDown fired";
  const std::string error = reports::JunitXml(aborted);
  EXPECT_NE(error.find("errors=\"1\""), std::string::npos);
  EXPECT_NE(error.find("<error message=\"guardrail alertFires: SystemDown fired\" type=\"aborted\"/>"),
            std::string::npos);
}

TEST(Reports, SummaryNamesTheFailureAndWhatWasSeen) {
  const std::string summary = reports::SummaryMarkdown(Result(false));
  EXPECT_NE(summary.find("## gpu <full> & \"hot\": FAILED"), std::string::npos) << summary;
  EXPECT_NE(summary.find("**Why:** detected: expected A; saw B"), std::string::npos);
  EXPECT_NE(summary.find("| **FAILED** | detected | fires <2m | never fired \\| \"ever\" |"), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("| +1.5s | hog.start | hog |"), std::string::npos);
  const std::string html = reports::HtmlReport(Result(false));
  EXPECT_NE(html.find("<td class=\"failed\">FAILED</td><td>detected</td>"), std::string::npos);
  EXPECT_EQ(html.find("<full>"), std::string::npos) << "escaped";
}

TEST(ScaleRuleFile, EveryDurationShrinksByTheScale) {
  const std::string rules = R"(groups:
  - name: g
    interval: 30s
    rules:
      - alert: A
        expr: rate(x_total[5m]) > 1 and max_over_time(y[10m:1m]) > 0 and z offset 2m > 1
        for: 1m
        keep_firing_for: 20s
      - record: r
        expr: sum(rate(x{path="/a[5m]", q='offset 1h'}[2m])) offset -1m
)";
  auto scaled = alerts::ScaleRuleFile(rules, 20);
  ASSERT_TRUE(scaled.ok()) << scaled.status();
  EXPECT_NE(scaled->find("interval: 1500ms"), std::string::npos) << *scaled;
  EXPECT_NE(scaled->find("for: 3000ms"), std::string::npos);
  EXPECT_NE(scaled->find("keep_firing_for: 1000ms"), std::string::npos);
  EXPECT_NE(scaled->find("rate(x_total[15000ms]) > 1 and max_over_time(y[30000ms:3000ms]) > 0 and z offset 6000ms > 1"),
            std::string::npos)
      << *scaled;
  EXPECT_NE(scaled->find(R"(sum(rate(x{path="/a[5m]", q='offset 1h'}[6000ms])) offset -3000ms)"), std::string::npos)
      << "label values stay as they are\n"
      << *scaled;
  // What it writes still loads as a rule file.
  EXPECT_TRUE(alerts::ParseRuleFile("scaled.yml", *scaled).ok());
  EXPECT_FALSE(alerts::ScaleRuleFile("not: [rules", 2).ok());
  EXPECT_FALSE(alerts::ScaleRuleFile("x: 1", 2).ok());
}

}  // namespace
}  // namespace firedrill::engine
