// Firedrill's own evaluator beside a real Prometheus: both scrape the same
// exporter and evaluate the same rules; they must agree on which alerts fire,
// label for label, and on when, within one evaluation interval.
//
// Firedrill scrapes right after each Prometheus scrape (the exporter tells
// it), so both see the same samples and differ only in the evaluation phase.
// The servers run on real time, so waits are bounded polls of their APIs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "firedrill/alerts/api_clients.h"
#include "firedrill/alerts/managed.h"
#include "firedrill/alerts/rule_eval.h"
#include "firedrill/alerts/scraper.h"
#include "firedrill/net/http_server.h"

namespace firedrill::alerts {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr char kRules[] = R"(groups:
  - name: agree
    interval: 1s
    rules:
      - alert: ValueHigh
        expr: drill_value > 5
        for: 2s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.id }} is {{ $value }}"}
      - alert: TwoHigh
        expr: count(drill_value > 5) >= 2
      - alert: ErrorsRising
        expr: rate(drill_errors_total[4s]) > 2
)";

// Serves two gauges and a counter; wakes Firedrill's scraper after each of
// Prometheus's scrapes.
class Exporter {
 public:
  Exporter() {
    auto server = net::HttpServer::Start({}, [this](const net::HttpRequest& request) {
      std::lock_guard lock(mutex_);
      const double seconds = std::chrono::duration<double>(Steady::now() - start_).count();
      errors_ += error_rate_ * (seconds - last_seconds_);
      last_seconds_ = seconds;
      char body[512];
      std::snprintf(
          body, sizeof body,
          "# TYPE drill_value gauge\ndrill_value{id=\"a\"} %.17g\ndrill_value{id=\"b\"} %.17g\n"
          "# TYPE drill_errors_total counter\ndrill_errors_total %.17g\n",
          a_, b_, std::floor(errors_));
      if (request.Header("User-Agent").rfind("Prometheus/", 0) == 0) {
        ++prometheus_scrapes_;
        changed_.notify_all();
      }
      return net::HttpResponse{200, "text/plain; version=0.0.4", body, {}};
    });
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = std::move(server).value();
  }
  void Set(double a, double b, double error_rate) {
    std::lock_guard lock(mutex_);
    a_ = a;
    b_ = b;
    error_rate_ = error_rate;
  }
  // Waits for Prometheus's next scrape; false after `timeout`.
  bool WaitForPrometheusScrape(std::uint64_t* seen, Duration timeout) {
    std::unique_lock lock(mutex_);
    const bool scraped =
        changed_.wait_for(lock, timeout, [&] { return prometheus_scrapes_ > *seen; });
    *seen = prometheus_scrapes_;
    return scraped;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t prometheus_scrapes_ = 0;
  double a_ = 1, b_ = 1, error_rate_ = 0, errors_ = 0, last_seconds_ = 0;
  Steady::time_point start_ = Steady::now();
  std::unique_ptr<net::HttpServer> server_;
};

using FiringSet = std::set<std::map<std::string, std::string>>;

struct Observation {
  Steady::time_point at;
  FiringSet firing;
};

// When each alert (by its full label set) first fired and when it stopped.
std::map<std::map<std::string, std::string>, std::pair<double, double>> Windows(
    const std::vector<Observation>& observations, Steady::time_point origin) {
  std::map<std::map<std::string, std::string>, std::pair<double, double>> out;
  FiringSet previous;
  for (const Observation& observation : observations) {
    const double t = std::chrono::duration<double>(observation.at - origin).count();
    for (const auto& alert : observation.firing) {
      if (!previous.count(alert) && !out.count(alert)) out[alert] = {t, -1};
    }
    for (const auto& alert : previous) {
      if (!observation.firing.count(alert) && out[alert].second < 0) out[alert].second = t;
    }
    previous = observation.firing;
  }
  return out;
}

std::string Describe(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [name, value] : labels) out += name + "=" + value + " ";
  return out;
}

TEST(EvaluatorAgreement, FiredrillAndPrometheusFireTheSameAlertsWithinOneInterval) {
  std::string directory = ::testing::TempDir() + "firedrill-agree-XXXXXX";
  ASSERT_NE(mkdtemp(directory.data()), nullptr);
  const std::string rules_path = directory + "/agree.yml";
  std::ofstream(rules_path) << kRules;

  Exporter exporter;
  ManagedOptions options;
  ManagedScrapeTarget target;
  target.job = "drill";
  target.address = exporter.address();
  target.interval = 1s;
  target.timeout = 1s;
  options.targets = {target};
  options.rule_files = {rules_path};
  options.evaluation_interval = 1s;
  auto managed = ManagedMonitoring::Start(options);
  ASSERT_TRUE(managed.ok()) << managed.status();
  PrometheusClient prometheus((*managed)->prometheus_url());

  auto rule_file = LoadRuleFile(rules_path);
  ASSERT_TRUE(rule_file.ok()) << rule_file.status();
  RuleEngineOptions engine_options;
  engine_options.default_interval_ms = 1000;
  auto engine = RuleEngine::Create({*rule_file}, engine_options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  SeriesStore store;
  Scraper scraper({"drill", "http://" + exporter.address() + "/metrics", 1s}, &store);

  const Steady::time_point origin = Steady::now();
  std::mutex observations_mutex;
  std::vector<Observation> firedrill_seen, prometheus_seen;
  std::atomic<bool> stop{false};
  std::thread firedrill([&] {
    std::uint64_t scrapes = 0;
    while (!stop) {
      if (!exporter.WaitForPrometheusScrape(&scrapes, 3s)) continue;
      const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
      scraper.Scrape(now_ms);
      (*engine)->EvaluateAll(store, now_ms);
      FiringSet firing;
      for (const Alert& alert : (*engine)->Alerts()) {
        if (alert.state != AlertState::kFiring) continue;
        firing.insert(std::map<std::string, std::string>(alert.labels.begin(), alert.labels.end()));
      }
      std::lock_guard lock(observations_mutex);
      firedrill_seen.push_back({Steady::now(), std::move(firing)});
    }
  });
  auto poll_prometheus = [&] {
    auto alerts = prometheus.Alerts();
    if (!alerts.ok()) return FiringSet{};
    FiringSet firing;
    for (const PrometheusAlert& alert : *alerts) {
      if (alert.state == "firing") firing.insert({alert.labels.begin(), alert.labels.end()});
    }
    std::lock_guard lock(observations_mutex);
    prometheus_seen.push_back({Steady::now(), firing});
    return firing;
  };
  // Bounded poll of Prometheus until it fires exactly `count` alerts, then
  // a further two seconds so both sides settle.
  auto until_prometheus_fires = [&](std::size_t count) {
    const auto deadline = Steady::now() + 20s;
    while (Steady::now() < deadline && poll_prometheus().size() != count)
      std::this_thread::sleep_for(100ms);
    const auto settle = Steady::now() + 2s;
    while (Steady::now() < settle) {
      poll_prometheus();
      std::this_thread::sleep_for(100ms);
    }
    return prometheus_seen.back().firing.size() == count;
  };

  EXPECT_TRUE(until_prometheus_fires(0));
  exporter.Set(10, 1, 0);  // ValueHigh{id=a} after its 2 s `for`
  EXPECT_TRUE(until_prometheus_fires(1));
  exporter.Set(10, 10, 0);  // and ValueHigh{id=b}, TwoHigh
  EXPECT_TRUE(until_prometheus_fires(3));
  exporter.Set(10, 10, 20);  // and ErrorsRising
  EXPECT_TRUE(until_prometheus_fires(4));
  exporter.Set(1, 1, 0);  // everything resolves
  EXPECT_TRUE(until_prometheus_fires(0));
  stop = true;
  firedrill.join();
  managed->reset();
  std::filesystem::remove_all(directory);

  const auto firedrill_windows = Windows(firedrill_seen, origin);
  const auto prometheus_windows = Windows(prometheus_seen, origin);
  // One evaluation interval, plus the 100 ms of polling and the API's latency.
  constexpr double kTolerance = 1.0 + 0.3;
  ASSERT_EQ(prometheus_windows.size(), 4u);
  EXPECT_EQ(firedrill_windows.size(), prometheus_windows.size());
  for (const auto& [labels, window] : prometheus_windows) {
    const auto found = firedrill_windows.find(labels);
    ASSERT_NE(found, firedrill_windows.end()) << "Firedrill never fired " << Describe(labels);
    std::printf("[ agree ] %-60s fired %+.2f s, resolved %+.2f s (Firedrill minus Prometheus)\n",
                Describe(labels).c_str(), found->second.first - window.first,
                found->second.second - window.second);
    EXPECT_NEAR(found->second.first, window.first, kTolerance) << Describe(labels);
    EXPECT_GE(window.second, 0) << Describe(labels) << " never resolved in Prometheus";
    EXPECT_NEAR(found->second.second, window.second, kTolerance) << Describe(labels);
  }
}

}  // namespace
}  // namespace firedrill::alerts
