// Expectations judged from a drill's record: pure functions of what was
// seen, so each rule is tested on a record built by hand.
#include <algorithm>
#include <cstdio>

#include "firedrill/core/units.h"
#include "firedrill/engine/drill.h"

namespace firedrill::engine {
namespace {

std::string Seconds(std::int64_t ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(ms) / 1000.0);
  return text;
}

std::string At(std::int64_t ms) { return "+" + Seconds(ms); }

std::string Percent(double share) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", share * 100);
  return text;
}

std::int64_t Millis(Duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// Whether `alert` was firing at `t_ms` (its last change at or before then).
bool FiringAt(const DrillRecord& record, const std::string& alert, std::int64_t t_ms) {
  bool firing = false;
  for (const DrillRecord::AlertChange& change : record.alerts) {
    if (change.t_ms > t_ms) break;
    if (change.alert == alert) firing = change.state == "firing";
  }
  return firing;
}

std::optional<std::int64_t> FirstChange(const DrillRecord& record, const std::string& alert, const std::string& state,
                                        std::int64_t from_ms) {
  for (const DrillRecord::AlertChange& change : record.alerts) {
    if (change.t_ms >= from_ms && change.alert == alert && change.state == state) return change.t_ms;
  }
  return std::nullopt;
}

// When a firing alert stops firing: resolved, or back to pending when the
// series that fired resolved while another is still pending. Changes of one
// evaluation round share a time (a `for: 0s` rule goes pending, then firing;
// one series clears as another fires), so only the last state at each time
// counts.
std::optional<std::int64_t> StopsFiring(const DrillRecord& record, const std::string& alert, std::int64_t from_ms) {
  std::vector<const DrillRecord::AlertChange*> changes;
  for (const DrillRecord::AlertChange& change : record.alerts) {
    if (change.alert == alert) changes.push_back(&change);
  }
  bool firing = false;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const DrillRecord::AlertChange& change = *changes[i];
    if (i + 1 < changes.size() && changes[i + 1]->t_ms == change.t_ms) continue;
    const bool now_firing = change.state == "firing";
    if (firing && !now_firing && change.t_ms >= from_ms) return change.t_ms;
    firing = now_firing;
  }
  return std::nullopt;
}

// The phases an expectation covers: one by name, or all of them.
std::vector<const PhaseLoad*> Phases(const DrillRecord& record, const Spec& spec) {
  std::vector<const PhaseLoad*> out;
  const std::string wanted = spec.Text("phase");
  for (const PhaseLoad& phase : record.phases) {
    if (wanted.empty() || phase.name == wanted) out.push_back(&phase);
  }
  return out;
}

Verdict Named(const Expectation& expectation) {
  Verdict verdict;
  verdict.name = expectation.name;
  verdict.kind = expectation.spec.kind;
  return verdict;
}

// The event a deadline counts from; fills `seen` and returns nullopt when it
// never happened.
std::optional<std::int64_t> From(const DrillRecord& record, const std::string& event, Verdict& verdict) {
  std::optional<std::int64_t> at = record.EventTime(event);
  if (!at) verdict.seen = event + " never happened";
  return at;
}

void AlertFires(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const std::string alert = spec.Text("alert");
  const std::string after = spec.Text("after");
  const std::int64_t within = Millis(spec.DurationOr("within", Duration::zero()));
  verdict.expected = alert + " fires within " + FormatDuration(spec.DurationOr("within", Duration::zero())) +
                     " of " + after;
  const std::optional<std::int64_t> from = From(record, after, verdict);
  if (!from) return;
  std::optional<std::int64_t> fired = FiringAt(record, alert, *from) ? from : FirstChange(record, alert, "firing", *from);
  if (!fired) {
    const std::optional<std::int64_t> pending = FirstChange(record, alert, "pending", *from);
    verdict.seen = "never fired by the end (" + At(record.end_ms) + ")" +
                   (pending ? "; pending from " + At(*pending) : "; never even pending");
    return;
  }
  verdict.value_seconds = static_cast<double>(*fired - *from) / 1000.0;
  verdict.held = *fired - *from <= within;
  verdict.seen = "fired " + Seconds(*fired - *from) + " after " + after + " (at " + At(*fired) + ")";
}

void AlertNeverFires(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const std::string alert = spec.Text("alert");
  const std::string during = spec.Text("during");
  verdict.expected = alert + " never fires" + (during.empty() ? "" : " during " + during);
  std::int64_t from = 0;
  std::int64_t to = record.end_ms;
  if (!during.empty()) {
    const auto phases = Phases(record, spec);
    auto phase = std::find_if(record.phases.begin(), record.phases.end(),
                              [&](const PhaseLoad& candidate) { return candidate.name == during; });
    if (phase == record.phases.end() || phases.empty()) {
      verdict.seen = "phase " + during + " never ran";
      return;
    }
    from = phase->start_ms;
    to = phase->end_ms;
  }
  std::optional<std::int64_t> fired = FiringAt(record, alert, from) ? from : FirstChange(record, alert, "firing", from);
  if (fired && *fired <= to) {
    verdict.seen = "fired at " + At(*fired);
    return;
  }
  verdict.held = true;
  verdict.seen = "did not fire";
}

void AlertResolves(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const std::string alert = spec.Text("alert");
  const std::string after = spec.Text("after", "recovery.end");
  const Duration within = spec.DurationOr("within", Duration::zero());
  verdict.expected = alert + " resolves within " + FormatDuration(within) + " of " + after;
  const std::optional<std::int64_t> from = From(record, after, verdict);
  if (!from) return;
  if (!FiringAt(record, alert, *from)) {
    verdict.held = true;
    verdict.value_seconds = 0;
    verdict.seen = "was not firing at " + after + " (" + At(*from) + ")";
    return;
  }
  const std::optional<std::int64_t> resolved = StopsFiring(record, alert, *from);
  if (!resolved) {
    verdict.seen = "still firing at the end of the drill, " + Seconds(record.end_ms - *from) + " after " + after;
    return;
  }
  verdict.value_seconds = static_cast<double>(*resolved - *from) / 1000.0;
  verdict.held = *resolved - *from <= Millis(within);
  verdict.seen = "resolved " + Seconds(*resolved - *from) + " after " + after;
}

void Healthy(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const std::string after = spec.Text("after", "recovery.end");
  const std::string status = spec.Text("status", "HEALTHY");
  const Duration within = spec.DurationOr("within", Duration::zero());
  verdict.expected = "health is " + status + " within " + FormatDuration(within) + " of " + after;
  const std::optional<std::int64_t> from = From(record, after, verdict);
  if (!from) return;
  std::string last = "never sampled";
  for (const DrillRecord::HealthSample& sample : record.health) {
    if (sample.t_ms < *from) continue;
    last = sample.status;
    if (sample.status == status) {
      verdict.value_seconds = static_cast<double>(sample.t_ms - *from) / 1000.0;
      verdict.held = sample.t_ms - *from <= Millis(within);
      verdict.seen = status + " " + Seconds(sample.t_ms - *from) + " after " + after;
      return;
    }
  }
  verdict.seen = "not " + status + " by the end of the drill (last seen: " + last + ")";
}

void Latency(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const double percentile = spec.Number("percentile", 99);
  const Duration max = spec.DurationOr("max", Duration::zero());
  const std::string phase_name = spec.Text("phase");
  char label[32];
  std::snprintf(label, sizeof label, "p%g", percentile);
  verdict.expected = std::string(label) + " latency at most " + FormatDuration(max) +
                     (phase_name.empty() ? " in every phase" : " in " + phase_name);
  const auto phases = Phases(record, spec);
  if (phases.empty()) {
    verdict.seen = "phase " + phase_name + " never ran";
    return;
  }
  verdict.held = true;
  std::string seen;
  for (const PhaseLoad* phase : phases) {
    const auto found = phase->latency_ms.find(percentile);
    if (phase->completed == 0 || found == phase->latency_ms.end()) {
      verdict.held = false;
      seen += (seen.empty() ? "" : "; ") + phase->name + ": no completed jobs";
      continue;
    }
    const bool ok = found->second <= static_cast<double>(Millis(max));
    verdict.held = verdict.held && ok;
    char text[96];
    std::snprintf(text, sizeof text, "%s: %s %.1f ms%s", phase->name.c_str(), label, found->second, ok ? "" : " (over)");
    seen += (seen.empty() ? "" : "; ") + std::string(text);
  }
  verdict.seen = seen;
}

void ErrorRate(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const double max = spec.RatioOr("max", 0);
  const std::string phase_name = spec.Text("phase");
  verdict.expected = "error rate at most " + Percent(max) + (phase_name.empty() ? " in every phase" : " in " + phase_name);
  const auto phases = Phases(record, spec);
  if (phases.empty()) {
    verdict.seen = "phase " + phase_name + " never ran";
    return;
  }
  verdict.held = true;
  std::string seen;
  for (const PhaseLoad* phase : phases) {
    if (phase->sent == 0) {
      verdict.held = false;
      seen += (seen.empty() ? "" : "; ") + phase->name + ": no jobs sent";
      continue;
    }
    const double share = static_cast<double>(phase->errors) / static_cast<double>(phase->sent);
    const bool ok = share <= max;
    verdict.held = verdict.held && ok;
    seen += (seen.empty() ? "" : "; ") + phase->name + ": " + Percent(share) + " (" + std::to_string(phase->errors) +
            " of " + std::to_string(phase->sent) + ")" + (ok ? "" : " over");
  }
  verdict.seen = seen;
}

void Throughput(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const Rate min = spec.RateOr("min", Rate{0});
  const std::string phase_name = spec.Text("phase");
  char text[128];
  std::snprintf(text, sizeof text, "at least %g completed jobs/s", min.per_second);
  verdict.expected = text + (phase_name.empty() ? std::string(" in every phase") : " in " + phase_name);
  const auto phases = Phases(record, spec);
  if (phases.empty()) {
    verdict.seen = "phase " + phase_name + " never ran";
    return;
  }
  verdict.held = true;
  std::string seen;
  for (const PhaseLoad* phase : phases) {
    const double seconds = static_cast<double>(phase->end_ms - phase->start_ms) / 1000.0;
    const double rate = seconds > 0 ? static_cast<double>(phase->completed) / seconds : 0;
    const bool ok = rate >= min.per_second;
    verdict.held = verdict.held && ok;
    std::snprintf(text, sizeof text, "%s: %.3f/s (%lld in %.0fs)%s", phase->name.c_str(), rate,
                  static_cast<long long>(phase->completed), seconds, ok ? "" : " under");
    seen += (seen.empty() ? "" : "; ") + std::string(text);
  }
  verdict.seen = seen;
}

void LostJobs(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const std::int64_t max = spec.Integer("max", 0);
  verdict.expected = "at most " + std::to_string(max) + " lost jobs";
  verdict.held = record.lost_jobs <= max;
  verdict.seen = std::to_string(record.lost_jobs) + " lost (accepted and never finished, unanswered, or duplicated)";
}

void Quality(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const double min = spec.Number("min", 0);
  const std::string phase = spec.Text("phase");
  char text[128];
  std::snprintf(text, sizeof text, "mean selection quality at least %.3f", min);
  verdict.expected = text + (phase.empty() ? "" : " for the jobs phase " + phase + " sent");
  const QualitySeen* quality = &record.quality;
  if (!phase.empty()) {
    const std::vector<const PhaseLoad*> phases = Phases(record, spec);
    if (phases.empty()) {
      verdict.seen = "phase " + phase + " never ran";
      return;
    }
    quality = &phases.front()->quality;
  }
  if (quality->count == 0) {
    verdict.seen = "no job completed";
    return;
  }
  verdict.held = quality->mean >= min;
  std::snprintf(text, sizeof text, "mean %.3f over %lld jobs (lowest %.3f)", quality->mean,
                static_cast<long long>(quality->count), quality->min);
  verdict.seen = text;
}

void TimeToDetect(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const std::string alert = spec.Text("alert");
  const std::string after = spec.Text("after");
  const Duration max = spec.DurationOr("max", Duration::zero());
  verdict.expected = "time from " + after + " to " + alert + " firing at most " + FormatDuration(max);
  const std::optional<std::int64_t> from = From(record, after, verdict);
  if (!from) return;
  std::optional<std::int64_t> fired = FiringAt(record, alert, *from) ? from : FirstChange(record, alert, "firing", *from);
  if (!fired) {
    verdict.seen = alert + " never fired after " + after;
    return;
  }
  verdict.value_seconds = static_cast<double>(*fired - *from) / 1000.0;
  verdict.held = *fired - *from <= Millis(max);
  verdict.seen = "detected in " + Seconds(*fired - *from);
}

void TimeToRecover(const Spec& spec, const DrillRecord& record, Verdict& verdict) {
  const std::string alert = spec.Text("alert");
  const Duration max = spec.DurationOr("max", Duration::zero());
  verdict.expected = "time from " + alert + " firing to resolving at most " + FormatDuration(max);
  const std::optional<std::int64_t> fired = FirstChange(record, alert, "firing", 0);
  if (!fired) {
    verdict.seen = alert + " never fired";
    return;
  }
  const std::optional<std::int64_t> resolved = StopsFiring(record, alert, *fired);
  if (!resolved) {
    verdict.seen = alert + " fired at " + At(*fired) + " and never resolved";
    return;
  }
  verdict.value_seconds = static_cast<double>(*resolved - *fired) / 1000.0;
  verdict.held = *resolved - *fired <= Millis(max);
  verdict.seen = "recovered in " + Seconds(*resolved - *fired) + " (fired " + At(*fired) + ", resolved " +
                 At(*resolved) + ")";
}

}  // namespace

std::optional<std::int64_t> DrillRecord::EventTime(const std::string& name) const {
  for (const DrillEvent& event : events) {
    if (event.name == name) return event.t_ms;
  }
  return std::nullopt;
}

Verdict Judge(const Expectation& expectation, const DrillRecord& record) {
  Verdict verdict = Named(expectation);
  const Spec& spec = expectation.spec;
  const std::string& kind = spec.kind;
  if (kind == "alertFires") {
    AlertFires(spec, record, verdict);
  } else if (kind == "alertNeverFires") {
    AlertNeverFires(spec, record, verdict);
  } else if (kind == "alertResolves") {
    AlertResolves(spec, record, verdict);
  } else if (kind == "healthy") {
    Healthy(spec, record, verdict);
  } else if (kind == "latency") {
    Latency(spec, record, verdict);
  } else if (kind == "errorRate") {
    ErrorRate(spec, record, verdict);
  } else if (kind == "throughput") {
    Throughput(spec, record, verdict);
  } else if (kind == "lostJobs") {
    LostJobs(spec, record, verdict);
  } else if (kind == "quality") {
    Quality(spec, record, verdict);
  } else if (kind == "timeToDetect") {
    TimeToDetect(spec, record, verdict);
  } else if (kind == "timeToRecover") {
    TimeToRecover(spec, record, verdict);
  } else {
    verdict.expected = kind;
    verdict.seen = "this build cannot judge expectations of kind " + kind;
  }
  return verdict;
}

}  // namespace firedrill::engine
