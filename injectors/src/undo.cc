#include "firedrill/injectors/undo.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace firedrill::injectors {
namespace {

constexpr char kRenew = 'R';
constexpr char kUndo = 'U';
constexpr char kDismiss = 'D';

// /proc/PID/stat without allocating: the guardian reads it after fork.
// Returns false when the process is gone; state and start from the fields
// after the last ')' (the command name may hold spaces and parentheses).
bool ReadStat(pid_t pid, char* state, std::uint64_t* start_ticks) {
  // "/proc/<pid>/stat", formatted by hand: snprintf is not async-signal-safe.
  char digits[16];
  int count = 0;
  for (unsigned value = static_cast<unsigned>(pid); count == 0 || value > 0; value /= 10) {
    digits[count++] = static_cast<char>('0' + value % 10);
  }
  char path[64] = "/proc/";
  int at = 6;
  while (count > 0) path[at++] = digits[--count];
  std::memcpy(path + at, "/stat", 6);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[1024];
  const ssize_t size = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  if (size <= 0) return false;
  buffer[size] = '\0';
  char* close_paren = std::strrchr(buffer, ')');
  if (close_paren == nullptr || close_paren[1] == '\0') return false;
  char* field = close_paren + 2;  // field 3: state
  *state = *field;
  // Field 22 is starttime: 19 fields after the state.
  for (int skip = 0; skip < 19 && field != nullptr; ++skip) {
    field = std::strchr(field, ' ');
    if (field != nullptr) ++field;
  }
  if (field == nullptr) return false;
  *start_ticks = std::strtoull(field, nullptr, 10);
  return true;
}

// An undo step flattened for the guardian, which must not allocate.
struct PlainUndo {
  enum Kind { kNothing, kSignal, kRemove } kind = kNothing;
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;
  int signal = 0;
  char path[4096] = {};
};

Result<PlainUndo> Flatten(const nlohmann::json& undo) try {
  PlainUndo plain;
  if (!undo.is_object()) return FD_STATUS(StatusCode::kInvalidArgument, "undo step is not an object: " + undo.dump());
  const std::string action = undo.value("action", std::string());
  if (action == "none") return plain;
  if (action == "signal") {
    plain.kind = PlainUndo::kSignal;
    plain.pid = undo.value("pid", 0);
    plain.start_ticks = undo.value("start_ticks", std::uint64_t{0});
    plain.signal = undo.value("signal", 0);
    return plain;
  }
  if (action == "remove") {
    const std::string path = undo.value("path", std::string());
    if (path.empty() || path.size() >= sizeof plain.path) {
      return FD_STATUS(StatusCode::kInvalidArgument, "undo remove: path empty or too long");
    }
    plain.kind = PlainUndo::kRemove;
    std::memcpy(plain.path, path.c_str(), path.size() + 1);
    return plain;
  }
  return FD_STATUS(StatusCode::kInvalidArgument, "unknown undo action \"" + action + "\"");
} catch (const nlohmann::json::exception& error) {
  // A row written by another version, or damaged: that row fails, not recover.
  return FD_STATUS(StatusCode::kInvalidArgument, std::string("malformed undo step: ") + error.what());
}

// Async-signal-safe: runs in the forked guardian too.
void Carry(const PlainUndo& undo) {
  if (undo.kind == PlainUndo::kSignal) {
    char state = 0;
    std::uint64_t start = 0;
    if (ReadStat(undo.pid, &state, &start) && start == undo.start_ticks) kill(undo.pid, undo.signal);
  } else if (undo.kind == PlainUndo::kRemove) {
    unlink(undo.path);
  }
}

// Whether the fault an undo step takes back is still there: a process still
// stopped, a fill file still on disk. A guardian that already acted, or a
// fault that ended with its owner, leaves nothing for recover to do.
bool StillNeeded(const PlainUndo& undo) {
  if (undo.kind == PlainUndo::kRemove) return access(undo.path, F_OK) == 0;
  if (undo.kind != PlainUndo::kSignal) return false;
  char state = 0;
  std::uint64_t start = 0;
  if (!ReadStat(undo.pid, &state, &start) || start != undo.start_ticks || state == 'Z') return false;
  return undo.signal != SIGCONT || state == 'T';
}

extern "C" void WakeGuardian(int) {}

volatile sig_atomic_t guardian_terminated = 0;
extern "C" void TerminateGuardian(int) { guardian_terminated = 1; }

[[noreturn]] void GuardianMain(int pipe, const PlainUndo& undo, std::int64_t lease_ms, pid_t owner) {
  // Only its own end of the socket: a copy of another guardian's would keep
  // that one from seeing its owner die.
  close_range(3, static_cast<unsigned>(pipe) - 1, 0);
  close_range(static_cast<unsigned>(pipe) + 1, ~0U, 0);
  // Out of the owner's process group and terminal, so Ctrl-C, a hang-up or
  // a group-wide SIGTERM that kills the owner does not kill its guardian
  // before the undo; and no stop signal can freeze the lease.
  setsid();
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (const int ignored : {SIGINT, SIGQUIT, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE}) signal(ignored, SIG_IGN);
  struct sigaction terminate {};
  terminate.sa_handler = TerminateGuardian;
  sigaction(SIGTERM, &terminate, nullptr);
  // The owner's death also arrives as a signal (behind the socket's end of
  // file). It fires when the forking thread ends too, so it only wakes the
  // guardian, which then checks whether the owner process is really gone.
  struct sigaction wake {};
  wake.sa_handler = WakeGuardian;
  sigaction(SIGUSR1, &wake, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (getppid() != owner) {
    Carry(undo);
    _exit(0);
  }
  for (;;) {
    pollfd watch{pipe, POLLIN, 0};
    const int ready = poll(&watch, 1, lease_ms > 0 ? static_cast<int>(lease_ms) : -1);
    if (ready == 0) {  // the lease lapsed
      Carry(undo);
      _exit(0);
    }
    if (ready < 0) {
      if (errno == EINTR && getppid() == owner && guardian_terminated == 0) continue;
      Carry(undo);  // the owner died, or someone is ending the guardian: undo first
      _exit(0);
    }
    char command = 0;
    const ssize_t got = read(pipe, &command, 1);
    if (got == 1 && command == kRenew) continue;
    if (got == 1 && command == kDismiss) _exit(0);
    // kUndo, or end-of-file: the owner is gone.
    Carry(undo);
    _exit(0);
  }
}

}  // namespace

Result<ProcessId> IdentifyProcess(pid_t pid) {
  char state = 0;
  ProcessId process{pid, 0};
  if (pid <= 0 || !ReadStat(pid, &state, &process.start_ticks)) {
    return FD_STATUS(StatusCode::kNotFound, "no process " + std::to_string(pid));
  }
  return process;
}

bool IsSameProcess(const ProcessId& process) {
  char state = 0;
  std::uint64_t start = 0;
  return ReadStat(process.pid, &state, &start) && start == process.start_ticks && state != 'Z';
}

char ProcessState(pid_t pid) {
  char state = '?';
  std::uint64_t start = 0;
  return ReadStat(pid, &state, &start) ? state : '?';
}

nlohmann::json UndoNothing() { return {{"action", "none"}}; }

nlohmann::json UndoSignal(const ProcessId& process, int signal) {
  return {{"action", "signal"}, {"pid", process.pid}, {"start_ticks", process.start_ticks}, {"signal", signal}};
}

nlohmann::json UndoRemovePath(const std::string& path) { return {{"action", "remove"}, {"path", path}}; }

Status RunUndo(const nlohmann::json& undo) {
  FD_ASSIGN_OR_RETURN(const PlainUndo plain, Flatten(undo));
  if (plain.kind == PlainUndo::kRemove) {
    // Only what a disk fill writes: a journal row never makes recover a
    // general file remover.
    const std::filesystem::path path(plain.path);
    if (path.extension() != ".fill" || path.parent_path().filename() != "disk-fill") {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       std::string("refusing to remove ") + plain.path + ": not a disk-fill file");
    }
  }
  Carry(plain);
  std::error_code error;
  if (plain.kind == PlainUndo::kRemove && std::filesystem::exists(plain.path, error)) {
    return FD_STATUS(StatusCode::kUnavailable, std::string("could not remove ") + plain.path);
  }
  return Status();
}

// An embedded target's row also names its temporary folder: once its
// process is gone (waited for up to ten seconds after the SIGTERM), the
// folder goes too. Only a folder Firedrill made: firedrill-target-* directly
// in the temporary folder.
void RemoveTargetFolder(const nlohmann::json& undo) {
  if (!undo.is_object() || !undo.contains("folder") || !undo["folder"].is_string()) return;
  const std::filesystem::path folder = undo["folder"].get<std::string>();
  std::error_code error;
  const std::filesystem::path temp = std::filesystem::temp_directory_path(error);
  if (error || folder.parent_path() != temp || folder.filename().string().rfind("firedrill-target-", 0) != 0) return;
  if (Result<PlainUndo> plain = Flatten(undo); plain.ok() && plain->kind == PlainUndo::kSignal) {
    const ProcessId process{plain->pid, plain->start_ticks};
    for (int waited_ms = 0; waited_ms < 10'000 && IsSameProcess(process); waited_ms += 20) {
      usleep(20'000);
    }
    if (IsSameProcess(process)) return;  // still shutting down: leave its data alone
  }
  std::filesystem::remove_all(folder, error);
}

Result<RecoverReport> Recover(Journal& journal, std::int64_t now_ms) {
  FD_ASSIGN_OR_RETURN(const std::vector<FaultRecord> open, journal.OpenFaults());
  RecoverReport report;
  for (const FaultRecord& record : open) {
    // A Firedrill still running keeps its own faults (and its guardians).
    // Without a recorded start time, any live process with the pid counts.
    const ProcessId owner{static_cast<pid_t>(record.owner_pid), record.owner_start_ticks};
    const bool owner_alive = record.owner_start_ticks != 0
                                 ? IsSameProcess(owner)
                                 : (kill(owner.pid, 0) == 0 || errno == EPERM);
    if (record.owner_pid > 0 && record.owner_pid != getpid() && owner_alive) {
      report.left_to_owner.push_back(record);
      continue;
    }
    // A fault the target itself lapses (a pipeline lease) is over only
    // when its lease is.
    if (record.undo.is_object() && record.undo.contains("lapses") && record.lease_until_ms > now_ms) {
      report.lapsing.push_back(record);
      continue;
    }
    if (Result<PlainUndo> plain = Flatten(record.undo); plain.ok() && !StillNeeded(*plain)) {
      FD_RETURN_IF_ERROR(journal.End(record.id, "already over (its guardian or its owner's end undid it)", now_ms));
      RemoveTargetFolder(record.undo);
      report.already_over.push_back(record);
      continue;
    }
    const Status undone = RunUndo(record.undo);
    if (!undone.ok()) {
      report.failures.push_back(record.id + ": " + undone.message());
      continue;
    }
    FD_RETURN_IF_ERROR(journal.End(record.id, "recovered", now_ms));
    RemoveTargetFolder(record.undo);
    report.undone.push_back(record);
  }
  return report;
}

Result<std::unique_ptr<Guardian>> Guardian::Start(const nlohmann::json& undo, Duration lease) {
  FD_ASSIGN_OR_RETURN(const PlainUndo plain, Flatten(undo));
  // A socket pair rather than a pipe: the owner writes with MSG_NOSIGNAL, so
  // a guardian that died is an error here, not a SIGPIPE.
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return FD_STATUS(StatusCode::kUnavailable, std::string("guardian pipe: ") + std::strerror(errno));
  }
  const std::int64_t lease_ms = std::chrono::duration_cast<std::chrono::milliseconds>(lease).count();
  const pid_t owner = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return FD_STATUS(StatusCode::kUnavailable, std::string("guardian fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    close(fds[1]);
    GuardianMain(fds[0], plain, lease_ms, owner);
  }
  close(fds[0]);
  return std::unique_ptr<Guardian>(new Guardian(pid, fds[1]));
}

Guardian::~Guardian() {
  if (pipe_ >= 0) (void)Dismiss();
}

Status Guardian::Send(char command, bool wait) {
  if (pipe_ < 0) return Status();
  const bool sent = send(pipe_, &command, 1, MSG_NOSIGNAL) == 1;
  if (command != kRenew || !sent) {
    close(pipe_);
    pipe_ = -1;
  }
  if (wait || pipe_ < 0) waitpid(pid_, nullptr, 0);
  // A guardian that already ended (its lease lapsed, so it undid the fault)
  // has done what a dismissal or an undo asks; only a renewal is refused.
  if (!sent && command == kRenew) return FD_STATUS(StatusCode::kUnavailable, "the fault's guardian is gone (its lease lapsed)");
  return Status();
}

Status Guardian::Renew() { return Send(kRenew, false); }
Status Guardian::UndoNow() { return Send(kUndo, true); }
Status Guardian::Dismiss() { return Send(kDismiss, true); }

}  // namespace firedrill::injectors
