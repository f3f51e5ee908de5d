// The embedded monitor against a real /metrics endpoint on loopback, on drill
// time over the simulated clock: at a time scale of 60 a `for: 1m` rule fires
// after one (simulated) real second, and every change is heard in drill time.
#include "firedrill/alerts/monitor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "firedrill/net/http_server.h"

namespace firedrill::alerts {
namespace {

using namespace std::chrono_literals;

constexpr char kRules[] = R"(groups:
  - name: drill
    rules:
      - alert: GpuHot
        expr: gpu_temperature_celsius > 80
        for: 1m
)";

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = net::HttpServer::Start({}, [this](const net::HttpRequest&) {
      net::HttpResponse response;
      response.content_type = "text/plain; version=0.0.4";
      response.body = "gpu_temperature_celsius " + std::to_string(temperature_.load()) + "\n";
      return response;
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto rules = ParseRuleFile("drill.yml", kRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    options_.rules.push_back(std::move(*rules));
    options_.targets.push_back({.job = "gpu", .url = server_->url() + "/metrics"});
    options_.on_transition = [this](const AlertTransition& change) { heard_.push_back(change); };
  }
  // Advances real time in steps of a quarter second: 15 drill seconds, each
  // a scrape and an evaluation.
  void Run(Duration length) {
    for (Duration done{0}; done < length; done += 250ms) real_.Advance(250ms);
  }

  SimulatedClock real_;
  ScaledClock clock_{real_, 60};
  std::atomic<int> temperature_{40};
  std::unique_ptr<net::HttpServer> server_;
  MonitorOptions options_;
  std::vector<AlertTransition> heard_;
};

TEST_F(MonitorTest, ATimeScaleCompressesForAndIntervalsAlike) {
  const std::int64_t began = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.WallNow().time_since_epoch()).count();
  auto monitor = Monitor::Start(options_, clock_);
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  Run(1s);
  ASSERT_EQ((*monitor)->LastScrapes().size(), 1u);
  EXPECT_TRUE((*monitor)->LastScrapes()[0].second.up) << (*monitor)->LastScrapes()[0].second.error;
  EXPECT_FALSE((*monitor)->Firing("GpuHot"));

  temperature_ = 90;
  const std::int64_t hot_at = (*monitor)->DrillMillis();
  Run(750ms);  // 45 drill seconds: pending, not yet firing
  EXPECT_FALSE((*monitor)->Firing("GpuHot"));
  ASSERT_EQ((*monitor)->Alerts().size(), 1u);
  EXPECT_EQ((*monitor)->Alerts()[0].state, AlertState::kPending);
  Run(750ms);  // past a drill minute, plus a scrape and an evaluation
  EXPECT_TRUE((*monitor)->Firing("GpuHot"));

  temperature_ = 50;
  Run(500ms);
  EXPECT_FALSE((*monitor)->Firing("GpuHot"));
  EXPECT_TRUE((*monitor)->Alerts().empty());

  ASSERT_EQ(heard_.size(), 3u);
  EXPECT_EQ(heard_[0].to, AlertState::kPending);
  EXPECT_EQ(heard_[1].to, AlertState::kFiring);
  EXPECT_EQ(heard_[2].to, AlertState::kInactive);
  // Firing a drill minute (plus at most two 15 s rounds) after it got hot.
  const std::int64_t fired_after = heard_[1].t_ms - hot_at;
  EXPECT_GE(fired_after, 60'000);
  EXPECT_LE(fired_after, 90'000);
  EXPECT_EQ((*monitor)->Timeline().size(), 3u);
  // Three real seconds are three drill minutes, on the wall clock that
  // time() reads.
  EXPECT_EQ((*monitor)->DrillMillis() - began, 60 * 3000);
}

TEST_F(MonitorTest, ATargetThatIsDownIsScrapedAsDown) {
  options_.targets.push_back({.job = "gone", .url = "http://127.0.0.1:1/metrics"});
  auto monitor = Monitor::Start(options_, clock_);
  ASSERT_TRUE(monitor.ok());
  Run(250ms);
  const auto scrapes = (*monitor)->LastScrapes();
  ASSERT_EQ(scrapes.size(), 2u);
  EXPECT_TRUE(scrapes[0].second.up);
  EXPECT_FALSE(scrapes[1].second.up);
  EXPECT_FALSE(scrapes[1].second.error.empty());
}

TEST_F(MonitorTest, RefusesABadInterval) {
  options_.scrape_interval = Duration::zero();
  EXPECT_EQ(Monitor::Start(options_, clock_).status().code(), StatusCode::kInvalidArgument);
}

// Stopping while rounds run on a real clock's timer thread, again and again:
// a round in flight finishes first, and a late timer never touches a
// Monitor that is gone (the sanitizer build watches this).
TEST_F(MonitorTest, StoppingWhileRoundsRunIsSafe) {
  RealClock real;
  ScaledClock fast(real, 1000);  // a round every 15 ms
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto monitor = Monitor::Start(options_, fast);
    ASSERT_TRUE(monitor.ok());
    while ((*monitor)->LastScrapes().empty()) std::this_thread::yield();
    monitor->reset();  // stops, then destroys
  }
}

}  // namespace
}  // namespace firedrill::alerts
