// The job ledger: how a drill proves that nothing was lost. Every submission
// is entered under its idempotency key before it is sent; attempts, the
// pipeline's acceptance (its job id), and the outcome follow. Closing the
// ledger accounts for every accepted job as completed, failed (with the
// reason) or lost, and flags a key the pipeline accepted as two jobs.
//
// The ledger is written as JSON lines, one event per line, flushed as it
// goes, so a crashed run's ledger can still be read and closed afterwards.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "firedrill/core/status.h"

namespace firedrill::workload {

enum class JobOutcome {
  kSubmitting,  // entered, no answer yet
  kAccepted,    // the pipeline took it; no outcome yet
  kRejected,    // never accepted (a 4xx, 429 after the last retry, a closed port)
  kCompleted,
  kFailed,  // the pipeline says it failed, and why
  kLost,    // accepted, and never completed or failed by the time the ledger closed
};
std::string_view JobOutcomeName(JobOutcome outcome);

struct LedgerEntry {
  std::string key;  // idempotency key
  std::string job_id;
  int attempts = 0;
  JobOutcome outcome = JobOutcome::kSubmitting;
  std::string reason;  // rejected or failed: why
  std::int64_t submitted_ms = -1;
  std::int64_t accepted_ms = -1;
  std::int64_t finished_ms = -1;
};

struct LedgerSummary {
  std::int64_t submitted = 0;
  std::int64_t accepted = 0;
  std::int64_t rejected = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t lost = 0;
  std::int64_t unanswered = 0;  // submissions with no answer at all
  std::map<std::string, std::int64_t> failed_by_reason;
  std::map<std::string, std::int64_t> rejected_by_reason;
  // Keys the pipeline accepted under two different job ids: idempotency broke.
  std::vector<std::string> duplicated_keys;

  bool NothingLost() const { return lost == 0 && unanswered == 0 && duplicated_keys.empty(); }
  std::string ToString() const;  // one line, for logs and reports
};

class JobLedger {
 public:
  JobLedger() = default;
  // Also appends every event to `path` (created or truncated).
  static Result<std::unique_ptr<JobLedger>> OpenFile(const std::string& path);
  // Replays a ledger file written by OpenFile, for a run that crashed.
  // Errors name "path:line".
  static Result<std::unique_ptr<JobLedger>> ReadFile(const std::string& path);

  // kAlreadyExists when the key was entered before.
  Status Submit(const std::string& key, std::int64_t t_ms);
  Status Attempt(const std::string& key, std::int64_t t_ms);
  // Accepting a key again with the same job id (an idempotent retry) is fine;
  // with another job id it is recorded as a duplicated key.
  Status Accept(const std::string& key, const std::string& job_id, std::int64_t t_ms);
  Status Reject(const std::string& key, const std::string& reason, std::int64_t t_ms);
  // By job id, as the pipeline reports outcomes.
  Status Complete(const std::string& job_id, std::int64_t t_ms);
  Status Fail(const std::string& job_id, const std::string& reason, std::int64_t t_ms);

  // Accepted jobs without an outcome become lost; the summary follows.
  LedgerSummary Close(std::int64_t t_ms);
  LedgerSummary Summary() const;  // as things stand, nothing marked lost
  std::vector<LedgerEntry> Entries() const;
  std::vector<std::string> Unfinished() const;  // accepted job ids without an outcome

 private:
  Status Apply(const std::string& event, const std::string& key, const std::string& value,
               std::int64_t t_ms, bool write);
  LedgerSummary SummaryLocked() const;

  mutable std::mutex mutex_;
  std::vector<LedgerEntry> entries_;
  std::map<std::string, std::size_t> by_key_;
  std::map<std::string, std::size_t> by_job_;
  std::vector<std::string> duplicated_keys_;
  std::ofstream file_;
};

}  // namespace firedrill::workload
