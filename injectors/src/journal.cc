#include "firedrill/injectors/journal.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>

namespace firedrill::injectors {
namespace {

Status SqliteError(sqlite3* db, const std::string& what) {
  return FD_STATUS(StatusCode::kUnavailable, "fault journal: " + what + ": " + sqlite3_errmsg(db));
}

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr); }
  ~Statement() { sqlite3_finalize(statement_); }
  sqlite3_stmt* get() const { return statement_; }
  void Text(int index, const std::string& value) {
    sqlite3_bind_text(statement_, index, value.c_str(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }
  void Integer(int index, std::int64_t value) { sqlite3_bind_int64(statement_, index, value); }

 private:
  sqlite3_stmt* statement_ = nullptr;
};

}  // namespace

std::string Journal::DefaultPath() {
  if (const char* explicit_path = std::getenv("FIREDRILL_JOURNAL"); explicit_path != nullptr && *explicit_path) {
    return explicit_path;
  }
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state) {
    return std::string(state) + "/firedrill/journal.db";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/tmp") + "/.local/state/firedrill/journal.db";
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  std::error_code error;
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, error);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    Status status = SqliteError(db, "cannot open " + path);
    sqlite3_close(db);
    return status;
  }
  sqlite3_busy_timeout(db, 5000);  // `run` and `recover` may touch it at once
  std::unique_ptr<Journal> journal(new Journal(db, path));
  FD_RETURN_IF_ERROR(journal->Execute("PRAGMA journal_mode=WAL"));
  // A row must be on disk before its fault starts, even across a power cut.
  FD_RETURN_IF_ERROR(journal->Execute("PRAGMA synchronous=FULL"));
  FD_RETURN_IF_ERROR(journal->Execute(
      "CREATE TABLE IF NOT EXISTS faults (id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, "
      "undo TEXT NOT NULL, owner_pid INTEGER NOT NULL, owner_start_ticks INTEGER NOT NULL DEFAULT 0, "
      "started_ms INTEGER NOT NULL, "
      "lease_until_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL DEFAULT 0, outcome TEXT NOT NULL DEFAULT '')"));
  return journal;
}

Journal::~Journal() { sqlite3_close(db_); }

Status Journal::Execute(const std::string& sql) const {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return FD_STATUS(StatusCode::kUnavailable, "fault journal " + path_ + ": " + text);
  }
  return Status();
}

Status Journal::Begin(const FaultRecord& record) {
  std::unique_lock lock(mutex_);
  Statement insert(db_,
                   "INSERT INTO faults (id, kind, target, undo, owner_pid, owner_start_ticks, started_ms, "
                   "lease_until_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  insert.Text(1, record.id);
  insert.Text(2, record.kind);
  insert.Text(3, record.target);
  insert.Text(4, record.undo.dump());
  insert.Integer(5, record.owner_pid);
  insert.Integer(6, static_cast<std::int64_t>(record.owner_start_ticks));
  insert.Integer(7, record.started_ms);
  insert.Integer(8, record.lease_until_ms);
  if (sqlite3_step(insert.get()) != SQLITE_DONE) return SqliteError(db_, "recording fault " + record.id);
  lock.unlock();
  if (listener_) {
    FaultRecord begun = record;
    begun.ended_ms = 0;
    begun.outcome.clear();
    listener_(begun);
  }
  return Status();
}

Status Journal::Renew(const std::string& id, std::int64_t lease_until_ms) {
  std::lock_guard lock(mutex_);
  Statement update(db_, "UPDATE faults SET lease_until_ms = ? WHERE id = ? AND ended_ms = 0");
  update.Integer(1, lease_until_ms);
  update.Text(2, id);
  if (sqlite3_step(update.get()) != SQLITE_DONE) return SqliteError(db_, "renewing fault " + id);
  return Status();
}

Status Journal::End(const std::string& id, const std::string& outcome, std::int64_t ended_ms) {
  std::unique_lock lock(mutex_);
  // RETURNING names the row only when this call ended it, so a listener
  // hears each end once.
  Statement update(db_,
                   "UPDATE faults SET ended_ms = ?, outcome = ? WHERE id = ? AND ended_ms = 0 "
                   "RETURNING kind, target, owner_pid, started_ms, lease_until_ms");
  update.Integer(1, std::max<std::int64_t>(ended_ms, 1));  // 0 means open
  update.Text(2, outcome);
  update.Text(3, id);
  int step = sqlite3_step(update.get());
  std::optional<FaultRecord> ended;
  if (step == SQLITE_ROW) {
    const auto text = [&](int column) {
      const unsigned char* value = sqlite3_column_text(update.get(), column);
      return value != nullptr ? std::string(reinterpret_cast<const char*>(value)) : std::string();
    };
    ended.emplace();
    ended->id = id;
    ended->kind = text(0);
    ended->target = text(1);
    ended->owner_pid = sqlite3_column_int64(update.get(), 2);
    ended->started_ms = sqlite3_column_int64(update.get(), 3);
    ended->lease_until_ms = sqlite3_column_int64(update.get(), 4);
    ended->ended_ms = std::max<std::int64_t>(ended_ms, 1);
    ended->outcome = outcome;
    step = sqlite3_step(update.get());
  }
  if (step != SQLITE_DONE) return SqliteError(db_, "ending fault " + id);
  lock.unlock();
  if (ended && listener_) listener_(*ended);
  return Status();
}

Result<std::vector<FaultRecord>> Journal::Select(const std::string& where) const {
  std::lock_guard lock(mutex_);
  const std::string sql =
      "SELECT id, kind, target, undo, owner_pid, started_ms, lease_until_ms, ended_ms, outcome, owner_start_ticks "
      "FROM faults " +
      where + " ORDER BY started_ms, id";
  Statement select(db_, sql.c_str());
  std::vector<FaultRecord> records;
  int step = 0;
  while ((step = sqlite3_step(select.get())) == SQLITE_ROW) {
    FaultRecord record;
    const auto text = [&](int column) {
      const unsigned char* value = sqlite3_column_text(select.get(), column);
      return value != nullptr ? std::string(reinterpret_cast<const char*>(value)) : std::string();
    };
    record.id = text(0);
    record.kind = text(1);
    record.target = text(2);
    record.undo = nlohmann::json::parse(text(3), nullptr, false);
    record.owner_pid = sqlite3_column_int64(select.get(), 4);
    record.started_ms = sqlite3_column_int64(select.get(), 5);
    record.lease_until_ms = sqlite3_column_int64(select.get(), 6);
    record.ended_ms = sqlite3_column_int64(select.get(), 7);
    record.outcome = text(8);
    record.owner_start_ticks = static_cast<std::uint64_t>(sqlite3_column_int64(select.get(), 9));
    records.push_back(std::move(record));
  }
  if (step != SQLITE_DONE) return SqliteError(db_, "reading faults");
  return records;
}

Result<std::vector<FaultRecord>> Journal::OpenFaults() const { return Select("WHERE ended_ms = 0"); }
Result<std::vector<FaultRecord>> Journal::All() const { return Select(""); }

}  // namespace firedrill::injectors
