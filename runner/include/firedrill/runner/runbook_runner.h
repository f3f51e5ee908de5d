// Runs a runbook's typed steps against the target, in order, each with its
// timeout: Admin calls over gRPC, HTTP requests, commands given as argument
// lists (never through a shell), waits, operator prompts, a target restart.
// Every step's outcome is kept for the drill's timeline and report.
//
// Thread-safety: one run at a time per context.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/engine/scenario.h"

namespace firedrill::runner {

struct RunbookContext {
  std::string http;        // the target's HTTP API base URL (paths in `http` steps are relative to it)
  std::string admin_grpc;  // host:port of the Admin service
  // The drill's clock (its ScaledClock when compressed): `wait` steps wait
  // on it, so their durations are drill time.
  Clock* clock = nullptr;
  // Restarts the target (restartTarget), drained or not; empty where the
  // target cannot be restarted by Firedrill (remote).
  std::function<Status(bool drained)> restart_target;
  // Set when the drill aborts: no further step starts, and the one in
  // progress ends (a wait, a command killed with its group, an HTTP or Admin
  // call abandoned) with a "cancelled" outcome. A restartTarget in progress
  // runs to its end (a stop and a start, bounded by the target's timeouts).
  const std::atomic<bool>* cancelled = nullptr;
};

struct StepOutcome {
  std::string name;
  std::string action;
  bool ok = false;
  std::string detail;  // what happened: the answer, the exit code, why it failed
  WallTime started{};
  Duration took{0};
};

struct RunbookOutcome {
  std::vector<StepOutcome> steps;  // the ones that ran, in order
  bool ok = true;                  // every step that ran succeeded, or was allowed to fail
};

// Runs one step; never throws, and a step that fails says why in `detail`.
StepOutcome RunStep(const engine::RunbookStep& step, const RunbookContext& context);
// Runs the steps in order; stops at the first failure unless that step has
// continueOnError.
RunbookOutcome RunRunbook(const engine::Runbook& runbook, const RunbookContext& context);

}  // namespace firedrill::runner
