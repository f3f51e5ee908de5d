#include "firedrill/alerts/rule_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <variant>

namespace firedrill::alerts {
namespace {

constexpr std::int64_t kResolvedRetentionMs = 15 * 60 * 1000;

std::int64_t Millis(Duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// ------------------------------------------------------------ templates

using TemplateValue = std::variant<std::string, double, bool, LabelSet>;

struct TemplateError {
  std::string message;
};

std::string GoPrintG(double value, int precision) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
  return buffer;
}

std::string Print(const TemplateValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  if (const auto* d = std::get_if<double>(&value)) return promql::FormatGoFloat(*d, 'g');
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  // Go prints a map[string]string as map[k:v k:v], keys sorted.
  std::string out = "map[";
  const auto& labels = std::get<LabelSet>(value);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ' ';
    out += labels[i].first + ":" + labels[i].second;
  }
  return out + "]";
}

double ToFloat(const TemplateValue& value) {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* s = std::get_if<std::string>(&value)) {
    char* end = nullptr;
    const double parsed = std::strtod(s->c_str(), &end);
    if (s->empty() || end != s->c_str() + s->size()) {
      throw TemplateError{"strconv.ParseFloat: parsing \"" + *s + "\": invalid syntax"};
    }
    return parsed;
  }
  throw TemplateError{"can't convert value to float"};
}

bool Truthy(const TemplateValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return !s->empty();
  if (const auto* d = std::get_if<double>(&value)) return *d != 0;
  if (const auto* b = std::get_if<bool>(&value)) return *b;
  return !std::get<LabelSet>(value).empty();
}

std::string Humanize(double v, bool binary) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return GoPrintG(v, 4);
  if (binary) {
    if (std::fabs(v) <= 1) return GoPrintG(v, 4);
    std::string prefix;
    for (const char* p : {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"}) {
      if (std::fabs(v) < 1024) break;
      prefix = p;
      v /= 1024;
    }
    return GoPrintG(v, 4) + prefix;
  }
  std::string prefix;
  if (std::fabs(v) >= 1) {
    for (const char* p : {"k", "M", "G", "T", "P", "E", "Z", "Y"}) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return GoPrintG(v, 4) + prefix;
  }
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return GoPrintG(v, 4) + prefix;
}

std::string HumanizeDuration(double v) {
  if (std::isnan(v) || std::isinf(v)) return GoPrintG(v, 4);
  if (v == 0) return GoPrintG(v, 4) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    const auto duration = static_cast<std::int64_t>(v);
    const std::int64_t seconds = duration % 60, minutes = (duration / 60) % 60,
                       hours = (duration / 3600) % 24, days = duration / 86400;
    char buffer[128];
    if (days != 0) {
      std::snprintf(buffer, sizeof buffer, "%s%lldd %lldh %lldm %llds", sign.c_str(),
                    static_cast<long long>(days), static_cast<long long>(hours),
                    static_cast<long long>(minutes), static_cast<long long>(seconds));
    } else if (hours != 0) {
      std::snprintf(buffer, sizeof buffer, "%s%lldh %lldm %llds", sign.c_str(),
                    static_cast<long long>(hours), static_cast<long long>(minutes),
                    static_cast<long long>(seconds));
    } else if (minutes != 0) {
      std::snprintf(buffer, sizeof buffer, "%s%lldm %llds", sign.c_str(),
                    static_cast<long long>(minutes), static_cast<long long>(seconds));
    } else {
      return sign + GoPrintG(v, 4) + "s";
    }
    return buffer;
  }
  std::string prefix;
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return GoPrintG(v, 4) + prefix + "s";
}

// Go's fmt.Sprintf for the verbs templates use with numbers and strings.
std::string GoSprintf(const std::string& format, const std::vector<TemplateValue>& args) {
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    std::size_t j = i + 1;
    while (j < format.size() &&
           std::string_view("+-# 0123456789.").find(format[j]) != std::string_view::npos)
      ++j;
    if (j >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    const char verb = format[j];
    const std::string flags = format.substr(i + 1, j - i - 1);
    i = j;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const TemplateValue& arg = args[next++];
    char buffer[256];
    if (verb == 'v' || (verb == 's' && std::holds_alternative<std::string>(arg))) {
      out += Print(arg);
    } else if (std::string_view("feEgG").find(verb) != std::string_view::npos &&
               std::holds_alternative<double>(arg)) {
      const double v = std::get<double>(arg);
      if (std::isnan(v) || std::isinf(v)) {
        out += promql::FormatGoFloat(v, 'g');
      } else {
        std::snprintf(buffer, sizeof buffer, ("%" + flags + verb).c_str(), v);
        out += buffer;
      }
    } else if (verb == 'd' && std::holds_alternative<double>(arg)) {
      out += "%!d(float64=" + promql::FormatGoFloat(std::get<double>(arg), 'g') + ")";
    } else if (verb == 'q' && std::holds_alternative<std::string>(arg)) {
      out += '"' + std::get<std::string>(arg) + '"';
    } else {
      out += std::string("%!") + verb + "(" + Print(arg) + ")";
    }
  }
  if (next < args.size()) {
    out += "%!(EXTRA ";
    for (std::size_t k = next; k < args.size(); ++k) {
      if (k > next) out += ", ";
      out += std::holds_alternative<double>(args[k]) ? "float64=" : "string=";
      out += Print(args[k]);
    }
    out += ")";
  }
  return out;
}

class TemplateExpander {
 public:
  TemplateExpander(const std::string& text, const LabelSet& labels, double value,
                   const LabelSet& external_labels, const std::string& external_url)
      : text_(text),
        labels_(labels),
        value_(value),
        external_labels_(external_labels),
        external_url_(external_url) {}

  std::string Expand() {
    Tokenize();
    std::size_t position = 0;
    std::string out;
    const std::string stop = Run(position, out, true);
    if (!stop.empty()) throw TemplateError{"unexpected {{" + stop + "}}"};
    return out;
  }

 private:
  struct Piece {
    bool action;
    std::string text;
  };

  void Tokenize() {
    std::size_t i = 0;
    while (i < text_.size()) {
      const std::size_t open = text_.find("{{", i);
      if (open == std::string::npos) {
        pieces_.push_back({false, text_.substr(i)});
        break;
      }
      std::string literal = text_.substr(i, open - i);
      std::size_t body = open + 2;
      if (body < text_.size() && text_[body] == '-' && body + 1 < text_.size() &&
          std::isspace(static_cast<unsigned char>(text_[body + 1]))) {
        while (!literal.empty() && std::isspace(static_cast<unsigned char>(literal.back()))) {
          literal.pop_back();
        }
        ++body;
      }
      pieces_.push_back({false, literal});
      const std::size_t close = text_.find("}}", body);
      if (close == std::string::npos) throw TemplateError{"unclosed action"};
      std::string action = text_.substr(body, close - body);
      i = close + 2;
      if (!action.empty() && action.back() == '-' && action.size() >= 2 &&
          std::isspace(static_cast<unsigned char>(action[action.size() - 2]))) {
        action.pop_back();
        while (i < text_.size() && std::isspace(static_cast<unsigned char>(text_[i]))) ++i;
      }
      pieces_.push_back({true, action});
    }
  }

  static std::string Trim(const std::string& s) {
    const auto begin = s.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos) return "";
    return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
  }

  // Runs pieces from `position` until an else/end at this level, which it
  // returns ("" at the end of the text).
  std::string Run(std::size_t& position, std::string& out, bool emit) {
    while (position < pieces_.size()) {
      const Piece& piece = pieces_[position++];
      if (!piece.action) {
        if (emit) out += piece.text;
        continue;
      }
      const std::string action = Trim(piece.text);
      if (action.rfind("/*", 0) == 0) continue;
      if (action == "end" || action == "else") return action;
      if (action.rfind("if ", 0) == 0) {
        const bool condition = emit && Truthy(Pipeline(action.substr(3)));
        std::string stop = Run(position, out, emit && condition);
        if (stop == "else") stop = Run(position, out, emit && !condition);
        if (stop != "end") throw TemplateError{"missing {{end}} for {{if}}"};
        continue;
      }
      if (action.rfind("range", 0) == 0 || action.rfind("with", 0) == 0 ||
          action.rfind("define", 0) == 0 || action.rfind("template", 0) == 0 ||
          action.rfind("block", 0) == 0) {
        throw TemplateError{"unsupported action: " + action};
      }
      if (emit) {
        const TemplateValue value = Pipeline(action);
        // A variable declaration prints nothing.
        if (action.find(":=") == std::string::npos) out += Print(value);
      }
    }
    return "";
  }

  std::vector<std::string> SplitWords(const std::string& command) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < command.size()) {
      if (std::isspace(static_cast<unsigned char>(command[i]))) {
        ++i;
        continue;
      }
      std::size_t j = i;
      if (command[i] == '"' || command[i] == '`') {
        const char quote = command[i];
        ++j;
        while (j < command.size() && command[j] != quote) {
          if (quote == '"' && command[j] == '\\') ++j;
          ++j;
        }
        if (j >= command.size()) throw TemplateError{"unterminated quoted string"};
        ++j;
      } else {
        while (j < command.size() && !std::isspace(static_cast<unsigned char>(command[j]))) ++j;
      }
      words.push_back(command.substr(i, j - i));
      i = j;
    }
    return words;
  }

  TemplateValue Operand(const std::string& word) {
    if (word.front() == '"' || word.front() == '`') {
      std::string value;
      for (std::size_t i = 1; i + 1 < word.size(); ++i) {
        if (word.front() == '"' && word[i] == '\\' && i + 2 < word.size()) {
          const char e = word[++i];
          value += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        } else {
          value += word[i];
        }
      }
      return value;
    }
    if (std::isdigit(static_cast<unsigned char>(word.front())) || word.front() == '-' ||
        word.front() == '+') {
      char* end = nullptr;
      const double number = std::strtod(word.c_str(), &end);
      if (end == word.c_str() + word.size()) return number;
    }
    if (word == "true" || word == "false") return word == "true";
    auto field = [&](const LabelSet& map, const std::string& rest) -> TemplateValue {
      if (rest.empty()) return map;
      const std::string key = rest.substr(1);
      for (const auto& label : map) {
        if (label.first == key) return label.second;
      }
      return std::string();  // missingkey=zero
    };
    auto starts = [&](std::string_view prefix) {
      return word.rfind(prefix, 0) == 0 &&
             (word.size() == prefix.size() || word[prefix.size()] == '.');
    };
    if (starts("$labels")) return field(labels_, word.substr(7));
    if (starts(".Labels")) return field(labels_, word.substr(7));
    if (starts("$externalLabels")) return field(external_labels_, word.substr(15));
    if (starts(".ExternalLabels")) return field(external_labels_, word.substr(15));
    if (word == "$value" || word == ".Value") return value_;
    if (word == "$externalURL" || word == ".ExternalURL") return external_url_;
    if (word == "$" || word == ".") throw TemplateError{"unsupported operand " + word};
    throw TemplateError{"undefined variable or function \"" + word + "\""};
  }

  TemplateValue Call(const std::string& name, std::vector<TemplateValue> args) {
    auto want = [&](std::size_t n) {
      if (args.size() != n) {
        throw TemplateError{"wrong number of args for " + name + ": want " + std::to_string(n) +
                            " got " + std::to_string(args.size())};
      }
    };
    if (name == "humanize") return want(1), Humanize(ToFloat(args[0]), false);
    if (name == "humanize1024") return want(1), Humanize(ToFloat(args[0]), true);
    if (name == "humanizeDuration") return want(1), HumanizeDuration(ToFloat(args[0]));
    if (name == "humanizePercentage") return want(1), GoPrintG(ToFloat(args[0]) * 100, 4) + "%";
    if (name == "toUpper" || name == "toLower") {
      want(1);
      std::string s = Print(args[0]);
      for (char& c : s) {
        c = static_cast<char>(name == "toUpper" ? std::toupper(static_cast<unsigned char>(c))
                                                : std::tolower(static_cast<unsigned char>(c)));
      }
      return s;
    }
    if (name == "printf") {
      if (args.empty())
        throw TemplateError{"wrong number of args for printf: want at least 1 got 0"};
      const std::string format = Print(args[0]);
      args.erase(args.begin());
      return GoSprintf(format, args);
    }
    if (name == "print") {
      std::string out;
      for (const auto& arg : args) out += Print(arg);
      return out;
    }
    if (name == "stripPort") {
      want(1);
      const std::string s = Print(args[0]);
      const auto colon = s.rfind(':');
      return colon == std::string::npos ? s : s.substr(0, colon);
    }
    throw TemplateError{"function \"" + name + "\" not defined"};
  }

  TemplateValue Pipeline(const std::string& action) {
    std::string text = action;
    if (const auto declare = text.find(":="); declare != std::string::npos) {
      text = text.substr(declare + 2);
    }
    std::vector<std::string> commands;
    std::size_t start = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '"' && (i == 0 || text[i - 1] != '\\')) quoted = !quoted;
      if (!quoted && text[i] == '|') {
        commands.push_back(text.substr(start, i - start));
        start = i + 1;
      }
    }
    commands.push_back(text.substr(start));
    std::optional<TemplateValue> carried;
    for (const std::string& command : commands) {
      std::vector<std::string> words = SplitWords(command);
      if (words.empty()) throw TemplateError{"missing value for command"};
      const std::string& head = words.front();
      const bool is_function = std::isalpha(static_cast<unsigned char>(head.front())) &&
                               head != "true" && head != "false";
      if (is_function) {
        std::vector<TemplateValue> args;
        for (std::size_t i = 1; i < words.size(); ++i) args.push_back(Operand(words[i]));
        if (carried) args.push_back(*carried);
        carried = Call(head, std::move(args));
      } else {
        if (words.size() > 1 || carried)
          throw TemplateError{"can't give argument to non-function " + head};
        carried = Operand(head);
      }
    }
    return *carried;
  }

  const std::string& text_;
  const LabelSet& labels_;
  double value_;
  const LabelSet& external_labels_;
  const std::string& external_url_;
  std::vector<Piece> pieces_;
};

}  // namespace

std::string ExpandAlertTemplate(const std::string& text, const LabelSet& labels, double value,
                                const LabelSet& external_labels, const std::string& external_url) {
  if (text.find("{{") == std::string::npos) return text;
  try {
    return TemplateExpander(text, labels, value, external_labels, external_url).Expand();
  } catch (const TemplateError& error) {
    return "<error expanding template: " + error.message + ">";
  }
}

std::string_view AlertStateName(AlertState state) {
  switch (state) {
    case AlertState::kInactive:
      return "inactive";
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
  }
  return "?";
}

// ------------------------------------------------------------ the engine

struct RuleEngine::CompiledRule {
  Rule rule;
  std::string file;
  std::shared_ptr<const promql::Expr> expr;
  std::map<LabelSet, Alert> active;            // alerting rules, by final label set
  std::set<LabelSet> series_in_previous_eval;  // for stale markers
  Status last_error;
};

struct RuleEngine::CompiledGroup {
  std::string file;
  std::string name;
  std::int64_t interval_ms = 0;
  std::vector<CompiledRule> rules;
};

RuleEngine::~RuleEngine() = default;

Result<std::unique_ptr<RuleEngine>> RuleEngine::Create(std::vector<RuleFile> files,
                                                       RuleEngineOptions options) {
  std::unique_ptr<RuleEngine> engine(new RuleEngine());
  engine->options_ = std::move(options);
  std::string problems;
  for (RuleFile& file : files) {
    for (RuleGroup& group : file.groups) {
      auto compiled = std::make_unique<CompiledGroup>();
      compiled->file = file.path;
      compiled->name = group.name;
      compiled->interval_ms = group.interval.count() > 0 ? Millis(group.interval)
                                                         : engine->options_.default_interval_ms;
      for (Rule& rule : group.rules) {
        auto expr = promql::Parse(rule.expr);
        if (!expr.ok()) {
          problems +=
              file.path + ":" + std::to_string(rule.expr_position.line) + ":" +
              std::to_string(rule.expr_position.column) + ": " +
              (rule.alert.empty() ? "recording rule " + rule.record : "alert " + rule.alert) +
              ": " + expr.status().message() + "\n";
          continue;
        }
        CompiledRule compiled_rule;
        compiled_rule.rule = std::move(rule);
        compiled_rule.file = file.path;
        compiled_rule.expr = *expr;
        compiled->rules.push_back(std::move(compiled_rule));
      }
      engine->groups_.push_back(std::move(compiled));
    }
  }
  if (!problems.empty()) {
    problems.pop_back();
    return FD_STATUS(StatusCode::kInvalidArgument, problems);
  }
  return engine;
}

Status RuleEngine::SetGroupOrder(const std::vector<std::string>& names) {
  auto rank = [&](const std::string& name) {
    const auto found = std::find(names.begin(), names.end(), name);
    return found == names.end() ? names.size() : static_cast<std::size_t>(found - names.begin());
  };
  for (const std::string& name : names) {
    const bool known = std::any_of(groups_.begin(), groups_.end(),
                                   [&](const auto& group) { return group->name == name; });
    if (!known) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       "group_eval_order names unknown group \"" + name + "\"");
    }
  }
  std::stable_sort(groups_.begin(), groups_.end(),
                   [&](const auto& a, const auto& b) { return rank(a->name) < rank(b->name); });
  return Status::Ok();
}

std::vector<RuleEngine::GroupInfo> RuleEngine::groups() const {
  std::vector<GroupInfo> out;
  for (const auto& group : groups_) out.push_back({group->file, group->name, group->interval_ms});
  return out;
}

Status RuleEngine::EvaluateAll(SeriesStore& store, std::int64_t t_ms) {
  Status first;
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    Status status = EvaluateGroup(i, store, t_ms);
    if (first.ok() && !status.ok()) first = status;
  }
  return first;
}

Status RuleEngine::EvaluateGroup(std::size_t group, SeriesStore& store, std::int64_t t_ms) {
  Status first;
  for (CompiledRule& rule : groups_[group]->rules) {
    Status status = EvaluateRule(rule, store, t_ms);
    rule.last_error = status;
    if (first.ok() && !status.ok()) first = status;
  }
  return first;
}

Status RuleEngine::EvaluateRule(CompiledRule& compiled, SeriesStore& store, std::int64_t t_ms) {
  const Rule& rule = compiled.rule;
  std::optional<Result<promql::QueryResult>> result;
  store.Read([&](const SeriesSource& source) {
    result.emplace(promql::Evaluate(*compiled.expr, source, t_ms, options_.eval));
  });
  if (!result->ok()) return result->status();
  std::vector<promql::EvalSample> samples;
  if ((*result)->type == promql::ValueType::kScalar) {
    samples.push_back({{}, (*result)->scalar, t_ms});
  } else if ((*result)->type == promql::ValueType::kVector) {
    samples = std::move((*result)->vector);
  } else {
    return FD_STATUS(StatusCode::kInvalidArgument, "rule result is not a vector or scalar");
  }

  std::vector<std::pair<LabelSet, double>> output;
  if (!rule.record.empty()) {
    std::set<LabelSet> seen;
    for (promql::EvalSample& sample : samples) {
      LabelSet labels = std::move(sample.labels);
      SetLabel(labels, "__name__", rule.record);
      for (const auto& [name, value] : rule.labels) SetLabel(labels, name, value);
      if (!seen.insert(labels).second) {
        return FD_STATUS(
            StatusCode::kInvalidArgument,
            "vector contains metrics with the same labelset after applying rule labels");
      }
      output.emplace_back(std::move(labels), sample.value);
    }
  } else {
    std::map<LabelSet, Alert> current;
    for (promql::EvalSample& sample : samples) {
      // Templates see the sample's labels, metric name included.
      auto expand = [&](const std::string& text) {
        return ExpandAlertTemplate(text, sample.labels, sample.value, options_.external_labels,
                                   options_.external_url);
      };
      LabelSet labels = sample.labels;
      std::erase_if(labels, [](const auto& label) { return label.first == "__name__"; });
      for (const auto& [name, value] : rule.labels) SetLabel(labels, name, expand(value));
      SetLabel(labels, "alertname", rule.alert);
      Alert alert;
      alert.alertname = rule.alert;
      for (const auto& [name, value] : rule.annotations)
        alert.annotations.emplace_back(name, expand(value));
      alert.state = AlertState::kPending;
      alert.value = sample.value;
      alert.active_at_ms = t_ms;
      alert.labels = labels;
      if (!current.emplace(std::move(labels), std::move(alert)).second) {
        return FD_STATUS(
            StatusCode::kInvalidArgument,
            "vector contains metrics with the same labelset after applying alert labels");
      }
    }
    auto record = [&](const Alert& alert, AlertState from) {
      timeline_.push_back({t_ms, alert.alertname, alert.labels, from, alert.state, alert.value});
    };
    for (auto& [labels, alert] : current) {
      auto existing = compiled.active.find(labels);
      if (existing != compiled.active.end() && existing->second.state != AlertState::kInactive) {
        existing->second.value = alert.value;
        existing->second.annotations = alert.annotations;
        continue;
      }
      compiled.active[labels] = alert;
      record(alert, AlertState::kInactive);
    }
    const std::int64_t hold_ms = Millis(rule.for_duration);
    const std::int64_t keep_ms = Millis(rule.keep_firing_for);
    for (auto it = compiled.active.begin(); it != compiled.active.end();) {
      Alert& alert = it->second;
      if (current.find(it->first) == current.end()) {
        bool keep_firing = false;
        if (alert.state == AlertState::kFiring && keep_ms > 0) {
          if (alert.keep_firing_since_ms < 0) alert.keep_firing_since_ms = t_ms;
          if (t_ms - alert.keep_firing_since_ms < keep_ms) keep_firing = true;
        }
        const bool forget =
            alert.state == AlertState::kPending ||
            (alert.resolved_at_ms >= 0 && t_ms - alert.resolved_at_ms > kResolvedRetentionMs);
        if (alert.state != AlertState::kInactive && !keep_firing) {
          const AlertState from = alert.state;
          alert.state = AlertState::kInactive;
          alert.resolved_at_ms = t_ms;
          record(alert, from);
        }
        if (forget) {
          it = compiled.active.erase(it);
          continue;
        }
        if (!keep_firing) {
          ++it;
          continue;
        }
      } else {
        alert.keep_firing_since_ms = -1;
      }
      if (alert.state == AlertState::kPending && t_ms - alert.active_at_ms >= hold_ms) {
        alert.state = AlertState::kFiring;
        alert.fired_at_ms = t_ms;
        record(alert, AlertState::kPending);
      }
      // ALERTS and ALERTS_FOR_STATE, as a restored rule writes them.
      LabelSet alerts_labels = alert.labels;
      SetLabel(alerts_labels, "__name__", "ALERTS");
      SetLabel(alerts_labels, "alertstate", std::string(AlertStateName(alert.state)));
      output.emplace_back(std::move(alerts_labels), 1.0);
      LabelSet for_state = alert.labels;
      SetLabel(for_state, "__name__", "ALERTS_FOR_STATE");
      output.emplace_back(std::move(for_state), static_cast<double>(alert.active_at_ms / 1000));
      ++it;
    }
  }

  std::set<LabelSet> returned;
  for (auto& [labels, value] : output) {
    store.Append(labels, t_ms, value);
    returned.insert(labels);
  }
  for (const LabelSet& labels : compiled.series_in_previous_eval) {
    if (!returned.count(labels)) store.Append(labels, t_ms, StaleMarker());
  }
  compiled.series_in_previous_eval = std::move(returned);
  return Status::Ok();
}

std::vector<Alert> RuleEngine::Alerts(bool include_inactive) const {
  std::vector<Alert> out;
  for (const auto& group : groups_) {
    for (const CompiledRule& rule : group->rules) {
      for (const auto& entry : rule.active) {
        if (include_inactive || entry.second.state != AlertState::kInactive)
          out.push_back(entry.second);
      }
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> RuleEngine::RuleErrors() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& group : groups_) {
    for (const CompiledRule& rule : group->rules) {
      if (rule.last_error.ok()) continue;
      out.emplace_back(rule.rule.alert.empty() ? rule.rule.record : rule.rule.alert,
                       rule.last_error.message());
    }
  }
  return out;
}

std::vector<Alert> RuleEngine::AlertsOf(std::string_view alertname, AlertState state) const {
  std::vector<Alert> out;
  for (const Alert& alert : Alerts(true)) {
    if (alert.alertname == alertname && alert.state == state) out.push_back(alert);
  }
  return out;
}

}  // namespace firedrill::alerts
