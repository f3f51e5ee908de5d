#include "firedrill/engine/plan.h"

#include <algorithm>
#include <cmath>
#include <iomanip>

namespace firedrill::engine {
namespace {

// "key=value key=value" for a spec's fields, in a stable order.
std::string Fields(const Spec& spec) {
  std::string out;
  for (const auto& [key, value] : spec.fields.items()) {
    if (!out.empty()) out += ' ';
    out += key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

struct Event {
  Duration at;
  std::string text;
};

}  // namespace

Duration Scaled(Duration duration, double time_scale) {
  return Duration(static_cast<Duration::rep>(std::llround(static_cast<double>(duration.count()) / time_scale)));
}

void DescribePlan(const Scenario& scenario, std::ostream& out) {
  const double scale = scenario.time_scale;
  const auto at = [&](Duration offset) {
    std::string text = "T+" + FormatDuration(offset);
    if (scale != 1) text += " (runs at T+" + FormatDuration(Scaled(offset, scale)) + ")";
    return text;
  };
  out << "scenario " << scenario.metadata.name << "  (" << scenario.path << ")\n";
  if (!scenario.metadata.description.empty()) out << "  " << scenario.metadata.description << "\n";
  out << "  target: " << scenario.target.kind;
  if (!scenario.target.settings.fields.empty()) out << " " << Fields(scenario.target.settings);
  out << "\n  monitoring: " << scenario.monitoring.kind << ", scrape every "
      << FormatDuration(scenario.monitoring.scrape_interval) << ", evaluate every "
      << FormatDuration(scenario.monitoring.evaluation_interval) << "\n";
  for (const std::string& rules : scenario.monitoring.rules) out << "  rules: " << rules << "\n";
  out << "  time scale: " << scale << (scale == 1 ? " (real time)" : "x faster than written") << "\n";
  if (scenario.seed) out << "  seed: " << *scenario.seed << "\n";
  for (const Parameter& parameter : scenario.parameters) {
    out << "  parameter " << parameter.name << " = " << parameter.value
        << (parameter.overridden ? "  (set with -p; default " + parameter.default_value + ")" : "") << "\n";
  }

  std::vector<Event> events;
  for (const Phase& phase : scenario.phases) {
    std::string text = "phase " + phase.name + " for " + FormatDuration(phase.duration) + ": " +
                       phase.arrival.kind + " " + Fields(phase.arrival);
    if (phase.stress) text += "; GPU stress " + phase.stress->kind + " " + Fields(*phase.stress);
    events.push_back({phase.start_offset, std::move(text)});
  }
  for (const Injection& injection : scenario.timeline) {
    std::string text = "inject " + injection.name + ": " + injection.injector.kind;
    if (!injection.injector.fields.empty()) text += " " + Fields(injection.injector);
    if (injection.duration) text += ", for " + FormatDuration(*injection.duration);
    if (!injection.until.empty()) text += ", until " + injection.until;
    events.push_back({injection.at, std::move(text)});
  }
  if (scenario.recovery && scenario.recovery->trigger_at) {
    events.push_back({*scenario.recovery->trigger_at, "run runbook " + scenario.recovery->runbook.metadata.name});
  }
  events.push_back({scenario.WorkloadDuration(), "end of workload"});
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.at < b.at; });

  if (scenario.steady_state) {
    out << "steady state (" << scenario.steady_state->checks.size() << " checks";
    if (scenario.steady_state->within) out << ", within " << FormatDuration(*scenario.steady_state->within);
    out << ") must hold before any fault\n";
  }
  out << "timeline:\n";
  const int width = scale == 1 ? 12 : 26;
  for (const Event& event : events) out << "  " << std::left << std::setw(width) << at(event.at) << " " << event.text << "\n";
  if (scenario.recovery) {
    const Recovery& recovery = *scenario.recovery;
    out << "recovery: runbook " << recovery.runbook.metadata.name << " (" << recovery.runbook_path << ")";
    if (!recovery.trigger_alert.empty()) out << " when " << recovery.trigger_alert << " fires";
    out << "\n";
    for (const RunbookStep& step : recovery.runbook.steps) {
      out << "  step " << step.name << ": " << step.action.kind;
      if (!step.action.fields.empty()) out << " " << Fields(step.action);
      out << " (timeout " << FormatDuration(step.timeout) << ")\n";
    }
  }
  if (!scenario.expectations.empty()) out << "expectations:\n";
  for (const Expectation& expectation : scenario.expectations) {
    out << "  " << expectation.name << ": " << Fields(expectation.spec) << "\n";
  }
  if (!scenario.guardrails.empty()) out << "guardrails (abort, exit 3):\n";
  for (const Spec& guardrail : scenario.guardrails) out << "  " << guardrail.kind << " " << Fields(guardrail) << "\n";
  out << "reports:";
  for (const std::string& report : scenario.reports) out << " " << report;
  out << "\n";
}

}  // namespace firedrill::engine
