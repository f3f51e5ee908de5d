// Rule evaluation as Prometheus 2.42's rules manager does it: groups in
// order, rules in order within a group (each sees what earlier ones wrote),
// recording rules appending their series, alerting rules moving alerts
// pending -> firing -> inactive with `for` and `keep_firing_for`, labels and
// annotations expanded from templates with $value and $labels, ALERTS and
// ALERTS_FOR_STATE series written back, and stale markers for series a rule
// stopped returning. Every state change is kept as a timeline for drills.
//
// Thread-safety: a RuleEngine is used from one thread; the SeriesStore it
// writes to may be shared.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "firedrill/alerts/promql.h"
#include "firedrill/alerts/rule_file.h"
#include "firedrill/alerts/series_store.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts {

enum class AlertState { kInactive, kPending, kFiring };
std::string_view AlertStateName(AlertState state);  // "inactive", "pending", "firing"

struct Alert {
  std::string alertname;
  LabelSet labels;  // sorted, "alertname" included
  LabelSet annotations;
  AlertState state = AlertState::kInactive;
  double value = 0;
  std::int64_t active_at_ms = 0;
  std::int64_t fired_at_ms = -1;
  std::int64_t resolved_at_ms = -1;
  std::int64_t keep_firing_since_ms = -1;
};

struct AlertTransition {
  std::int64_t t_ms = 0;
  std::string alertname;
  LabelSet labels;
  AlertState from = AlertState::kInactive;
  AlertState to = AlertState::kInactive;
  double value = 0;
};

struct RuleEngineOptions {
  std::int64_t default_interval_ms = 60 * 1000;
  LabelSet external_labels;
  std::string external_url;
  promql::EvalOptions eval;
};

class RuleEngine {
 public:
  // Parses every rule's expression; errors name the file and line of the rule.
  static Result<std::unique_ptr<RuleEngine>> Create(std::vector<RuleFile> files,
                                                    RuleEngineOptions options);

  // Evaluates every group at `t_ms`, in the order given (group_eval_order),
  // or in file order. The first failing rule's error is returned after the
  // remaining rules ran, as Prometheus records it per rule.
  Status EvaluateAll(SeriesStore& store, std::int64_t t_ms);
  // Evaluates one group (index into groups()) at `t_ms`.
  Status EvaluateGroup(std::size_t group, SeriesStore& store, std::int64_t t_ms);

  // Reorders groups by name; unnamed ones keep their place after the named.
  Status SetGroupOrder(const std::vector<std::string>& names);

  struct GroupInfo {
    std::string file;
    std::string name;
    std::int64_t interval_ms = 0;
  };
  std::vector<GroupInfo> groups() const;

  // Alerts currently pending or firing (and, with include_inactive, resolved
  // ones Prometheus still remembers), in rule order.
  std::vector<Alert> Alerts(bool include_inactive = false) const;
  std::vector<Alert> AlertsOf(std::string_view alertname, AlertState state) const;
  const std::vector<AlertTransition>& Timeline() const { return timeline_; }
  // Rules whose last evaluation failed, as (rule name, error).
  std::vector<std::pair<std::string, std::string>> RuleErrors() const;

  ~RuleEngine();

 private:
  struct CompiledRule;
  struct CompiledGroup;
  RuleEngine() = default;
  Status EvaluateRule(CompiledRule& rule, SeriesStore& store, std::int64_t t_ms);

  RuleEngineOptions options_;
  std::vector<std::unique_ptr<CompiledGroup>> groups_;
  std::vector<AlertTransition> timeline_;
};

// Go text/template as Prometheus expands alert labels and annotations: the
// $labels, $value, $externalLabels and $externalURL variables (and .Labels,
// .Value), pipelines, printf and the humanize family. A template error gives
// Prometheus's "<error expanding template: ...>" text.
std::string ExpandAlertTemplate(const std::string& text, const LabelSet& labels, double value,
                                const LabelSet& external_labels, const std::string& external_url);

}  // namespace firedrill::alerts
