#include "firedrill/engine/loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "firedrill/engine/format.h"
#include "firedrill/engine/plan.h"
#include "firedrill/injectors/catalog.h"

namespace firedrill::engine {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string Lines(const Diagnostics& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) out += d.ToString() + "\n";
  return out;
}

// Every file the project ships, and the valid test corpus, loads cleanly.
TEST(LoaderTest, ShippedScenariosAndRunbooksAreValid) {
  int scenarios = 0;
  int runbooks = 0;
  int workloads = 0;
  for (const char* dir : {"scenarios", "runbooks", "workloads", "tests/scenarios/valid"}) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() != ".yaml") continue;
      const LoadResult result = LoadFile(entry.path().string());
      EXPECT_TRUE(result.ok()) << entry.path() << "\n" << Lines(result.diagnostics);
      scenarios += result.scenario() != nullptr;
      runbooks += result.runbook() != nullptr;
      workloads += result.workload() != nullptr;
    }
  }
  EXPECT_GE(scenarios, 3);
  EXPECT_GE(runbooks, 3);
  EXPECT_GE(workloads, 2);
}

TEST(LoaderTest, BuildsAWorkloadFile) {
  const LoadResult result = LoadFile("workloads/steady-jobs.yaml");
  ASSERT_TRUE(result.ok()) << Lines(result.diagnostics);
  const Workload& workload = *result.workload();
  EXPECT_EQ(workload.metadata.name, "steady-jobs");
  EXPECT_EQ(workload.seed, 7u);
  ASSERT_EQ(workload.phases.size(), 2u);
  EXPECT_EQ(workload.phases[0].arrival.kind, "ramp");
  EXPECT_EQ(workload.phases[1].start_offset, 10s);
  EXPECT_EQ(workload.phases[1].max_in_flight, 32);
  EXPECT_EQ(workload.WorkloadDuration(), 60s);
  ASSERT_EQ(workload.job_mix.size(), 2u);
  EXPECT_EQ(workload.job_mix[0].Text("mode"), "fast");
}

// What only building the schedule shows: found at validation, with the place.
TEST(LoaderTest, ArrivalsAreBuiltAtValidation) {
  const std::string text =
      "apiVersion: firedrill/v1\nkind: Workload\nmetadata: {name: w}\nworkload:\n  phases:\n"
      "    - {name: p, duration: 1m, arrival: {kind: trace, file: missing.csv}}\n";
  LoadResult result = LoadText("dir/w.yaml", text);
  ASSERT_EQ(result.diagnostics.size(), 1u) << Lines(result.diagnostics);
  EXPECT_EQ(result.diagnostics[0].line, 6);
  EXPECT_NE(result.diagnostics[0].message.find("workload.phases[p].arrival: dir/missing.csv: cannot read trace file"),
            std::string::npos)
      << result.diagnostics[0].message;
  // Without reference checks (fuzzing, isolated reads) no file is opened.
  LoadOptions options;
  options.check_references = false;
  EXPECT_TRUE(LoadText("dir/w.yaml", text, options).ok());
}

TEST(LoaderTest, BuildsTheTypedModel) {
  const LoadResult result = LoadFile("scenarios/gpu-memory-exhaustion.yaml");
  ASSERT_TRUE(result.ok()) << Lines(result.diagnostics);
  const Scenario& scenario = *result.scenario();
  EXPECT_EQ(scenario.metadata.name, "gpu-memory-exhaustion");
  EXPECT_EQ(scenario.metadata.tags, (std::vector<std::string>{"gpu", "memory", "runbook-7"}));
  EXPECT_EQ(scenario.seed, 7u);
  EXPECT_EQ(scenario.target.kind, "embedded");
  EXPECT_EQ(scenario.target.settings.Integer("workers"), 4);
  EXPECT_EQ(scenario.monitoring.scrape_interval, 15s);
  ASSERT_EQ(scenario.monitoring.rules.size(), 1u);
  EXPECT_EQ(scenario.monitoring.rules[0], "rules/hsof-alerts.yml");
  EXPECT_EQ(scenario.known_alerts.size(), 23u);
  ASSERT_EQ(scenario.phases.size(), 3u);
  EXPECT_EQ(scenario.phases[1].start_offset, 5min);
  EXPECT_EQ(scenario.phases[2].start_offset, 15min);
  EXPECT_EQ(scenario.WorkloadDuration(), 20min);
  EXPECT_EQ(scenario.phases[0].arrival.kind, "poisson");
  EXPECT_DOUBLE_EQ(scenario.phases[0].arrival.RateOr("rate", {}).per_second, 0.2);
  EXPECT_EQ(scenario.time_scale, 20);
  ASSERT_EQ(scenario.timeline.size(), 1u);
  const Injection& hog = scenario.timeline[0];
  EXPECT_EQ(hog.injector.kind, "gpu-memory-hog");
  EXPECT_DOUBLE_EQ(hog.injector.RatioOr("share", 0), 0.95);
  EXPECT_EQ(hog.at, 5min);
  EXPECT_EQ(hog.duration, 10min);
  EXPECT_EQ(hog.until, "") << "the runbook must evict it; nothing else ends it early";
  ASSERT_TRUE(scenario.recovery.has_value());
  EXPECT_EQ(scenario.recovery->trigger_alert, "GPUMemoryExhaustion");
  EXPECT_EQ(scenario.recovery->runbook.metadata.name, "gpu-memory-exhaustion");
  ASSERT_EQ(scenario.recovery->runbook.steps.size(), 3u);
  EXPECT_EQ(scenario.recovery->runbook.steps[2].action.kind, "exec");
  EXPECT_EQ(scenario.recovery->runbook.steps[0].action.kind, "admin.setConfig");
  EXPECT_EQ(scenario.recovery->runbook.steps[0].action.Text("key"), "GPU_MEMORY_FRACTION");
  EXPECT_EQ(scenario.recovery->runbook.steps[0].timeout, 30s);
  EXPECT_FALSE(scenario.recovery->runbook.steps[0].action.Has("timeout"));
  ASSERT_EQ(scenario.expectations.size(), 6u);
  EXPECT_EQ(scenario.expectations[0].name, "detected");
  EXPECT_EQ(scenario.expectations[3].name, "lostJobs");
  EXPECT_EQ(scenario.expectations[4].name, "errorRate:baseline");
  EXPECT_DOUBLE_EQ(scenario.expectations[4].spec.RatioOr("max", 1), 0.01);
  EXPECT_EQ(scenario.guardrails.size(), 2u);
  EXPECT_EQ(scenario.reports, (std::vector<std::string>{"json", "markdown", "junit", "html"}));
}

TEST(LoaderTest, ParameterOverridesReplaceDefaults) {
  LoadOptions options;
  options.parameter_overrides = {{"hogShare", "97%"}, {"rate", "5/s"}};
  const LoadResult result = LoadFile("scenarios/gpu-memory-exhaustion.yaml", options);
  ASSERT_TRUE(result.ok()) << Lines(result.diagnostics);
  const Scenario& scenario = *result.scenario();
  EXPECT_DOUBLE_EQ(scenario.timeline[0].injector.RatioOr("share", 0), 0.97);
  EXPECT_DOUBLE_EQ(scenario.phases[2].arrival.RateOr("rate", {}).per_second, 5.0);
  ASSERT_EQ(scenario.parameters.size(), 2u);
  EXPECT_EQ(scenario.parameters[1].name, "hogShare");
  EXPECT_TRUE(scenario.parameters[1].overridden);
  EXPECT_EQ(scenario.parameters[1].default_value, "95%");
}

TEST(LoaderTest, ParametersInterpolateInsideStrings) {
  const LoadResult result = LoadFile("tests/scenarios/valid/everything.yaml");
  ASSERT_TRUE(result.ok()) << Lines(result.diagnostics);
  EXPECT_EQ(result.scenario()->job_mix[2].Text("dataset"), "data/test.csv");
  EXPECT_DOUBLE_EQ(result.scenario()->time_scale, 20);
  EXPECT_EQ(result.scenario()->job_mix.size(), 3u);
  // Every injector in the catalogue appears in the coverage scenario.
  std::set<std::string> used;
  for (const Injection& injection : result.scenario()->timeline) used.insert(injection.injector.kind);
  for (const auto& info : injectors::Catalog()) EXPECT_TRUE(used.count(info.kind)) << info.kind;
}

TEST(LoaderTest, DiagnosticsComeInReadingOrder) {
  const LoadResult result = LoadFile("tests/scenarios/invalid/many-errors.yaml");
  ASSERT_EQ(result.diagnostics.size(), 4u);
  for (std::size_t i = 1; i < result.diagnostics.size(); ++i) {
    EXPECT_LT(result.diagnostics[i - 1].line, result.diagnostics[i].line);
  }
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("firedrill-loader-test-" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

TEST(LoaderTest, AScenarioNamingItselfAsItsRunbookDoesNotRecurse) {
  TempDir dir;
  const std::string path = dir.Write("self.yaml", R"(apiVersion: firedrill/v1
kind: Scenario
metadata: {name: self}
target: {kind: embedded}
workload:
  phases: [{name: p, duration: 1m, arrival: {kind: constant, rate: 1/s}}]
recovery:
  runbook: self.yaml
  trigger: {at: 30s}
)");
  const LoadResult result = LoadFile(path);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_NE(result.diagnostics[0].message.find("is a Scenario; expected a file of kind Runbook"), std::string::npos);
}

TEST(LoaderTest, RejectsDirectoriesAndMissingFiles) {
  EXPECT_NE(LoadFile("scenarios").diagnostics.at(0).message.find("is a directory"), std::string::npos);
  EXPECT_NE(LoadFile("no/such/file.yaml").diagnostics.at(0).message.find("cannot read file"), std::string::npos);
}

// Mutations of a valid file never crash the loader and always either load
// or explain themselves with a positioned message.
TEST(LoaderTest, RandomMutationsAreAlwaysReportedNeverCrash) {
  std::ifstream in("tests/scenarios/valid/everything.yaml");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string original = buffer.str();
  const unsigned seed = 20261127;
  std::printf("mutation seed: %u\n", seed);
  std::mt19937 random(seed);
  const std::string alphabet = "{}[]:-,'\"&*!|>%@`#\n \t0123456789abcxyz${}";
  LoadOptions options;
  options.check_references = false;
  for (int round = 0; round < 300; ++round) {
    std::string text = original;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = random() % text.size();
      switch (random() % 3) {
        case 0: text[at] = alphabet[random() % alphabet.size()]; break;
        case 1: text.erase(at, 1 + random() % 8); break;
        default: text.insert(at, 1, alphabet[random() % alphabet.size()]);
      }
    }
    const LoadResult result = LoadText("mutated.yaml", text, options);
    if (!result.ok()) {
      for (const Diagnostic& d : result.diagnostics) EXPECT_FALSE(d.message.empty());
    } else {
      EXPECT_NE(result.scenario(), nullptr);
    }
  }
}

TEST(FormatTest, JsonSchemaCoversBothKindsAndEveryInjector) {
  const auto schema = JsonSchema("all");
  EXPECT_EQ(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
  const auto& scenario = schema["$defs"]["scenario"];
  const auto& kinds = scenario["properties"]["timeline"]["items"]["properties"]["inject"]["properties"]["kind"]["enum"];
  EXPECT_EQ(kinds.size(), injectors::Catalog().size());
  for (const auto& info : injectors::Catalog()) {
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), info.kind), kinds.end()) << info.kind;
  }
  const auto& actions = schema["$defs"]["runbook"]["properties"]["steps"]["items"]["properties"]["action"]["enum"];
  EXPECT_EQ(actions.size(), RunbookActions().size());
  EXPECT_EQ(JsonSchema("scenario")["properties"]["kind"]["anyOf"][0]["enum"][0], "Scenario");
}

TEST(PlanTest, DescribesTheTimelineAtTheTimeScale) {
  const LoadResult result = LoadFile("tests/scenarios/valid/everything.yaml");
  ASSERT_TRUE(result.ok());
  std::ostringstream out;
  DescribePlan(*result.scenario(), out);
  const std::string plan = out.str();
  EXPECT_NE(plan.find("time scale: 20x faster than written"), std::string::npos) << plan;
  EXPECT_NE(plan.find("T+1m (runs at T+3s)"), std::string::npos) << plan;
  EXPECT_NE(plan.find("inject hog: gpu-memory-hog device=0 share=80% step=10s, for 30s"), std::string::npos) << plan;
  EXPECT_NE(plan.find("run runbook every-action"), std::string::npos) << plan;
  EXPECT_EQ(Scaled(1min, 20), 3s);
}

}  // namespace
}  // namespace firedrill::engine
