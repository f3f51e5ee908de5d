// How a workload is described in scenario files: the arrival processes the
// load generator offers and the shape of the jobs it sends. The scenario
// format embeds these; the generator (workload issue) implements them.
//
// Immutable after first use; thread-safe to read.
#pragma once

#include <vector>

#include "firedrill/core/spec.h"

namespace firedrill::workload {

// One variant per arrival process: constant, poisson, ramp, steps, spike,
// trace, closed.
const std::vector<spec::Variant>& ArrivalProcesses();

// One entry of the job mix: a weight, the dataset shape and the mode.
spec::SchemaPtr JobShapeSchema();

// Job modes the pipeline accepts.
const std::vector<std::string>& JobModes();

}  // namespace firedrill::workload
