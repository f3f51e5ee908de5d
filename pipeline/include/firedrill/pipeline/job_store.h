// Accepted jobs, durable in SQLite (WAL mode). A job is accepted once its
// row is committed; after a crash (kill -9 included) Open puts the jobs that
// were running back in the queue, and Complete records a result only for the
// worker that holds the job, so every accepted job completes exactly once.
// A retried submission with the same idempotency key returns the original job.
//
// Durability: WAL with synchronous=NORMAL survives any crash of the process;
// only a power cut can lose the last commits.
//
// Thread-safety: all methods may be called from any thread (one connection,
// serialized).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/pipeline/job.h"

struct sqlite3;

namespace firedrill::pipeline {

enum class JobState { kQueued, kRunning, kCompleted, kFailed };
std::string_view JobStateName(JobState state);

struct JobRecord {
  std::int64_t id = 0;
  std::string idempotency_key;
  std::string request_json;  // JobRequestToJson of what was submitted
  JobState state = JobState::kQueued;
  int attempts = 0;     // times a worker started it
  int completions = 0;  // times a result or failure was recorded: 0 or 1
  std::string worker;   // who holds or last held it
  std::string result_json;
  std::string error;
  double submitted_at = 0;  // Unix seconds, from the store's clock
  double started_at = 0;
  double finished_at = 0;
};

struct SubmitOutcome {
  JobRecord job;
  bool created = false;  // false: the idempotency key named an existing job
};

struct JobCounts {
  std::int64_t queued = 0, running = 0, completed = 0, failed = 0;
};

class JobStore {
 public:
  // Opens or creates the database at `path`; requeues jobs left running.
  static Result<std::unique_ptr<JobStore>> Open(const std::string& path, Clock& clock);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // kAlreadyExists when the key was used for a different request.
  Result<SubmitOutcome> Submit(const JobRequest& request);
  Result<JobRecord> Get(std::int64_t id);  // kNotFound
  // The oldest queued job, now running for `worker`; nullopt when none.
  Result<std::optional<JobRecord>> Claim(std::string_view worker);
  // kFailedPrecondition unless the job is running for `worker`.
  Status Complete(std::int64_t id, std::string_view worker, std::string_view result_json);
  Status Fail(std::int64_t id, std::string_view worker, std::string_view error);
  // Running jobs back to queued (their workers are gone); returns how many.
  Result<std::int64_t> RequeueRunning();
  Result<JobCounts> Counts();
  // Deletes completed and failed jobs that finished before `unix_seconds`;
  // returns how many.
  Result<std::int64_t> DeleteFinishedBefore(double unix_seconds);
  // A consistent copy of the database at `destination`, taken online with
  // SQLite's backup API while jobs keep coming.
  Status Backup(const std::string& destination);
  // Replaces the database's contents with the backup at `source` (the backup
  // API in reverse), then requeues jobs the backup caught running.
  Status Restore(const std::string& source);
  // Puts a running job back in the queue (its stage was restarted).
  Status Requeue(std::int64_t id, std::string_view worker);

 private:
  JobStore(sqlite3* db, Clock& clock) : db_(db), clock_(clock) {}
  Status Execute(const char* sql);
  Status Finish(std::int64_t id, std::string_view worker, JobState state, std::string_view result,
                std::string_view error);
  double Now() const;

  std::mutex mutex_;
  sqlite3* db_;
  Clock& clock_;
};

}  // namespace firedrill::pipeline
