// `firedrill run`: one scenario from steady state to verdict. The executor
// starts the target and the monitoring, puts the workload's phases on it,
// checks the steady-state hypothesis, injects the timeline's faults, runs
// the runbook when its alert fires, watches the guardrails, and judges the
// expectations; then it undoes every fault, stops what it started and
// writes result.json and the reports.
//
// Every time in the record is drill time: milliseconds since the load
// started, on the drill's clock (a ScaledClock when the scenario is
// compressed, so a 15-minute drill at scale 20 takes 45 real seconds).
//
// Thread-safety: RunDrill blocks the calling thread, which should outlive
// the run (managed Prometheus ties its servers' lives to it).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/engine/scenario.h"

namespace firedrill::engine {

// Exit codes of `firedrill run` (the contract in ARCHITECTURE.md).
enum DrillExit : int {
  kDrillHeld = 0,
  kDrillFailed = 1,
  kDrillInvalid = 2,
  kDrillAborted = 3,
  kDrillHarnessError = 4,
};

struct DrillOptions {
  std::string out_dir;                     // the reports go here (created)
  std::optional<double> time_scale;        // overrides the scenario's
  std::optional<std::string> monitoring;   // "embedded" or "managed": overrides the scenario's
  std::vector<std::string> reports;        // formats; empty: the scenario's list
  std::string pipeline_binary;             // hsof-pipeline, for an embedded target
  std::string hog_binary;                  // firedrill-gpu-hog; empty: beside this executable
  std::string journal_path;                // the fault journal
  std::string version = "0.0.0";           // written into result.json
  std::string prometheus_binary = "/usr/bin/prometheus";
  std::string alertmanager_binary = "/usr/bin/prometheus-alertmanager";
  // A terminal gets one live status line (rewritten in place); anything
  // else gets one JSON line per event. Null: silent.
  std::ostream* progress = nullptr;
  bool terminal = false;
  // Set from another thread (Ctrl-C): the drill aborts, undoes every fault,
  // writes its reports and exits 3.
  const std::atomic<bool>* interrupt = nullptr;
};

struct DrillOutcome {
  int exit_code = kDrillHarnessError;
  std::string verdict;  // held, failed, aborted, invalid, harness-error
  std::string reason;   // one line: why, when not held
  nlohmann::json result;  // what result.json holds
  std::map<std::string, std::string> reports;  // format name -> file written
};

// Never throws; a drill that cannot run says why in `reason` with exit 2 or 4.
DrillOutcome RunDrill(const Scenario& scenario, const DrillOptions& options);

// ---- the record a run keeps, and the verdicts judged from it ----

struct DrillEvent {
  std::int64_t t_ms = 0;
  std::string type;  // drill, phase, fault, alert, runbook, health, guardrail, steady-state
  std::string name;  // "hog.start", "alert.SystemDown.firing", "recovery.end", ...
  nlohmann::json detail = nlohmann::json::object();
};

// Selection quality the pipeline reported for completed jobs.
struct QualitySeen {
  std::int64_t count = 0;
  double mean = 0;
  double min = 0;  // meaningful when count > 0
};

struct PhaseLoad {
  std::string name;
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::int64_t sent = 0;
  std::int64_t completed = 0;
  std::int64_t errors = 0;  // failed, rejected, lost and unanswered
  // Corrected latency quantiles of the phase's completed jobs, ms: p -> value.
  std::map<double, double> latency_ms;
  QualitySeen quality;  // of the jobs the phase sent
};

struct DrillRecord {
  std::vector<DrillEvent> events;  // in time order
  // Alert states as seen: (t_ms, alertname, "pending" | "firing" | "resolved").
  struct AlertChange {
    std::int64_t t_ms = 0;
    std::string alert;
    std::string state;
  };
  std::vector<AlertChange> alerts;
  struct HealthSample {
    std::int64_t t_ms = 0;
    std::string status;  // HEALTHY, WARNING, CRITICAL, UNKNOWN, or "unreachable"
  };
  std::vector<HealthSample> health;
  std::vector<PhaseLoad> phases;
  std::int64_t end_ms = 0;
  // From the ledger, after the resume.
  std::int64_t lost_jobs = 0;
  QualitySeen quality;  // of every phase's jobs

  // First time of an event ("start", "hog.start", "alert.X.firing", ...).
  std::optional<std::int64_t> EventTime(const std::string& name) const;
};

struct Verdict {
  std::string name;
  std::string kind;
  bool held = false;
  bool skipped = false;  // never tried: the drill ended before it could be
  std::string expected;  // the expectation in words
  std::string seen;      // what the drill saw
  std::optional<double> value_seconds;  // a measured time (TTD, TTR, ...), drill seconds
};

Verdict Judge(const Expectation& expectation, const DrillRecord& record);

}  // namespace firedrill::engine
