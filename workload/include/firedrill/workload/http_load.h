// Request load over HTTP/1.1 on kept-alive connections, for plain URLs: the
// generator's fast path, one epoll loop per thread with no allocation per
// request, so the generator is not the bottleneck at hundreds of thousands of
// requests a second (docs/PERFORMANCE.md compares it with wrk).
//
// Open loop: each request is due at its intended time from the schedule and
// goes out on an idle connection as soon as one is free; latency is measured
// from the intended time (LoadReport::corrected) and from the real send
// (uncorrected). Closed loop (no schedule): every connection sends again as
// soon as its answer arrives, as wrk does, to find the saturation rate.
//
// Thread-safety: RunHttpLoad blocks the caller and runs its own threads; the
// progress callback runs on the caller's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/workload/arrivals.h"
#include "firedrill/workload/load_report.h"

namespace firedrill::workload {

// A parsed http:// URL.
struct HttpUrl {
  std::string host;
  int port = 80;
  std::string target = "/";  // path and query
};
// Only http:// (HTTP/1.1 in clear text) is accepted here.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

// A live view of the run, once per progress interval.
struct LoadProgress {
  Duration elapsed{0};
  std::int64_t sent = 0;
  std::int64_t answered = 0;
  std::int64_t errors = 0;      // failed statuses and no-answers
  std::int64_t in_flight = 0;   // sent, not answered
  std::int64_t waiting = 0;     // due, waiting for a free connection
  double rate = 0;              // answers/s over the last interval
  std::int64_t p50_ns = 0;      // corrected latency over the last interval
  std::int64_t p99_ns = 0;
};

struct HttpLoadOptions {
  std::string url;
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  int threads = 1;
  int connections = 64;  // in all, split over the threads
  Duration duration = std::chrono::seconds(10);
  // Open loop: a schedule per thread (thread index, thread count), covering
  // `duration`. Empty: closed loop.
  std::function<Result<std::unique_ptr<ArrivalSchedule>>(int, int)> schedule;
  std::string arrival_description;  // for the report: "constant 10000/s"
  double offered_rate = 0;          // requests/s the schedules add up to
  // A request unanswered for this long is an error and its connection is
  // replaced; after the last send the run waits this long for answers.
  Duration timeout = std::chrono::seconds(10);
  // Loopback only unless set: Firedrill sends load where the user allowed it.
  bool allow_remote = false;
  // https through libcurl: CA certificates to trust instead of the system's.
  std::string tls_ca_file;
  Duration progress_interval = std::chrono::seconds(1);
  std::function<void(const LoadProgress&)> progress;
  // Set to end the run early (Ctrl-C); what was measured is still reported.
  const std::atomic<bool>* stop = nullptr;
};

Result<LoadReport> RunHttpLoad(const HttpLoadOptions& options);

}  // namespace firedrill::workload
