// `firedrill rules lint`: finds alert rules that can never fire, or that fire
// on an idle target, by checking them against what a target really exposes:
//   - a metric name no target exposes (with the closest exposed name);
//   - a selector whose label matchers match none of the exposed series;
//   - a division or comparison whose two sides share no label set to match on;
//   - an alert that fires when the target is at rest (its counters flat, its
//     gauges as exposed), which pages someone on every quiet night.
// The exposition (one scrape of a URL, or a file) is held still for an hour of
// 15 s samples, so rates, increases and `for` see an idle target.
//
// Thread-safety: functions on values; a URL source is scraped once per call.
#pragma once

#include <string>
#include <vector>

#include "firedrill/alerts/rule_file.h"
#include "firedrill/alerts/series_store.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts {

struct LintSource {
  std::string location;  // http(s)://host:port/metrics, or a file in the text format
  std::string job;       // the job label Prometheus would add; empty leaves job/instance unchecked
};

struct LintFinding {
  enum class Kind {
    kUnknownMetric,
    kNoMatchingSeries,
    kNoMatchingLabels,
    kEvaluationError,
    kFiresWhenIdle
  };
  Kind kind = Kind::kUnknownMetric;
  std::string file;
  int line = 0;
  int column = 0;
  std::string rule;  // "alert X" or "record Y"
  std::string message;

  // "file:line:column: alert X: message"
  std::string ToString() const;
};
std::string_view LintKindName(LintFinding::Kind kind);  // "unknown-metric", ...

// Reads every source into `store` as an hour of idle history ending at
// `end_ms`. kUnavailable when a URL does not answer; kInvalidArgument with a
// placed error for a bad file.
Status LoadIdleTarget(const std::vector<LintSource>& sources, std::int64_t end_ms,
                      SeriesStore& store);

// Checks every rule of `files` against the idle target in `store`.
std::vector<LintFinding> LintRules(const std::vector<RuleFile>& files, SeriesStore& store,
                                   const std::vector<LintSource>& sources, std::int64_t end_ms);

}  // namespace firedrill::alerts
