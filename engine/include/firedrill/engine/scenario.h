// The typed model of scenario and runbook files, as the loader builds it
// after validation: durations, rates, sizes and ratios are parsed, parameters
// substituted, relative paths resolved. The parameters of an injector, an
// arrival process, a check or a step stay as validated JSON (scalars as
// their text), read with the accessors below.
//
// Values; thread-safe to read.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/units.h"

namespace firedrill::engine {

struct SourceRef {
  std::string file;
  int line = 0;
  int column = 0;
};

// A kind plus its validated fields, e.g. an injector {kind: thermal, temperature: 92}.
struct Spec {
  std::string kind;
  nlohmann::json fields;  // object; scalars kept as text
  SourceRef where;

  bool Has(std::string_view key) const;
  std::string Text(std::string_view key, std::string fallback = {}) const;
  double Number(std::string_view key, double fallback = 0) const;
  std::int64_t Integer(std::string_view key, std::int64_t fallback = 0) const;
  bool Boolean(std::string_view key, bool fallback = false) const;
  Duration DurationOr(std::string_view key, Duration fallback) const;
  Rate RateOr(std::string_view key, Rate fallback) const;
  std::uint64_t SizeOr(std::string_view key, std::uint64_t fallback) const;
  double RatioOr(std::string_view key, double fallback) const;
};

struct Metadata {
  std::string name;
  std::string description;
  std::vector<std::string> tags;
  std::string runbook;  // scenario: the HSOF runbook exercised
  std::string alert;    // runbook: the alert answered
  std::string source;   // runbook: the human runbook automated
};

struct Parameter {
  std::string name;
  std::string value;          // after -p overrides
  std::string default_value;
  std::string description;
  std::string type;           // empty when untyped
  bool overridden = false;
};

struct Checks {
  std::optional<Duration> within;
  std::vector<Spec> checks;
};

struct RunbookStep {
  std::string name;
  Duration timeout{std::chrono::minutes(1)};
  bool continue_on_error = false;
  Spec action;  // kind is the action, e.g. "admin.setConfig"
};

struct Runbook {
  std::string path;
  Metadata metadata;
  std::vector<RunbookStep> steps;
  std::optional<Checks> verify;
};

struct Phase {
  std::string name;
  Duration duration{0};
  Spec arrival;
  std::optional<std::int64_t> max_in_flight;
  std::optional<Spec> stress;  // kind is the stress mode
  Duration start_offset{0};    // derived: sum of earlier phases
};

struct Injection {
  std::string name;
  Duration at{0};
  std::optional<Duration> duration;
  std::string until;  // event name, or empty
  Spec injector;
};

struct Recovery {
  std::string runbook_path;  // resolved against the scenario's folder
  Runbook runbook;
  std::string trigger_alert;
  std::optional<Duration> trigger_at;
};

struct Target {
  std::string kind;  // embedded | remote
  Spec settings;
};

struct Monitoring {
  std::string kind = "embedded";
  std::vector<std::string> rules;  // resolved paths
  Duration scrape_interval{std::chrono::seconds(15)};
  Duration evaluation_interval{std::chrono::seconds(15)};
  Spec settings;
};

struct Expectation {
  std::string name;  // given, or derived from kind and alert
  Spec spec;
};

struct Scenario {
  std::string path;
  Metadata metadata;
  std::vector<Parameter> parameters;
  std::optional<std::uint64_t> seed;
  double time_scale = 1;
  Target target;
  Monitoring monitoring;
  std::vector<Phase> phases;
  std::vector<Spec> job_mix;
  std::optional<Checks> steady_state;
  std::vector<Injection> timeline;
  std::optional<Recovery> recovery;
  std::vector<Expectation> expectations;
  std::vector<Spec> guardrails;
  std::vector<std::string> reports;

  Duration WorkloadDuration() const;
  // Every alert the rules files define, in file order.
  std::vector<std::string> known_alerts;
};

// kind: Workload — phases and a job mix on their own, for `firedrill load`.
struct Workload {
  std::string path;
  Metadata metadata;
  std::optional<std::uint64_t> seed;
  std::vector<Phase> phases;
  std::vector<Spec> job_mix;

  Duration WorkloadDuration() const;
};

}  // namespace firedrill::engine
