// Managed mode: Firedrill starts the real Prometheus and Alertmanager (the
// Debian binaries) on 127.0.0.1 with free ports, in a fresh temporary
// directory holding the generated prometheus.yml and alertmanager.yml and a
// copy of the rule files, waits until both answer /-/ready, and stops them
// and removes the directory when destroyed.
//
// No leftovers when Firedrill is killed: each server runs in its own process
// group with PR_SET_PDEATHSIG(SIGKILL), and a small janitor process removes
// the directory once Firedrill is gone. PR_SET_PDEATHSIG fires when the
// *thread* that called Start exits, so call Start from a thread that
// outlives the instance (the main thread, or the drill's own thread).
//
// Thread-safety: the accessors may be called from any thread; destroy once.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts {

struct ManagedScrapeTarget {
  std::string job;
  std::string address;  // host:port
  std::string metrics_path = "/metrics";
  Duration interval = std::chrono::seconds(15);
  Duration timeout = std::chrono::seconds(10);  // at most `interval`, as Prometheus requires
  std::map<std::string, std::string> labels;    // added to every series of the target
};

struct ManagedOptions {
  std::vector<ManagedScrapeTarget> targets;
  std::vector<std::string> rule_files;  // copied into the directory; order kept
  Duration evaluation_interval = std::chrono::seconds(15);
  // Alertmanager's route: short, so an alert reaches its notification
  // pipeline quickly (the API lists it as soon as Prometheus sends it).
  Duration group_wait = std::chrono::seconds(1);
  Duration group_interval = std::chrono::seconds(1);
  Duration repeat_interval = std::chrono::hours(1);
  Duration ready_timeout = std::chrono::seconds(30);  // per server
  // Prometheus picks up even static scrape targets and its Alertmanager only
  // on its discovery tick, about 5 s after start; until then alerts would be
  // dropped for want of an Alertmanager. Start waits for both unless told not to.
  bool wait_for_discovery = true;
  Duration stop_timeout = std::chrono::seconds(5);  // SIGTERM, then SIGKILL
  std::string prometheus_binary = "/usr/bin/prometheus";
  std::string alertmanager_binary = "/usr/bin/prometheus-alertmanager";
  std::string temp_root;  // parent of the directory; $TMPDIR or /tmp when empty
};

class ManagedMonitoring {
 public:
  // kNotFound when a binary is missing; kUnavailable or kDeadlineExceeded,
  // with the tail of the server's log, when one exits or is not ready in time.
  static Result<std::unique_ptr<ManagedMonitoring>> Start(const ManagedOptions& options);
  // Stops both servers and removes the directory.
  ~ManagedMonitoring();
  ManagedMonitoring(const ManagedMonitoring&) = delete;
  ManagedMonitoring& operator=(const ManagedMonitoring&) = delete;

  const std::string& prometheus_url() const { return prometheus_url_; }      // http://127.0.0.1:P
  const std::string& alertmanager_url() const { return alertmanager_url_; }  // http://127.0.0.1:A
  pid_t prometheus_pid() const { return prometheus_pid_; }
  pid_t alertmanager_pid() const { return alertmanager_pid_; }
  // Holds prometheus.yml, alertmanager.yml, rules/, the data directories and
  // prometheus.log / alertmanager.log.
  const std::string& directory() const { return directory_; }

 private:
  ManagedMonitoring() = default;

  Duration stop_timeout_{0};
  std::string directory_;
  std::string prometheus_url_;
  std::string alertmanager_url_;
  pid_t prometheus_pid_ = -1;
  pid_t alertmanager_pid_ = -1;
  pid_t janitor_pid_ = -1;
  int janitor_fd_ = -1;  // write end; its EOF tells the janitor Firedrill is gone
};

}  // namespace firedrill::alerts
