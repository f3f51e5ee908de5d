// The embedded monitoring of a drill: scrapes its targets and evaluates its
// rules on the drill's Clock, as a Prometheus server would, and reports every
// alert state change. Every sample and evaluation is stamped in that clock's
// time; given the drill's ScaledClock, a time scale compresses scrape and
// evaluation intervals, `for`, `keep_firing_for` and range windows alike
// without rewriting a rule.
//
// Scrapes run on the clock's timer thread and may take up to a target's
// timeout; the drill's executor should give the monitor a clock of its own.
//
// Thread-safety: Start/Stop by the owner; Alerts() and Timeline() from any
// thread; the listener runs on the clock's timer thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "firedrill/alerts/rule_eval.h"
#include "firedrill/alerts/rule_file.h"
#include "firedrill/alerts/scraper.h"
#include "firedrill/alerts/series_store.h"
#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts {

struct MonitorOptions {
  std::vector<ScrapeTarget> targets;
  std::vector<RuleFile> rules;
  Duration scrape_interval = std::chrono::seconds(15);      // on the clock
  Duration evaluation_interval = std::chrono::seconds(15);
  // Hears each alert state change (drill time in t_ms), on the timer thread.
  std::function<void(const AlertTransition&)> on_transition;
};

class Monitor {
 public:
  // InvalidArgument for a non-positive interval, or a rule that does not
  // parse (named by file and line).
  static Result<std::unique_ptr<Monitor>> Start(MonitorOptions options, Clock& clock);
  ~Monitor();  // stops
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Cancels the rounds and waits for one in progress. Not from the listener.
  void Stop();
  // The clock's wall time now, in ms since the Unix epoch: the t_ms of
  // samples, and what time() answers, as on a Prometheus server (a
  // ScaledClock's wall time runs at its scale from when it was made).
  std::int64_t DrillMillis() const;
  std::vector<Alert> Alerts() const;                 // pending and firing now
  std::vector<AlertTransition> Timeline() const;     // every change so far
  bool Firing(std::string_view alertname) const;
  // The last scrape of each target: up, and why not.
  std::vector<std::pair<std::string, ScrapeOutcome>> LastScrapes() const;
  // The store the rules read, for the drill's own queries (verify checks).
  SeriesStore& store() { return store_; }

 private:
  Monitor(MonitorOptions options, Clock& clock, std::unique_ptr<RuleEngine> engine);
  void ScrapeAll();
  void EvaluateAll();
  void Schedule(Duration interval, void (Monitor::*round)(), TimerId* timer);

  // Shared with the timers' callbacks, which may fire while Stop runs: a
  // round starts only through the gate, and Stop waits for rounds inside.
  struct Gate {
    std::mutex mutex;
    std::condition_variable round_ended;
    bool stopped = false;
    int rounds_running = 0;
    bool Enter();  // false once stopped
    void Leave();
  };
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();

  MonitorOptions options_;
  Clock& clock_;
  SeriesStore store_;
  std::vector<std::unique_ptr<Scraper>> scrapers_;
  std::unique_ptr<RuleEngine> engine_;
  mutable std::mutex mutex_;  // engine_, last_scrapes_, the timers
  std::vector<std::pair<std::string, ScrapeOutcome>> last_scrapes_;
  std::size_t timeline_reported_ = 0;
  TimerId scrape_timer_ = 0;
  TimerId evaluation_timer_ = 0;
  bool stopped_ = false;
};

}  // namespace firedrill::alerts
