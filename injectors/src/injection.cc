#include "firedrill/injectors/injection.h"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "firedrill/core/spawn.h"
#include "firedrill/core/units.h"
#include "firedrill/gpu/device.h"
#include "firedrill/injectors/undo.h"
#include "firedrill/workload/stress_phase.h"
#include "hsof/v1/pipeline.grpc.pb.h"

extern char** environ;

namespace firedrill::injectors {
namespace {

namespace fs = std::filesystem;

// Journal times are Unix time, which recover compares with the real clock.
// A compressed drill's ScaledClock runs its wall time fast, so its readings
// are taken from the real clock instead, and its durations shrink to real.
std::int64_t WallMillis(const Clock& clock) {
  const WallTime now = dynamic_cast<const ScaledClock*>(&clock) != nullptr ? std::chrono::system_clock::now()
                                                                            : clock.WallNow();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
}

// When a lease renewed now lapses, as the journal records it.
std::int64_t LeaseUntilMs(const Clock& clock, Duration ttl) {
  const auto* scaled = dynamic_cast<const ScaledClock*>(&clock);
  const double real_ms = static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count()) /
                         (scaled != nullptr ? scaled->scale() : 1.0);
  return WallMillis(clock) + static_cast<std::int64_t>(std::ceil(real_ms));
}

std::string NewId(const std::string& kind, const Clock& clock) {
  static std::atomic<int> sequence{0};
  return kind + "-" + std::to_string(WallMillis(clock)) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(sequence.fetch_add(1));
}

// Fields come as text from the loader; tests and the engine may pass numbers.
std::string Text(const nlohmann::json& fields, const std::string& key, const std::string& fallback = {}) {
  if (!fields.contains(key)) return fallback;
  const nlohmann::json& value = fields[key];
  return value.is_string() ? value.get<std::string>() : value.dump();
}

Status Invalid(const std::string& kind, const std::string& why) {
  return FD_STATUS(StatusCode::kInvalidArgument, kind + ": " + why);
}

// The host of "host:port" or "[v6]:port".
std::string HostOf(const std::string& host_port) {
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host;
}

bool IsLoopback(const std::string& host_port) {
  const std::string host = HostOf(host_port);
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Faults go to loopback targets, and to other hosts only when the drill
// lists them.
Status CheckFaultTarget(const std::string& kind, const std::string& host_port, const BlastRadius& limits) {
  if (IsLoopback(host_port)) return Status();
  const std::string host = HostOf(host_port);
  if (std::find(limits.allowed_hosts.begin(), limits.allowed_hosts.end(), host) != limits.allowed_hosts.end()) {
    return Status();
  }
  return Invalid(kind, host_port + " is not on loopback and not among the drill's allowed hosts");
}

// The cap on faults running at once, counted from this process's open rows:
// not the embedded target's own row, and not the rows a fault keeps for its
// parts (a thermal fault's contention burn), which are one fault with it.
Status CheckConcurrentFaults(const std::string& kind, const InjectionContext& context) {
  FD_ASSIGN_OR_RETURN(const std::vector<FaultRecord> open, context.journal->OpenFaults());
  const auto mine = std::count_if(open.begin(), open.end(), [](const FaultRecord& record) {
    return record.owner_pid == getpid() && record.kind != "embedded-target" && !record.undo.contains("partOf");
  });
  if (mine >= context.limits.max_concurrent_faults) {
    return Invalid(kind, std::to_string(mine) + " fault(s) already running, the drill's cap is " +
                             std::to_string(context.limits.max_concurrent_faults));
  }
  return Status();
}

Result<ProcessId> KnownProcess(const std::string& kind, const nlohmann::json& fields, const InjectionContext& context,
                               std::string* name) {
  *name = Text(fields, "process");
  const auto found = context.processes.find(*name);
  if (found == context.processes.end()) {
    std::string known;
    for (const auto& [process, pid] : context.processes) known += (known.empty() ? "" : ", ") + process;
    return Invalid(kind, "process \"" + *name + "\" is not one this drill started or was given" +
                             (known.empty() ? "" : " (known: " + known + ")"));
  }
  Result<ProcessId> process = IdentifyProcess(found->second);
  if (!process.ok()) return Invalid(kind, "process \"" + *name + "\" (pid " + std::to_string(found->second) + ") is not running");
  return process;
}

int SignalNumber(const std::string& name) {
  if (name == "SIGTERM") return SIGTERM;
  if (name == "SIGINT") return SIGINT;
  if (name == "SIGQUIT") return SIGQUIT;
  if (name == "SIGABRT") return SIGABRT;
  return SIGKILL;
}

constexpr std::string_view kDryRunPrefix = "dry run: would ";

// Says what would happen, and does nothing (limits.dry_run).
class DryRun final : public Injection {
 public:
  DryRun(std::string id, std::string kind, std::string what)
      : Injection(std::move(id), std::move(kind)), what_(std::move(what)) {}
  std::string Describe() const override { return std::string(kDryRunPrefix) + what_; }
  Status Renew() override { return Status(); }
  Status Stop() override { return Status(); }
  InjectionState State() const override { return {InjectionState::kDryRun, "nothing was done"}; }

 private:
  std::string what_;
};

// A fault whose undo is journalled and held by a guardian: process pause and
// disk fill. Stop carries the undo out itself, then dismisses the guardian.
class GuardedInjection final : public Injection {
 public:
  GuardedInjection(std::string id, std::string kind, std::string what, nlohmann::json undo,
                   std::unique_ptr<Guardian> guardian, MonotonicTime lease_until, InjectionContext& context)
      : Injection(std::move(id), std::move(kind)),
        what_(std::move(what)),
        undo_(std::move(undo)),
        guardian_(std::move(guardian)),
        journal_(*context.journal),
        clock_(*context.clock),
        ttl_(context.ttl),
        lease_until_(lease_until) {}
  ~GuardedInjection() override { (void)Stop(); }

  std::string Describe() const override { return what_; }

  Status Renew() override {
    if (stopped_) return Status();
    const MonotonicTime lease_until = clock_.Now() + ttl_;  // no later than the guardian's
    FD_RETURN_IF_ERROR(guardian_->Renew());
    lease_until_.store(lease_until);
    return journal_.Renew(id(), LeaseUntilMs(clock_, ttl_));
  }

  Status Stop() override {
    if (stopped_.exchange(true)) return Status();
    const Status undone = RunUndo(undo_);
    // Should our own undo fail, the guardian tries once more.
    const Status guardian = undone.ok() ? guardian_->Dismiss() : guardian_->UndoNow();
    if (!undone.ok() && !guardian.ok()) return undone;  // the row stays open for recover
    FD_RETURN_IF_ERROR(journal_.End(id(), undone.ok() ? "stopped" : "stopped by its guardian", WallMillis(clock_)));
    return Status();
  }
  InjectionState State() const override {
    if (stopped_) return {InjectionState::kStopped, "undone by stop"};
    // The guardian acts when the lease lapses; it may not have exited yet.
    const char guardian = ProcessState(guardian_->pid());
    if (guardian == 'Z' || guardian == '?' || clock_.Now() >= lease_until_.load()) {
      return {InjectionState::kLapsed, "its guardian undid it (the lease lapsed)"};
    }
    return {InjectionState::kRunning, ""};
  }

 private:
  std::string what_;
  nlohmann::json undo_;
  std::unique_ptr<Guardian> guardian_;
  Journal& journal_;
  Clock& clock_;
  Duration ttl_;
  std::atomic<MonotonicTime> lease_until_;
  std::atomic<bool> stopped_{false};
};

// A fault that ends with this process (busy threads): journalled for the
// record, undone by stopping the threads; its lease ends them too.
class CpuHog final : public Injection {
 public:
  CpuHog(std::string id, int threads, double duty, InjectionContext& context)
      : Injection(std::move(id), "cpu-hog"),
        threads_(threads),
        duty_(duty),
        journal_(*context.journal),
        clock_(*context.clock),
        ttl_(context.ttl) {
    Lease();
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Burn(); });
  }
  ~CpuHog() override { (void)Stop(); }

  std::string Describe() const override {
    return "cpu-hog: " + std::to_string(threads_) + " busy thread(s) at " + FormatRatio(duty_) + " duty";
  }
  Status Renew() override {
    Lease();
    return journal_.Renew(id(), LeaseUntilMs(clock_, ttl_));
  }
  Status Stop() override {
    if (stop_.exchange(true)) return Status();
    for (std::thread& worker : workers_) worker.join();
    return journal_.End(id(), "stopped", WallMillis(clock_));
  }
  InjectionState State() const override {
    if (stop_.load()) return {InjectionState::kStopped, "undone by stop"};
    if (std::chrono::steady_clock::now().time_since_epoch().count() > lease_until_.load()) {
      return {InjectionState::kLapsed, "the lease lapsed: the threads stopped"};
    }
    return {InjectionState::kRunning, ""};
  }

 private:
  void Lease() {
    lease_until_.store(std::chrono::steady_clock::now().time_since_epoch().count() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(ttl_).count());
  }
  // Busy for duty of every 10 ms period; real time, since the load is real.
  void Burn() {
    constexpr auto kPeriod = std::chrono::milliseconds(10);
    const auto busy = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kPeriod * duty_);
    volatile std::uint64_t sink = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      const auto start = std::chrono::steady_clock::now();
      if (start.time_since_epoch().count() > lease_until_.load()) break;  // the lease lapsed
      while (std::chrono::steady_clock::now() - start < busy) sink = sink + 1;
      std::this_thread::sleep_until(start + kPeriod);
    }
  }

  int threads_;
  double duty_;
  Journal& journal_;
  Clock& clock_;
  Duration ttl_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> lease_until_{0};
  std::vector<std::thread> workers_;
};

// Host memory held in this process: taken with mmap, every page written so
// it is resident, and written again every few seconds so the kernel keeps it
// (as stress-ng --vm does). It goes with the process; the lease frees it too.
class HostMemoryHog final : public Injection {
 public:
  HostMemoryHog(std::string id, void* memory, std::size_t bytes, InjectionContext& context)
      : Injection(std::move(id), "host-memory-hog"),
        memory_(static_cast<char*>(memory)),
        bytes_(bytes),
        journal_(*context.journal),
        clock_(*context.clock),
        ttl_(context.ttl) {
    Touch();
    Lease();
    holder_ = std::thread([this] { Hold(); });
  }
  ~HostMemoryHog() override { (void)Stop(); }

  std::string Describe() const override { return "host-memory-hog: holding " + FormatSize(bytes_); }
  Status Renew() override {
    Lease();
    return journal_.Renew(id(), LeaseUntilMs(clock_, ttl_));
  }
  Status Stop() override {
    {
      std::lock_guard lock(mutex_);
      if (stop_) return Status();
      stop_ = true;
    }
    changed_.notify_all();
    holder_.join();
    munmap(memory_, bytes_);
    return journal_.End(id(), "stopped", WallMillis(clock_));
  }
  InjectionState State() const override {
    std::lock_guard lock(mutex_);
    if (stop_) return {InjectionState::kStopped, "undone by stop"};
    if (std::chrono::steady_clock::now() >= lease_until_) {
      return {InjectionState::kLapsed, "the lease lapsed: the memory was given back"};
    }
    return {InjectionState::kRunning, ""};
  }

 private:
  void Touch() {
    const long page = sysconf(_SC_PAGESIZE);
    for (std::size_t at = 0; at < bytes_; at += static_cast<std::size_t>(page)) memory_[at] = static_cast<char>(at);
  }
  void Lease() {
    std::lock_guard lock(mutex_);
    lease_until_ = std::chrono::steady_clock::now() + ttl_;
  }
  void Hold() {
    std::unique_lock lock(mutex_);
    while (!stop_ && std::chrono::steady_clock::now() < lease_until_) {
      changed_.wait_until(lock, std::min(lease_until_, std::chrono::steady_clock::now() + std::chrono::seconds(5)));
      if (!stop_) Touch();
    }
    // The lease lapsed: give the memory back now (Stop unmaps it).
    if (!stop_) madvise(memory_, bytes_, MADV_DONTNEED);
  }

  char* memory_;
  std::size_t bytes_;
  Journal& journal_;
  Clock& clock_;
  Duration ttl_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;
  std::chrono::steady_clock::time_point lease_until_{};
  std::thread holder_;
};

// A one-shot fault (a signal sent): nothing to undo, nothing to renew.
class Done final : public Injection {
 public:
  Done(std::string id, std::string kind, std::string what)
      : Injection(std::move(id), std::move(kind)), what_(std::move(what)) {}
  std::string Describe() const override { return what_; }
  Status Renew() override { return Status(); }
  Status Stop() override { return Status(); }
  InjectionState State() const override { return {InjectionState::kDone, "one-shot: nothing runs"}; }

 private:
  std::string what_;
};

FaultRecord Record(const std::string& id, const std::string& kind, const std::string& target,
                   const nlohmann::json& undo, const InjectionContext& context) {
  FaultRecord record;
  record.id = id;
  record.kind = kind;
  record.target = target;
  record.undo = undo;
  record.owner_pid = getpid();
  if (Result<ProcessId> self = IdentifyProcess(getpid()); self.ok()) record.owner_start_ticks = self->start_ticks;
  record.started_ms = WallMillis(*context.clock);
  record.lease_until_ms = LeaseUntilMs(*context.clock, context.ttl);
  return record;
}

// Journal first, then the guardian, then the fault: at every step a crash
// leaves something that knows how to undo what has been done.
Result<std::unique_ptr<Injection>> StartGuarded(const std::string& id, const std::string& kind,
                                                const std::string& target, const std::string& what,
                                                const nlohmann::json& undo, const std::function<Status()>& inject,
                                                InjectionContext& context) {
  FD_RETURN_IF_ERROR(context.journal->Begin(Record(id, kind, target, undo, context)));
  const MonotonicTime lease_until = context.clock->Now() + context.ttl;  // no later than the guardian's
  Result<std::unique_ptr<Guardian>> guardian = Guardian::Start(undo, context.ttl);
  if (!guardian.ok()) {
    (void)context.journal->End(id, "failed: " + guardian.status().message(), WallMillis(*context.clock));
    return guardian.status();
  }
  if (const Status injected = inject(); !injected.ok()) {
    (void)(*guardian)->UndoNow();
    (void)context.journal->End(id, "failed: " + injected.message(), WallMillis(*context.clock));
    return injected;
  }
  return std::unique_ptr<Injection>(
      new GuardedInjection(id, kind, what, undo, std::move(*guardian), lease_until, context));
}

Result<std::unique_ptr<Injection>> ProcessPause(const nlohmann::json& fields, InjectionContext& context) {
  std::string name;
  FD_ASSIGN_OR_RETURN(const ProcessId process, KnownProcess("process-pause", fields, context, &name));
  const std::string target = "pid " + std::to_string(process.pid) + " (" + name + ")";
  const std::string what = "process-pause: SIGSTOP " + target + ", SIGCONT when it ends";
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "process-pause", what));
  return StartGuarded(NewId("process-pause", *context.clock), "process-pause", target, what, UndoSignal(process, SIGCONT),
                      [&]() -> Status {
                        if (kill(process.pid, SIGSTOP) != 0) {
                          return FD_STATUS(StatusCode::kUnavailable,
                                           "process-pause: SIGSTOP " + target + ": " + std::strerror(errno));
                        }
                        return Status();
                      },
                      context);
}

Result<std::unique_ptr<Injection>> ProcessKill(const nlohmann::json& fields, InjectionContext& context) {
  std::string name;
  FD_ASSIGN_OR_RETURN(const ProcessId process, KnownProcess("process-kill", fields, context, &name));
  // Only a data directory Firedrill created may be destroyed, never one it was given.
  std::string data_dir;
  if (Text(fields, "destroyData", "false") == "true") {
    const auto found = context.data_directories.find(name);
    if (found == context.data_directories.end() || found->second.empty()) {
      return Invalid("process-kill", "destroyData: process \"" + name +
                                         "\" has no data directory Firedrill created (only the embedded pipeline's may "
                                         "be destroyed)");
    }
    data_dir = found->second;
  }
  const std::string signal_name = Text(fields, "signal", "SIGKILL");
  const std::string target = "pid " + std::to_string(process.pid) + " (" + name + ")";
  const std::string what = "process-kill: " + signal_name + " to " + target +
                           (data_dir.empty() ? "" : ", then delete its data directory " + data_dir);
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "process-kill", what));
  const std::string id = NewId("process-kill", *context.clock);
  FD_RETURN_IF_ERROR(context.journal->Begin(Record(id, "process-kill", target, UndoNothing(), context)));
  const bool same = IsSameProcess(process);
  const int rc = same ? kill(process.pid, SignalNumber(signal_name)) : -1;
  std::string outcome = rc == 0 ? "signalled" : "failed: process gone";
  std::error_code deleting;
  if (rc == 0 && !data_dir.empty()) {
    // Deleted once the process has exited (or after 10 s), so it cannot write
    // into the directory as it goes.
    for (int waited_ms = 0; waited_ms < 10'000; waited_ms += 10) {
      const char state = ProcessState(process.pid);
      if (state == 'Z' || state == 'X' || state == '?') break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::uintmax_t removed = fs::remove_all(data_dir, deleting);
    outcome = deleting ? "signalled; deleting " + data_dir + " failed: " + deleting.message()
                       : "signalled; deleted " + data_dir + " (" + std::to_string(removed) + " entries)";
  }
  FD_RETURN_IF_ERROR(context.journal->End(id, outcome, WallMillis(*context.clock)));
  if (rc != 0) return FD_STATUS(StatusCode::kUnavailable, "process-kill: " + target + " is gone");
  if (deleting) return FD_STATUS(StatusCode::kUnavailable, "process-kill: " + outcome);
  return std::unique_ptr<Injection>(new Done(id, "process-kill", what));
}

Result<std::unique_ptr<Injection>> CpuHogInjection(const nlohmann::json& fields, InjectionContext& context) {
  const int threads = std::atoi(Text(fields, "threads", "1").c_str());
  if (threads < 1 || threads > context.limits.max_cpu_threads) {
    return Invalid("cpu-hog", "threads must be 1 to " + std::to_string(context.limits.max_cpu_threads) +
                                  " (the drill's cap), got " + Text(fields, "threads"));
  }
  double duty = 1;
  if (fields.contains("duty")) {
    Result<double> parsed = ParseRatio(Text(fields, "duty"));
    if (!parsed.ok() || *parsed <= 0) return Invalid("cpu-hog", "duty: " + parsed.status().message());
    duty = *parsed;
  }
  const std::string what = "cpu-hog: " + std::to_string(threads) + " busy thread(s) at " + FormatRatio(duty) + " duty";
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "cpu-hog", what));
  const std::string id = NewId("cpu-hog", *context.clock);
  FD_RETURN_IF_ERROR(context.journal->Begin(Record(id, "cpu-hog", "this process", UndoNothing(), context)));
  return std::unique_ptr<Injection>(new CpuHog(id, threads, duty, context));
}

Result<std::unique_ptr<Injection>> HostMemoryHogInjection(const nlohmann::json& fields, InjectionContext& context) {
  Result<double> share = ParseRatio(Text(fields, "share"));
  if (!share.ok()) return Invalid("host-memory-hog", "share: " + share.status().message());
  std::uint64_t limit = context.limits.max_memory_bytes;
  if (fields.contains("limit")) {
    Result<std::uint64_t> given = ParseSize(Text(fields, "limit"));
    if (!given.ok()) return Invalid("host-memory-hog", "limit: " + given.status().message());
    if (*given > context.limits.max_memory_bytes) {
      return Invalid("host-memory-hog", "limit " + FormatSize(*given) + " is over the memory Firedrill may use (" +
                                            FormatSize(context.limits.max_memory_bytes) + ")");
    }
    limit = *given;
  }
  const auto bytes = static_cast<std::size_t>(static_cast<double>(limit) * *share);
  const std::string what = "host-memory-hog: hold " + FormatSize(bytes) + " (" + FormatRatio(*share) + " of " +
                           FormatSize(limit) + ")";
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "host-memory-hog", what));
  if (bytes == 0) return Invalid("host-memory-hog", "share of the limit is 0 bytes");
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) {
    return FD_STATUS(StatusCode::kResourceExhausted, "host-memory-hog: mmap " + FormatSize(bytes) + ": " + std::strerror(errno));
  }
  // A guardian forked while the hog runs must not share its pages: each
  // rewrite would copy one, and the hog would double past its cap.
  if (madvise(memory, bytes, MADV_DONTFORK) != 0) {
    munmap(memory, bytes);
    return FD_STATUS(StatusCode::kUnavailable, std::string("host-memory-hog: madvise: ") + std::strerror(errno));
  }
  const std::string id = NewId("host-memory-hog", *context.clock);
  if (Status begun = context.journal->Begin(Record(id, "host-memory-hog", "this process", UndoNothing(), context));
      !begun.ok()) {
    munmap(memory, bytes);
    return begun;
  }
  return std::unique_ptr<Injection>(new HostMemoryHog(id, memory, bytes, context));
}

// The drill's area is a folder Firedrill made; a fill never leaves it.
Result<std::unique_ptr<Injection>> DiskFill(const nlohmann::json& fields, InjectionContext& context) {
  Result<std::uint64_t> area = ParseSize(Text(fields, "areaSize"));
  if (!area.ok()) return Invalid("disk-fill", "areaSize: " + area.status().message());
  if (*area > context.limits.max_disk_bytes) {
    return Invalid("disk-fill", "areaSize " + FormatSize(*area) + " is over the drill's disk cap of " +
                                    FormatSize(context.limits.max_disk_bytes));
  }
  Result<double> share = ParseRatio(Text(fields, "share"));
  if (!share.ok()) return Invalid("disk-fill", "share: " + share.status().message());
  std::error_code error;
  if (context.drill_dir.empty() || !fs::is_directory(context.drill_dir, error)) {
    return Invalid("disk-fill", "no drill area: disk fills only go in a folder Firedrill created for the drill");
  }
  const fs::path folder = fs::path(context.drill_dir) / "disk-fill";
  const std::string id = NewId("disk-fill", *context.clock);
  const fs::path file = folder / (id + ".fill");
  const auto bytes = static_cast<std::uint64_t>(static_cast<double>(*area) * *share);
  const std::string what = "disk-fill: write " + FormatSize(bytes) + " (" + FormatRatio(*share) + " of a " +
                           FormatSize(*area) + " area) to " + file.string();
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "disk-fill", what));
  fs::create_directories(folder, error);
  if (error) return FD_STATUS(StatusCode::kUnavailable, "disk-fill: cannot create " + folder.string());
  return StartGuarded(id, "disk-fill", folder.string(), what, UndoRemovePath(file.string()),
                      [&]() -> Status {
                        const int fd = open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
                        if (fd < 0) {
                          return FD_STATUS(StatusCode::kUnavailable,
                                           "disk-fill: " + file.string() + ": " + std::strerror(errno));
                        }
                        // Real blocks, not a sparse file: the space is gone.
                        const int rc = bytes == 0 ? 0 : posix_fallocate(fd, 0, static_cast<off_t>(bytes));
                        close(fd);
                        if (rc != 0) {
                          return FD_STATUS(StatusCode::kResourceExhausted,
                                           "disk-fill: allocating " + FormatSize(bytes) + ": " + std::strerror(rc));
                        }
                        return Status();
                      },
                      context);
}

// Faults the pipeline runs in-process through its Faults service: each is a
// lease there too, so one whose renewals stop lapses inside the pipeline
// (within its time to live plus a second) with nothing left to undo.
class PipelineFault final : public Injection {
 public:
  PipelineFault(std::string id, std::string kind, std::string lease, std::string effect,
                std::unique_ptr<hsof::v1::Faults::Stub> stub, InjectionContext& context)
      : Injection(std::move(id), std::move(kind)),
        lease_(std::move(lease)),
        effect_(std::move(effect)),
        stub_(std::move(stub)),
        token_(context.faults_token),
        journal_(*context.journal),
        clock_(*context.clock),
        ttl_(context.ttl),
        lease_until_(clock_.Now() + ttl_) {}
  ~PipelineFault() override { (void)Stop(); }

  std::string Describe() const override { return kind() + " in the pipeline: " + effect_; }

  Status Renew() override {
    if (stopped_) return Status();
    grpc::ClientContext call;
    Prepare(call);
    hsof::v1::RenewFaultRequest request;
    request.set_id(lease_);
    request.set_ttl_seconds(std::chrono::duration<double>(ttl_).count());
    hsof::v1::FaultLease answer;
    if (const grpc::Status status = stub_->RenewFault(&call, request, &answer); !status.ok()) {
      // NOT_FOUND: the pipeline ended it (a stage restart cures a hang).
      if (status.error_code() == grpc::StatusCode::NOT_FOUND && !ended_in_target_.exchange(true)) {
        (void)journal_.End(id(), "ended in the pipeline: " + status.error_message(), WallMillis(clock_));
      }
      return FD_STATUS(StatusCode::kUnavailable, kind() + ": renewing lease " + lease_ + ": " + status.error_message());
    }
    lease_until_ = clock_.Now() + ttl_;
    return journal_.Renew(id(), LeaseUntilMs(clock_, ttl_));
  }

  Status Stop() override {
    if (stopped_.exchange(true)) return Status();
    grpc::ClientContext call;
    Prepare(call);
    hsof::v1::StopFaultRequest request;
    request.set_id(lease_);
    hsof::v1::FaultLease answer;
    const grpc::Status status = stub_->StopFault(&call, request, &answer);
    // NOT_FOUND: the lease already lapsed, which also undid it.
    if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
      (void)journal_.End(id(), "stop failed (lapses by itself): " + status.error_message(), WallMillis(clock_));
      return FD_STATUS(StatusCode::kUnavailable, kind() + ": stopping lease " + lease_ + ": " + status.error_message());
    }
    return journal_.End(id(), "stopped", WallMillis(clock_));
  }

  InjectionState State() const override {
    if (stopped_) return {InjectionState::kStopped, "undone by stop"};
    if (ended_in_target_) return {InjectionState::kLapsed, "the pipeline ended it"};
    if (clock_.Now() >= lease_until_) return {InjectionState::kLapsed, "its lease in the pipeline lapsed", true};
    return {InjectionState::kRunning, ""};
  }

  void Prepare(grpc::ClientContext& call) const {
    call.AddMetadata("x-firedrill-faults-token", token_);
    call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

 private:
  std::string lease_;
  std::string effect_;
  std::atomic<bool> ended_in_target_{false};
  std::unique_ptr<hsof::v1::Faults::Stub> stub_;
  std::string token_;
  Journal& journal_;
  Clock& clock_;
  Duration ttl_;
  MonotonicTime lease_until_;
  std::atomic<bool> stopped_{false};
};

// `device`, when given, gets the backend the pipeline says the fault acts on.
Result<std::unique_ptr<Injection>> StartPipelineLease(const std::string& kind, const nlohmann::json& fields,
                                                      InjectionContext& context, std::string* device) {
  if (context.pipeline_grpc.empty()) {
    return Invalid(kind, "needs the embedded pipeline's Faults service (a target with faults enabled)");
  }
  FD_RETURN_IF_ERROR(CheckFaultTarget(kind, context.pipeline_grpc, context.limits));
  hsof::v1::FaultRequest request;
  request.set_kind(kind);
  request.set_ttl_seconds(std::chrono::duration<double>(context.ttl).count());
  std::string params;
  for (const auto& [key, value] : fields.items()) {
    (*request.mutable_params())[key] = Text(fields, key);
    params += (params.empty() ? "" : ", ") + key + "=" + Text(fields, key);
  }
  const std::string what = kind + " through the pipeline's Faults service at " + context.pipeline_grpc +
                           (params.empty() ? "" : " (" + params + ")");
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", kind, what));
  const std::string id = NewId(kind, *context.clock);
  // Undone by the pipeline when its lease lapses: nothing for recover to do
  // but wait that out.
  FD_RETURN_IF_ERROR(context.journal->Begin(Record(id, kind, "hsof-pipeline at " + context.pipeline_grpc,
                                                   {{"action", "none"}, {"lapses", "pipeline lease"}}, context)));
  auto stub = hsof::v1::Faults::NewStub(grpc::CreateChannel(context.pipeline_grpc, grpc::InsecureChannelCredentials()));
  grpc::ClientContext call;
  call.AddMetadata("x-firedrill-faults-token", context.faults_token);
  call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  hsof::v1::FaultLease lease;
  if (const grpc::Status status = stub->StartFault(&call, request, &lease); !status.ok()) {
    (void)context.journal->End(id, "refused: " + status.error_message(), WallMillis(*context.clock));
    const StatusCode code = status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? StatusCode::kInvalidArgument
                                                                                      : StatusCode::kUnavailable;
    return FD_STATUS(code, kind + ": the pipeline refused it: " + status.error_message());
  }
  if (device != nullptr) *device = lease.device();
  return std::unique_ptr<Injection>(
      new PipelineFault(id, kind, lease.id(), lease.effect(), std::move(stub), context));
}

Result<std::unique_ptr<Injection>> StartPipelineFault(const std::string& kind, const nlohmann::json& fields,
                                                      InjectionContext& context) {
  return StartPipelineLease(kind, fields, context, nullptr);
}

// Network faults act in a proxy this process runs, so they end with it; the
// journal row is the record, the proxy's own lease the end.
class NetworkInjection final : public Injection {
 public:
  NetworkInjection(std::string id, std::string what, TcpProxy& proxy, std::uint64_t fault_id,
                   InjectionContext& context)
      : Injection(std::move(id), "network"),
        what_(std::move(what)),
        proxy_(proxy),
        fault_id_(fault_id),
        journal_(*context.journal),
        clock_(*context.clock),
        ttl_(context.ttl) {}
  ~NetworkInjection() override { (void)Stop(); }

  std::string Describe() const override { return what_; }
  Status Renew() override {
    if (stopped_) return Status();
    FD_RETURN_IF_ERROR(proxy_.Renew(fault_id_, ttl_));
    return journal_.Renew(id(), LeaseUntilMs(clock_, ttl_));
  }
  Status Stop() override {
    if (stopped_.exchange(true)) return Status();
    proxy_.ClearFault(fault_id_);
    return journal_.End(id(), "stopped", WallMillis(clock_));
  }
  InjectionState State() const override {
    if (stopped_) return {InjectionState::kStopped, "undone by stop"};
    if (!proxy_.FaultActive(fault_id_)) return {InjectionState::kLapsed, "the proxy's lease lapsed"};
    return {InjectionState::kRunning, ""};
  }

 private:
  std::string what_;
  TcpProxy& proxy_;
  std::uint64_t fault_id_;
  Journal& journal_;
  Clock& clock_;
  Duration ttl_;
  std::atomic<bool> stopped_{false};
};

Result<std::unique_ptr<Injection>> NetworkFaultInjection(const nlohmann::json& fields, InjectionContext& context) {
  const std::string endpoint = Text(fields, "endpoint");
  const auto found = context.proxies.find(endpoint);
  if (found == context.proxies.end() || found->second == nullptr) {
    return Invalid("network", "no proxy in front of the target's " + endpoint +
                                  " listener: the drill must send that traffic through Firedrill's proxy");
  }
  TcpProxy& proxy = *found->second;
  FD_RETURN_IF_ERROR(CheckFaultTarget("network", proxy.upstream(), context.limits));
  NetworkFault fault;
  std::string effects;
  for (const auto& [key, delay] : {std::pair{"latency", &fault.latency}, {"jitter", &fault.jitter}}) {
    if (!fields.contains(key)) continue;
    Result<Duration> parsed = ParseDuration(Text(fields, key));
    if (!parsed.ok()) return Invalid("network", std::string(key) + ": " + parsed.status().message());
    *delay = *parsed;
    effects += std::string(effects.empty() ? "" : ", ") + key + " " + Text(fields, key);
  }
  if (fields.contains("bandwidth")) {
    Result<std::uint64_t> parsed = ParseSize(Text(fields, "bandwidth"));
    if (!parsed.ok() || *parsed == 0) {
      return Invalid("network", "bandwidth: " + (parsed.ok() ? std::string("must be positive") : parsed.status().message()));
    }
    fault.bandwidth = *parsed;
    effects += (effects.empty() ? "" : ", ") + FormatSize(*parsed) + "/s each way";
  }
  for (const auto& [key, share] : {std::pair{"reset", &fault.reset}, {"blackhole", &fault.blackhole}, {"share", &fault.share}}) {
    if (!fields.contains(key)) continue;
    Result<double> parsed = ParseRatio(Text(fields, key));
    if (!parsed.ok()) return Invalid("network", std::string(key) + ": " + parsed.status().message());
    *share = *parsed;
  }
  if (fault.reset > 0) effects += (effects.empty() ? "" : ", ") + FormatRatio(fault.reset) + " reset";
  if (fault.blackhole > 0) effects += (effects.empty() ? "" : ", ") + FormatRatio(fault.blackhole) + " blackholed";
  if (effects.empty()) return Invalid("network", "give at least one of latency, jitter, bandwidth, reset, blackhole");
  FD_RETURN_IF_ERROR(CheckNetworkFault(fault));
  if (proxy.Stats().fault_active) return Invalid("network", "the " + endpoint + " proxy already carries a network fault");
  const std::string target = endpoint + " via proxy " + proxy.address() + " -> " + proxy.upstream();
  const std::string what = "network: " + effects + " on " + FormatRatio(fault.share) + " of connections to " + target;
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "network", what));
  const std::string id = NewId("network", *context.clock);
  FD_RETURN_IF_ERROR(context.journal->Begin(Record(id, "network", target, UndoNothing(), context)));
  Result<std::uint64_t> set = proxy.SetFault(fault, context.ttl);
  if (!set.ok()) {
    (void)context.journal->End(id, "failed: " + set.status().message(), WallMillis(*context.clock));
    // Another fault took the proxy between the check above and now.
    return set.status().code() == StatusCode::kFailedPrecondition ? Invalid("network", set.status().message())
                                                                   : set.status();
  }
  return std::unique_ptr<Injection>(new NetworkInjection(id, what, proxy, *set, context));
}

// Device memory held by a separate process (firedrill-gpu-hog), as a noisy
// neighbour holds it. The helper ends when its stdin closes, its lease goes
// unrenewed, or its owner dies; the journal names it for recover besides.
class GpuMemoryHog final : public Injection {
 public:
  GpuMemoryHog(std::string id, std::string what, pid_t helper, int control, InjectionContext& context)
      : Injection(std::move(id), "gpu-memory-hog"),
        what_(std::move(what)),
        helper_(helper),
        control_(control),
        journal_(*context.journal),
        clock_(*context.clock),
        ttl_(context.ttl) {}
  ~GpuMemoryHog() override { (void)Stop(); }

  std::string Describe() const override { return what_; }
  Status Renew() override {
    if (control_ < 0) return Status();
    const char renew = 'R';
    if (send(control_, &renew, 1, MSG_NOSIGNAL) != 1) {
      return FD_STATUS(StatusCode::kUnavailable, "gpu-memory-hog: its process is gone (its lease lapsed?)");
    }
    return journal_.Renew(id(), LeaseUntilMs(clock_, ttl_));
  }
  Status Stop() override {
    const int control = control_.exchange(-1);
    if (control < 0) return Status();
    close(control);  // end of file: the helper gives the memory back and exits
    // Freeing even 74 GiB takes well under a second; a helper stuck in the
    // driver, or stopped, is killed after ten (its memory goes with it).
    int status = 0;
    for (int waited_ms = 0; waitpid(helper_, &status, WNOHANG) == 0; waited_ms += 10) {
      if (waited_ms == 10'000) {
        kill(helper_, SIGKILL);
        waitpid(helper_, &status, 0);
        return journal_.End(id(), "stopped: its process was killed after 10 s", WallMillis(clock_));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return journal_.End(id(), "stopped", WallMillis(clock_));
  }
  InjectionState State() const override {
    if (control_ < 0) return {InjectionState::kStopped, "undone by stop"};
    const char helper = ProcessState(helper_);
    if (helper == 'Z' || helper == '?') return {InjectionState::kLapsed, "its process ended and gave the memory back"};
    return {InjectionState::kRunning, ""};
  }

 private:
  std::string what_;
  pid_t helper_;
  std::atomic<int> control_;
  Journal& journal_;
  Clock& clock_;
  Duration ttl_;
};

std::string HogBinary(const InjectionContext& context) {
  if (!context.gpu.hog_binary.empty()) return context.gpu.hog_binary;
  const std::filesystem::path beside = BesideThisProgram("firedrill-gpu-hog");
  return beside.empty() ? "firedrill-gpu-hog" : beside.string();
}

Result<std::unique_ptr<Injection>> GpuMemoryHogInjection(const nlohmann::json& fields, InjectionContext& context) {
  Result<double> share = ParseRatio(Text(fields, "share"));
  if (!share.ok() || *share <= 0) {
    return Invalid("gpu-memory-hog", "share: " + (share.ok() ? std::string("must be above 0") : share.status().message()));
  }
  if (fields.contains("device") && Text(fields, "device") != "0") {
    return FD_STATUS(StatusCode::kUnimplemented, "gpu-memory-hog: only device 0 is supported yet");
  }
  if (fields.contains("step")) return FD_STATUS(StatusCode::kUnimplemented, "gpu-memory-hog: step is not supported yet");
  const bool cuda = context.gpu.backend == "cuda";
  if (!cuda && context.gpu.shared_device_memory.empty()) {
    return Invalid("gpu-memory-hog", "on the CPU twins it needs the shared device memory folder the pipeline counts "
                                     "(hsof-pipeline --shared-device-memory), or a CUDA device");
  }
  const std::string binary = HogBinary(context);
  if (access(binary.c_str(), X_OK) != 0) {
    return FD_STATUS(StatusCode::kUnavailable, "gpu-memory-hog: its helper " + binary + " is not there");
  }
  const std::string device = cuda ? "the GPU" : "the " + FormatSize(context.gpu.device_memory) +
                                                    " device shared in " + context.gpu.shared_device_memory;
  const std::string what = "gpu-memory-hog: a separate process holds " + FormatRatio(*share) + " of " + device;
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "gpu-memory-hog", what));

  int control[2];
  int answers[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) return FD_STATUS(StatusCode::kUnavailable, "gpu-memory-hog: socketpair");
  if (pipe2(answers, O_CLOEXEC) != 0) {
    close(control[0]);
    close(control[1]);
    return FD_STATUS(StatusCode::kUnavailable, "gpu-memory-hog: pipe");
  }
  std::vector<std::string> arguments = {binary, "--backend", context.gpu.backend, "--share", std::to_string(*share),
                                        "--device-memory", std::to_string(context.gpu.device_memory) + "B",
                                        "--lease-ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(context.ttl).count()),
                                        "--owner", std::to_string(getpid())};
  if (!cuda) arguments.insert(arguments.end(), {"--shared-memory", context.gpu.shared_device_memory});
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, control[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, answers[1], STDOUT_FILENO);
  pid_t helper = -1;
  const int spawned = posix_spawn(&helper, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(control[1]);
  close(answers[1]);
  // Reads the helper's one-line answer within a minute (creating a CUDA
  // context and touching every page can take a while); "" if none came.
  const auto read_answer = [&]() {
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char c = 0;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd ready{answers[0], POLLIN, 0};
      const int polled = left.count() > 0 ? poll(&ready, 1, static_cast<int>(left.count())) : 0;
      if (polled < 0 && errno == EINTR) continue;
      if (polled != 1 || read(answers[0], &c, 1) != 1 || c == '\n') return answer;
      answer += c;
    }
  };
  const auto fail = [&](StatusCode code, const std::string& why) -> Status {
    close(control[0]);
    close(answers[0]);
    if (helper > 0) {
      kill(helper, SIGKILL);  // it holds nothing that outlives it
      waitpid(helper, nullptr, 0);
    }
    return FD_STATUS(code, "gpu-memory-hog: " + why);
  };
  if (spawned != 0) return fail(StatusCode::kUnavailable, "starting " + binary + ": " + std::strerror(spawned));
  // Journalled, naming the helper, before it takes anything.
  Result<ProcessId> process = IdentifyProcess(helper);
  if (!process.ok()) return fail(StatusCode::kUnavailable, binary + " ended at once");
  const std::string id = NewId("gpu-memory-hog", *context.clock);
  const std::string target = "pid " + std::to_string(helper) + " (firedrill-gpu-hog) on " + device;
  if (Status begun = context.journal->Begin(Record(id, "gpu-memory-hog", target, UndoSignal(*process, SIGTERM), context));
      !begun.ok()) {
    return fail(begun.code(), begun.message());
  }
  const char go = 'G';
  const std::string answer = send(control[0], &go, 1, MSG_NOSIGNAL) == 1 ? read_answer() : "";
  if (answer.rfind("held ", 0) != 0) {
    const std::string why = answer.empty()                     ? "its process gave no answer within a minute"
                            : answer.rfind("error: ", 0) == 0 ? answer.substr(7)
                                                              : answer;
    (void)context.journal->End(id, "failed: " + why, WallMillis(*context.clock));
    const bool exhausted = why.rfind("out of memory: ", 0) == 0;
    return fail(exhausted ? StatusCode::kResourceExhausted : StatusCode::kUnavailable, why);
  }
  close(answers[0]);
  return std::unique_ptr<Injection>(
      new GpuMemoryHog(id, what + " (" + FormatSize(std::strtoull(answer.c_str() + 5, nullptr, 10)) + ", pid " + std::to_string(helper) + ")",
                       helper, control[0], context));
}

// Compute or bandwidth burns beside the pipeline, on this process's threads
// (the workload's stress phases): on a GPU they take SMs and memory
// bandwidth from the pipeline's kernels, on the CPU twins its cores. They end
// with this process, on Stop, or when the lease passes on the drill's clock.
class GpuComputeBurn final : public Injection {
 public:
  GpuComputeBurn(std::string id, std::string what, std::vector<std::unique_ptr<workload::StressPhase>> burns,
                 InjectionContext& context)
      : Injection(std::move(id), "gpu-compute-burn"),
        what_(std::move(what)),
        burns_(std::move(burns)),
        lease_(std::make_shared<Lease>()),
        journal_(*context.journal),
        clock_(*context.clock),
        ttl_(context.ttl) {
    for (auto& burn : burns_) lease_->burns.push_back(burn.get());
    std::lock_guard lock(lease_->mutex);
    lease_->timer = clock_.ScheduleAfter(ttl_, Lapse(lease_));
  }
  ~GpuComputeBurn() override { (void)Stop(); }

  std::string Describe() const override { return what_; }
  Status Renew() override {
    {
      std::lock_guard lock(lease_->mutex);
      if (lease_->burns.empty()) return Status();  // stopped
      if (lease_->lapsed) return FD_STATUS(StatusCode::kUnavailable, "gpu-compute-burn: its lease lapsed, the burn ended");
      clock_.Cancel(lease_->timer);
      lease_->timer = clock_.ScheduleAfter(ttl_, Lapse(lease_));
    }
    return journal_.Renew(id(), LeaseUntilMs(clock_, ttl_));
  }
  Status Stop() override {
    {
      std::lock_guard lock(lease_->mutex);
      if (lease_->burns.empty()) return Status();
      lease_->burns.clear();  // a lapse that fires now finds nothing to touch
      clock_.Cancel(lease_->timer);
    }
    for (auto& burn : burns_) burn->Stop();  // all at once, then wait for each
    Status failed;
    for (auto& burn : burns_) {
      const workload::StressResult result = burn->Wait();
      if (!result.status.ok() && failed.ok()) failed = result.status;
    }
    FD_RETURN_IF_ERROR(journal_.End(id(), failed.ok() ? "stopped" : "stopped: " + failed.message(), WallMillis(clock_)));
    return failed;
  }
  InjectionState State() const override {
    std::lock_guard lock(lease_->mutex);
    if (lease_->burns.empty()) return {InjectionState::kStopped, "undone by stop"};
    if (lease_->lapsed) return {InjectionState::kLapsed, "the lease lapsed: the burn stopped"};
    return {InjectionState::kRunning, ""};
  }

 private:
  // Shared with the lease timer, which may fire while the injection stops.
  struct Lease {
    std::mutex mutex;
    std::vector<workload::StressPhase*> burns;  // empty once stopped
    TimerId timer = 0;
    bool lapsed = false;
  };
  static std::function<void()> Lapse(std::shared_ptr<Lease> lease) {
    return [lease] {
      std::lock_guard lock(lease->mutex);
      lease->lapsed = true;
      for (workload::StressPhase* burn : lease->burns) burn->Stop();
    };
  }

  std::string what_;
  std::vector<std::unique_ptr<workload::StressPhase>> burns_;
  std::shared_ptr<Lease> lease_;
  Journal& journal_;
  Clock& clock_;
  Duration ttl_;
};

// `part_of`: the id of the fault this burn is a part of (its row then does
// not count against the cap), or empty.
Result<std::unique_ptr<Injection>> StartComputeBurn(const nlohmann::json& fields, InjectionContext& context,
                                                    const std::string& part_of) {
  Result<double> intensity = ParseRatio(Text(fields, "intensity"));
  if (!intensity.ok() || *intensity <= 0) {
    return Invalid("gpu-compute-burn",
                   "intensity: " + (intensity.ok() ? std::string("must be above 0") : intensity.status().message()));
  }
  if (fields.contains("device") && Text(fields, "device") != "0") {
    return FD_STATUS(StatusCode::kUnimplemented, "gpu-compute-burn: only device 0 is supported yet");
  }
  const std::string mode = Text(fields, "mode", "compute");
  if (mode != "compute" && mode != "bandwidth" && mode != "mixed") {
    return Invalid("gpu-compute-burn", "mode must be compute, bandwidth or mixed, got " + mode);
  }
  gpu::BackendChoice choice = gpu::BackendChoice::kAuto;
  if (!gpu::ParseBackendChoice(context.gpu.backend, &choice)) {
    return Invalid("gpu-compute-burn", "unknown device backend " + context.gpu.backend);
  }
  FD_ASSIGN_OR_RETURN(const gpu::DeviceInfo device, gpu::ProbeDevice(choice));
  const std::string what = "gpu-compute-burn: " + mode + " burn at " + FormatRatio(*intensity) + " of " +
                           (device.backend == gpu::Backend::kCuda ? device.name : "the CPU's cores (the CPU twin)");
  if (context.limits.dry_run) return std::unique_ptr<Injection>(new DryRun("dry-run", "gpu-compute-burn", what));
  // A mixed burn splits its intensity between compute and bandwidth.
  std::vector<std::pair<workload::StressMode, double>> parts;
  if (mode != "bandwidth") parts.emplace_back(workload::StressMode::kCompute, mode == "mixed" ? *intensity / 2 : *intensity);
  if (mode != "compute") parts.emplace_back(workload::StressMode::kBandwidth, mode == "mixed" ? *intensity / 2 : *intensity);
  const std::string id = NewId("gpu-compute-burn", *context.clock);
  nlohmann::json undo = UndoNothing();
  if (!part_of.empty()) undo["partOf"] = part_of;
  FD_RETURN_IF_ERROR(context.journal->Begin(Record(id, "gpu-compute-burn", "this process on " + device.name, undo, context)));
  // The burn is real work, sliced in real time; its lease follows the drill's clock.
  static RealClock real_time;
  std::vector<std::unique_ptr<workload::StressPhase>> burns;
  for (const auto& [stress_mode, share] : parts) {
    workload::StressOptions options;
    options.mode = stress_mode;
    options.intensity = share;
    options.length = std::chrono::hours(24 * 365);  // until stopped, or its lease lapses
    Result<std::unique_ptr<workload::StressPhase>> burn = workload::StressPhase::Start(options, device, real_time);
    if (!burn.ok()) {
      for (auto& started : burns) started->Stop();
      (void)context.journal->End(id, "failed: " + burn.status().message(), WallMillis(*context.clock));
      return burn.status();
    }
    burns.push_back(std::move(*burn));
  }
  return std::unique_ptr<Injection>(new GpuComputeBurn(id, what, std::move(burns), context));
}

Result<std::unique_ptr<Injection>> GpuComputeBurnInjection(const nlohmann::json& fields, InjectionContext& context) {
  return StartComputeBurn(fields, context, "");
}

// thermal: the pipeline's own fault (its simulated die heats and throttles;
// on a real card, the telemetry overlay) and, on a GPU, real contention
// beside it: a compute burn on `contention` of the SMs, so jobs really slow
// as on a hot, throttled card. One fault to the drill; two journal rows.
class ThermalInjection final : public Injection {
 public:
  ThermalInjection(std::unique_ptr<Injection> pipeline, std::unique_ptr<Injection> burn)
      : Injection(pipeline->id(), "thermal"), pipeline_(std::move(pipeline)), burn_(std::move(burn)) {}

  std::string Describe() const override {
    return pipeline_->Describe() + (burn_ ? "; real contention beside it: " + burn_->Describe() : "");
  }
  Status Renew() override {
    const Status pipeline = pipeline_->Renew();
    const Status burn = burn_ ? burn_->Renew() : Status();
    return pipeline.ok() ? burn : pipeline;
  }
  Status Stop() override {
    const Status burn = burn_ ? burn_->Stop() : Status();
    const Status pipeline = pipeline_->Stop();
    return pipeline.ok() ? burn : pipeline;
  }
  // The pipeline's fault is the one the drill watches; a burn that lapsed
  // alone ends the whole fault, as its lease is the same.
  InjectionState State() const override {
    const InjectionState pipeline = pipeline_->State();
    if (!pipeline.active() || !burn_) return pipeline;
    const InjectionState burn = burn_->State();
    return burn.active() ? pipeline : burn;
  }

 private:
  std::unique_ptr<Injection> pipeline_;
  std::unique_ptr<Injection> burn_;
};

Result<std::unique_ptr<Injection>> ThermalFault(const nlohmann::json& fields, InjectionContext& context) {
  std::optional<double> contention;
  if (fields.is_object() && fields.contains("contention")) {
    Result<double> given = ParseRatio(Text(fields, "contention"));
    if (!given.ok()) return Invalid("thermal", "contention: " + given.status().message());
    contention = *given;
  }
  nlohmann::json in_pipeline = fields;
  if (in_pipeline.is_object()) in_pipeline.erase("contention");
  std::string device;
  FD_ASSIGN_OR_RETURN(std::unique_ptr<Injection> pipeline, StartPipelineLease("thermal", in_pipeline, context, &device));
  // By default, contention where the pipeline says it runs on a card (a
  // burn here reaches that card only when the pipeline is on this host).
  // The simulated device throttles by itself.
  if (!contention) contention = device == "cuda" && IsLoopback(context.pipeline_grpc) ? 0.5 : 0.0;
  std::unique_ptr<Injection> burn;
  if (*contention >= 1e-4) {  // below that a burn is nothing, and its intensity would not print
    Result<std::unique_ptr<Injection>> started = StartComputeBurn(
        {{"intensity", FormatRatio(*contention)}, {"mode", "compute"}}, context, pipeline->id());
    if (!started.ok()) {
      (void)pipeline->Stop();
      return FD_STATUS(StatusCode::kUnavailable, "thermal: its contention burn could not start, so the fault was undone: " +
                                                     started.status().message());
    }
    burn = std::move(*started);
  }
  if (context.limits.dry_run) {
    const auto would = [](const Injection& part) { return part.Describe().substr(kDryRunPrefix.size()); };
    // A dry run never asks the pipeline which device it is on.
    const std::string beside = burn                ? "; and " + would(*burn)
                               : fields.contains("contention") ? ""
                                                               : "; and, if the pipeline is on a GPU of this host, a "
                                                                 "compute burn on 50% of it";
    return std::unique_ptr<Injection>(new DryRun("dry-run", "thermal", would(*pipeline) + beside));
  }
  return std::unique_ptr<Injection>(new ThermalInjection(std::move(pipeline), std::move(burn)));
}

// The registry: each runnable kind and the factory that starts it.
using Factory = Result<std::unique_ptr<Injection>> (*)(const std::string& kind, const nlohmann::json& fields,
                                                       InjectionContext& context);
template <Result<std::unique_ptr<Injection>> (*start)(const nlohmann::json&, InjectionContext&)>
Result<std::unique_ptr<Injection>> IgnoringKind(const std::string&, const nlohmann::json& fields,
                                                InjectionContext& context) {
  return start(fields, context);
}

const std::map<std::string, Factory>& Factories() {
  static const std::map<std::string, Factory> factories = [] {
    std::map<std::string, Factory> all = {
        {"process-pause", IgnoringKind<ProcessPause>},
        {"process-kill", IgnoringKind<ProcessKill>},
        {"cpu-hog", IgnoringKind<CpuHogInjection>},
        {"host-memory-hog", IgnoringKind<HostMemoryHogInjection>},
        {"disk-fill", IgnoringKind<DiskFill>},
        {"network", IgnoringKind<NetworkFaultInjection>},
        {"gpu-memory-hog", IgnoringKind<GpuMemoryHogInjection>},
        {"gpu-compute-burn", IgnoringKind<GpuComputeBurnInjection>},
        {"thermal", IgnoringKind<ThermalFault>},
    };
    // The faults hsof-pipeline runs itself, through its Faults service.
    for (const char* kind : {"stage-stall", "error-injection", "inference-delay", "metamodel-corruption",
                             "exporter-down", "database-unavailable", "backup-target-failure",
                             "backup-scheduler-stop", "config-fault", "gpu-memory-leak", "feeder-stall"}) {
      all.emplace(kind, StartPipelineFault);
    }
    return all;
  }();
  return factories;
}

}  // namespace

Result<std::unique_ptr<Injection>> StartInjection(const std::string& kind, const nlohmann::json& fields,
                                                  InjectionContext& context) {
  if (context.journal == nullptr || context.clock == nullptr) {
    return FD_STATUS(StatusCode::kInvalidArgument, "StartInjection: a journal and a clock are required");
  }
  const auto found = Factories().find(kind);
  if (found == Factories().end()) {
    return FD_STATUS(StatusCode::kUnimplemented, "injector " + kind + " is not runnable in this build");
  }
  if (!context.limits.dry_run) FD_RETURN_IF_ERROR(CheckConcurrentFaults(kind, context));
  return found->second(kind, fields, context);
}

bool IsRunnable(std::string_view kind) { return Factories().count(std::string(kind)) > 0; }

std::string_view PhaseName(InjectionState::Phase phase) {
  switch (phase) {
    case InjectionState::kRunning: return "running";
    case InjectionState::kStopped: return "stopped";
    case InjectionState::kLapsed: return "lapsed";
    case InjectionState::kDone: return "done";
    case InjectionState::kDryRun: return "dry-run";
  }
  return "unknown";
}

}  // namespace firedrill::injectors
