// HttpJobClient: the job API (docs/PIPELINE.md) over HTTP, on libcurl's
// multi interface. One I/O thread drives every request with curl_multi_poll;
// Submit and Follow only queue work and wake it, so no thread is held per
// job and no thread sleeps through a backoff (retries wait as timers inside
// the loop). Easy handles are reused and connections are cached by the multi
// handle, so requests ride keep-alive (or one multiplexed HTTP/2) connection.
//
// A submission goes out as POST /v1/jobs under its idempotency key; 429, 503
// and transport errors are retried with the same key after a doubling
// backoff, up to max_attempts. Once accepted, the job is long-polled with
// GET /v1/jobs/{id}?wait=... until it completes or fails; while the server
// cannot be reached (refused, reset, 5xx) the follow keeps retrying for
// follow_grace, so a pipeline restarted within it is picked up.
//
// Outcomes beyond the JobClient contract:
//   - A submission whose outcome cannot be known ends with kLost and no job
//     id, not kRejected: the request may have reached the pipeline before
//     the connection broke, and no later attempt got an answer. The ledger
//     keeps such a key unanswered; resubmitting the same key settles it.
//   - Shutdown gives everything in flight kLost "client shut down" (again
//     with no job id for submissions not yet accepted).
//
// Thread-safety: as JobClient. Callbacks run on the I/O thread, one at a
// time; they may call Submit, Follow and even Shutdown (which then returns
// without waiting for the thread), but must not destroy the client.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/workload/job_client.h"

namespace firedrill::workload {

enum class HttpVersion {
  kHttp1_1,
  // HTTP/2: prior knowledge (h2c) for http://, negotiated by ALPN for https://.
  kHttp2,
};

struct HttpJobClientOptions {
  std::string base_url;  // "http://127.0.0.1:8080": scheme, host and port, no path
  HttpVersion http_version = HttpVersion::kHttp1_1;
  int max_attempts = 5;                               // submission attempts, the first included
  Duration backoff = std::chrono::milliseconds(100);  // first retry delay, doubling
  Duration max_backoff = std::chrono::seconds(2);
  // How long a follow keeps retrying a server it cannot reach before kLost.
  Duration follow_grace = std::chrono::seconds(30);
  Duration long_poll = std::chrono::seconds(30);  // ?wait= of each GET
  Duration connect_timeout = std::chrono::seconds(5);
  Duration submit_timeout = std::chrono::seconds(30);  // one POST attempt, all told
  // Open connections at most. Over HTTP/1.1 each long-poll holds one, so
  // requests past this wait inside curl for a free connection.
  int max_connections = 64;
  // The clock events are stamped on: the job driver's (a drill's ScaledClock),
  // so latencies are measured in one time base. Null: the steady clock.
  const Clock* clock = nullptr;
};

// InvalidArgument for a URL that is not http:// or https://, or limits out
// of range; Unimplemented when libcurl lacks HTTP/2 and it was asked for.
Result<std::unique_ptr<JobClient>> MakeHttpJobClient(const HttpJobClientOptions& options);

// The body POST /v1/jobs gets for `job` (synthetic dataset fields, or "csv"
// when the shape names a dataset file).
std::string JobRequestBody(const JobSubmission& job);

}  // namespace firedrill::workload
