#include "firedrill/injectors/catalog.h"

#include <gtest/gtest.h>

#include <set>

#include "firedrill/pipeline/contract.h"
#include "firedrill/reports/formats.h"
#include "firedrill/workload/format.h"

namespace firedrill {
namespace {

TEST(InjectorCatalogTest, KindsAreUniqueAndDescribed) {
  std::set<std::string> kinds;
  for (const auto& info : injectors::Catalog()) {
    EXPECT_TRUE(kinds.insert(info.kind).second) << info.kind;
    EXPECT_FALSE(info.summary.empty()) << info.kind;
    EXPECT_FALSE(info.targets.empty()) << info.kind;
    EXPECT_FALSE(info.fidelities.empty()) << info.kind;
    for (const auto& parameter : info.parameters) EXPECT_FALSE(parameter.description.empty()) << info.kind;
    EXPECT_EQ(injectors::FindInjector(info.kind), &info);
  }
  EXPECT_EQ(injectors::FindInjector("no-such-fault"), nullptr);
}

// The catalogue covers each fault mechanism RUNBOOKS.md asks for.
TEST(InjectorCatalogTest, CoversTheRunbookCatalogue) {
  for (const char* kind : {"gpu-memory-hog", "gpu-compute-burn", "thermal", "stage-stall", "error-injection",
                           "inference-delay", "metamodel-corruption", "exporter-down", "database-unavailable",
                           "backup-target-failure", "backup-scheduler-stop", "config-fault", "gpu-memory-leak",
                           "process-pause", "process-kill", "host-memory-hog", "cpu-hog", "disk-fill", "network"}) {
    EXPECT_NE(injectors::FindInjector(kind), nullptr) << kind;
  }
}

TEST(ContractTest, MetricsFollowTheHsofRuleNames) {
  std::set<std::string> names;
  for (const auto& metric : pipeline::Metrics()) names.insert(metric.name);
  for (const char* name : {"hsof_gpu_memory_used_bytes", "hsof_stage_duration_seconds", "hsof_errors_total",
                           "hsof_last_successful_backup_timestamp", "hsof_metamodel_inference_latency_seconds"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }
  EXPECT_EQ(pipeline::HealthStatuses().front(), "HEALTHY");
}

TEST(FormatsTest, ReportAndArrivalNames) {
  EXPECT_EQ(reports::ParseFormat("junit"), reports::Format::kJunit);
  EXPECT_FALSE(reports::ParseFormat("pdf").has_value());
  std::set<std::string> arrivals;
  for (const auto& variant : workload::ArrivalProcesses()) arrivals.insert(variant.kind);
  EXPECT_EQ(arrivals, (std::set<std::string>{"constant", "poisson", "ramp", "steps", "spike", "trace", "closed"}));
}

}  // namespace
}  // namespace firedrill
