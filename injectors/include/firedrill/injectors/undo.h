// Undo steps: how a fault is taken back, as data a journal row can hold and
// any later process (`firedrill recover`) can carry out, and the guardian —
// a small child process that carries the step out when Firedrill ends in
// any way (SIGKILL included), when the fault's lease lapses, or on request.
//
// Processes are named by pid and start time, so an undo never signals a
// process that merely reused the pid.
//
// Thread-safety: the functions are; a Guardian has one owner.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/injectors/journal.h"

namespace firedrill::injectors {

struct ProcessId {
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;  // field 22 of /proc/PID/stat
};
// NotFound when no such process runs.
Result<ProcessId> IdentifyProcess(pid_t pid);
// Still running, and the same process (not a reuse of its pid).
bool IsSameProcess(const ProcessId& process);
// 'T' (stopped), 'S', 'R', ...; '?' when it is gone.
char ProcessState(pid_t pid);

nlohmann::json UndoNothing();                              // the fault leaves nothing behind
nlohmann::json UndoSignal(const ProcessId& process, int signal);  // e.g. SIGCONT a paused process
nlohmann::json UndoRemovePath(const std::string& path);     // a file Firedrill wrote
// An undo step may also name a `folder` (a string): an embedded target's
// temporary folder (firedrill-target-* in the temporary folder, nothing
// else), which recover removes once the target's process is gone.

// Carries out `undo`. Idempotent: a process that is gone or reused, or a
// path already removed, is done, not an error.
Status RunUndo(const nlohmann::json& undo);

// `firedrill recover`: undoes every fault the journal still has open and
// marks it recovered. Safe to run twice, and beside a live run only for
// faults whose owner is gone (a live owner's faults are left to it).
struct RecoverReport {
  std::vector<FaultRecord> undone;
  // Open rows whose fault was already gone (a guardian undid it, or it
  // ended with its owner): closed, with nothing to do.
  std::vector<FaultRecord> already_over;
  std::vector<FaultRecord> left_to_owner;  // the owning Firedrill still runs
  std::vector<FaultRecord> lapsing;        // undone by the target when its lease ends (lease_until_ms)
  std::vector<std::string> failures;       // "id: why"
};
Result<RecoverReport> Recover(Journal& journal, std::int64_t now_ms);

class Guardian {
 public:
  // Forks the guardian. It carries out `undo` when this process dies, when
  // `lease` passes without a Renew, or on UndoNow; Dismiss ends it without
  // acting. A non-positive lease never lapses.
  static Result<std::unique_ptr<Guardian>> Start(const nlohmann::json& undo, Duration lease);
  ~Guardian();  // dismisses
  Guardian(const Guardian&) = delete;
  Guardian& operator=(const Guardian&) = delete;

  Status Renew();
  Status UndoNow();  // and waits for it to finish
  Status Dismiss();  // the owner undid the fault itself
  pid_t pid() const { return pid_; }

 private:
  Guardian(pid_t pid, int pipe) : pid_(pid), pipe_(pipe) {}
  Status Send(char command, bool wait);
  pid_t pid_;
  int pipe_;
};

}  // namespace firedrill::injectors
