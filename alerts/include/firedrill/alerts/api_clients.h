// Clients for a real Prometheus's HTTP API (/api/v1) and Alertmanager's v2
// API, for drills that watch a running monitoring stack instead of (or
// beside) Firedrill's own evaluator. Every call has a timeout; a failure is a
// Status naming the method, the URL, the HTTP status and the server's own
// error text, so a drill log says which server refused what and why.
//
// Thread-safety: calls on one client are serialised by its lock (one
// connection, kept alive between calls); use one client per thread for
// parallel calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts {

using LabelMap = std::map<std::string, std::string>;

struct ApiClientOptions {
  Duration timeout = std::chrono::seconds(10);  // whole request, connect included
  Duration connect_timeout = std::chrono::seconds(3);
};

// ---- Prometheus /api/v1 ----

struct InstantSample {
  LabelMap labels;  // "__name__" included when the result keeps it
  double value = 0;
  std::int64_t timestamp_ms = 0;
};

struct RangeSeries {
  LabelMap labels;
  std::vector<InstantSample> points;  // each point's labels are left empty
};

struct QueryResult {
  std::string result_type;             // "vector", "scalar", "matrix" or "string"
  std::vector<InstantSample> samples;  // vector; a scalar is one sample without labels
  std::vector<RangeSeries> series;     // matrix
  std::string string_value;            // string
  std::vector<std::string> warnings;
};

struct PrometheusAlert {
  LabelMap labels;
  LabelMap annotations;
  std::string state;  // "pending" or "firing"
  WallTime active_at{};
  double value = 0;
};

struct PrometheusRule {
  std::string type;  // "alerting" or "recording"
  std::string name;
  std::string query;
  Duration duration{0};  // alerting: `for`
  LabelMap labels;
  LabelMap annotations;
  std::string state;   // alerting: "inactive", "pending" or "firing"
  std::string health;  // "ok", "err" or "unknown"
  std::string last_error;
  std::vector<PrometheusAlert> alerts;
};

struct PrometheusRuleGroup {
  std::string name;
  std::string file;  // as Prometheus loaded it
  Duration interval{0};
  std::vector<PrometheusRule> rules;
};

struct PrometheusTarget {
  LabelMap labels;  // after relabelling: job, instance and the target's own
  std::string scrape_url;
  std::string health;  // "up", "down" or "unknown" (not scraped yet)
  std::string last_error;
  WallTime last_scrape{};
};

class PrometheusClient {
 public:
  // `base_url` like "http://127.0.0.1:9090", without a trailing path.
  explicit PrometheusClient(std::string base_url, ApiClientOptions options = {});
  ~PrometheusClient();
  PrometheusClient(const PrometheusClient&) = delete;
  PrometheusClient& operator=(const PrometheusClient&) = delete;

  const std::string& base_url() const { return base_url_; }

  // /api/v1/query at `time` (the server's now when unset). A PromQL error is
  // kInvalidArgument carrying Prometheus's message.
  Result<QueryResult> Query(const std::string& expr, std::optional<WallTime> time = {});
  // /api/v1/query_range over [start, end] every `step`.
  Result<QueryResult> QueryRange(const std::string& expr, WallTime start, WallTime end,
                                 Duration step);
  // /api/v1/alerts: every pending and firing alert.
  Result<std::vector<PrometheusAlert>> Alerts();
  // /api/v1/rules: every loaded group with its rules' state.
  Result<std::vector<PrometheusRuleGroup>> Rules();
  // /api/v1/targets: the active scrape targets.
  Result<std::vector<PrometheusTarget>> Targets();
  // /api/v1/alertmanagers: the URLs alerts are sent to.
  Result<std::vector<std::string>> Alertmanagers();
  // /-/ready: OK once the server serves queries; kUnavailable while it starts.
  Status Ready();
  // POST /-/reload: rereads configuration and rule files (needs --web.enable-lifecycle).
  Status Reload();

 private:
  std::string base_url_;
  ApiClientOptions options_;
  std::mutex mutex_;
  void* curl_ = nullptr;
};

// ---- Alertmanager /api/v2 ----

struct AlertmanagerAlert {
  LabelMap labels;
  LabelMap annotations;
  WallTime starts_at{};
  WallTime ends_at{};
  WallTime updated_at{};
  std::string generator_url;
  std::string fingerprint;
  std::string state;  // "active", "suppressed" or "unprocessed"
  std::vector<std::string> silenced_by;
  std::vector<std::string> inhibited_by;
  std::vector<std::string> receivers;
};

// An alert to post, as a client like Prometheus sends it. Unset times are
// left to Alertmanager (starts now; resolves after its resolve_timeout).
struct PostableAlert {
  LabelMap labels;
  LabelMap annotations;
  std::optional<WallTime> starts_at;
  std::optional<WallTime> ends_at;
  std::string generator_url;
};

struct AlertFilter {
  std::vector<std::string> matchers;  // Alertmanager's syntax: `alertname="X"`, `job=~"a.*"`
  bool active = true;
  bool silenced = true;
  bool inhibited = true;
  bool unprocessed = true;
};

struct SilenceMatcher {
  std::string name;
  std::string value;
  bool is_regex = false;
  bool is_equal = true;  // false: != or !~
};

struct Silence {
  std::string id;  // empty when creating; set by Alertmanager
  std::vector<SilenceMatcher> matchers;
  WallTime starts_at{};
  WallTime ends_at{};
  std::string created_by;
  std::string comment;
  std::string state;  // read back: "active", "pending" or "expired"
  WallTime updated_at{};
};

class AlertmanagerClient {
 public:
  // `base_url` like "http://127.0.0.1:9093".
  explicit AlertmanagerClient(std::string base_url, ApiClientOptions options = {});
  ~AlertmanagerClient();
  AlertmanagerClient(const AlertmanagerClient&) = delete;
  AlertmanagerClient& operator=(const AlertmanagerClient&) = delete;

  const std::string& base_url() const { return base_url_; }

  Result<std::vector<AlertmanagerAlert>> Alerts(const AlertFilter& filter = {});
  Status PostAlerts(const std::vector<PostableAlert>& alerts);
  // Every silence Alertmanager keeps, expired ones included.
  Result<std::vector<Silence>> Silences();
  Result<Silence> GetSilence(const std::string& id);
  // Returns the new silence's id (or `silence.id`'s, which it replaces).
  Result<std::string> CreateSilence(const Silence& silence);
  // Expires the silence; Alertmanager lists it as "expired" until it is garbage collected.
  Status DeleteSilence(const std::string& id);
  Status Ready();

 private:
  std::string base_url_;
  ApiClientOptions options_;
  std::mutex mutex_;
  void* curl_ = nullptr;
};

// ---- Encodings both APIs use, exposed for tests and for other callers ----

// A sample value as Prometheus writes it: "1.5", "1e+01", "NaN", "+Inf", "-Inf".
Result<double> ParsePrometheusValue(std::string_view text);
// RFC 3339 with optional fraction and offset ("2024-05-01T12:00:00.123456789+02:00").
// Go's zero time ("0001-01-01T00:00:00Z", meaning unset) reads as WallTime{}.
Result<WallTime> ParseRfc3339(std::string_view text);
// UTC with milliseconds: "2024-05-01T10:00:00.123Z".
std::string FormatRfc3339(WallTime time);

}  // namespace firedrill::alerts
