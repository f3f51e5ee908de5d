// What a request-load run measured: latency from each request's intended send
// time (corrected: no coordinated omission) and from when it really went out
// (uncorrected), the generator's own schedule lag and CPU use, and whether
// the run is valid — a run in which the generator, not the target, was the
// bottleneck is marked invalid, with the reasons.
//
// Thread-safety: a plain value; one writer.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/workload/histogram.h"

namespace firedrill::workload {

// Limits Judge applies.
inline constexpr double kMaxGeneratorBusyShare = 0.9;        // of one core per thread
inline constexpr Duration kMaxScheduleLagP99 = std::chrono::milliseconds(10);

struct LoadReport {
  std::string target;     // URL or host:port
  std::string transport;  // "http1-native", "curl", "grpc"
  std::string arrival;    // "constant 10000/s", "closed 64 connections", ...
  int threads = 1;
  int connections = 0;
  double offered_rate = 0;  // requests/s the schedule asked for; 0 in closed loop
  Duration elapsed{0};      // first intended send to the last answer or the deadline

  std::int64_t scheduled = 0;  // sends the schedule called for
  std::int64_t sent = 0;
  std::int64_t answered = 0;  // complete responses, any status
  std::int64_t failed = 0;    // answered with an error status (HTTP >= 400, gRPC != OK)
  std::int64_t errors = 0;    // no answer: connect, reset, timeout, protocol error
  std::int64_t unsent = 0;    // scheduled but never sent before the run ended
  std::map<std::string, std::int64_t> statuses;  // "200", "503", "OK", "UNAVAILABLE"
  std::map<std::string, std::int64_t> error_kinds;
  // Answers by the HTTP version the server spoke ("HTTP/2"), where the
  // transport negotiates it (libcurl).
  std::map<std::string, std::int64_t> protocols;

  LatencyHistogram corrected;     // answer time - intended send time
  LatencyHistogram uncorrected;   // answer time - actual send time
  LatencyHistogram schedule_lag;  // when the generator got to a due send - intended time
  // Sends that were due while every connection was busy (open loop): the
  // target held them back, and their wait counts in `corrected`.
  std::int64_t waited_for_connection = 0;

  double cpu_seconds = 0;  // the generator threads' user + system time

  bool valid = true;
  std::vector<std::string> invalid_reasons;

  double achieved_rate() const;  // answered / elapsed
  // Marks the run invalid where the generator was the bottleneck: its
  // threads were busy most of the run, or its schedule lag grew past what a
  // latency figure can carry (`max_schedule_lag`, at p99), or it could not
  // send what was scheduled. Judging again with another limit replaces the
  // verdict.
  void Judge(Duration max_schedule_lag = kMaxScheduleLagP99);
  nlohmann::json ToJson() const;  // histograms in LatencyHistogram's JSON form
  std::string Summary() const;    // a short human table
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);
// Firedrill sends load only to loopback unless the user allowed more:
// InvalidArgument naming `target` and the rule otherwise.
Status CheckLoadTarget(std::string_view target, std::string_view host, bool allow_remote);
// CPU time (user + system) the calling thread has used, for the generator's
// own cost in a report.
double ThreadCpuSeconds();

}  // namespace firedrill::workload
