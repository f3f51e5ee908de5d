// Whole drills against the real hsof-pipeline: the shipped scenarios
// hold; each fails, naming the expectation, when its fix is taken out of the
// runbook or its fault is too weak; a real Prometheus and Alertmanager reach
// the embedded evaluator's verdicts; Ctrl-C undoes everything and exits 3;
// a SIGKILLed run leaves nothing `firedrill recover` cannot clear.
//
// Each drill takes 25-60 s of real time at its time scale of 20, so these
// carry the `drill` label and run alone, after the rest of the suite.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "firedrill/alerts/managed.h"
#include "firedrill/engine/drill.h"
#include "firedrill/engine/loader.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/injectors/undo.h"
#include "net/http_client.h"
#include "pipeline/spawn.h"

extern char** environ;

namespace firedrill::engine {
namespace {

namespace fs = std::filesystem;
using firedrill::testing::HttpCall;
using nlohmann::json;

class DrillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');  // a parameterised test's name has one
    scratch_ = fs::temp_directory_path() / ("firedrill-drill-test-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(scratch_);
    fs::create_directories(scratch_);
  }
  void TearDown() override { fs::remove_all(scratch_); }

  static Scenario Load(const std::string& path, const std::vector<std::pair<std::string, std::string>>& overrides = {}) {
    LoadOptions options;
    options.parameter_overrides = overrides;
    LoadResult loaded = LoadFile(path, options);
    for (const auto& diagnostic : loaded.diagnostics) ADD_FAILURE() << diagnostic;
    EXPECT_NE(loaded.scenario(), nullptr) << path;
    std::cout << "scenario " << path << " seed " << loaded.scenario()->seed.value_or(1) << '\n';
    return *loaded.scenario();
  }

  DrillOptions Options(const std::string& name, const std::string& monitoring = "") {
    DrillOptions options;
    options.out_dir = (scratch_ / name).string();
    options.pipeline_binary = HSOF_PIPELINE_BINARY;
    options.hog_binary = GPU_HOG_BINARY;
    options.journal_path = (scratch_ / "journal.db").string();
    options.version = "test";
    if (!monitoring.empty()) options.monitoring = monitoring;
    return options;
  }

  // Nothing the drill started is left: no open journal row, no helper.
  void ExpectNothingLeft() {
    auto journal = injectors::Journal::Open((scratch_ / "journal.db").string());
    ASSERT_TRUE(journal.ok());
    auto open = (*journal)->OpenFaults();
    ASSERT_TRUE(open.ok());
    for (const auto& record : *open) ADD_FAILURE() << "left open: " << record.kind << " on " << record.target;
  }

  static const Verdict* Find(const std::vector<Verdict>& verdicts, const std::string& name) {
    for (const Verdict& verdict : verdicts) {
      if (verdict.name == name) return &verdict;
    }
    return nullptr;
  }

  static std::map<std::string, bool> Verdicts(const DrillOutcome& outcome) {
    std::map<std::string, bool> out;
    for (const json& verdict : outcome.result["expectations"]) out[verdict["name"]] = verdict["held"];
    return out;
  }

  static std::string Summary(const DrillOutcome& outcome) {
    std::ifstream in(outcome.reports.at("markdown"));
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  // Runs a shipped drill without the runbook step that fixes its fault: the
  // alert fires and does not resolve, the drill fails, nothing is left.
  std::map<std::string, bool> RunWithoutTheFix(const std::string& scenario_path, const std::string& step,
                                               const std::string& alert);

  fs::path scratch_;
};

void ExpectValidResult(const std::string& path) {
  const std::string command = "/usr/bin/python3 tests/result_schema_test.py docs/result.schema.json '" + path + "'";
  EXPECT_EQ(std::system(command.c_str()), 0) << path << " does not follow docs/result.schema.json";
}

class ShippedDrill : public DrillTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ShippedDrill, HoldsWithEveryExpectationMet) {
  const Scenario scenario = Load("scenarios/" + GetParam() + ".yaml");
  const DrillOutcome outcome = RunDrill(scenario, Options(GetParam()));
  EXPECT_EQ(outcome.exit_code, kDrillHeld) << outcome.reason << "\n" << Summary(outcome);
  EXPECT_EQ(outcome.verdict, "held");
  for (const auto& [name, held] : Verdicts(outcome)) EXPECT_TRUE(held) << name;
  EXPECT_GE(Verdicts(outcome).size(), scenario.expectations.size() + 2) << "steady state and recovery are verdicts";
  EXPECT_LT(outcome.result["wallSeconds"].get<double>(), 120) << "a shipped drill runs in under two minutes";
  EXPECT_EQ(outcome.result["timeScale"].get<double>(), scenario.time_scale);
  // Disaster recovery may lose what came after its backup (its lostJobs says how much); no other drill loses any.
  if (GetParam() != "disaster-recovery") {
    EXPECT_EQ(outcome.result["load"]["lostJobs"], 0);
  }
  for (const std::string format : {"json", "markdown", "junit", "html"}) {
    ASSERT_TRUE(outcome.reports.count(format)) << format;
    EXPECT_TRUE(fs::file_size(outcome.reports.at(format)) > 0) << format;
  }
  ExpectValidResult(outcome.reports.at("json"));
  ExpectNothingLeft();
}

INSTANTIATE_TEST_SUITE_P(Drills, ShippedDrill,
                         ::testing::Values("gpu-memory-exhaustion", "pipeline-stage-timeout", "system-down",
                                           "backup-overdue", "feature-reduction-ratio-anomaly",
                                           "feature-selection-quality-low", "throughput-low", "system-update",
                                           "health-check-failing", "processing-stalled", "disaster-recovery",
                                           "high-error-rate"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Removes the runbook step that fixes the fault.
void RemoveStep(Scenario& scenario, const std::string& step) {
  auto& steps = scenario.recovery->runbook.steps;
  const auto before = steps.size();
  steps.erase(std::remove_if(steps.begin(), steps.end(), [&](const RunbookStep& each) { return each.name == step; }),
              steps.end());
  ASSERT_EQ(steps.size() + 1, before) << "no step " << step;
}

TEST_F(DrillTest, WithoutTheEvictionTheGpuDrillFailsOnResolution) {
  Scenario scenario = Load("scenarios/gpu-memory-exhaustion.yaml");
  RemoveStep(scenario, "evict-foreign-process");
  const DrillOutcome outcome = RunDrill(scenario, Options("no-evict"));
  EXPECT_EQ(outcome.exit_code, kDrillFailed) << Summary(outcome);
  const auto verdicts = Verdicts(outcome);
  EXPECT_TRUE(verdicts.at("detected"));
  EXPECT_FALSE(verdicts.at("resolved"));
  EXPECT_FALSE(verdicts.at("recovery"));
  EXPECT_NE(Summary(outcome).find("| **FAILED** | resolved | GPUMemoryExhaustion resolves within 5m of recovery.end |"),
            std::string::npos)
      << Summary(outcome);
  ExpectNothingLeft();
}

TEST_F(DrillTest, AHogTooSmallNeverTripsTheAlertAndTheDrillSaysSo) {
  const Scenario scenario = Load("scenarios/gpu-memory-exhaustion.yaml", {{"hogShare", "50%"}});
  const DrillOutcome outcome = RunDrill(scenario, Options("weak-hog"));
  EXPECT_EQ(outcome.exit_code, kDrillFailed) << Summary(outcome);
  EXPECT_FALSE(Verdicts(outcome).at("detected"));
  EXPECT_NE(outcome.reason.find("detected: expected GPUMemoryExhaustion fires within 2m of hog.start; saw never fired"),
            std::string::npos)
      << outcome.reason;
  EXPECT_NE(Summary(outcome).find("never triggered (GPUMemoryExhaustion never fired)"), std::string::npos);
  ExpectNothingLeft();
}

std::map<std::string, bool> DrillTest::RunWithoutTheFix(const std::string& scenario_path, const std::string& step,
                                                         const std::string& alert) {
  Scenario scenario = Load(scenario_path);
  RemoveStep(scenario, step);
  const DrillOutcome outcome = RunDrill(scenario, Options("without-" + step));
  EXPECT_EQ(outcome.exit_code, kDrillFailed) << Summary(outcome);
  std::map<std::string, bool> verdicts = Verdicts(outcome);
  EXPECT_TRUE(verdicts.at("alertFires:" + alert));
  EXPECT_FALSE(verdicts.at("alertResolves:" + alert));
  EXPECT_NE(Summary(outcome).find("| **FAILED** | alertResolves:" + alert + " |"), std::string::npos) << Summary(outcome);
  ExpectNothingLeft();
  return verdicts;
}

TEST_F(DrillTest, WithoutTheStageRestartTheHangOutlastsTheRunbook) {
  RunWithoutTheFix("scenarios/pipeline-stage-timeout.yaml", "restart-stage-2", "PipelineStageTimeout");
}

TEST_F(DrillTest, ASlowStageInsteadOfAHungOneNeverTimesOut) {
  Scenario scenario = Load("scenarios/pipeline-stage-timeout.yaml");
  scenario.timeline[0].injector.fields["mode"] = "slow";
  scenario.timeline[0].injector.fields["factor"] = "2";
  const DrillOutcome outcome = RunDrill(scenario, Options("slow-stage"));
  EXPECT_EQ(outcome.exit_code, kDrillFailed) << Summary(outcome);
  EXPECT_FALSE(Verdicts(outcome).at("alertFires:PipelineStageTimeout"));
  EXPECT_NE(outcome.reason.find("PipelineStageTimeout"), std::string::npos) << outcome.reason;
  ExpectNothingLeft();
}

TEST_F(DrillTest, WithoutTheRestartTheSystemStaysDown) {
  Scenario scenario = Load("scenarios/system-down.yaml");
  RemoveStep(scenario, "restart");
  const DrillOutcome outcome = RunDrill(scenario, Options("no-restart"));
  EXPECT_EQ(outcome.exit_code, kDrillFailed) << Summary(outcome);
  const auto verdicts = Verdicts(outcome);
  EXPECT_TRUE(verdicts.at("alertFires:SystemDown"));
  EXPECT_FALSE(verdicts.at("alertResolves:SystemDown"));
  EXPECT_FALSE(verdicts.at("healthy"));
  EXPECT_NE(Summary(outcome).find("not HEALTHY by the end of the drill (last seen: unreachable)"), std::string::npos)
      << Summary(outcome);
  ExpectNothingLeft();
}

TEST_F(DrillTest, WithoutTheBackupByHandTheBackupStaysOverdue) {
  EXPECT_FALSE(RunWithoutTheFix("scenarios/backup-overdue.yaml", "trigger-backup", "BackupOverdue").at("recovery"));
}

TEST_F(DrillTest, WithoutTheConfigRestoredTheRatioStaysAnomalous) {
  RunWithoutTheFix("scenarios/feature-reduction-ratio-anomaly.yaml", "restore-keep-ratio", "FeatureReductionRatioAnomaly");
}

TEST_F(DrillTest, WithoutTheReloadQualityStaysLowUntilTheFaultEnds) {
  const auto verdicts =
      RunWithoutTheFix("scenarios/feature-selection-quality-low.yaml", "reload-metamodel", "FeatureSelectionQualityLow");
  EXPECT_FALSE(verdicts.at("quality:after")) << "the corruption lasts through the after phase";
  EXPECT_FALSE(verdicts.at("recovery"));
}

// The after phase's throughput verdict may still hold: it counts the jobs the
// phase sent, and those complete in the drain once the fault ends.
TEST_F(DrillTest, WithoutTheScaleUpThroughputStaysLow) {
  RunWithoutTheFix("scenarios/throughput-low.yaml", "scale-workers-up", "ThroughputLow");
}

TEST_F(DrillTest, WithoutTheStageRestartTheWorkersStayBlocked) {
  RunWithoutTheFix("scenarios/processing-stalled.yaml", "restart-stage-1", "FeatureProcessingStalled");
}

// Without the rollback the bad folds hold to the end of the load: the last
// phase's small jobs fail as well, and nothing is verified.
TEST_F(DrillTest, WithoutTheRollbackTheSmallJobsKeepFailing) {
  const auto verdicts = RunWithoutTheFix("scenarios/high-error-rate.yaml", "roll-back-stage3-folds", "PipelineErrorRate");
  EXPECT_FALSE(verdicts.at("errorRate:after"));
  EXPECT_TRUE(verdicts.at("errorRate:baseline"));
  EXPECT_FALSE(verdicts.at("recovery"));
}

// Restarted on an empty data directory, the pipeline runs again, but the jobs
// the backup held are gone: only the retention check can tell.
TEST_F(DrillTest, WithoutTheRestoreTheJobsBeforeTheDisasterAreGone) {
  Scenario scenario = Load("scenarios/disaster-recovery.yaml");
  RemoveStep(scenario, "restore-latest-backup");
  const DrillOutcome outcome = RunDrill(scenario, Options("no-restore"));
  EXPECT_EQ(outcome.exit_code, kDrillFailed) << Summary(outcome);
  const auto verdicts = Verdicts(outcome);
  EXPECT_TRUE(verdicts.at("alertFires:SystemDown"));
  EXPECT_TRUE(verdicts.at("healthy"));
  EXPECT_FALSE(verdicts.at("recovery"));
  EXPECT_NE(Summary(outcome).find("jobs completed more than 1m15s before the first fault are gone"), std::string::npos)
      << Summary(outcome);
  ExpectNothingLeft();
}

// Without the restart the connection stays lost until the fault's own end:
// the database stays CRITICAL and nothing is verified.
TEST_F(DrillTest, WithoutTheRestartTheDatabaseStaysLost) {
  const auto verdicts = RunWithoutTheFix("scenarios/health-check-failing.yaml", "restart", "HealthCheckFailing");
  EXPECT_FALSE(verdicts.at("healthy"));
  EXPECT_FALSE(verdicts.at("recovery"));
}

// Drained and never resumed: once the clients' retries run out every job is
// refused, and the error-rate guardrail stops the drill.
TEST_F(DrillTest, AnUpdateThatNeverResumesIsStoppedByTheErrorGuardrail) {
  Scenario scenario = Load("scenarios/system-update.yaml");
  RemoveStep(scenario, "restart");
  RemoveStep(scenario, "resume");
  const DrillOutcome outcome = RunDrill(scenario, Options("never-resumed"));
  EXPECT_EQ(outcome.exit_code, kDrillAborted) << Summary(outcome);
  EXPECT_NE(outcome.reason.find("guardrail errorRate"), std::string::npos) << outcome.reason;
  for (const json& verdict : outcome.result["expectations"]) {
    if (verdict["name"] != "errorRate:update") continue;
    EXPECT_FALSE(verdict["held"].get<bool>());
    EXPECT_NE(verdict["seen"].get<std::string>().find(" over"), std::string::npos)
        << "judged over the budget, not cut short: " << verdict["seen"];
  }
  EXPECT_FALSE(Verdicts(outcome).at("recovery"));
  ExpectNothingLeft();
}

// The same drill, its alerts evaluated by the Debian prometheus with rules
// compressed to the time scale and sent to a real Alertmanager.
TEST_F(DrillTest, ManagedPrometheusReachesTheEmbeddedVerdicts) {
  for (const bool fixed : {true, false}) {
    Scenario scenario = Load("scenarios/system-down.yaml");
    if (!fixed) RemoveStep(scenario, "restart");
    const DrillOutcome embedded = RunDrill(scenario, Options(fixed ? "embedded" : "embedded-broken", "embedded"));
    const DrillOutcome managed = RunDrill(scenario, Options(fixed ? "managed" : "managed-broken", "managed"));
    EXPECT_EQ(managed.result["monitoring"]["kind"], "managed");
    EXPECT_EQ(managed.exit_code, embedded.exit_code) << Summary(managed) << "\n" << Summary(embedded);
    EXPECT_EQ(Verdicts(managed), Verdicts(embedded)) << Summary(managed) << "\n" << Summary(embedded);
    EXPECT_EQ(embedded.exit_code, fixed ? kDrillHeld : kDrillFailed);
  }
  ExpectNothingLeft();
}

// A Prometheus that already runs (started here as a stand-in for the
// user's), scraping a remote pipeline with its own rules: the drill reads
// its alerts and judges them, in real time.
TEST_F(DrillTest, AnExternalPrometheusIsReadNotConfigured) {
  fs::create_directories(scratch_ / "pipeline");
  const auto pipeline = firedrill::testing::SpawnPipeline(
      (scratch_ / "pipeline").string(), {"--backend", "cpu", "--workers", "1", "--enable-faults"},
      {{"HSOF_FAULTS_TOKEN", "external-test-token"}});
  const fs::path rules = scratch_ / "rules.yml";
  std::ofstream(rules) << "groups:\n  - name: drill\n    rules:\n      - alert: ExporterFaulted\n"
                          "        expr: hsof_faults_active{kind=\"exporter-down\"} > 0\n        for: 0s\n";
  alerts::ManagedOptions prometheus_options;
  prometheus_options.targets.push_back({.job = "hsof-main",
                                        .address = pipeline.http().substr(7),
                                        .interval = std::chrono::seconds(1),
                                        .timeout = std::chrono::seconds(1),
                                        .labels = {}});
  prometheus_options.rule_files = {rules.string()};
  prometheus_options.evaluation_interval = std::chrono::seconds(1);
  auto prometheus = alerts::ManagedMonitoring::Start(prometheus_options);
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  const fs::path scenario_path = scratch_ / "external.yaml";
  std::ofstream(scenario_path)
      << "apiVersion: firedrill/v1\nkind: Scenario\nmetadata: {name: external}\nseed: 3\n"
      << "target: {kind: remote, http: \"" << pipeline.http() << "\", grpc: \"" << pipeline.grpc() << "\"}\n"
      << "monitoring:\n  kind: external\n  prometheus: " << (*prometheus)->prometheus_url() << "\n  rules: ["
      << rules.string() << "]\n  scrapeInterval: 1s\n  evaluationInterval: 1s\n"
      << "workload:\n  phases:\n    - {name: only, duration: 14s, arrival: {kind: constant, rate: 1/s}}\n"
         "  mix:\n    - {samples: 2000, features: 400, informative: 10, mode: fast}\n"
         "timeline:\n  - name: exporter\n    at: 2s\n    duration: 5s\n    inject: {kind: exporter-down}\n"
         "expectations:\n"
         "  - {kind: alertFires, alert: ExporterFaulted, after: exporter.start, within: 5s}\n"
         "  - {kind: alertResolves, alert: ExporterFaulted, after: exporter.end, within: 5s}\n"
         "  - {kind: lostJobs}\n";
  setenv("HSOF_FAULTS_TOKEN", "external-test-token", 1);
  const Scenario scenario = Load(scenario_path.string());
  const DrillOutcome outcome = RunDrill(scenario, Options("external"));
  unsetenv("HSOF_FAULTS_TOKEN");
  EXPECT_EQ(outcome.exit_code, kDrillHeld) << outcome.reason << "\n" << Summary(outcome);
  EXPECT_EQ(outcome.result["monitoring"]["watcher"]["kind"], "external");
  EXPECT_TRUE(Verdicts(outcome).at("alertFires:ExporterFaulted"));
  // At a time scale other than 1, an external Prometheus cannot follow.
  DrillOptions scaled = Options("external-scaled");
  scaled.time_scale = 10;
  const DrillOutcome refused = RunDrill(scenario, scaled);
  EXPECT_EQ(refused.exit_code, kDrillInvalid);
  EXPECT_NE(refused.reason.find("run this drill at time scale 1"), std::string::npos) << refused.reason;
  ExpectNothingLeft();
  EXPECT_EQ(firedrill::testing::TerminatePipeline(pipeline), 0);
}

// ---- firedrill run as a process ----

struct Child {
  pid_t pid = -1;
  int events = -1;  // its stderr: JSON lines, one per event
};

Child StartRun(const std::vector<std::string>& arguments, const std::vector<std::string>& environment = {}) {
  int pipe_fds[2];
  EXPECT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = arguments;
  std::vector<char*> argv;
  for (std::string& argument : args) argv.push_back(argument.data());
  argv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) env.emplace_back(*entry);
  env.insert(env.end(), environment.begin(), environment.end());
  std::vector<char*> envp;
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  Child child;
  EXPECT_EQ(posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  child.events = pipe_fds[0];
  return child;
}

// Reads the child's event lines until one names `event`; that line, or empty
// when the child ended or `timeout` passed first.
std::string WaitForEvent(const Child& child, const std::string& event, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "";
    pollfd watch{child.events, POLLIN, 0};
    if (poll(&watch, 1, static_cast<int>(left.count())) <= 0) continue;
    char c;
    if (read(child.events, &c, 1) != 1) return "";
    if (c != '\n') {
      line += c;
      continue;
    }
    const json parsed = json::parse(line, nullptr, false);
    if (parsed.is_object() && parsed.value("name", "") == event) return line;
    line.clear();
  }
}

// Reads the child's stderr until `text` appears; false when it ended or
// `timeout` passed first.
bool WaitForText(const Child& child, const std::string& text, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string seen;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd watch{child.events, POLLIN, 0};
    if (poll(&watch, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[512];
    const ssize_t got = read(child.events, buffer, sizeof buffer);
    if (got <= 0) return false;
    seen.append(buffer, static_cast<std::size_t>(got));
    if (seen.find(text) != std::string::npos) return true;
  }
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A short drill of our own: a GPU memory hog 30 s in, for four minutes.
std::string WriteHogScenario(const fs::path& dir, const std::string& target_yaml) {
  const fs::path path = dir / "hog.yaml";
  std::ofstream(path) << "apiVersion: firedrill/v1\nkind: Scenario\nmetadata: {name: hog-drill}\nseed: 5\n"
                         "timeScale: 20\n"
                      << target_yaml << "monitoring:\n  kind: embedded\n  rules: ["
                      << fs::absolute("rules/hsof-alerts.yml").string()
                      << "]\nworkload:\n  phases:\n    - {name: only, duration: 5m, arrival: {kind: constant, rate: "
                         "0.1/s}}\n  mix:\n    - {samples: 2000, features: 400, informative: 10, mode: fast}\n"
                         "timeline:\n  - name: fault\n    at: 30s\n    duration: 4m\n    inject:\n";
  return path.string();
}

TEST_F(DrillTest, CtrlCUndoesEveryFaultWritesTheReportsAndExits3) {
  const std::string scenario =
      WriteHogScenario(scratch_, "target: {kind: embedded, device: cpu}\n");
  std::ofstream(scenario, std::ios::app) << "      kind: gpu-memory-hog\n      share: 95%\n";
  const std::string journal = (scratch_ / "journal.db").string();
  Child run = StartRun({FIREDRILL_BINARY, "run", scenario, "-o", (scratch_ / "out").string(), "--journal", journal,
                        "--progress", "json"});
  const std::string started = WaitForEvent(run, "fault.start", std::chrono::seconds(60));
  ASSERT_FALSE(started.empty()) << "the fault never started";
  std::smatch hog;
  ASSERT_TRUE(std::regex_search(started, hog, std::regex("pid ([0-9]+)"))) << started;
  const pid_t hog_pid = std::stoi(hog[1]);
  EXPECT_NE(injectors::ProcessState(hog_pid), '?');
  kill(run.pid, SIGINT);
  EXPECT_EQ(Wait(run.pid), 3);
  close(run.events);
  EXPECT_EQ(injectors::ProcessState(hog_pid), '?') << "the hog was undone";
  std::ifstream in(scratch_ / "out" / "hog-drill" / "result.json");
  const json result = json::parse(in, nullptr, false);
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["verdict"], "aborted");
  EXPECT_EQ(result["exitCode"], 3);
  EXPECT_EQ(result["reason"], "interrupted (Ctrl-C or SIGTERM)");
  ExpectValidResult((scratch_ / "out" / "hog-drill" / "result.json").string());
  ExpectNothingLeft();
}

// On a terminal: one status line rewritten in place, with the phase, the
// rates, p95, health, the faults and the alerts.
TEST_F(DrillTest, ATerminalGetsALiveStatusLine) {
  const std::string scenario = WriteHogScenario(scratch_, "target: {kind: embedded, device: cpu}\n");
  std::ofstream(scenario, std::ios::app) << "      kind: gpu-memory-hog\n      share: 95%\n";
  Child run = StartRun({FIREDRILL_BINARY, "run", scenario, "-o", (scratch_ / "out").string(), "--journal",
                        (scratch_ / "journal.db").string(), "--progress", "tty"});
  EXPECT_TRUE(WaitForText(run, "\r\033[Konly ", std::chrono::seconds(60))) << "the status line names the phase";
  EXPECT_TRUE(WaitForText(run, "| faults: fault |", std::chrono::seconds(60))) << "and the fault once it runs";
  kill(run.pid, SIGINT);
  EXPECT_EQ(Wait(run.pid), 3);
  close(run.events);
  ExpectNothingLeft();
}

TEST_F(DrillTest, AfterASigkillRecoverStopsTheOrphanedEmbeddedPipeline) {
  const std::string scenario = WriteHogScenario(scratch_, "target: {kind: embedded, device: cpu}\n");
  std::ofstream(scenario, std::ios::app) << "      kind: gpu-memory-hog\n      share: 95%\n";
  const std::string journal = (scratch_ / "journal.db").string();
  Child run = StartRun({FIREDRILL_BINARY, "run", scenario, "-o", (scratch_ / "out").string(), "--journal", journal,
                        "--progress", "json"});
  const std::string started = WaitForEvent(run, "fault.start", std::chrono::seconds(60));
  ASSERT_FALSE(started.empty());
  std::smatch hog;
  ASSERT_TRUE(std::regex_search(started, hog, std::regex("pid ([0-9]+)")));
  kill(run.pid, SIGKILL);
  EXPECT_EQ(Wait(run.pid), 128 + SIGKILL);
  close(run.events);
  pid_t pipeline = 0;
  std::string folder;
  {
    auto opened = injectors::Journal::Open(journal);
    ASSERT_TRUE(opened.ok());
    auto open = (*opened)->OpenFaults();
    ASSERT_TRUE(open.ok());
    for (const auto& record : *open) {
      if (record.kind != "embedded-target") continue;
      pipeline = record.undo["pid"];
      folder = record.undo["folder"];
    }
  }
  EXPECT_TRUE(fs::is_directory(folder)) << folder;
  ASSERT_GT(pipeline, 0) << "the running pipeline is in the journal";
  EXPECT_NE(injectors::ProcessState(pipeline), '?') << "orphaned, still running";
  Child recover = StartRun({FIREDRILL_BINARY, "recover", "--journal", journal, "--wait"});
  EXPECT_EQ(Wait(recover.pid), 0);
  close(recover.events);
  // Not our child: it is gone once init has reaped it.
  for (int i = 0; i < 500 && injectors::ProcessState(pipeline) != '?'; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(injectors::ProcessState(pipeline), '?') << "recover stopped the orphaned pipeline";
  EXPECT_FALSE(fs::exists(folder)) << "and removed its temporary folder";
  EXPECT_EQ(injectors::ProcessState(std::stoi(hog[1])), '?') << "the hog ended with its owner";
  ExpectNothingLeft();
}

// A remote pipeline, with an in-process fault: after the SIGKILL, recover
// --wait returns once the fault's lease has lapsed, and the pipeline is
// healthy with no fault active.
TEST_F(DrillTest, AfterASigkillRecoverLeavesARemoteTargetHealthyWithNoFault) {
  fs::create_directories(scratch_ / "pipeline");
  const auto pipeline = firedrill::testing::SpawnPipeline(
      (scratch_ / "pipeline").string(), {"--backend", "cpu", "--workers", "1", "--time-scale", "20", "--enable-faults"},
      {{"HSOF_FAULTS_TOKEN", "drill-test-token"}});
  const std::string target = "target: {kind: remote, http: \"" + pipeline.http() + "\", grpc: \"" + pipeline.grpc() + "\"}\n";
  const std::string scenario = WriteHogScenario(scratch_, target);
  std::ofstream(scenario, std::ios::app) << "      kind: stage-stall\n      stage: 2\n      mode: hang\n";
  const std::string journal = (scratch_ / "journal.db").string();
  Child run = StartRun({FIREDRILL_BINARY, "run", scenario, "-o", (scratch_ / "out").string(), "--journal", journal,
                        "--progress", "json"},
                       {"HSOF_FAULTS_TOKEN=drill-test-token"});
  ASSERT_FALSE(WaitForEvent(run, "fault.start", std::chrono::seconds(60)).empty());
  EXPECT_NE(HttpCall("GET", pipeline.http() + "/metrics").body.find("hsof_faults_active{kind=\"stage-stall\"} 1"),
            std::string::npos);
  kill(run.pid, SIGKILL);
  Wait(run.pid);
  close(run.events);
  Child recover = StartRun({FIREDRILL_BINARY, "recover", "--journal", journal, "--wait"});
  EXPECT_EQ(Wait(recover.pid), 0);
  close(recover.events);
  EXPECT_NE(HttpCall("GET", pipeline.http() + "/metrics").body.find("hsof_faults_active{kind=\"stage-stall\"} 0"),
            std::string::npos)
      << "the lease lapsed by the time recover returned";
  // The jobs the hang held finish, and health comes back: the pipeline
  // settles by itself, with nothing of the drill left in force.
  json health;
  for (int i = 0; i < 300; ++i) {
    health = json::parse(HttpCall("GET", pipeline.http() + "/health").body, nullptr, false);
    if (health.is_object() && health["status"] == "HEALTHY") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(health.is_object());
  EXPECT_EQ(health["status"], "HEALTHY") << health.dump();
  ExpectNothingLeft();
  EXPECT_EQ(firedrill::testing::TerminatePipeline(pipeline), 0);
}

TEST_F(DrillTest, ABrokenResultFailsTheSchemaCheck) {
  const fs::path path = scratch_ / "broken.json";
  std::ofstream(path) << R"({"schemaVersion": 1, "verdict": "maybe"})";
  const std::string command =
      "/usr/bin/python3 tests/result_schema_test.py docs/result.schema.json '" + path.string() + "' >/dev/null";
  EXPECT_NE(std::system(command.c_str()), 0) << "the schema check can fail";
}

}  // namespace
}  // namespace firedrill::engine
