// Where a drill learns its alerts and metric values: the embedded evaluator
// (the Monitor on a clock of its own, so a slow scrape never delays the
// load's timers), real Prometheus and Alertmanager that Firedrill starts for
// the drill (managed), or a Prometheus that already runs (external). Each
// reports an alert by name: firing when any of its series fires, pending
// when none fires and one is pending.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/engine/drill.h"

namespace firedrill::engine {

struct WatcherOptions {
  std::string kind = "embedded";  // embedded, managed or external
  std::string prometheus_url;     // external: a running Prometheus (loopback)
  std::vector<std::string> rule_files;
  Duration scrape_interval = std::chrono::seconds(15);  // drill time
  Duration evaluation_interval = std::chrono::seconds(15);
  double time_scale = 1;
  // host:port of what to scrape, by job name as the rules know them
  // ("hsof-main", "hsof-gpu-exporter").
  std::vector<std::pair<std::string, std::string>> targets;
  std::string prometheus_binary = "/usr/bin/prometheus";
  std::string alertmanager_binary = "/usr/bin/prometheus-alertmanager";
};

class AlertWatcher {
 public:
  virtual ~AlertWatcher() = default;
  // Changes since the last call, stamped by `drill_ms`: drill ms now.
  virtual std::vector<DrillRecord::AlertChange> TakeChanges() = 0;
  virtual std::vector<std::string> Firing() const = 0;  // sorted
  // An instant query with one value (the first, when it has several).
  virtual Result<double> Query(const std::string& promql) = 0;
  virtual void Stop() = 0;
  virtual nlohmann::json Describe() const = 0;  // for result.json
};

// `drill_ms` tells the watcher the drill's time (ms since the load began).
Result<std::unique_ptr<AlertWatcher>> StartWatcher(const WatcherOptions& options,
                                                   std::function<std::int64_t()> drill_ms);

}  // namespace firedrill::engine
