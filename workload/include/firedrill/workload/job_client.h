// The job API as the load generator sees it: submit a job under an
// idempotency key, follow it until it completes or fails, and hear about
// every step. HTTP (libcurl multi) and gRPC implement it; the job driver
// (job_load.h) sits on top and keeps the ledger.
//
// Thread-safety: Submit and Follow may be called from any thread. Callbacks
// run on the client's own I/O thread, one at a time; they must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "firedrill/core/clock.h"
#include "firedrill/workload/job_mix.h"

namespace firedrill::workload {

struct JobSubmission {
  std::string idempotency_key;
  JobShape shape;
  std::uint64_t dataset_seed = 1;  // the synthetic dataset's seed
};

// One step of a job's life, as the client saw it.
struct JobEvent {
  enum class Kind {
    kAccepted,   // the pipeline took it (202, or 200 for a retried key): job_id set
    kRejected,   // never accepted after the client's retries: reason set
    kCompleted,  // job_id, stage_seconds and quality set
    kFailed,     // the pipeline says it failed: reason set
    kLost,       // the client could not learn the outcome (connection refused after
                 // the last retry, the job vanished): reason set. The ledger keeps
                 // the job unfinished, so a later Follow can still settle it.
  };
  Kind kind = Kind::kAccepted;
  std::string job_id;
  std::string reason;
  int attempts = 0;  // submission attempts made so far, this one included
  MonotonicTime at{};
  std::map<std::string, double> stage_seconds;  // "stage1", "stage2", "stage3"
  double quality = 0;
};

using JobCallback = std::function<void(const JobEvent&)>;

class JobClient {
 public:
  virtual ~JobClient() = default;
  // Submits (retrying transport errors, 429 and 503 with the same key, up to
  // the client's limit), then follows the job to its end. `callback` gets
  // kAccepted or kRejected, then, once accepted, exactly one of kCompleted,
  // kFailed or kLost. A submission whose fate cannot be known (the request
  // went out and the connection broke, or the client shut down) gets kLost
  // with no job id instead: the ledger keeps it unanswered, and a resumed run
  // sends it again under the same key, which the pipeline deduplicates.
  // A job whose id comes to answer with another key (the pipeline's
  // database was restored and the id reused) is kLost, never credited.
  virtual void Submit(const JobSubmission& job, JobCallback callback) = 0;
  // Follows a job accepted earlier (a run resumed after a restart): exactly
  // one of kCompleted, kFailed or kLost. `key`, when known, is the key it
  // was accepted under: an id that answers with another key is kLost.
  virtual void Follow(const std::string& job_id, const std::string& key, JobCallback callback) = 0;
  // Jobs submitted or followed whose last callback has not run yet.
  virtual std::int64_t in_flight() const = 0;
  // Gives up on what is in flight (each gets kLost "client shut down") and
  // stops the I/O thread. Idempotent; the destructor calls it.
  virtual void Shutdown() = 0;
};

// The kLost reason for a job whose id now answers with another key.
std::string AnotherJob(const std::string& job_id, const std::string& key);

}  // namespace firedrill::workload
