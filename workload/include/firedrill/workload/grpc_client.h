// gRPC for the load generator, over the async API with one completion-queue
// thread each:
//
// - GrpcJobClient: the JobClient for hsof.v1.Pipeline. Submits with SubmitJob
//   (retrying UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED with the
//   same idempotency key), then follows the job with WatchJob, watching again
//   when the stream breaks until the server has been unreachable for
//   follow_grace. Backoff waits are grpc::Alarms on the completion queue, not
//   sleeping threads.
// - RunGrpcUnaryLoad: unary request load on any method through
//   grpc::GenericStub, open loop (latency from each call's intended time, no
//   coordinated omission) or closed loop, the counterpart of RunHttpLoad.
//
// Thread-safety: a JobClient's Submit, Follow, in_flight and Shutdown may be
// called from any thread; callbacks run on its completion-queue thread, one
// at a time (after Shutdown, a Submit or Follow is answered at once on the
// caller's thread). Do not destroy the client from one of its callbacks.
// RunGrpcUnaryLoad blocks the calling thread and drives the completion queue
// on it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/workload/arrivals.h"
#include "firedrill/workload/job_client.h"
#include "firedrill/workload/load_report.h"

namespace firedrill::workload {

struct GrpcJobClientOptions {
  std::string target;    // host:port of the Pipeline service
  int max_attempts = 5;  // SubmitJob attempts in all, the first included
  // Waits between retries, doubling from initial up to max; the channel's
  // reconnect backoff follows the same bounds.
  Duration initial_backoff = std::chrono::milliseconds(100);
  Duration max_backoff = std::chrono::seconds(2);
  // How long a Follow keeps watching again while the server does not answer
  // (killed, restarting) before it reports kLost.
  Duration follow_grace = std::chrono::seconds(30);
  Duration call_deadline = std::chrono::seconds(10);  // each SubmitJob
  // A WatchJob stream is reopened after this long, so a connection that died
  // silently is noticed; reopening is not a failure.
  Duration watch_deadline = std::chrono::seconds(60);
  // Stamps JobEvent::at; null: the real clock. Waits always run in real time.
  const Clock* clock = nullptr;
};

// Connects lazily: an unreachable target shows up as the calls' statuses,
// not here. InvalidArgument for an empty target or non-positive limits.
// CSV datasets (JobShape::dataset) go as Dataset.csv; one the pipeline does
// not have is kRejected "INVALID_ARGUMENT: ...". Shutdown gives every job in flight
// kLost "client shut down", a submission not yet accepted included.
Result<std::unique_ptr<JobClient>> MakeGrpcJobClient(const GrpcJobClientOptions& options);

struct GrpcUnaryLoadOptions {
  std::string target;                               // host:port
  std::string method = "/hsof.v1.Pipeline/GetJob";  // full method name
  std::string payload;                              // the serialized request, sent as is
  // Closed loop: calls always outstanding. Open loop: the most in flight;
  // a send due while all are out waits (LoadReport::waited_for_connection).
  int concurrency = 64;
  // Separate HTTP/2 connections the calls are spread over.
  int connections = 1;
  // Sending stops this long after the start; open loop: sends still held
  // back by the cap then are unsent. The schedule should cover this span.
  Duration duration = std::chrono::seconds(10);
  // Each call's deadline (DEADLINE_EXCEEDED counts as an error); after the
  // last send the run waits at most this long for answers.
  Duration timeout = std::chrono::seconds(5);
  std::string arrival_description;  // for the report: "constant 10000/s"
  double offered_rate = 0;          // calls/s the schedule asks for
  // Loopback only unless set: Firedrill sends load where the user allowed it.
  bool allow_remote = false;
  // Set to end the run early (Ctrl-C); what was measured is still reported.
  const std::atomic<bool>* stop = nullptr;
};

// Runs the load on the calling thread and judges the report. `schedule`:
// intended send offsets from the start (open loop); null: closed loop.
// Statuses the server sent count in answered (and, unless OK, in failed) by
// code name in statuses; statuses the client raised itself, with no answer
// from the server (connection refused or reset, deadline, cancel), count in
// errors by code name in error_kinds. InvalidArgument for bad options.
Result<LoadReport> RunGrpcUnaryLoad(const GrpcUnaryLoadOptions& options, ArrivalSchedule* schedule);

// "OK", "UNAVAILABLE", ...: the code's name as gRPC spells it.
std::string GrpcCodeName(int code);

}  // namespace firedrill::workload
