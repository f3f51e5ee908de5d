#include "firedrill/alerts/rule_file.h"

#include <gtest/gtest.h>

namespace firedrill::alerts {
namespace {

using namespace std::chrono_literals;

TEST(RuleFileTest, LoadsHsofProductionRules) {
  const Result<RuleFile> file = LoadRuleFile("rules/hsof-alerts.yml");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->AlertNames().size(), 23u);
  ASSERT_GE(file->groups.size(), 3u);
  EXPECT_EQ(file->groups[0].name, "hsof_gpu_alerts");
  const Rule& memory = file->groups[0].rules[2];
  EXPECT_EQ(memory.alert, "GPUMemoryExhaustion");
  EXPECT_EQ(memory.for_duration, 1min);
  EXPECT_EQ(memory.labels.at("severity"), "critical");
  EXPECT_EQ(memory.expr, "(hsof_gpu_memory_used_bytes / hsof_gpu_memory_total_bytes) * 100 > 90");
  EXPECT_GT(memory.position.line, 0);
}

TEST(RuleFileTest, ReportsProblemsWithPositions) {
  const Result<RuleFile> file = ParseRuleFile("bad.yml", R"(groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        for: 5 minutes
      - record: r
        for: 1m
        expr: sum(up)
      - alert: B
        exprr: up
  - name: g
    rules: []
)");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message(),
            "bad.yml:6:14: for: bad duration \"5 minutes\" (unknown unit \" minutes\"): expected a "
            "number and a unit (ns, us, ms, s, m, h, d, w), e.g. 250ms, 30s, 5m, 1h30m\n"
            "bad.yml:7:9: recording rule r cannot have for, keep_firing_for or annotations\n"
            "bad.yml:11:9: unknown field \"exprr\" in rule\n"
            "bad.yml:10:9: rule B needs a non-empty expr\n"
            "bad.yml:12:11: group name \"g\" is repeated");
}

TEST(RuleFileTest, RejectsNonRuleFiles) {
  EXPECT_FALSE(ParseRuleFile("x.yml", "just text").ok());
  EXPECT_FALSE(ParseRuleFile("x.yml", "groups: [unclosed").ok());
  EXPECT_EQ(LoadRuleFile("no/such.yml").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace firedrill::alerts
