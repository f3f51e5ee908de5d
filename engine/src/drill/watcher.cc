#include "watcher.h"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "firedrill/alerts/api_clients.h"
#include "firedrill/alerts/managed.h"
#include "firedrill/alerts/monitor.h"
#include "firedrill/alerts/promql.h"
#include "firedrill/alerts/rule_file.h"
#include "firedrill/core/units.h"
#include "firedrill/engine/plan.h"
#include "firedrill/workload/http_load.h"
#include "firedrill/workload/load_report.h"

namespace firedrill::engine {
namespace {

using nlohmann::json;

// Per alert name, the state of each of its series; an alert is firing when
// any series fires, pending when none fires and one is pending.
class AlertStates {
 public:
  // Returns the alert's new state when it changed, else empty.
  std::string Set(const std::string& alert, const std::string& series, const std::string& state) {
    std::map<std::string, std::string>& by_series = series_[alert];
    if (state == "inactive") {
      by_series.erase(series);
    } else {
      by_series[series] = state;
    }
    std::string now = "resolved";
    for (const auto& [unused, each] : by_series) {
      if (each == "firing") now = "firing";
      if (each == "pending" && now != "firing") now = "pending";
    }
    std::string& before = overall_[alert];
    if (before.empty()) before = "resolved";
    if (now == before) return "";
    before = now;
    return now;
  }
  std::vector<std::string> Firing() const {
    std::vector<std::string> out;
    for (const auto& [alert, state] : overall_) {
      if (state == "firing") out.push_back(alert);
    }
    return out;
  }

 private:
  std::map<std::string, std::map<std::string, std::string>> series_;
  std::map<std::string, std::string> overall_;
};

// What both watchers keep: each alert's state and the changes not yet taken.
class StatefulWatcher : public AlertWatcher {
 public:
  explicit StatefulWatcher(std::function<std::int64_t()> drill_ms) : drill_ms_(std::move(drill_ms)) {}
  std::vector<DrillRecord::AlertChange> TakeChanges() override {
    std::lock_guard lock(mutex_);
    return std::exchange(changes_, {});
  }
  std::vector<std::string> Firing() const override {
    std::lock_guard lock(mutex_);
    return states_.Firing();
  }

 protected:
  // One series of `alert` is now in `state`; mutex_ held.
  void ApplyLocked(const std::string& alert, const std::string& series, const std::string& state) {
    const std::string now = states_.Set(alert, series, state);
    if (!now.empty()) changes_.push_back({drill_ms_(), alert, now});
  }

  mutable std::mutex mutex_;

 private:
  std::function<std::int64_t()> drill_ms_;
  AlertStates states_;
  std::vector<DrillRecord::AlertChange> changes_;
};

class EmbeddedWatcher final : public StatefulWatcher {
 public:
  EmbeddedWatcher(const WatcherOptions& options, std::function<std::int64_t()> drill_ms)
      : StatefulWatcher(std::move(drill_ms)), options_(options), clock_(real_, options.time_scale) {}

  Status Start() {
    alerts::MonitorOptions monitor;
    for (const std::string& path : options_.rule_files) {
      FD_ASSIGN_OR_RETURN(alerts::RuleFile rules, alerts::LoadRuleFile(path));
      monitor.rules.push_back(std::move(rules));
    }
    // A scrape may take at most one scrape interval of real time, so a
    // target that hangs (a paused process) cannot hold the rounds up.
    const Duration timeout =
        std::clamp(Scaled(options_.scrape_interval, options_.time_scale), Duration(std::chrono::milliseconds(100)),
                   Duration(std::chrono::seconds(10)));
    for (const auto& [job, address] : options_.targets) {
      monitor.targets.push_back({.job = job, .url = "http://" + address + "/metrics", .timeout = timeout});
    }
    monitor.scrape_interval = options_.scrape_interval;
    monitor.evaluation_interval = options_.evaluation_interval;
    monitor.on_transition = [this](const alerts::AlertTransition& change) {
      std::string series;
      for (const auto& [name, value] : change.labels) series += name + "=" + value + ",";
      std::lock_guard lock(mutex_);
      ApplyLocked(change.alertname, series, std::string(alerts::AlertStateName(change.to)));
    };
    FD_ASSIGN_OR_RETURN(monitor_, alerts::Monitor::Start(std::move(monitor), clock_));
    return Status();
  }

  Result<double> Query(const std::string& text) override {
    FD_ASSIGN_OR_RETURN(auto expr, alerts::promql::Parse(text));
    Result<alerts::promql::QueryResult> result = FD_STATUS(StatusCode::kInternal, "not evaluated");
    const std::int64_t at = monitor_->DrillMillis();
    monitor_->store().Read([&](const alerts::SeriesSource& source) { result = alerts::promql::Evaluate(*expr, source, at); });
    FD_RETURN_IF_ERROR(result.status());
    if (result->type == alerts::promql::ValueType::kScalar) return result->scalar;
    if (result->type == alerts::promql::ValueType::kVector && !result->vector.empty()) return result->vector[0].value;
    return FD_STATUS(StatusCode::kNotFound, text + ": no data");
  }
  void Stop() override {
    if (monitor_) monitor_->Stop();
  }
  json Describe() const override {
    json scrapes = json::array();
    for (const auto& [job, outcome] : monitor_->LastScrapes()) {
      scrapes.push_back({{"job", job}, {"up", outcome.up}, {"error", outcome.error}});
    }
    return {{"kind", "embedded"}, {"lastScrapes", scrapes}};
  }

 private:
  WatcherOptions options_;
  RealClock real_;  // its own timer thread
  ScaledClock clock_;
  std::unique_ptr<alerts::Monitor> monitor_;
};

class ManagedWatcher final : public StatefulWatcher {
 public:
  ManagedWatcher(const WatcherOptions& options, std::function<std::int64_t()> drill_ms)
      : StatefulWatcher(std::move(drill_ms)), options_(options) {}
  ~ManagedWatcher() override { Stop(); }

  Status Start() {
    alerts::ManagedOptions managed;
    const Duration scrape = std::max(Scaled(options_.scrape_interval, options_.time_scale),
                                     Duration(std::chrono::milliseconds(100)));
    for (const auto& [job, address] : options_.targets) {
      managed.targets.push_back({.job = job, .address = address, .interval = scrape, .timeout = scrape, .labels = {}});
    }
    managed.evaluation_interval = std::max(Scaled(options_.evaluation_interval, options_.time_scale),
                                           Duration(std::chrono::milliseconds(100)));
    managed.prometheus_binary = options_.prometheus_binary;
    managed.alertmanager_binary = options_.alertmanager_binary;
    // Prometheus runs in real time: a compressed drill gives it rule files
    // whose durations are compressed instead.
    std::string scaled_dir;
    if (options_.time_scale != 1) {
      FD_ASSIGN_OR_RETURN(scaled_dir, ScaledRulesDirectory());
    }
    for (const std::string& path : options_.rule_files) {
      if (options_.time_scale == 1) {
        managed.rule_files.push_back(path);
        continue;
      }
      std::ifstream in(path);
      const std::string text((std::istreambuf_iterator<char>(in)), {});
      Result<std::string> scaled = alerts::ScaleRuleFile(text, options_.time_scale);
      if (!scaled.ok()) {
        std::error_code ignored;
        std::filesystem::remove_all(scaled_dir, ignored);
        return scaled.status().WithContext(path);
      }
      const std::string out_path = scaled_dir + "/" + std::to_string(managed.rule_files.size()) + "-" +
                                   std::filesystem::path(path).filename().string();
      std::ofstream out(out_path);
      out << *scaled;
      out.close();
      if (!out || text.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(scaled_dir, ignored);
        return FD_STATUS(StatusCode::kUnavailable, path + ": could not read it, or write its scaled copy");
      }
      managed.rule_files.push_back(out_path);
    }
    auto started = alerts::ManagedMonitoring::Start(managed);
    std::error_code ignored;
    if (!scaled_dir.empty()) std::filesystem::remove_all(scaled_dir, ignored);  // Start copied them
    FD_RETURN_IF_ERROR(started.status());
    managed_ = std::move(*started);
    client_ = std::make_unique<alerts::PrometheusClient>(managed_->prometheus_url());
    poll_every_ = managed.evaluation_interval;
    poller_ = std::thread([this] { Poll(); });
    return Status();
  }

  // A Prometheus that already runs, scraping the target and evaluating its
  // own rules: read, never configured.
  Status StartExternal() {
    // The drill refuses an external Prometheus at a time scale before it
    // starts anything; here, only loopback, by the rule the load follows.
    FD_ASSIGN_OR_RETURN(const workload::HttpUrl url, workload::ParseHttpUrl(options_.prometheus_url));
    FD_RETURN_IF_ERROR(workload::CheckLoadTarget(options_.prometheus_url, url.host, false));
    client_ = std::make_unique<alerts::PrometheusClient>(options_.prometheus_url);
    if (Status ready = client_->Ready(); !ready.ok()) {
      return FD_STATUS(StatusCode::kUnavailable,
                       "prometheus " + options_.prometheus_url + " is not ready: " + ready.message());
    }
    poll_every_ = std::max(options_.evaluation_interval, Duration(std::chrono::milliseconds(100)));
    poller_ = std::thread([this] { Poll(); });
    return Status();
  }

  Result<double> Query(const std::string& text) override {
    FD_ASSIGN_OR_RETURN(const alerts::QueryResult result, client_->Query(text));
    if (result.samples.empty()) return FD_STATUS(StatusCode::kNotFound, text + ": no data");
    return result.samples[0].value;
  }
  void Stop() override {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    wake_.notify_all();
    if (poller_.joinable()) poller_.join();
  }
  json Describe() const override {
    if (!managed_) return {{"kind", "external"}, {"prometheus", options_.prometheus_url}};
    return {{"kind", "managed"},
            {"prometheus", managed_->prometheus_url()},
            {"alertmanager", managed_->alertmanager_url()}};
  }

 private:
  // A folder of its own, or an error: never the temporary folder itself,
  // which the caller removes afterwards.
  static Result<std::string> ScaledRulesDirectory() {
    std::error_code error;
    const std::filesystem::path temp = std::filesystem::temp_directory_path(error);
    if (error) return FD_STATUS(StatusCode::kUnavailable, "no temporary folder: " + error.message());
    std::string pattern = (temp / "firedrill-rules-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return FD_STATUS(StatusCode::kUnavailable, "cannot create " + pattern + ": " + std::strerror(errno));
    }
    return pattern;
  }

  // Prometheus's view of the alerts, as often as it evaluates them.
  void Poll() {
    std::unique_lock lock(mutex_);
    while (!stopped_) {
      lock.unlock();
      Result<std::vector<alerts::PrometheusAlert>> alerts = client_->Alerts();
      lock.lock();
      if (alerts.ok()) {
        std::map<std::string, std::map<std::string, std::string>> seen;
        for (const alerts::PrometheusAlert& alert : *alerts) {
          std::string series;
          for (const auto& [name, value] : alert.labels) series += name + "=" + value + ",";
          seen[alert.labels.count("alertname") ? alert.labels.at("alertname") : "?"][series] = alert.state;
        }
        // Series no longer listed are inactive.
        for (auto& [alert, by_series] : last_) {
          for (const auto& [series, state] : by_series) {
            if (!seen[alert].count(series)) ApplyLocked(alert, series, "inactive");
          }
        }
        for (const auto& [alert, by_series] : seen) {
          for (const auto& [series, state] : by_series) ApplyLocked(alert, series, state);
        }
        last_ = std::move(seen);
      }
      wake_.wait_for(lock, poll_every_, [&] { return stopped_; });
    }
  }
  WatcherOptions options_;
  std::unique_ptr<alerts::ManagedMonitoring> managed_;
  std::unique_ptr<alerts::PrometheusClient> client_;
  Duration poll_every_{std::chrono::seconds(1)};
  std::thread poller_;
  std::condition_variable wake_;
  bool stopped_ = false;  // mutex_
  std::map<std::string, std::map<std::string, std::string>> last_;
};

}  // namespace

Result<std::unique_ptr<AlertWatcher>> StartWatcher(const WatcherOptions& options,
                                                   std::function<std::int64_t()> drill_ms) {
  if (options.kind == "managed" || options.kind == "external") {
    auto watcher = std::make_unique<ManagedWatcher>(options, std::move(drill_ms));
    FD_RETURN_IF_ERROR(options.kind == "managed" ? watcher->Start() : watcher->StartExternal());
    return std::unique_ptr<AlertWatcher>(std::move(watcher));
  }
  if (options.kind != "embedded") {
    return FD_STATUS(StatusCode::kInvalidArgument, "monitoring kind " + options.kind + " is unknown");
  }
  auto watcher = std::make_unique<EmbeddedWatcher>(options, std::move(drill_ms));
  FD_RETURN_IF_ERROR(watcher->Start());
  return std::unique_ptr<AlertWatcher>(std::move(watcher));
}

}  // namespace firedrill::engine
