// `firedrill rules test`: runs promtool's rule unit-test files (rule_files,
// evaluation_interval, group_eval_order, tests with input_series in the
// expanding notation, alert_rule_test, promql_expr_test) and reaches the
// verdict `promtool test rules` 2.42 reaches, printing results in its format:
// progress on `out`, failures on `err`.
//
// Beyond promtool, opt-in through RulesTestOptions: pending alerts may be
// asserted (an `exp_state: pending` entry in exp_alerts), floats compared
// with a relative tolerance, and every alert's state timeline printed.
//
// Thread-safety: functions on values; each call reads only its files.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "firedrill/alerts/exposition.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts {

struct RulesTestOptions {
  bool pending = false;   // compare pending alerts too; allow exp_state
  double tolerance = 0;   // relative; 0 compares exactly, as promtool does
  bool timeline = false;  // print each alert's state changes per test group
};

struct RulesTestOutcome {
  int files = 0;
  int failed = 0;   // files with failing tests
  int invalid = 0;  // files that could not be read, parsed or loaded
};

RulesTestOutcome RunRulesTests(const std::vector<std::string>& files,
                               const RulesTestOptions& options, std::ostream& out,
                               std::ostream& err);

// One input series value list in promtool's expanding notation
// ("1+2x3 _ stale _x2 4"): the values in order, nullopt for a gap. Errors
// name the column.
struct SeriesValue {
  bool omitted = false;
  double value = 0;  // may be the stale marker
};
Result<std::vector<SeriesValue>> ExpandSeriesValues(std::string_view text);

// "metric{a="b"}" or "{__name__="m", a="b"}" as a sorted label set.
Result<LabelSet> ParseSeriesLabels(std::string_view text);

}  // namespace firedrill::alerts
