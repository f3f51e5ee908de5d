// Live tests: the real Debian prometheus and prometheus-alertmanager, started
// by ManagedMonitoring on loopback, scraping an exporter whose value the test
// drives. Waits are bounded polls of the servers' APIs: the servers run on
// real time and say when something happened only through those APIs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

#include "firedrill/alerts/api_clients.h"
#include "firedrill/alerts/managed.h"
#include "firedrill/net/http_server.h"

namespace firedrill::alerts {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- Encodings (no servers) ----

TEST(PrometheusValueTest, ReadsWhatPrometheusWrites) {
  EXPECT_EQ(*ParsePrometheusValue("1.5"), 1.5);
  EXPECT_EQ(*ParsePrometheusValue("1e+01"), 10);
  EXPECT_EQ(*ParsePrometheusValue("-2"), -2);
  EXPECT_TRUE(std::isnan(*ParsePrometheusValue("NaN")));
  EXPECT_EQ(*ParsePrometheusValue("+Inf"), INFINITY);
  EXPECT_EQ(*ParsePrometheusValue("-Inf"), -INFINITY);
  for (const char* bad : {"", "+", "abc", "1.5x", "+-1", " 1"}) {
    Result<double> value = ParsePrometheusValue(bad);
    EXPECT_FALSE(value.ok()) << bad;
    EXPECT_EQ(value.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(Rfc3339Test, ReadsZonesFractionsAndGoZeroTime) {
  const WallTime noon_utc = WallTime(std::chrono::seconds(1714564800));  // 2024-05-01T12:00:00Z
  EXPECT_EQ(*ParseRfc3339("2024-05-01T12:00:00Z"), noon_utc);
  EXPECT_EQ(*ParseRfc3339("2024-05-01T14:00:00+02:00"), noon_utc);
  EXPECT_EQ(*ParseRfc3339("2024-05-01T12:00:00.123456789Z"), noon_utc + 123456789ns);
  EXPECT_EQ(*ParseRfc3339("2024-05-01T12:00:00.5-01:30"), noon_utc + 90min + 500ms);
  EXPECT_EQ(*ParseRfc3339("0001-01-01T00:00:00Z"), WallTime{});
  for (const char* bad : {"", "2024-05-01", "2024-13-01T00:00:00Z", "2024-05-01T12:00:00",
                          "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zjunk"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatRfc3339(noon_utc + 123456789ns), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(*ParseRfc3339(FormatRfc3339(noon_utc + 5ms)), noon_utc + 5ms);
}

// ---- Helpers ----

// Polls `condition` until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition, Duration timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Dead, or a zombie waiting for whoever inherited it to reap it.
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const std::size_t paren = text.rfind(')');
  return text.empty() || (paren != std::string::npos && paren + 2 < text.size() &&
                          (text[paren + 2] == 'Z' || text[paren + 2] == 'X'));
}

int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

// A scratch directory of the test's own, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = ::testing::TempDir() + "firedrill-live-XXXXXX";
    EXPECT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ + "/" + name) << text;
    return path_ + "/" + name;
  }

 private:
  std::string path_;
};

constexpr char kRules[] = R"(groups:
  - name: drill
    rules:
      - alert: DrillValueHigh
        expr: drill_value > 5
        for: 0s
        labels: {severity: page}
        annotations: {summary: "drill value is {{ $value }}"}
)";

// Serves `drill_value` with the value the test sets.
class Exporter {
 public:
  Exporter() {
    auto server = net::HttpServer::Start({}, [this](const net::HttpRequest&) {
      char body[128];
      std::snprintf(body, sizeof body, "# TYPE drill_value gauge\ndrill_value %.17g\n",
                    value_.load());
      return net::HttpResponse{200, "text/plain; version=0.0.4", body, {}};
    });
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = std::move(server).value();
  }
  void Set(double value) { value_ = value; }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }

 private:
  std::atomic<double> value_{1};
  std::unique_ptr<net::HttpServer> server_;
};

ManagedScrapeTarget DrillTarget(const Exporter& exporter) {
  ManagedScrapeTarget target;
  target.job = "drill";
  target.address = exporter.address();
  target.interval = 1s;
  target.timeout = 1s;
  return target;
}

// One managed Prometheus and Alertmanager for the suite (each test process
// under ctest starts its own).
class LiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new ScratchDir();
    exporter_ = new Exporter();
    ManagedOptions options;
    options.targets = {DrillTarget(*exporter_)};
    options.rule_files = {scratch_->Write("drill.yml", kRules)};
    options.evaluation_interval = 1s;
    const auto started = std::chrono::steady_clock::now();
    auto managed = ManagedMonitoring::Start(options);
    ASSERT_TRUE(managed.ok()) << managed.status();
    std::cout << "[ timing ] managed start: " << Seconds(started) << " s\n";
    managed_ = std::move(managed).value().release();
  }
  static void TearDownTestSuite() {
    delete managed_;
    delete exporter_;
    delete scratch_;
    managed_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(managed_, nullptr) << "managed servers did not start"; }

  static ScratchDir* scratch_;
  static Exporter* exporter_;
  static ManagedMonitoring* managed_;
};
ScratchDir* LiveTest::scratch_ = nullptr;
Exporter* LiveTest::exporter_ = nullptr;
ManagedMonitoring* LiveTest::managed_ = nullptr;

const PrometheusAlert* FindAlert(const std::vector<PrometheusAlert>& alerts,
                                 const std::string& name) {
  for (const PrometheusAlert& alert : alerts) {
    if (alert.labels.count("alertname") && alert.labels.at("alertname") == name) return &alert;
  }
  return nullptr;
}

TEST_F(LiveTest, AlertFiresInPrometheusReachesAlertmanagerAndResolves) {
  PrometheusClient prometheus(managed_->prometheus_url());
  AlertmanagerClient alertmanager(managed_->alertmanager_url());
  // Scraping works: the target is up and its value is seen.
  ASSERT_TRUE(Eventually([&] {
    auto result = prometheus.Query("drill_value");
    return result.ok() && result->samples.size() == 1 && result->samples[0].value == 1;
  })) << "Prometheus never scraped the exporter";
  auto targets = prometheus.Targets();
  ASSERT_TRUE(targets.ok()) << targets.status();
  ASSERT_EQ(targets->size(), 1u);
  EXPECT_EQ((*targets)[0].scrape_url, "http://" + exporter_->address() + "/metrics");
  EXPECT_EQ((*targets)[0].labels.at("job"), "drill");
  auto alertmanagers = prometheus.Alertmanagers();
  ASSERT_TRUE(alertmanagers.ok()) << alertmanagers.status();
  EXPECT_THAT(*alertmanagers,
              ::testing::ElementsAre(managed_->alertmanager_url() + "/api/v2/alerts"));
  auto up = prometheus.Query("up{job=\"drill\"}");
  ASSERT_TRUE(up.ok()) << up.status();
  ASSERT_EQ(up->samples.size(), 1u);
  EXPECT_EQ(up->samples[0].value, 1);
  EXPECT_EQ(up->samples[0].labels.at("instance"), exporter_->address());

  exporter_->Set(10);
  const auto raised = std::chrono::steady_clock::now();
  PrometheusAlert firing;
  ASSERT_TRUE(Eventually([&] {
    auto alerts = prometheus.Alerts();
    const PrometheusAlert* alert = alerts.ok() ? FindAlert(*alerts, "DrillValueHigh") : nullptr;
    if (alert == nullptr || alert->state != "firing") return false;
    firing = *alert;
    return true;
  })) << "DrillValueHigh never fired in Prometheus";
  const double fired_after = Seconds(raised);
  EXPECT_EQ(firing.value, 10);
  EXPECT_EQ(firing.labels.at("severity"), "page");
  EXPECT_EQ(firing.labels.at("job"), "drill");
  EXPECT_EQ(firing.annotations.at("summary"), "drill value is 10");
  EXPECT_GT(firing.active_at, WallTime(std::chrono::seconds(1'700'000'000)));

  AlertmanagerAlert received;
  ASSERT_TRUE(Eventually([&] {
    auto alerts = alertmanager.Alerts({{"alertname=\"DrillValueHigh\""}});
    if (!alerts.ok() || alerts->empty()) return false;
    received = alerts->front();
    return true;
  })) << "DrillValueHigh never reached Alertmanager";
  const double received_after = Seconds(raised);
  EXPECT_EQ(received.state, "active");
  EXPECT_EQ(received.labels.at("severity"), "page");
  EXPECT_EQ(received.annotations.at("summary"), "drill value is 10");
  EXPECT_THAT(received.generator_url, HasSubstr(managed_->prometheus_url()));
  EXPECT_THAT(received.receivers, ::testing::ElementsAre("firedrill"));
  EXPECT_FALSE(received.fingerprint.empty());

  auto groups = prometheus.Rules();
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].name, "drill");
  EXPECT_EQ((*groups)[0].interval, 1s);
  ASSERT_EQ((*groups)[0].rules.size(), 1u);
  const PrometheusRule& rule = (*groups)[0].rules[0];
  EXPECT_EQ(rule.type, "alerting");
  EXPECT_EQ(rule.name, "DrillValueHigh");
  EXPECT_EQ(rule.query, "drill_value > 5");
  EXPECT_EQ(rule.health, "ok");
  EXPECT_EQ(rule.state, "firing");
  EXPECT_EQ(rule.alerts.size(), 1u);

  exporter_->Set(1);
  const auto lowered = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] {
    auto alerts = prometheus.Alerts();
    return alerts.ok() && FindAlert(*alerts, "DrillValueHigh") == nullptr;
  })) << "DrillValueHigh never resolved in Prometheus";
  const double resolved_after = Seconds(lowered);
  auto after = prometheus.Rules();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)[0].rules[0].state, "inactive");
  // Prometheus sends the resolved alert on; Alertmanager's API then leaves it out.
  ASSERT_TRUE(Eventually([&] {
    auto alerts = alertmanager.Alerts({{"alertname=\"DrillValueHigh\""}});
    return alerts.ok() && alerts->empty();
  })) << "Alertmanager still lists the resolved alert";
  const double cleared_after = Seconds(lowered);
  std::cout << "[ timing ] firing in Prometheus " << fired_after << " s, in Alertmanager "
            << received_after << " s after the value rose; resolved in Prometheus "
            << resolved_after << " s, gone from Alertmanager " << cleared_after
            << " s after it fell\n";
}

TEST_F(LiveTest, QueriesDecodeEveryResultTypeAndPrometheusNumbers) {
  PrometheusClient prometheus(managed_->prometheus_url());
  auto scalar = prometheus.Query("1 / 0");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->result_type, "scalar");
  ASSERT_EQ(scalar->samples.size(), 1u);
  EXPECT_EQ(scalar->samples[0].value, INFINITY);
  auto nan = prometheus.Query("0 / 0", WallTime(std::chrono::seconds(1'714'564'800)));
  ASSERT_TRUE(nan.ok()) << nan.status();
  EXPECT_TRUE(std::isnan(nan->samples[0].value));
  EXPECT_EQ(nan->samples[0].timestamp_ms, 1'714'564'800'000);
  auto text = prometheus.Query("\"drill\"");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->result_type, "string");
  EXPECT_EQ(text->string_value, "drill");

  ASSERT_TRUE(Eventually([&] {
    auto result = prometheus.Query("count_over_time(up{job=\"drill\"}[1m])");
    return result.ok() && result->samples.size() == 1 && result->samples[0].value >= 3;
  })) << "fewer than 3 scrapes seen";
  const WallTime now = std::chrono::system_clock::now();
  auto range = prometheus.QueryRange("up{job=\"drill\"}", now - 2s, now, 1s);
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->result_type, "matrix");
  ASSERT_EQ(range->series.size(), 1u);
  EXPECT_EQ(range->series[0].labels.at("job"), "drill");
  ASSERT_EQ(range->series[0].points.size(), 3u);
  EXPECT_EQ(range->series[0].points[2].value, 1);
  EXPECT_EQ(range->series[0].points[2].timestamp_ms,
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
}

TEST_F(LiveTest, ErrorsNameTheUrlTheStatusAndTheServersMessage) {
  PrometheusClient prometheus(managed_->prometheus_url());
  auto bad = prometheus.Query("drill_value +");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("query \"drill_value +\""));
  EXPECT_THAT(bad.status().message(), HasSubstr(managed_->prometheus_url() + "/api/v1/query"));
  EXPECT_THAT(bad.status().message(), HasSubstr("HTTP 400 (bad_data)"));
  EXPECT_THAT(bad.status().message(), HasSubstr("parse error"));

  auto bad_range = prometheus.QueryRange("up", std::chrono::system_clock::now(),
                                         std::chrono::system_clock::now(), 0s);
  ASSERT_FALSE(bad_range.ok());
  EXPECT_EQ(bad_range.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_range.status().message(), HasSubstr("step"));

  const std::string nowhere = "http://127.0.0.1:" + std::to_string(UnusedPort());
  PrometheusClient refused(nowhere);
  auto unreachable = refused.Alerts();
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(unreachable.status().message(), HasSubstr("GET " + nowhere + "/api/v1/alerts"));
  EXPECT_THAT(unreachable.status().message(), HasSubstr("Failed to connect"));
  EXPECT_FALSE(AlertmanagerClient(nowhere).Ready().ok());

  // Something that is not Prometheus: a 404 with a body it wrote.
  AlertmanagerClient alertmanager(managed_->alertmanager_url());
  auto missing = alertmanager.GetSilence("00000000-0000-0000-0000-000000000000");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("HTTP 404"));
  std::cout << "[ errors ] " << bad.status().message() << "\n[ errors ] "
            << unreachable.status().message() << "\n[ errors ] " << missing.status().message()
            << "\n";
}

TEST_F(LiveTest, PostedAlertsAndSilences) {
  AlertmanagerClient alertmanager(managed_->alertmanager_url());
  ASSERT_TRUE(alertmanager.Ready().ok());
  PostableAlert posted;
  posted.labels = {{"alertname", "FiredrillPosted"}, {"drill", "silences"}};
  posted.annotations = {{"summary", "posted by the live test"}};
  posted.starts_at = std::chrono::system_clock::now() - 1s;
  ASSERT_TRUE(alertmanager.PostAlerts({posted}).ok());
  const AlertFilter only_posted{{"alertname=\"FiredrillPosted\""}};
  ASSERT_TRUE(Eventually([&] {
    auto alerts = alertmanager.Alerts(only_posted);
    return alerts.ok() && alerts->size() == 1 && (*alerts)[0].state == "active";
  }));

  Silence silence;
  silence.matchers = {{"alertname", "FiredrillPosted"}, {"drill", "sil.*", true}};
  silence.starts_at = std::chrono::system_clock::now();
  silence.ends_at = silence.starts_at + 1h;
  silence.created_by = "firedrill live test";
  silence.comment = "checking silences";
  auto id = alertmanager.CreateSilence(silence);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_FALSE(id->empty());

  auto listed = alertmanager.Silences();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, *id);
  EXPECT_EQ((*listed)[0].state, "active");
  EXPECT_EQ((*listed)[0].created_by, "firedrill live test");
  ASSERT_EQ((*listed)[0].matchers.size(), 2u);
  EXPECT_TRUE((*listed)[0].matchers[1].is_regex);
  EXPECT_NEAR(std::chrono::duration<double>((*listed)[0].ends_at - silence.ends_at).count(), 0,
              0.001);

  ASSERT_TRUE(Eventually([&] {
    auto alerts = alertmanager.Alerts(only_posted);
    return alerts.ok() && alerts->size() == 1 && (*alerts)[0].state == "suppressed" &&
           (*alerts)[0].silenced_by == std::vector<std::string>{*id};
  })) << "the silence never suppressed the alert";
  AlertFilter unsilenced = only_posted;
  unsilenced.silenced = false;
  auto hidden = alertmanager.Alerts(unsilenced);
  ASSERT_TRUE(hidden.ok()) << hidden.status();
  EXPECT_TRUE(hidden->empty());

  ASSERT_TRUE(alertmanager.DeleteSilence(*id).ok());
  auto expired = alertmanager.GetSilence(*id);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->state, "expired");
  ASSERT_TRUE(Eventually([&] {
    auto alerts = alertmanager.Alerts(only_posted);
    return alerts.ok() && alerts->size() == 1 && (*alerts)[0].state == "active";
  })) << "the alert stayed suppressed after the silence expired";

  Silence empty;
  empty.starts_at = std::chrono::system_clock::now();
  empty.ends_at = empty.starts_at + 1h;
  empty.created_by = "firedrill live test";
  empty.comment = "no matchers";
  auto refused = alertmanager.CreateSilence(empty);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  // go-swagger's validation answers 422 with its own message.
  EXPECT_THAT(refused.status().message(), HasSubstr("/api/v2/silences: HTTP 422"));
  EXPECT_THAT(refused.status().message(), HasSubstr("matchers"));
  std::cout << "[ errors ] " << refused.status().message() << "\n";
}

// A server that is not quite Prometheus: slow, or answering nonsense.
TEST(ApiClientTest, TimesOutAndTurnsOddAnswersIntoStatuses) {
  std::atomic<int> mode{0};
  auto server = net::HttpServer::Start({}, [&](const net::HttpRequest& request) {
    if (request.path.rfind("/slow", 0) == 0) {
      std::this_thread::sleep_for(500ms);
      return net::HttpResponse{200, "application/json", "{}", {}};
    }
    const char* bodies[] = {"<html>not json</html>", R"({"status":"success","data":{}})",
                            R"({"status":"success","data":{"alerts":[{"labels":{},"state":"firing",
                                "activeAt":"yesterday","value":"1"}]}})",
                            R"([{"labels":{"a":1}}])"};
    return net::HttpResponse{200, "application/json", bodies[mode.load()], {}};
  });
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = (*server)->url();

  ApiClientOptions quick;
  quick.timeout = 100ms;
  PrometheusClient slow(url + "/slow", quick);
  auto timed_out = slow.Alerts();
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(timed_out.status().message(), HasSubstr("no answer within 100 ms"));

  PrometheusClient prometheus(url);
  AlertmanagerClient alertmanager(url);
  for (int i = 0; i < 3; ++i) {
    mode = i;
    auto alerts = prometheus.Alerts();
    ASSERT_FALSE(alerts.ok()) << i;
    EXPECT_EQ(alerts.status().code(), StatusCode::kInternal);
    EXPECT_THAT(alerts.status().message(), HasSubstr("GET " + url + "/api/v1/alerts"));
    EXPECT_THAT(alerts.status().message(), HasSubstr("unexpected response"));
  }
  EXPECT_THAT(prometheus.Alerts().status().message(), HasSubstr("yesterday"));
  mode = 3;
  auto silences = alertmanager.Alerts();
  ASSERT_FALSE(silences.ok());
  EXPECT_EQ(silences.status().code(), StatusCode::kInternal);
  (*server)->Stop();
}

// ---- Lifecycle ----

TEST(ManagedLifecycleTest, DestroyingStopsBothServersAndRemovesTheDirectory) {
  ManagedOptions options;
  options.wait_for_discovery = false;  // only the processes matter here
  const auto started = std::chrono::steady_clock::now();
  auto managed = ManagedMonitoring::Start(options);
  ASSERT_TRUE(managed.ok()) << managed.status();
  const double start_seconds = Seconds(started);
  const pid_t prometheus = (*managed)->prometheus_pid();
  const pid_t alertmanager = (*managed)->alertmanager_pid();
  const std::string directory = (*managed)->directory();
  EXPECT_EQ(kill(prometheus, 0), 0);
  EXPECT_EQ(kill(alertmanager, 0), 0);
  EXPECT_EQ(getpgid(prometheus), prometheus);
  EXPECT_EQ(getpgid(alertmanager), alertmanager);
  EXPECT_TRUE(fs::exists(directory + "/prometheus.yml"));
  EXPECT_TRUE(fs::exists(directory + "/alertmanager.yml"));
  EXPECT_TRUE(PrometheusClient((*managed)->prometheus_url()).Ready().ok());

  const auto stopping = std::chrono::steady_clock::now();
  managed->reset();
  std::cout << "[ timing ] start " << start_seconds << " s, stop " << Seconds(stopping) << " s\n";
  errno = 0;
  EXPECT_EQ(kill(prometheus, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  errno = 0;
  EXPECT_EQ(kill(alertmanager, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(fs::exists(directory));
}

TEST(ManagedLifecycleTest, FailuresSayWhyAndLeaveNothingBehind) {
  ScratchDir scratch;
  ManagedOptions missing;
  missing.prometheus_binary = scratch.path() + "/no-such-prometheus";
  auto not_found = ManagedMonitoring::Start(missing);
  ASSERT_FALSE(not_found.ok());
  EXPECT_EQ(not_found.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(not_found.status().message(), HasSubstr("no-such-prometheus"));

  ManagedOptions bad_target;
  bad_target.targets = {{"drill", "127.0.0.1:1", "/metrics", 1s, 2s, {}}};
  auto invalid = ManagedMonitoring::Start(bad_target);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);

  // A rule file Prometheus refuses: it exits, and the error quotes its log.
  ManagedOptions broken;
  broken.rule_files = {scratch.Write("broken.yml",
                                     "groups:\n  - name: x\n    rules:\n"
                                     "      - alert: Broken\n        expr: up +\n")};
  const std::string root = scratch.path() + "/root";
  fs::create_directory(root);
  broken.temp_root = root;
  auto refused = ManagedMonitoring::Start(broken);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("prometheus exited"));
  // The error names the user's file, not Firedrill's copy of it.
  EXPECT_THAT(refused.status().message(), HasSubstr(broken.rule_files[0] + ": 5:15:"));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("1-broken.yml")));
  std::cout << "[ errors ] " << refused.status().message().substr(0, 600) << "\n";
  EXPECT_TRUE(fs::is_empty(root)) << "Start left its directory behind";
}

TEST(ManagedLifecycleTest, StartsOnAnotherPortWhenThePortWasTaken) {
  // A stand-in that fails as Alertmanager does on a taken port the first
  // time, then runs the real one.
  ScratchDir scratch;
  const std::string marker = scratch.path() + "/tried";
  const std::string wrapper = scratch.Write(
      "alertmanager", "#!/bin/sh\nif [ ! -e " + marker + " ]; then\n  touch " + marker +
                          "\n  echo 'level=error msg=\"Listen error\" err=\"bind: address "
                          "already in use\"' >&2\n  exit 1\nfi\nexec "
                          "/usr/bin/prometheus-alertmanager \"$@\"\n");
  fs::permissions(wrapper, fs::perms::owner_all);
  ManagedOptions options;
  options.alertmanager_binary = wrapper;
  options.wait_for_discovery = false;
  auto managed = ManagedMonitoring::Start(options);
  ASSERT_TRUE(managed.ok()) << managed.status();
  EXPECT_TRUE(fs::exists(marker));
  EXPECT_TRUE(AlertmanagerClient((*managed)->alertmanager_url()).Ready().ok());
}

TEST(ManagedLifecycleTest, KillingTheOwnerLeavesNoServerAndNoDirectory) {
  ScratchDir scratch;
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t owner = fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    // The owner: starts a managed pair, reports it, and waits to be killed.
    close(report[0]);
    ManagedOptions options;
    options.temp_root = scratch.path();
    options.wait_for_discovery = false;
    auto managed = ManagedMonitoring::Start(options);
    std::string line = managed.ok() ? std::to_string((*managed)->prometheus_pid()) + " " +
                                          std::to_string((*managed)->alertmanager_pid()) + " " +
                                          (*managed)->directory() + "\n"
                                    : "error " + managed.status().ToString() + "\n";
    if (write(report[1], line.data(), line.size()) < 0) _exit(1);
    for (;;) pause();
  }
  close(report[1]);
  std::string line;
  char c;
  while (read(report[0], &c, 1) == 1 && c != '\n') line += c;
  close(report[0]);
  std::istringstream fields(line);
  pid_t prometheus = -1, alertmanager = -1;
  std::string directory;
  fields >> prometheus >> alertmanager >> directory;

  kill(owner, SIGKILL);
  ASSERT_EQ(waitpid(owner, nullptr, 0), owner);
  ASSERT_GT(prometheus, 0) << line;
  ASSERT_GT(alertmanager, 0) << line;
  const auto killed = std::chrono::steady_clock::now();
  EXPECT_TRUE(Eventually([&] { return ProcessGone(prometheus); }, 10s));
  EXPECT_TRUE(Eventually([&] { return ProcessGone(alertmanager); }, 10s));
  EXPECT_TRUE(Eventually([&] { return !fs::exists(directory); }, 10s))
      << directory << " is still there";
  std::cout << "[ timing ] servers and directory gone " << Seconds(killed)
            << " s after the owner was killed\n";
}

}  // namespace
}  // namespace firedrill::alerts
