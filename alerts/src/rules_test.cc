#include "firedrill/alerts/rules_test.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "firedrill/alerts/promql.h"
#include "firedrill/alerts/rule_eval.h"
#include "firedrill/alerts/rule_file.h"
#include "promql_internal.h"

namespace firedrill::alerts {
namespace {

// model.Duration.String(): "1h30m", "0s"; years and weeks only when exact.
std::string ModelDuration(std::int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  auto unit = [&](const char* name, std::int64_t size, bool exact) {
    if (exact && ms % size != 0) return;
    if (const std::int64_t count = ms / size; count > 0) {
      out += std::to_string(count) + name;
      ms -= count * size;
    }
  };
  unit("y", 365LL * 86400000, true);
  unit("w", 7LL * 86400000, true);
  unit("d", 86400000, false);
  unit("h", 3600000, false);
  unit("m", 60000, false);
  unit("s", 1000, false);
  unit("ms", 1, false);
  return out;
}

// time.Duration.String() for whole milliseconds: "1m0s", "1h0m30s", "1.5s".
std::string GoDuration(std::int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  const std::int64_t hours = ms / 3600000, minutes = ms / 60000 % 60, millis = ms % 60000;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0) out += std::to_string(minutes) + "m";
  std::string seconds = std::to_string(millis / 1000);
  if (millis % 1000 != 0) {
    std::string fraction = std::to_string(1000 + millis % 1000).substr(1);
    while (fraction.back() == '0') fraction.pop_back();
    seconds += "." + fraction;
  }
  return out + seconds + "s";
}

std::string Indent(const std::string& lines, const std::string& indent) {
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    if (lines[i] == '\n') out += indent;
  }
  return out;
}

struct LabelsAndAnnotations {
  LabelSet labels;
  LabelSet annotations;
  std::string state;  // firedrill's exp_state; empty compares as firing
  bool operator<(const LabelsAndAnnotations& other) const {
    if (labels != other.labels) return labels < other.labels;
    return annotations < other.annotations;
  }
  bool operator==(const LabelsAndAnnotations& other) const {
    return labels == other.labels && annotations == other.annotations && state == other.state;
  }
};

std::string AlertsString(const std::vector<LabelsAndAnnotations>& alerts, bool with_state) {
  if (alerts.empty()) return "[]";
  std::string out = "[";
  for (std::size_t i = 0; i < alerts.size(); ++i) {
    out += i == 0 ? "\n" : ",\n";
    std::string item = "\nLabels:" + promql::FormatLabels(alerts[i].labels) +
                       "\nAnnotations:" + promql::FormatLabels(alerts[i].annotations);
    if (with_state) item += "\nState:" + (alerts[i].state.empty() ? "firing" : alerts[i].state);
    out += std::to_string(i) + ":" + Indent(item, "  ");
  }
  return out + "\n]";
}

struct ParsedSample {
  LabelSet labels;
  double value;
};

std::string SamplesString(const std::vector<ParsedSample>& samples) {
  if (samples.empty()) return "nil";
  std::string out;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (i > 0) out += ", ";
    out += promql::FormatLabels(samples[i].labels) + " " +
           promql::FormatGoFloat(samples[i].value, 'E');
  }
  return out;
}

bool ValuesEqual(double expected, double got, double tolerance) {
  if (expected == got) return true;  // NaN never equals, as in promtool
  if (tolerance <= 0 || std::isnan(expected) || std::isnan(got)) return false;
  return std::fabs(expected - got) <= tolerance * std::max(std::fabs(expected), std::fabs(got));
}

// ------------------------------------------------------------ the test file

struct InputSeries {
  LabelSet labels;
  std::vector<SeriesValue> values;
};
struct AlertTest {
  std::int64_t eval_ms = 0;
  std::string alertname;
  std::vector<LabelsAndAnnotations> expected;
};
struct ExprTest {
  std::string expr;
  std::int64_t eval_ms = 0;
  struct Expected {
    std::string labels;
    double value;
  };
  std::vector<Expected> expected;
};
struct TestGroup {
  std::string name;
  std::int64_t interval_ms = 0;
  std::vector<InputSeries> input;
  LabelSet external_labels;
  std::string external_url;
  std::vector<AlertTest> alert_tests;
  std::vector<ExprTest> expr_tests;
};
struct TestFile {
  std::vector<std::string> rule_files;
  std::int64_t evaluation_interval_ms = 60000;
  std::vector<std::string> group_eval_order;
  std::vector<TestGroup> tests;
};

class FileReader {
 public:
  FileReader(std::string path, const RulesTestOptions& options)
      : path_(std::move(path)), options_(options) {}

  Result<TestFile> Read() {
    YAML::Node root;
    try {
      root = YAML::LoadFile(path_);
    } catch (const YAML::BadFile&) {
      return FD_STATUS(StatusCode::kNotFound, path_ + ": cannot read the file");
    } catch (const YAML::Exception& error) {
      return FD_STATUS(StatusCode::kInvalidArgument, Where(error.mark) + error.msg);
    }
    TestFile file;
    try {
      ReadFile(root, file);
    } catch (const YAML::Exception& error) {
      problems_ += Where(error.mark) + error.msg + "\n";
    }
    if (!problems_.empty()) {
      problems_.pop_back();
      return FD_STATUS(StatusCode::kInvalidArgument, problems_);
    }
    return file;
  }

 private:
  std::string Where(const YAML::Mark& mark) const {
    if (mark.is_null()) return path_ + ": ";
    return path_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
           ": ";
  }
  void Problem(const YAML::Node& node, const std::string& message) {
    problems_ += Where(node.Mark()) + message + "\n";
  }
  void CheckKeys(const YAML::Node& map, std::set<std::string> allowed, std::string_view where) {
    if (!map.IsMap()) {
      Problem(map, std::string(where) + " must be a mapping");
      return;
    }
    for (const auto& entry : map) {
      const std::string key = entry.first.as<std::string>();
      if (!allowed.count(key))
        Problem(entry.first, "field " + key + " not found in " + std::string(where));
    }
  }
  std::int64_t DurationOf(const YAML::Node& node, std::string_view what) {
    if (!node.IsScalar()) {
      Problem(node, std::string(what) + " must be a duration");
      return 0;
    }
    const std::string text = node.Scalar();
    if (text == "0") return 0;
    auto parsed = promql::ParsePromDuration(text);
    if (!parsed) {
      Problem(node, std::string(what) + ": not a valid duration string: \"" + text + "\"");
      return 0;
    }
    return *parsed;
  }
  std::string StringOf(const YAML::Node& node, std::string_view what) {
    if (!node.IsScalar()) {
      Problem(node, std::string(what) + " must be a string");
      return "";
    }
    return node.Scalar();
  }
  double FloatOf(const YAML::Node& node, std::string_view what) {
    if (!node.IsScalar()) {
      Problem(node, std::string(what) + " must be a number");
      return 0;
    }
    std::string text = node.Scalar();
    std::string lower = text;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == ".nan") return NAN;
    if (lower == ".inf" || lower == "+.inf") return INFINITY;
    if (lower == "-.inf") return -INFINITY;
    std::erase(text, '_');
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() ||
        lower.find("inf") != std::string::npos || lower.find("nan") != std::string::npos ||
        lower.find("0x") != std::string::npos) {
      Problem(node,
              std::string(what) + ": cannot unmarshal !!str `" + node.Scalar() + "` into float64");
      return 0;
    }
    return value;
  }
  LabelSet MapOf(const YAML::Node& node, std::string_view what) {
    LabelSet out;
    if (!node || node.IsNull()) return out;
    if (!node.IsMap()) {
      Problem(node, std::string(what) + " must be a mapping of names to strings");
      return out;
    }
    for (const auto& entry : node) {
      out.emplace_back(entry.first.as<std::string>(), StringOf(entry.second, what));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void ReadFile(const YAML::Node& root, TestFile& file) {
    if (!root.IsMap()) {
      Problem(root, "a test file must be a mapping with rule_files and tests");
      return;
    }
    CheckKeys(root, {"rule_files", "evaluation_interval", "group_eval_order", "tests"},
              "unitTestFile");
    if (const auto rule_files = root["rule_files"]; rule_files && !rule_files.IsNull()) {
      if (!rule_files.IsSequence())
        Problem(rule_files, "rule_files must be a list of paths");
      else
        for (const auto& entry : rule_files)
          file.rule_files.push_back(StringOf(entry, "rule_files"));
    }
    if (const auto interval = root["evaluation_interval"]; interval && !interval.IsNull()) {
      file.evaluation_interval_ms = DurationOf(interval, "evaluation_interval");
      if (file.evaluation_interval_ms == 0) file.evaluation_interval_ms = 60000;
    }
    if (const auto order = root["group_eval_order"]; order && !order.IsNull()) {
      if (!order.IsSequence())
        Problem(order, "group_eval_order must be a list of group names");
      else
        for (const auto& entry : order)
          file.group_eval_order.push_back(StringOf(entry, "group_eval_order"));
    }
    if (const auto tests = root["tests"]; tests && !tests.IsNull()) {
      if (!tests.IsSequence()) {
        Problem(tests, "tests must be a list of test groups");
        return;
      }
      for (const auto& test : tests)
        file.tests.push_back(ReadGroup(test, file.evaluation_interval_ms));
    }
  }

  TestGroup ReadGroup(const YAML::Node& node, std::int64_t evaluation_interval_ms) {
    TestGroup group;
    // promtool 2.42 never applies its documented default here: a group
    // without `interval` loads every input sample at time 0 (the first wins).
    group.interval_ms = 0;
    CheckKeys(node,
              {"interval", "name", "input_series", "alert_rule_test", "promql_expr_test",
               "external_labels", "external_url"},
              "testGroup");
    if (!node.IsMap()) return group;
    if (node["name"]) group.name = StringOf(node["name"], "name");
    if (const auto interval = node["interval"]; interval && !interval.IsNull()) {
      group.interval_ms = DurationOf(interval, "interval");
    }
    (void)evaluation_interval_ms;
    group.external_labels = MapOf(node["external_labels"], "external_labels");
    if (node["external_url"]) group.external_url = StringOf(node["external_url"], "external_url");
    if (const auto input = node["input_series"]; input && !input.IsNull()) {
      for (const auto& series : input) {
        CheckKeys(series, {"series", "values"}, "series");
        if (!series.IsMap()) continue;
        InputSeries parsed;
        auto labels =
            ParseSeriesLabels(series["series"] ? StringOf(series["series"], "series") : "");
        if (!labels.ok()) {
          Problem(series["series"] ? series["series"] : series, labels.status().message());
          continue;
        }
        parsed.labels = *labels;
        if (series["values"]) {
          auto values = ExpandSeriesValues(StringOf(series["values"], "values"));
          if (!values.ok()) {
            Problem(series["values"], values.status().message());
            continue;
          }
          parsed.values = *values;
        }
        // A series given twice: the later definition replaces the earlier.
        std::erase_if(group.input,
                      [&](const InputSeries& earlier) { return earlier.labels == parsed.labels; });
        group.input.push_back(std::move(parsed));
      }
    }
    if (const auto alerts = node["alert_rule_test"]; alerts && !alerts.IsNull()) {
      for (const auto& entry : alerts) {
        CheckKeys(entry, {"eval_time", "alertname", "exp_alerts"}, "alertTestCase");
        if (!entry.IsMap()) continue;
        AlertTest test;
        if (entry["eval_time"]) test.eval_ms = DurationOf(entry["eval_time"], "eval_time");
        if (entry["alertname"]) test.alertname = StringOf(entry["alertname"], "alertname");
        if (test.alertname.empty()) {
          Problem(
              entry,
              "an item under alert_rule_test misses required attribute alertname at eval_time " +
                  ModelDuration(test.eval_ms));
        }
        if (const auto expected = entry["exp_alerts"]; expected && !expected.IsNull()) {
          for (const auto& alert : expected) {
            std::set<std::string> keys = {"exp_labels", "exp_annotations"};
            if (options_.pending) keys.insert("exp_state");
            CheckKeys(alert, keys, "alert");
            LabelsAndAnnotations item;
            item.labels = MapOf(alert["exp_labels"], "exp_labels");
            SetAlertName(item.labels, test.alertname);
            item.annotations = MapOf(alert["exp_annotations"], "exp_annotations");
            if (options_.pending && alert["exp_state"]) {
              item.state = StringOf(alert["exp_state"], "exp_state");
              if (item.state != "firing" && item.state != "pending") {
                Problem(alert["exp_state"], "exp_state must be pending or firing");
              }
              if (item.state == "firing") item.state.clear();
            }
            test.expected.push_back(std::move(item));
          }
        }
        group.alert_tests.push_back(std::move(test));
      }
    }
    if (const auto exprs = node["promql_expr_test"]; exprs && !exprs.IsNull()) {
      for (const auto& entry : exprs) {
        CheckKeys(entry, {"expr", "eval_time", "exp_samples"}, "testCase");
        if (!entry.IsMap()) continue;
        ExprTest test;
        if (entry["expr"]) test.expr = StringOf(entry["expr"], "expr");
        if (entry["eval_time"]) test.eval_ms = DurationOf(entry["eval_time"], "eval_time");
        if (const auto samples = entry["exp_samples"]; samples && !samples.IsNull()) {
          for (const auto& sample : samples) {
            CheckKeys(sample, {"labels", "value", "histogram"}, "sample");
            if (!sample.IsMap()) continue;
            ExprTest::Expected expected{"", 0};
            if (sample["labels"]) expected.labels = StringOf(sample["labels"], "labels");
            if (sample["value"]) expected.value = FloatOf(sample["value"], "value");
            test.expected.push_back(std::move(expected));
          }
        }
        group.expr_tests.push_back(std::move(test));
      }
    }
    return group;
  }

  static void SetAlertName(LabelSet& labels, const std::string& name) {
    std::erase_if(labels, [](const auto& label) { return label.first == "alertname"; });
    labels.emplace_back("alertname", name);
    std::sort(labels.begin(), labels.end());
  }

  std::string path_;
  const RulesTestOptions& options_;
  std::string problems_;
};

// Globs each rule file relative to the test file's folder, as promtool does;
// a pattern matching nothing is a warning, a file named twice is read once.
Result<std::vector<std::string>> ResolveRuleFiles(const std::string& test_path,
                                                  const std::vector<std::string>& patterns,
                                                  std::ostream& warnings) {
  const std::filesystem::path base = std::filesystem::path(test_path).parent_path();
  std::vector<std::string> out;
  for (const std::string& pattern : patterns) {
    std::string full = std::filesystem::path(pattern).is_absolute()
                           ? pattern
                           : (base / pattern).lexically_normal().string();
    if (full.empty()) full = ".";
    glob_t matches{};
    const int rc = glob(full.c_str(), 0, nullptr, &matches);
    if (rc == 0) {
      for (std::size_t i = 0; i < matches.gl_pathc; ++i) {
        if (std::find(out.begin(), out.end(), matches.gl_pathv[i]) == out.end()) {
          out.emplace_back(matches.gl_pathv[i]);
        }
      }
    } else if (rc == GLOB_NOMATCH) {
      warnings << "  WARNING: no file match pattern " << full << "\n";
    } else {
      globfree(&matches);
      return FD_STATUS(StatusCode::kInvalidArgument,
                       test_path + ": bad rule file pattern " + pattern);
    }
    globfree(&matches);
  }
  return out;
}

class GroupRunner {
 public:
  GroupRunner(const TestGroup& group, const TestFile& file, const std::vector<RuleFile>& rules,
              const RulesTestOptions& options, std::ostream& out)
      : group_(group), file_(file), rules_(rules), options_(options), out_(out) {}

  std::vector<std::string> Run() {
    std::vector<std::string> errors;
    RuleEngineOptions engine_options;
    engine_options.default_interval_ms = file_.evaluation_interval_ms;
    engine_options.external_labels = group_.external_labels;
    engine_options.external_url = group_.external_url;
    engine_options.eval.default_subquery_step_ms = file_.evaluation_interval_ms;
    auto engine = RuleEngine::Create(rules_, engine_options);
    if (!engine.ok()) return {engine.status().message()};
    if (Status status = (*engine)->SetGroupOrder(file_.group_eval_order); !status.ok()) {
      return {status.message()};
    }

    std::int64_t max_ms = 0;
    for (const AlertTest& test : group_.alert_tests) max_ms = std::max(max_ms, test.eval_ms);
    for (const ExprTest& test : group_.expr_tests) max_ms = std::max(max_ms, test.eval_ms);

    std::vector<std::int64_t> alert_times;
    for (const AlertTest& test : group_.alert_tests) alert_times.push_back(test.eval_ms);
    std::sort(alert_times.begin(), alert_times.end());
    alert_times.erase(std::unique(alert_times.begin(), alert_times.end()), alert_times.end());
    std::size_t current = 0;

    // A bound promtool lacks: a year of 1 ms steps would never finish.
    constexpr std::int64_t kMaxEvaluations = 1'000'000;
    if (max_ms / file_.evaluation_interval_ms >= kMaxEvaluations) {
      return {"    eval_time " + ModelDuration(max_ms) + " at evaluation_interval " +
              ModelDuration(file_.evaluation_interval_ms) + " needs more than " +
              std::to_string(kMaxEvaluations) + " rule evaluations; firedrill stops there"};
    }
    SeriesStore store(INT64_MAX / 4);
    std::vector<std::size_t> loaded(group_.input.size(), 0);
    last_loaded_.assign(group_.input.size(), -1);
    const std::int64_t interval = file_.evaluation_interval_ms;
    for (std::int64_t ts = 0; ts <= max_ms; ts += interval) {
      LoadSamplesTill(store, loaded, ts);
      std::vector<std::string> eval_errors;
      const auto infos = (*engine)->groups();
      for (std::size_t g = 0; g < infos.size(); ++g) {
        (*engine)->EvaluateGroup(g, store, ts);
      }
      for (const auto& [rule_name, message] : (*engine)->RuleErrors()) {
        eval_errors.push_back("    rule: " + rule_name + ", time: " + GoDuration(ts) +
                              ", err: " + message);
      }
      if (!eval_errors.empty()) {
        errors.insert(errors.end(), eval_errors.begin(), eval_errors.end());
        return errors;
      }
      while (current < alert_times.size() && ts <= alert_times[current] &&
             alert_times[current] < ts + interval) {
        CheckAlerts(**engine, alert_times[current], errors);
        ++current;
      }
    }
    for (const ExprTest& test : group_.expr_tests) CheckExpr(store, test, errors);
    if (options_.timeline) PrintTimeline(**engine);
    return errors;
  }

 private:
  void LoadSamplesTill(SeriesStore& store, std::vector<std::size_t>& loaded, std::int64_t ts) {
    for (std::size_t s = 0; s < group_.input.size(); ++s) {
      const InputSeries& series = group_.input[s];
      while (loaded[s] < series.values.size()) {
        const std::int64_t t = static_cast<std::int64_t>(loaded[s]) * group_.interval_ms;
        if (t > ts) break;
        const SeriesValue& value = series.values[loaded[s]++];
        if (value.omitted) continue;
        // A second sample at the same time is a duplicate the TSDB refuses.
        if (last_loaded_[s] == t) continue;
        last_loaded_[s] = t;
        store.Append(series.labels, t, value.value);
      }
    }
  }

  void CheckAlerts(const RuleEngine& engine, std::int64_t eval_ms,
                   std::vector<std::string>& errors) {
    for (const AlertTest& test : group_.alert_tests) {
      if (test.eval_ms != eval_ms) continue;
      std::vector<LabelsAndAnnotations> got;
      for (const Alert& alert : engine.Alerts()) {
        if (alert.alertname != test.alertname) continue;
        if (alert.state == AlertState::kFiring) {
          got.push_back({alert.labels, alert.annotations, ""});
        } else if (options_.pending && alert.state == AlertState::kPending) {
          got.push_back({alert.labels, alert.annotations, "pending"});
        }
      }
      std::vector<LabelsAndAnnotations> expected = test.expected;
      std::sort(got.begin(), got.end());
      std::sort(expected.begin(), expected.end());
      if (expected == got) continue;
      std::string message;
      if (!group_.name.empty()) message += "    name: " + group_.name + ",\n";
      message +=
          "    alertname: " + test.alertname + ", time: " + ModelDuration(test.eval_ms) +
          ", \n        exp:" + Indent(AlertsString(expected, options_.pending), "            ") +
          ", \n        got:" + Indent(AlertsString(got, options_.pending), "            ");
      errors.push_back(message);
    }
  }

  void CheckExpr(SeriesStore& store, const ExprTest& test, std::vector<std::string>& errors) {
    auto fail = [&](const std::string& what) {
      errors.push_back("    expr: " + GoQuote(test.expr) +
                       ", time: " + ModelDuration(test.eval_ms) + ", err: " + what);
    };
    auto expr = promql::Parse(test.expr);
    if (!expr.ok()) return fail(expr.status().message());
    std::optional<Result<promql::QueryResult>> result;
    promql::EvalOptions eval;
    eval.default_subquery_step_ms = file_.evaluation_interval_ms;
    store.Read([&](const SeriesSource& source) {
      result.emplace(promql::Evaluate(**expr, source, test.eval_ms, eval));
    });
    if (!result->ok()) return fail(result->status().message());
    std::vector<ParsedSample> got;
    const promql::QueryResult& value = **result;
    if (value.type == promql::ValueType::kScalar) {
      got.push_back({{}, value.scalar});
    } else if (value.type == promql::ValueType::kVector) {
      for (const auto& sample : value.vector) got.push_back({sample.labels, sample.value});
    } else {
      return fail("rule result is not a vector or scalar");
    }
    std::vector<ParsedSample> expected;
    for (const auto& sample : test.expected) {
      auto labels = ParseSeriesLabels(sample.labels);
      if (!labels.ok()) {
        return fail("labels " + GoQuote(sample.labels) + ": " + labels.status().message());
      }
      expected.push_back({*labels, sample.value});
    }
    auto by_labels = [](const ParsedSample& a, const ParsedSample& b) {
      return a.labels < b.labels;
    };
    std::stable_sort(expected.begin(), expected.end(), by_labels);
    std::stable_sort(got.begin(), got.end(), by_labels);
    bool same = expected.size() == got.size();
    for (std::size_t i = 0; same && i < got.size(); ++i) {
      same = expected[i].labels == got[i].labels &&
             ValuesEqual(expected[i].value, got[i].value, options_.tolerance);
    }
    if (same) return;
    errors.push_back("    expr: " + GoQuote(test.expr) + ", time: " + ModelDuration(test.eval_ms) +
                     ",\n        exp: " + SamplesString(expected) +
                     "\n        got: " + SamplesString(got));
  }

  void PrintTimeline(const RuleEngine& engine) {
    out_ << "  timeline" << (group_.name.empty() ? "" : " of " + group_.name) << ":\n";
    for (const AlertTransition& change : engine.Timeline()) {
      out_ << "    " << ModelDuration(change.t_ms) << " " << promql::FormatLabels(change.labels)
           << " " << AlertStateName(change.from) << " -> " << AlertStateName(change.to)
           << " (value " << promql::FormatGoFloat(change.value) << ")\n";
    }
  }

  static std::string GoQuote(const std::string& text) {
    std::string labels = promql::FormatLabels({{"", text}});
    return labels.substr(2, labels.size() - 3);  // strip "{=" and "}"
  }

  const TestGroup& group_;
  const TestFile& file_;
  const std::vector<RuleFile>& rules_;
  const RulesTestOptions& options_;
  std::ostream& out_;
  std::vector<std::int64_t> last_loaded_;
};

}  // namespace

Result<std::vector<SeriesValue>> ExpandSeriesValues(std::string_view text) {
  std::vector<SeriesValue> out;
  std::size_t i = 0;
  auto fail = [&](std::size_t column, const std::string& message) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "column " + std::to_string(column + 1) + ": " + message);
  };
  // A number as the series lexer reads it: sign, digits, fraction, exponent, Inf, NaN.
  auto number = [&](std::size_t& p, double* value) -> bool {
    const std::size_t start = p;
    if (p < text.size() && (text[p] == '+' || text[p] == '-')) ++p;
    std::string lower;
    for (std::size_t q = p; q < text.size() && q < p + 3; ++q) {
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(text[q])));
    }
    if (lower == "inf" || lower == "nan") {
      p += 3;
    } else {
      const std::size_t digits = p;
      while (p < text.size() &&
             (std::isdigit(static_cast<unsigned char>(text[p])) || text[p] == '.'))
        ++p;
      if (p == digits) {
        p = start;
        return false;
      }
      if (p < text.size() && (text[p] == 'e' || text[p] == 'E')) {
        std::size_t q = p + 1;
        if (q < text.size() && (text[q] == '+' || text[q] == '-')) ++q;
        if (q < text.size() && std::isdigit(static_cast<unsigned char>(text[q]))) {
          while (q < text.size() && std::isdigit(static_cast<unsigned char>(text[q]))) ++q;
          p = q;
        }
      }
    }
    const std::string token(text.substr(start, p - start));
    char* end = nullptr;
    *value = std::strtod(token.c_str(), &end);
    return end == token.c_str() + token.size();
  };
  auto times = [&](std::size_t& p, std::uint64_t* count) -> bool {
    if (p >= text.size() || text[p] != 'x') return false;
    ++p;
    const std::size_t digits = p;
    while (p < text.size() && std::isdigit(static_cast<unsigned char>(text[p]))) ++p;
    if (p == digits || p - digits > 9) return false;
    *count = std::stoull(std::string(text.substr(digits, p - digits)));
    return true;
  };
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    std::size_t end = i;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    const std::string_view item = text.substr(start, end - start);
    if (item == "_") {
      out.push_back({true, 0});
    } else if (item.rfind("_x", 0) == 0) {
      std::size_t p = start + 1;
      std::uint64_t count = 0;
      if (!times(p, &count) || p != end)
        return fail(start, "bad repetition \"" + std::string(item) + "\"");
      // The same cap as a repeated value: "_x999999999" would otherwise take gigabytes.
      if (out.size() + count > 1'000'000) return fail(start, "series longer than 1000000 values");
      for (std::uint64_t k = 0; k < count; ++k) out.push_back({true, 0});
    } else if (item == "stale") {
      out.push_back({false, StaleMarker()});
    } else {
      std::size_t p = start;
      double value = 0;
      if (!number(p, &value)) return fail(start, "bad value \"" + std::string(item) + "\"");
      if (p == end) {
        out.push_back({false, value});
      } else {
        std::uint64_t count = 0;
        double increment = 0;
        if (text[p] == 'x') {
          if (!times(p, &count) || p != end)
            return fail(start, "bad value \"" + std::string(item) + "\"");
        } else if (text[p] == '+' || text[p] == '-') {
          if (!number(p, &increment) || !times(p, &count) || p != end) {
            return fail(start, "bad value \"" + std::string(item) + "\"");
          }
        } else {
          return fail(start, "bad value \"" + std::string(item) + "\"");
        }
        if (out.size() + count > 1'000'000) return fail(start, "series longer than 1000000 values");
        // An extra value for time 0, as Prometheus's series notation has.
        for (std::uint64_t k = 0; k <= count; ++k) {
          out.push_back({false, value});
          value += increment;
        }
      }
    }
    i = end;
  }
  return out;
}

Result<LabelSet> ParseSeriesLabels(std::string_view text) {
  // A series may have no labels at all, which no selector allows.
  std::string compact(text);
  std::erase_if(compact, [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  if (compact == "{}") return LabelSet();
  auto expr = promql::Parse(text);
  if (!expr.ok()) return expr.status();
  const promql::Node& root = *(*expr)->root;
  if (root.kind != promql::Node::Kind::kVectorSelector || root.offset_ms != 0 ||
      root.at != promql::Node::At::kNone) {
    return FD_STATUS(StatusCode::kInvalidArgument, "not a series: \"" + std::string(text) + "\"");
  }
  LabelSet labels;
  for (const promql::LabelMatcher& matcher : root.matchers) {
    if (matcher.op != promql::MatchOp::kEqual) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       "a series takes only = matchers: \"" + std::string(text) + "\"");
    }
    if (!matcher.value.empty()) labels.emplace_back(matcher.name, matcher.value);
  }
  std::sort(labels.begin(), labels.end());
  return labels;
}

RulesTestOutcome RunRulesTests(const std::vector<std::string>& files,
                               const RulesTestOptions& options, std::ostream& out,
                               std::ostream& err) {
  RulesTestOutcome outcome;
  for (const std::string& path : files) {
    ++outcome.files;
    out << "Unit Testing:  " << path << "\n";
    std::vector<std::string> errors;
    bool invalid = false;
    auto file = FileReader(path, options).Read();
    if (!file.ok()) {
      errors.push_back(file.status().message());
      invalid = true;
    } else {
      auto rule_paths = ResolveRuleFiles(path, file->rule_files, err);
      std::vector<RuleFile> rules;
      if (!rule_paths.ok()) {
        errors.push_back(rule_paths.status().message());
        invalid = true;
      } else {
        for (const std::string& rule_path : *rule_paths) {
          auto rule_file = LoadRuleFile(rule_path);
          if (!rule_file.ok()) {
            // Like Prometheus's rule manager, stop at the first bad file.
            errors.push_back(rule_file.status().message());
            invalid = true;
            break;
          } else {
            rules.push_back(std::move(*rule_file));
          }
        }
      }
      std::set<std::string> order;
      for (const std::string& name : file->group_eval_order) {
        if (!order.insert(name).second) {
          errors.push_back("group name repeated in evaluation order: " + name);
          invalid = true;
        }
      }
      // Rule expressions are compiled per test group, as promtool loads them:
      // a file without tests never looks at them.
      if (!invalid && !file->tests.empty()) {
        if (auto engine = RuleEngine::Create(rules, RuleEngineOptions{}); !engine.ok()) {
          errors.push_back(engine.status().message());
          invalid = true;
        }
      }
      if (!invalid) {
        for (const TestGroup& group : file->tests) {
          auto group_errors = GroupRunner(group, *file, rules, options, out).Run();
          errors.insert(errors.end(), group_errors.begin(), group_errors.end());
        }
      }
    }
    if (errors.empty()) {
      out << "  SUCCESS\n";
    } else {
      err << "  FAILED:\n";
      for (const std::string& error : errors) {
        err << error << "\n";
        out << "\n";
      }
      ++(invalid ? outcome.invalid : outcome.failed);
    }
    out << "\n";
    out.flush();
    err.flush();
  }
  return outcome;
}

}  // namespace firedrill::alerts
