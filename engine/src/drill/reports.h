// Where a drill's reports go: result.json always, and the formats the
// scenario or the command line ask for (reports/ writes each).
#pragma once

#include "firedrill/engine/drill.h"

namespace firedrill::engine {

inline constexpr int kResultSchemaVersion = 1;

// Writes every format the options (or the scenario) ask for into out_dir,
// and notes each file in outcome.reports.
void WriteReports(const Scenario& scenario, const DrillOptions& options, DrillOutcome& outcome);

}  // namespace firedrill::engine
