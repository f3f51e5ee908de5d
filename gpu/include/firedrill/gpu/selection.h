// A whole HSOF feature-selection job: stage 1, 2 and 3 in a row, with the
// settings of the job's mode, its timings and its quality score.
#pragma once

#include <functional>
#include <string_view>

#include "firedrill/core/status.h"
#include "firedrill/gpu/dataset.h"
#include "firedrill/gpu/metamodel.h"
#include "firedrill/gpu/stage1.h"
#include "firedrill/gpu/stage2.h"
#include "firedrill/gpu/stage3.h"

namespace firedrill::gpu {

// fast: fewer trees and rounds, 3 folds; balanced: the defaults; accurate:
// more trees, rounds and real evaluations, 10 folds.
enum class Mode { kFast, kBalanced, kAccurate };

std::string_view ModeName(Mode mode);
bool ParseMode(std::string_view text, Mode* mode);

struct SelectionOptions {
  Stage1Options stage1;
  Stage2Options stage2;
  Stage3Options stage3;
};
SelectionOptions OptionsForMode(Mode mode, std::uint64_t seed);

struct SelectionResult {
  Stage1Result stage1;
  Stage2Result stage2;
  Stage3Result stage3;
  double stage_seconds[3] = {};
  double quality = 0;  // SelectionQuality against the dataset's planted features
};

struct SelectionWorkspace {
  Stage1Workspace stage1;
  Stage2Workspace stage2;
  Stage3Workspace stage3;
};

// The best cross-validated R^2 any model could reach on a synthetic dataset:
// the signal's share of the target's variance.
double OracleR2(const DatasetSpec& spec);

// Told when each stage (1 to 3) starts and ends: what the pipeline uses to
// publish how long the stage in flight has run, to hold a stage (a stall
// fault), to fail it (error injection) and to slow it by the device's
// throttle. A status other than OK from `started` ends the job with it.
// Either may be empty.
struct StageHooks {
  std::function<Status(int stage)> started;
  std::function<void(int stage, double seconds)> finished;
};

Result<SelectionResult> RunSelection(const Dataset& dataset, const Metamodel& metamodel,
                                     const SelectionOptions& options, SelectionWorkspace* workspace,
                                     const StageHooks& hooks = {});

}  // namespace firedrill::gpu
