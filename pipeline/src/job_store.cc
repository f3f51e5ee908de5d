#include "firedrill/pipeline/job_store.h"

#include <sqlite3.h>

#include <chrono>

namespace firedrill::pipeline {
namespace {

constexpr std::string_view kStateNames[] = {"queued", "running", "completed", "failed"};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  idempotency_key TEXT UNIQUE,
  request TEXT NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  completions INTEGER NOT NULL DEFAULT 0,
  worker TEXT NOT NULL DEFAULT '',
  result TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  submitted_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
)sql";

constexpr const char* kColumns =
    "id, COALESCE(idempotency_key, ''), request, state, attempts, completions, worker, result, "
    "error, submitted_at, "
    "started_at, finished_at";

Status SqliteError(sqlite3* db, const std::string& what) {
  const int code = sqlite3_errcode(db);
  const StatusCode status = (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR ||
                             code == SQLITE_FULL || code == SQLITE_CANTOPEN)
                                ? StatusCode::kUnavailable
                                : StatusCode::kInternal;
  return FD_STATUS(status, what + ": " + sqlite3_errmsg(db));
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr) != SQLITE_OK) statement_ = nullptr;
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return statement_ != nullptr; }
  Statement& Bind(int index, std::int64_t value) {
    sqlite3_bind_int64(statement_, index, value);
    return *this;
  }
  Statement& Bind(int index, double value) {
    sqlite3_bind_double(statement_, index, value);
    return *this;
  }
  Statement& Bind(int index, std::string_view text) {
    sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindNull(int index) {
    sqlite3_bind_null(statement_, index);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE, or an error code.
  int Step() { return sqlite3_step(statement_); }
  std::int64_t Int(int column) const { return sqlite3_column_int64(statement_, column); }
  double Real(int column) const { return sqlite3_column_double(statement_, column); }
  std::string Text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
    return text ? std::string(text, sqlite3_column_bytes(statement_, column)) : std::string();
  }
  JobRecord Record() const {
    JobRecord job;
    job.id = Int(0);
    job.idempotency_key = Text(1);
    job.request_json = Text(2);
    job.state = static_cast<JobState>(Int(3));
    job.attempts = static_cast<int>(Int(4));
    job.completions = static_cast<int>(Int(5));
    job.worker = Text(6);
    job.result_json = Text(7);
    job.error = Text(8);
    job.submitted_at = Real(9);
    job.started_at = Real(10);
    job.finished_at = Real(11);
    return job;
  }

 private:
  sqlite3_stmt* statement_ = nullptr;
};

std::string Select(const char* where) {
  return std::string("SELECT ") + kColumns + " FROM jobs WHERE " + where;
}

}  // namespace

std::string_view JobStateName(JobState state) { return kStateNames[static_cast<int>(state)]; }

Result<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path, Clock& clock) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    Status status =
        FD_STATUS(StatusCode::kUnavailable, "cannot open job database " + path + ": " +
                                                (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return status;
  }
  std::unique_ptr<JobStore> store(new JobStore(db, clock));
  sqlite3_busy_timeout(db, 5000);
  FD_RETURN_IF_ERROR(store->Execute("PRAGMA journal_mode=WAL"));
  FD_RETURN_IF_ERROR(store->Execute("PRAGMA synchronous=NORMAL"));
  FD_RETURN_IF_ERROR(store->Execute(kSchema));
  FD_RETURN_IF_ERROR(store->RequeueRunning().status());
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

double JobStore::Now() const {
  return std::chrono::duration<double>(clock_.WallNow().time_since_epoch()).count();
}

Status JobStore::Execute(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    Status status = SqliteError(db_, std::string("job database: ") + (message ? message : sql));
    sqlite3_free(message);
    return status;
  }
  return Status::Ok();
}

Result<SubmitOutcome> JobStore::Submit(const JobRequest& request) {
  const std::string request_json = JobRequestToJson(request);
  std::lock_guard lock(mutex_);
  if (!request.idempotency_key.empty()) {
    Statement find(db_, Select("idempotency_key = ?1").c_str());
    if (!find.ok()) return SqliteError(db_, "job database: prepare");
    find.Bind(1, request.idempotency_key);
    if (const int step = find.Step(); step == SQLITE_ROW) {
      SubmitOutcome outcome{find.Record(), false};
      if (outcome.job.request_json != request_json) {
        return FD_STATUS(StatusCode::kAlreadyExists,
                         "idempotency key '" + request.idempotency_key +
                             "' was used for a different request (job " +
                             std::to_string(outcome.job.id) + ")");
      }
      return outcome;
    } else if (step != SQLITE_DONE) {
      return SqliteError(db_, "job database: look up idempotency key");
    }
  }
  Statement insert(
      db_,
      (std::string(
           "INSERT INTO jobs (idempotency_key, request, state, submitted_at) VALUES (?1, ?2, 0, "
           "?3) RETURNING ") +
       kColumns)
          .c_str());
  if (!insert.ok()) return SqliteError(db_, "job database: prepare");
  if (request.idempotency_key.empty()) {
    insert.BindNull(1);
  } else {
    insert.Bind(1, request.idempotency_key);
  }
  insert.Bind(2, request_json).Bind(3, Now());
  if (insert.Step() != SQLITE_ROW) return SqliteError(db_, "job database: insert job");
  SubmitOutcome outcome{insert.Record(), true};
  // RETURNING rows are produced before the statement commits; finish it.
  if (insert.Step() != SQLITE_DONE) return SqliteError(db_, "job database: commit job");
  return outcome;
}

Result<JobRecord> JobStore::Get(std::int64_t id) {
  std::lock_guard lock(mutex_);
  Statement find(db_, Select("id = ?1").c_str());
  if (!find.ok()) return SqliteError(db_, "job database: prepare");
  find.Bind(1, id);
  const int step = find.Step();
  if (step == SQLITE_ROW) return find.Record();
  if (step == SQLITE_DONE) return FD_STATUS(StatusCode::kNotFound, "no job " + std::to_string(id));
  return SqliteError(db_, "job database: get job");
}

Result<std::optional<JobRecord>> JobStore::Claim(std::string_view worker) {
  std::lock_guard lock(mutex_);
  Statement claim(
      db_, (std::string(
                "UPDATE jobs SET state = 1, attempts = attempts + 1, worker = ?1, started_at = ?2 "
                "WHERE id = (SELECT id FROM jobs WHERE state = 0 ORDER BY id LIMIT 1) RETURNING ") +
            kColumns)
               .c_str());
  if (!claim.ok()) return SqliteError(db_, "job database: prepare");
  claim.Bind(1, worker).Bind(2, Now());
  const int step = claim.Step();
  if (step == SQLITE_DONE) return std::optional<JobRecord>();
  if (step != SQLITE_ROW) return SqliteError(db_, "job database: claim job");
  std::optional<JobRecord> job = claim.Record();
  if (claim.Step() != SQLITE_DONE) return SqliteError(db_, "job database: commit claim");
  return job;
}

Status JobStore::Finish(std::int64_t id, std::string_view worker, JobState state,
                        std::string_view result, std::string_view error) {
  std::lock_guard lock(mutex_);
  Statement finish(db_,
                   "UPDATE jobs SET state = ?1, result = ?2, error = ?3, finished_at = ?4, "
                   "completions = completions + 1 "
                   "WHERE id = ?5 AND state = 1 AND worker = ?6");
  if (!finish.ok()) return SqliteError(db_, "job database: prepare");
  finish.Bind(1, static_cast<std::int64_t>(state))
      .Bind(2, result)
      .Bind(3, error)
      .Bind(4, Now())
      .Bind(5, id)
      .Bind(6, worker);
  if (finish.Step() != SQLITE_DONE) return SqliteError(db_, "job database: finish job");
  if (sqlite3_changes(db_) != 1) {
    return FD_STATUS(
        StatusCode::kFailedPrecondition,
        "job " + std::to_string(id) + " is not running for worker " + std::string(worker));
  }
  return Status::Ok();
}

Status JobStore::Complete(std::int64_t id, std::string_view worker, std::string_view result_json) {
  return Finish(id, worker, JobState::kCompleted, result_json, "");
}

Status JobStore::Fail(std::int64_t id, std::string_view worker, std::string_view error) {
  return Finish(id, worker, JobState::kFailed, "", error);
}

Result<std::int64_t> JobStore::RequeueRunning() {
  std::lock_guard lock(mutex_);
  FD_RETURN_IF_ERROR(Execute("UPDATE jobs SET state = 0, worker = '' WHERE state = 1"));
  return static_cast<std::int64_t>(sqlite3_changes(db_));
}

Result<JobCounts> JobStore::Counts() {
  std::lock_guard lock(mutex_);
  Statement count(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!count.ok()) return SqliteError(db_, "job database: prepare");
  JobCounts counts;
  int step;
  while ((step = count.Step()) == SQLITE_ROW) {
    std::int64_t* slots[] = {&counts.queued, &counts.running, &counts.completed, &counts.failed};
    const std::int64_t state = count.Int(0);
    if (state >= 0 && state < 4) *slots[state] = count.Int(1);
  }
  if (step != SQLITE_DONE) return SqliteError(db_, "job database: count jobs");
  return counts;
}

Status JobStore::Restore(const std::string& source) {
  sqlite3* backup_db = nullptr;
  if (sqlite3_open_v2(source.c_str(), &backup_db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    Status status = FD_STATUS(StatusCode::kNotFound,
                              "cannot open backup " + source + ": " +
                                  (backup_db ? sqlite3_errmsg(backup_db) : "out of memory"));
    sqlite3_close(backup_db);
    return status;
  }
  // A backup must be a job database: check before overwriting anything.
  {
    Statement probe(backup_db, "SELECT COUNT(*) FROM jobs");
    if (!probe.ok() || probe.Step() != SQLITE_ROW) {
      Status status =
          FD_STATUS(StatusCode::kInvalidArgument,
                    source + " is not a job database backup: " + sqlite3_errmsg(backup_db));
      sqlite3_close(backup_db);
      return status;
    }
  }
  {
    std::lock_guard lock(mutex_);
    sqlite3_backup* restore = sqlite3_backup_init(db_, "main", backup_db, "main");
    if (restore == nullptr) {
      sqlite3_close(backup_db);
      return SqliteError(db_, "restore from " + source);
    }
    const int step = sqlite3_backup_step(restore, -1);
    sqlite3_backup_finish(restore);
    if (step != SQLITE_DONE) {
      Status status = SqliteError(db_, "restore from " + source);
      sqlite3_close(backup_db);
      return status;
    }
  }
  sqlite3_close(backup_db);
  return RequeueRunning().status();
}

Status JobStore::Requeue(std::int64_t id, std::string_view worker) {
  std::lock_guard lock(mutex_);
  Statement requeue(
      db_, "UPDATE jobs SET state = 0, worker = '' WHERE id = ?1 AND state = 1 AND worker = ?2");
  if (!requeue.ok()) return SqliteError(db_, "job database: prepare");
  requeue.Bind(1, id).Bind(2, worker);
  if (requeue.Step() != SQLITE_DONE) return SqliteError(db_, "job database: requeue job");
  if (sqlite3_changes(db_) != 1) {
    return FD_STATUS(
        StatusCode::kFailedPrecondition,
        "job " + std::to_string(id) + " is not running for worker " + std::string(worker));
  }
  return Status::Ok();
}

Result<std::int64_t> JobStore::DeleteFinishedBefore(double unix_seconds) {
  std::lock_guard lock(mutex_);
  Statement remove(db_, "DELETE FROM jobs WHERE state IN (2, 3) AND finished_at < ?1");
  if (!remove.ok()) return SqliteError(db_, "job database: prepare");
  remove.Bind(1, unix_seconds);
  if (remove.Step() != SQLITE_DONE) return SqliteError(db_, "job database: delete finished jobs");
  return static_cast<std::int64_t>(sqlite3_changes(db_));
}

Status JobStore::Backup(const std::string& destination) {
  sqlite3* target = nullptr;
  if (sqlite3_open(destination.c_str(), &target) != SQLITE_OK) {
    Status status = FD_STATUS(StatusCode::kUnavailable,
                              "cannot open backup " + destination + ": " +
                                  (target ? sqlite3_errmsg(target) : "out of memory"));
    sqlite3_close(target);
    return status;
  }
  std::lock_guard lock(mutex_);
  sqlite3_backup* backup = sqlite3_backup_init(target, "main", db_, "main");
  if (backup == nullptr) {
    Status status = SqliteError(target, "backup to " + destination);
    sqlite3_close(target);
    return status;
  }
  const int step = sqlite3_backup_step(backup, -1);  // all pages at once, under the lock
  sqlite3_backup_finish(backup);
  Status status =
      step == SQLITE_DONE ? Status::Ok() : SqliteError(target, "backup to " + destination);
  sqlite3_close(target);
  return status;
}

}  // namespace firedrill::pipeline
