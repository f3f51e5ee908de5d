#include "firedrill/alerts/rule_file.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "firedrill/core/units.h"

namespace firedrill::alerts {
namespace {

class Problems {
 public:
  explicit Problems(std::string path) : path_(std::move(path)) {}
  void Add(const YAML::Mark& mark, const std::string& message) {
    lines_ << path_ << ':' << mark.line + 1 << ':' << mark.column + 1 << ": " << message << '\n';
    ++count_;
  }
  bool any() const { return count_ > 0; }
  std::string text() const {
    std::string out = lines_.str();
    if (!out.empty()) out.pop_back();
    return out;
  }

 private:
  std::string path_;
  std::ostringstream lines_;
  int count_ = 0;
};

SourcePosition PositionOf(const YAML::Node& node) {
  return SourcePosition{node.Mark().line + 1, node.Mark().column + 1};
}

std::map<std::string, std::string> StringMap(const YAML::Node& node, std::string_view what,
                                             Problems& problems) {
  std::map<std::string, std::string> out;
  if (!node) return out;
  if (!node.IsMap()) {
    problems.Add(node.Mark(), std::string(what) + " must be a mapping of names to strings");
    return out;
  }
  for (const auto& entry : node) {
    if (!entry.second.IsScalar()) {
      problems.Add(entry.second.Mark(), std::string(what) + " values must be strings");
      continue;
    }
    out[entry.first.Scalar()] = entry.second.Scalar();
  }
  return out;
}

Duration DurationField(const YAML::Node& node, std::string_view what, Problems& problems) {
  if (!node) return Duration(0);
  if (!node.IsScalar()) {
    problems.Add(node.Mark(), std::string(what) + " must be a duration like 30s or 5m");
    return Duration(0);
  }
  auto parsed = ParseDuration(node.Scalar());
  if (!parsed.ok()) {
    problems.Add(node.Mark(), std::string(what) + ": " + parsed.status().message());
    return Duration(0);
  }
  return *parsed;
}

void CheckKeys(const YAML::Node& map, const std::set<std::string>& allowed, std::string_view where,
               Problems& problems) {
  for (const auto& entry : map) {
    const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
    if (!allowed.count(key)) {
      problems.Add(entry.first.Mark(), "unknown field \"" + key + "\" in " + std::string(where));
    }
  }
}

Rule ParseRule(const YAML::Node& node, Problems& problems) {
  Rule rule;
  rule.position = PositionOf(node);
  if (!node.IsMap()) {
    problems.Add(node.Mark(), "a rule must be a mapping with alert or record, and expr");
    return rule;
  }
  CheckKeys(node, {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"},
            "rule", problems);
  const YAML::Node alert = node["alert"];
  const YAML::Node record = node["record"];
  if (alert && record) problems.Add(node.Mark(), "a rule has either alert or record, not both");
  if (!alert && !record) problems.Add(node.Mark(), "a rule needs alert or record");
  if (alert && alert.IsScalar()) rule.alert = alert.Scalar();
  if (record && record.IsScalar()) rule.record = record.Scalar();
  if ((alert && !alert.IsScalar()) || (record && !record.IsScalar())) {
    problems.Add(node.Mark(), "alert and record must be names");
  }
  const YAML::Node expr = node["expr"];
  if (!expr || !expr.IsScalar() || expr.Scalar().empty()) {
    problems.Add(node.Mark(), "rule " + (rule.alert.empty() ? rule.record : rule.alert) +
                                  " needs a non-empty expr");
  } else {
    rule.expr = expr.Scalar();
    rule.expr_position = PositionOf(expr);
  }
  rule.for_duration = DurationField(node["for"], "for", problems);
  rule.keep_firing_for = DurationField(node["keep_firing_for"], "keep_firing_for", problems);
  if (record && (node["for"] || node["annotations"] || node["keep_firing_for"])) {
    problems.Add(node.Mark(), "recording rule " + rule.record +
                                  " cannot have for, keep_firing_for or annotations");
  }
  rule.labels = StringMap(node["labels"], "labels", problems);
  rule.annotations = StringMap(node["annotations"], "annotations", problems);
  return rule;
}

}  // namespace

std::vector<std::string> RuleFile::AlertNames() const {
  std::vector<std::string> names;
  for (const RuleGroup& group : groups) {
    for (const Rule& rule : group.rules) {
      if (!rule.alert.empty()) names.push_back(rule.alert);
    }
  }
  return names;
}

Result<RuleFile> ParseRuleFile(const std::string& path, const std::string& text) {
  Problems problems(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    problems.Add(e.mark, "not valid YAML: " + e.msg);
    return FD_STATUS(StatusCode::kInvalidArgument, problems.text());
  }
  RuleFile file;
  file.path = path;
  try {
    if (!root.IsMap() || !root["groups"]) {
      problems.Add(root.Mark(), "a rule file is a mapping with a groups list");
      return FD_STATUS(StatusCode::kInvalidArgument, problems.text());
    }
    CheckKeys(root, {"groups"}, "rule file", problems);
    const YAML::Node groups = root["groups"];
    if (!groups.IsSequence()) problems.Add(groups.Mark(), "groups must be a list");
    std::set<std::string> group_names;
    for (const YAML::Node& group_node : groups.IsSequence() ? groups : YAML::Node()) {
      RuleGroup group;
      group.position = PositionOf(group_node);
      if (!group_node.IsMap()) {
        problems.Add(group_node.Mark(), "a group must be a mapping with name and rules");
        continue;
      }
      CheckKeys(group_node, {"name", "interval", "rules", "limit"}, "group", problems);
      const YAML::Node name = group_node["name"];
      if (!name || !name.IsScalar() || name.Scalar().empty()) {
        problems.Add(group_node.Mark(), "a group needs a name");
      } else {
        group.name = name.Scalar();
        if (!group_names.insert(group.name).second) {
          problems.Add(name.Mark(), "group name \"" + group.name + "\" is repeated");
        }
      }
      group.interval = DurationField(group_node["interval"], "interval", problems);
      const YAML::Node rules = group_node["rules"];
      if (rules && !rules.IsSequence()) problems.Add(rules.Mark(), "rules must be a list");
      if (rules && rules.IsSequence()) {
        for (const YAML::Node& rule_node : rules)
          group.rules.push_back(ParseRule(rule_node, problems));
      }
      file.groups.push_back(std::move(group));
    }
  } catch (const YAML::Exception& e) {
    problems.Add(e.mark, e.msg);
  }
  if (problems.any()) return FD_STATUS(StatusCode::kInvalidArgument, problems.text());
  return file;
}

Result<RuleFile> LoadRuleFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FD_STATUS(StatusCode::kNotFound, path + ": cannot open rules file");
  std::ostringstream text;
  text << in.rdbuf();
  return ParseRuleFile(path, text.str());
}

namespace {

// "5m" -> "15000ms" at scale 20; text that is not a duration stays.
std::string ScaleDuration(const std::string& text, double scale) {
  Result<Duration> parsed = ParseDuration(text);
  if (!parsed.ok()) return text;
  const double ms = static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(*parsed).count());
  // A window never shrinks to nothing: Prometheus reads 0 as none at all.
  return std::to_string(ms == 0 ? 0 : std::max<long long>(1, std::llround(ms / scale))) + "ms";
}

bool DurationChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Range windows ([5m], [10m:1m]) and offsets (offset 5m) scaled, in one
// linear pass that leaves quoted strings (label values) alone.
std::string ScaleExpression(const std::string& expr, double scale) {
  std::string out;
  out.reserve(expr.size());
  std::size_t i = 0;
  const std::size_t n = expr.size();
  auto duration_at = [&](std::size_t from) {
    std::size_t end = from;
    while (end < n && DurationChar(expr[end])) ++end;
    return end;
  };
  while (i < n) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {  // a string: copied as it is
      std::size_t end = i + 1;
      while (end < n && expr[end] != c) end += (expr[end] == '\\' && c != '`') ? 2 : 1;
      end = std::min(end + 1, n);
      out.append(expr, i, end - i);
      i = end;
      continue;
    }
    if (c == '[') {
      const std::size_t first_end = duration_at(i + 1);
      std::size_t close = first_end;
      std::string scaled = "[" + ScaleDuration(expr.substr(i + 1, first_end - i - 1), scale);
      if (close < n && expr[close] == ':') {
        const std::size_t step_end = duration_at(close + 1);
        scaled += ":" + (step_end > close + 1 ? ScaleDuration(expr.substr(close + 1, step_end - close - 1), scale) : "");
        close = step_end;
      }
      if (first_end > i + 1 && close < n && expr[close] == ']') {
        out += scaled + "]";
        i = close + 1;
        continue;
      }
    }
    const bool word_start = i == 0 || !(std::isalnum(static_cast<unsigned char>(expr[i - 1])) || expr[i - 1] == '_');
    if (word_start && expr.compare(i, 6, "offset") == 0 && i + 6 < n && std::isspace(static_cast<unsigned char>(expr[i + 6]))) {
      std::size_t at = i + 6;
      while (at < n && std::isspace(static_cast<unsigned char>(expr[at]))) ++at;
      const bool negative = at < n && expr[at] == '-';
      const std::size_t from = at + (negative ? 1 : 0);
      const std::size_t end = duration_at(from);
      if (end > from) {
        out += "offset " + std::string(negative ? "-" : "") + ScaleDuration(expr.substr(from, end - from), scale);
        i = end;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace

Result<std::string> ScaleRuleFile(const std::string& text, double time_scale) try {
  YAML::Node root = YAML::Load(text);
  YAML::Node groups = root["groups"];
  if (!groups || !groups.IsSequence()) return FD_STATUS(StatusCode::kInvalidArgument, "rule file: no groups");
  for (YAML::Node group : groups) {
    if (group["interval"]) group["interval"] = ScaleDuration(group["interval"].as<std::string>(), time_scale);
    for (YAML::Node rule : group["rules"]) {
      for (const char* key : {"for", "keep_firing_for"}) {
        if (rule[key]) rule[key] = ScaleDuration(rule[key].as<std::string>(), time_scale);
      }
      if (rule["expr"]) rule["expr"] = ScaleExpression(rule["expr"].as<std::string>(), time_scale);
    }
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
} catch (const YAML::Exception& error) {
  return FD_STATUS(StatusCode::kInvalidArgument, std::string("rule file: ") + error.what());
}

}  // namespace firedrill::alerts
