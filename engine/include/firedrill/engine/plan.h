// What a scenario would do, in words: the resolved parameters, the phases and
// faults on one timeline at the scenario's time scale, the runbook and the
// verdicts. `firedrill plan` prints it; reports will embed it.
#pragma once

#include <ostream>

#include "firedrill/engine/scenario.h"

namespace firedrill::engine {

void DescribePlan(const Scenario& scenario, std::ostream& out);

// A duration as the drill will run it: divided by the time scale.
Duration Scaled(Duration duration, double time_scale);

}  // namespace firedrill::engine
