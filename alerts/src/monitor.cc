#include "firedrill/alerts/monitor.h"

namespace firedrill::alerts {

Result<std::unique_ptr<Monitor>> Monitor::Start(MonitorOptions options, Clock& clock) {
  if (options.scrape_interval <= Duration::zero() || options.evaluation_interval <= Duration::zero()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "monitoring: scrape and evaluation intervals must be positive");
  }
  RuleEngineOptions engine_options;
  engine_options.default_interval_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.evaluation_interval).count();
  FD_ASSIGN_OR_RETURN(std::unique_ptr<RuleEngine> engine, RuleEngine::Create(options.rules, engine_options));
  std::unique_ptr<Monitor> monitor(new Monitor(std::move(options), clock, std::move(engine)));
  {
    std::lock_guard lock(monitor->mutex_);
    // The first round at once, as Prometheus scrapes a new target promptly.
    monitor->Schedule(Duration::zero(), &Monitor::ScrapeAll, &monitor->scrape_timer_);
    monitor->Schedule(Duration::zero(), &Monitor::EvaluateAll, &monitor->evaluation_timer_);
  }
  return monitor;
}

Monitor::Monitor(MonitorOptions options, Clock& clock, std::unique_ptr<RuleEngine> engine)
    : options_(std::move(options)), clock_(clock), engine_(std::move(engine)) {
  for (const ScrapeTarget& target : options_.targets) scrapers_.push_back(std::make_unique<Scraper>(target, &store_));
}

Monitor::~Monitor() { Stop(); }

void Monitor::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    clock_.Cancel(scrape_timer_);
    clock_.Cancel(evaluation_timer_);
  }
  std::unique_lock gate(gate_->mutex);
  gate_->stopped = true;
  gate_->round_ended.wait(gate, [&] { return gate_->rounds_running == 0; });
}

bool Monitor::Gate::Enter() {
  std::lock_guard lock(mutex);
  if (stopped) return false;
  ++rounds_running;
  return true;
}

void Monitor::Gate::Leave() {
  std::lock_guard lock(mutex);
  --rounds_running;
  round_ended.notify_all();
}

std::int64_t Monitor::DrillMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.WallNow().time_since_epoch()).count();
}

void Monitor::Schedule(Duration interval, void (Monitor::*round)(), TimerId* timer) {
  *timer = clock_.ScheduleAfter(interval, [this, round, gate = gate_] {
    if (!gate->Enter()) return;  // stopped: `this` may be gone
    (this->*round)();
    gate->Leave();
  });
}

void Monitor::ScrapeAll() {
  std::vector<std::pair<std::string, ScrapeOutcome>> outcomes;
  const std::int64_t now = DrillMillis();
  for (std::size_t i = 0; i < scrapers_.size(); ++i) {
    outcomes.emplace_back(options_.targets[i].job, scrapers_[i]->Scrape(now));
  }
  {
    std::lock_guard lock(mutex_);
    last_scrapes_ = std::move(outcomes);
    if (!stopped_) Schedule(options_.scrape_interval, &Monitor::ScrapeAll, &scrape_timer_);
  }
}

void Monitor::EvaluateAll() {
  std::vector<AlertTransition> changes;
  {
    std::lock_guard lock(mutex_);
    // A rule that fails is recorded by the engine, as Prometheus records it;
    // the others still run.
    (void)engine_->EvaluateAll(store_, DrillMillis());
    const std::vector<AlertTransition>& timeline = engine_->Timeline();
    changes.assign(timeline.begin() + static_cast<std::ptrdiff_t>(timeline_reported_), timeline.end());
    timeline_reported_ = timeline.size();
    if (!stopped_) Schedule(options_.evaluation_interval, &Monitor::EvaluateAll, &evaluation_timer_);
  }
  if (options_.on_transition) {
    for (const AlertTransition& change : changes) options_.on_transition(change);
  }
}

std::vector<Alert> Monitor::Alerts() const {
  std::lock_guard lock(mutex_);
  return engine_->Alerts();
}

std::vector<AlertTransition> Monitor::Timeline() const {
  std::lock_guard lock(mutex_);
  return engine_->Timeline();
}

bool Monitor::Firing(std::string_view alertname) const {
  std::lock_guard lock(mutex_);
  return !engine_->AlertsOf(alertname, AlertState::kFiring).empty();
}

std::vector<std::pair<std::string, ScrapeOutcome>> Monitor::LastScrapes() const {
  std::lock_guard lock(mutex_);
  return last_scrapes_;
}

}  // namespace firedrill::alerts
