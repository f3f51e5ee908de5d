// The fault journal: before a fault starts, a row records how to undo it;
// when the fault ends, the row records that. A Firedrill that dies leaves
// the rows of its faults open, and `firedrill recover` undoes them. SQLite
// (WAL, synchronous=FULL), so a row written before a fault starts survives
// a crash, and `run` and `recover` can share the file.
//
// Undo steps are data, not code: each names an action any later process can
// carry out without the injector that wrote it (see undo.h).
//
// Thread-safety: one Journal may be used from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "firedrill/core/status.h"

struct sqlite3;

namespace firedrill::injectors {

struct FaultRecord {
  std::string id;          // unique per fault
  std::string kind;        // injector kind, "process-pause"
  std::string target;      // what it acts on, for people: "pid 4242 (hsof-pipeline)"
  nlohmann::json undo;     // the undo step (undo.h); {"action":"none"} when nothing is left behind
  std::int64_t owner_pid = 0;          // the Firedrill that started it...
  std::uint64_t owner_start_ticks = 0;  // ...and its start time, so a reused pid is not mistaken for it
  std::int64_t started_ms = 0;      // wall clock, ms since the epoch
  std::int64_t lease_until_ms = 0;  // when the fault lapses on its own; 0: it does not
  std::int64_t ended_ms = 0;        // 0 while open
  std::string outcome;              // "stopped", "recovered", "lapsed", ...
};

class Journal {
 public:
  // Opens or creates the journal at `path` (its folder is created).
  static Result<std::unique_ptr<Journal>> Open(const std::string& path);
  // The default place: $FIREDRILL_JOURNAL, else $XDG_STATE_HOME/firedrill/journal.db,
  // else ~/.local/state/firedrill/journal.db.
  static std::string DefaultPath();
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Durable before it returns: call it before the fault starts.
  Status Begin(const FaultRecord& record);
  Status Renew(const std::string& id, std::int64_t lease_until_ms);
  // Idempotent: ending an ended fault changes nothing.
  Status End(const std::string& id, const std::string& outcome, std::int64_t ended_ms);
  Result<std::vector<FaultRecord>> OpenFaults() const;
  Result<std::vector<FaultRecord>> All() const;
  const std::string& path() const { return path_; }

  // Hears every fault this Journal object begins (ended_ms == 0) and ends
  // (ended_ms and outcome set), after the row is durable: the feed for
  // Firedrill's fault metrics and the run's event timeline. Set it before
  // faults start; it runs on the caller's thread, outside the journal's lock.
  using Listener = std::function<void(const FaultRecord&)>;
  void SetListener(Listener listener) { listener_ = std::move(listener); }

 private:
  Journal(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Execute(const std::string& sql) const;
  Result<std::vector<FaultRecord>> Select(const std::string& where) const;

  mutable std::mutex mutex_;
  sqlite3* db_;
  std::string path_;
  Listener listener_;
};

}  // namespace firedrill::injectors
