#include "firedrill/alerts/rules_lint.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "firedrill/alerts/promql.h"
#include "firedrill/alerts/rule_eval.h"
#include "firedrill/alerts/scraper.h"

namespace firedrill::alerts {
namespace {

using promql::Node;

constexpr std::int64_t kHistoryMs = 3600 * 1000;
constexpr std::int64_t kStepMs = 15 * 1000;

// Series Prometheus writes itself, and so no target exposes.
const std::set<std::string>& SyntheticNames() {
  static const std::set<std::string> names = {"up",
                                              "scrape_duration_seconds",
                                              "scrape_samples_scraped",
                                              "scrape_series_added",
                                              "scrape_samples_post_metric_relabeling",
                                              "ALERTS",
                                              "ALERTS_FOR_STATE"};
  return names;
}

std::size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

LabelSet WithoutName(LabelSet labels) {
  std::erase_if(labels, [](const auto& label) { return label.first == "__name__"; });
  return labels;
}

class RuleLinter {
 public:
  RuleLinter(SeriesStore& store, const std::vector<LintSource>& sources, std::int64_t end_ms,
             std::set<std::string> recorded)
      : store_(store), end_ms_(end_ms), recorded_(std::move(recorded)) {
    check_job_ = std::all_of(sources.begin(), sources.end(),
                             [](const LintSource& source) { return !source.job.empty(); });
    store_.Read([&](const SeriesSource& source) {
      source.ForEachSeries("", [&](const LabelSet& labels, std::span<const Point>) {
        for (const auto& label : labels) {
          if (label.first == "__name__") exposed_[label.second].push_back(WithoutName(labels));
        }
      });
    });
  }

  void Lint(const std::string& file, const Rule& rule, std::vector<LintFinding>& findings) {
    file_ = &file;
    rule_ = &rule;
    findings_ = &findings;
    auto expr = promql::Parse(rule.expr);
    if (!expr.ok()) {
      Add(LintFinding::Kind::kEvaluationError, 0,
          "expression does not parse: " + expr.status().message());
      return;
    }
    Walk(*(*expr)->root);
  }

 private:
  void Add(LintFinding::Kind kind, int offset, std::string message) {
    LintFinding finding;
    finding.kind = kind;
    finding.file = *file_;
    finding.line = rule_->expr_position.line;
    // Columns inside the expression are exact for a one-line expression.
    const bool one_line = rule_->expr.find('\n') == std::string::npos;
    finding.column = rule_->expr_position.column + (one_line ? offset : 0);
    finding.rule = rule_->alert.empty() ? "record " + rule_->record : "alert " + rule_->alert;
    finding.message = std::move(message);
    findings_->push_back(std::move(finding));
  }

  std::optional<promql::QueryResult> Evaluate(const Node& node, std::string* error = nullptr) {
    std::optional<Result<promql::QueryResult>> result;
    store_.Read([&](const SeriesSource& source) {
      result.emplace(promql::EvaluateNode(node, source, end_ms_));
    });
    if (!result->ok()) {
      if (error) *error = result->status().message();
      return std::nullopt;
    }
    return std::move(**result);
  }

  void Walk(const Node& node) {
    if (node.kind == Node::Kind::kVectorSelector) CheckSelector(node);
    for (const auto& child : node.children) Walk(*child);
    if (node.kind == Node::Kind::kBinary && node.children[0]->type == promql::ValueType::kVector &&
        node.children[1]->type == promql::ValueType::kVector &&
        node.card != Node::Card::kManyToMany) {
      CheckMatching(node);
    }
  }

  void CheckSelector(const Node& node) {
    const std::string& name = node.text;
    if (name.empty() || SyntheticNames().count(name) || recorded_.count(name)) return;
    const auto exposed = exposed_.find(name);
    if (exposed == exposed_.end()) {
      std::string message = "metric " + name + " is not exposed by the target";
      std::string best;
      std::size_t best_distance = std::max<std::size_t>(2, name.size() / 4) + 1;
      for (const auto& [candidate, unused] : exposed_) {
        const std::size_t distance = EditDistance(name, candidate);
        if (distance < best_distance) {
          best = candidate;
          best_distance = distance;
        }
      }
      if (!best.empty()) message += " (did you mean " + best + "?)";
      Add(LintFinding::Kind::kUnknownMetric, node.position, message + "; the rule can never fire");
      return;
    }
    // Which exposed series the matchers accept; job and instance only when
    // the sources say which job Prometheus would give them.
    std::size_t matching = 0;
    for (const LabelSet& labels : exposed->second) {
      bool all = true;
      for (const promql::LabelMatcher& matcher : node.matchers) {
        if (matcher.name == "__name__") continue;
        if (!check_job_ && (matcher.name == "job" || matcher.name == "instance")) continue;
        std::string value;
        for (const auto& label : labels) {
          if (label.first == matcher.name) value = label.second;
        }
        if (!matcher.Matches(value)) all = false;
      }
      if (all) ++matching;
    }
    if (matching > 0) return;
    std::string examples;
    for (std::size_t i = 0; i < exposed->second.size() && i < 3; ++i) {
      examples += (i ? ", " : "") + promql::FormatLabels(exposed->second[i]);
    }
    Add(LintFinding::Kind::kNoMatchingSeries, node.position,
        "no exposed series of " + name + " matches the selector's labels; the target exposes " +
            examples + (exposed->second.size() > 3 ? ", ..." : "") + "; the rule can never fire");
  }

  void CheckMatching(const Node& node) {
    const auto lhs = Evaluate(*node.children[0]);
    const auto rhs = Evaluate(*node.children[1]);
    if (!lhs || !rhs || lhs->vector.empty() || rhs->vector.empty()) return;
    std::set<std::string> right;
    for (const auto& sample : rhs->vector)
      right.insert(promql::MatchSignature(sample.labels, node.on, node.matching_labels));
    const bool any = std::any_of(lhs->vector.begin(), lhs->vector.end(), [&](const auto& sample) {
      return right.count(promql::MatchSignature(sample.labels, node.on, node.matching_labels)) > 0;
    });
    if (!any) {
      Add(LintFinding::Kind::kNoMatchingLabels, node.position,
          "the two sides of \"" + std::string(promql::BinaryOpName(node.binary_op)) +
              "\" share no label set to match on: left " +
              promql::FormatLabels(WithoutName(lhs->vector[0].labels)) + ", right " +
              promql::FormatLabels(WithoutName(rhs->vector[0].labels)) +
              "; match with on(...) or ignoring(...), or the rule can never fire");
      return;
    }
    std::string error;
    if (!Evaluate(node, &error)) Add(LintFinding::Kind::kEvaluationError, node.position, error);
  }

  SeriesStore& store_;
  std::int64_t end_ms_;
  std::set<std::string> recorded_;
  bool check_job_ = false;
  std::map<std::string, std::vector<LabelSet>> exposed_;
  const std::string* file_ = nullptr;
  const Rule* rule_ = nullptr;
  std::vector<LintFinding>* findings_ = nullptr;
};

void AppendIdleHistory(SeriesStore& store, const LabelSet& labels, double value,
                       std::int64_t end_ms) {
  for (std::int64_t t = end_ms - kHistoryMs; t <= end_ms; t += kStepMs)
    store.Append(labels, t, value);
}

}  // namespace

std::string_view LintKindName(LintFinding::Kind kind) {
  switch (kind) {
    case LintFinding::Kind::kUnknownMetric:
      return "unknown-metric";
    case LintFinding::Kind::kNoMatchingSeries:
      return "no-matching-series";
    case LintFinding::Kind::kNoMatchingLabels:
      return "no-matching-labels";
    case LintFinding::Kind::kEvaluationError:
      return "evaluation-error";
    case LintFinding::Kind::kFiresWhenIdle:
      return "fires-when-idle";
  }
  return "?";
}

std::string LintFinding::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + rule + ": " +
         message + " [" + std::string(LintKindName(kind)) + "]";
}

Status LoadIdleTarget(const std::vector<LintSource>& sources, std::int64_t end_ms,
                      SeriesStore& store) {
  for (const LintSource& source : sources) {
    const bool url =
        source.location.rfind("http://", 0) == 0 || source.location.rfind("https://", 0) == 0;
    if (url) {
      SeriesStore scraped;
      Scraper scraper(
          {source.job.empty() ? "lint" : source.job, source.location, std::chrono::seconds(10)},
          &scraped);
      const ScrapeOutcome outcome = scraper.Scrape(end_ms);
      if (!outcome.up) {
        return FD_STATUS(StatusCode::kUnavailable, source.location + ": " + outcome.error);
      }
      scraped.Read([&](const SeriesSource& view) {
        view.ForEachSeries("", [&](const LabelSet& labels, std::span<const Point> points) {
          if (points.empty() || IsStaleMarker(points.back().value)) return;
          LabelSet kept = labels;
          if (source.job.empty()) {
            std::erase_if(kept,
                          [](const auto& l) { return l.first == "job" || l.first == "instance"; });
          }
          AppendIdleHistory(store, kept, points.back().value, end_ms);
        });
      });
      continue;
    }
    std::ifstream in(source.location);
    if (!in) return FD_STATUS(StatusCode::kNotFound, source.location + ": cannot read the file");
    std::stringstream text;
    text << in.rdbuf();
    auto exposition = ParseExposition(text.str(), source.location);
    if (!exposition.ok()) return exposition.status();
    for (const Sample& sample : exposition->samples) {
      LabelSet labels = WithName(sample);
      if (!source.job.empty()) {
        labels.emplace_back("job", source.job);
        labels.emplace_back("instance", source.location);
        std::sort(labels.begin(), labels.end());
      }
      AppendIdleHistory(store, labels, sample.value, end_ms);
    }
    if (!source.job.empty()) {
      AppendIdleHistory(store,
                        {{"__name__", "up"}, {"instance", source.location}, {"job", source.job}}, 1,
                        end_ms);
    }
  }
  return Status::Ok();
}

std::vector<LintFinding> LintRules(const std::vector<RuleFile>& files, SeriesStore& store,
                                   const std::vector<LintSource>& sources, std::int64_t end_ms) {
  std::set<std::string> recorded;
  for (const RuleFile& file : files) {
    for (const RuleGroup& group : file.groups) {
      for (const Rule& rule : group.rules) {
        if (!rule.record.empty()) recorded.insert(rule.record);
      }
    }
  }
  std::vector<LintFinding> findings;
  RuleLinter linter(store, sources, end_ms, recorded);
  for (const RuleFile& file : files) {
    for (const RuleGroup& group : file.groups) {
      for (const Rule& rule : group.rules) linter.Lint(file.path, rule, findings);
    }
  }
  // An idle target: what fires (or would, once `for` has passed) pages
  // someone on every quiet night.
  RuleEngineOptions options;
  auto engine = RuleEngine::Create(files, options);
  if (engine.ok()) {
    (void)(*engine)->EvaluateAll(store, end_ms);
    for (const RuleFile& file : files) {
      for (const RuleGroup& group : file.groups) {
        for (const Rule& rule : group.rules) {
          if (rule.alert.empty()) continue;
          std::vector<Alert> active = (*engine)->AlertsOf(rule.alert, AlertState::kPending);
          for (Alert& alert : (*engine)->AlertsOf(rule.alert, AlertState::kFiring))
            active.push_back(alert);
          if (active.empty()) continue;
          LintFinding finding;
          finding.kind = LintFinding::Kind::kFiresWhenIdle;
          finding.file = file.path;
          finding.line = rule.expr_position.line;
          finding.column = rule.expr_position.column;
          finding.rule = "alert " + rule.alert;
          finding.message =
              "fires on the idle target: " + promql::FormatLabels(active[0].labels) + " = " +
              promql::FormatGoFloat(active[0].value) +
              (active.size() > 1 ? " and " + std::to_string(active.size() - 1) + " more" : "");
          findings.push_back(std::move(finding));
        }
      }
    }
  }
  return findings;
}

}  // namespace firedrill::alerts
