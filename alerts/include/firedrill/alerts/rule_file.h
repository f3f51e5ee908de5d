// Prometheus rule files (the `groups:` YAML that Prometheus and promtool
// read): loading, with the structural checks `promtool check rules` makes,
// and errors that name file, line and column. Expression evaluation comes
// with the PromQL engine; here an expression is kept as text.
//
// Thread-safety: values; LoadRuleFile touches only the file it is given.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts {

struct SourcePosition {
  int line = 0;  // 1-based
  int column = 0;
};

struct Rule {
  std::string alert;   // alerting rule name; empty for a recording rule
  std::string record;  // recording rule name; empty for an alerting rule
  std::string expr;
  Duration for_duration{0};
  Duration keep_firing_for{0};
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  SourcePosition position;
  SourcePosition expr_position;  // where the expression's text starts
};

struct RuleGroup {
  std::string name;
  Duration interval{0};  // 0: the global evaluation interval
  std::vector<Rule> rules;
  SourcePosition position;
};

struct RuleFile {
  std::string path;
  std::vector<RuleGroup> groups;

  // Every alerting rule's name, in file order (names may repeat, as in Prometheus).
  std::vector<std::string> AlertNames() const;
};

// Reads and checks a rule file. On failure the status message is one line
// per problem, each "path:line:column: what is wrong".
Result<RuleFile> LoadRuleFile(const std::string& path);
Result<RuleFile> ParseRuleFile(const std::string& path, const std::string& text);

// The rule file's text with every duration divided by `time_scale` (group
// intervals, `for`, `keep_firing_for`, and range windows, subquery steps and
// offsets in expressions), in ms: a compressed drill's rules for a
// Prometheus that runs in real time. InvalidArgument for text that is not
// YAML with groups.
Result<std::string> ScaleRuleFile(const std::string& text, double time_scale);

}  // namespace firedrill::alerts
