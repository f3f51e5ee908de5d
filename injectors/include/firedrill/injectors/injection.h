// Running faults. An injector turns a validated spec (the catalogue's kind
// and fields) into a running Injection: it journals how to undo the fault
// before starting it, hands anything that must outlive a crash to a
// guardian, and undoes it on Stop. Every injection is a lease: one whose
// owner stops renewing it ends on its own.
//
// Thread-safety: StartInjection may be called from any thread; an
// Injection has one owner.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/injectors/tcp_proxy.h"

namespace firedrill::injectors {

// What a drill lets its faults touch (the blast radius).
struct BlastRadius {
  std::uint64_t max_disk_bytes = 1ULL << 30;    // a disk fill's area, at most
  std::uint64_t max_memory_bytes = 1ULL << 30;  // a host memory hog, at most
  int max_cpu_threads = 64;
  // Faults this Firedrill may have running at once (open journal rows).
  int max_concurrent_faults = 4;
  // Hosts other than loopback that faults may target, each named explicitly.
  std::vector<std::string> allowed_hosts;
  bool dry_run = false;  // say what would be done; do nothing
};

struct InjectionContext {
  Journal* journal = nullptr;
  Clock* clock = nullptr;
  // Processes the drill knows, by the names scenarios use ("pipeline").
  std::map<std::string, pid_t> processes;
  // Data directories Firedrill created for those processes, by the same
  // names: process-kill's destroyData deletes only these.
  std::map<std::string, std::string> data_directories;
  // A folder Firedrill created for this drill: disk fills happen only here.
  std::string drill_dir;
  // The embedded pipeline's Faults service (host:port) and its token, for
  // the in-process faults (stage-stall, database-unavailable, ...).
  std::string pipeline_grpc;
  std::string faults_token;
  // Proxies the drill put in front of the target's listeners, by endpoint
  // ("http", "grpc", "gpu-exporter"): network faults act through them.
  std::map<std::string, TcpProxy*> proxies;
  // The device GPU faults act on. On a GPU the hog's process allocates real
  // device memory; on the CPU twins it holds its share in the shared device
  // memory folder the pipeline counts (hsof-pipeline --shared-device-memory).
  struct GpuTarget {
    std::string backend = "auto";  // auto, cuda, cpu, simulated
    std::string shared_device_memory;
    std::uint64_t device_memory = std::uint64_t{8} << 30;  // the CPU twins' capacity
    // The firedrill-gpu-hog helper; empty: beside this executable.
    std::string hog_binary;
  } gpu;
  BlastRadius limits;
  Duration ttl = std::chrono::seconds(30);  // the lease: lapses unless renewed
};

// Where a running injection stands.
struct InjectionState {
  enum Phase {
    kRunning,  // in effect, its lease held
    kStopped,  // undone by Stop
    kLapsed,   // ended on its own: lease lapsed, helper gone
    kDone,     // a one-shot fault (a signal sent): nothing runs
    kDryRun,   // nothing was done
  };
  Phase phase = kRunning;
  std::string detail;  // why, for the event timeline
  // Lapsed because its lease ran out: its owner did not renew it in time.
  bool lease_ran_out = false;
  bool active() const { return phase == kRunning; }
};
std::string_view PhaseName(InjectionState::Phase phase);  // "running", "stopped", ...

class Injection {
 public:
  virtual ~Injection() = default;  // an injection still running is stopped
  const std::string& id() const { return id_; }
  const std::string& kind() const { return kind_; }
  // What it does, for logs, dry runs and the event timeline.
  virtual std::string Describe() const = 0;
  // Extends the lease by the context's ttl.
  virtual Status Renew() = 0;
  // Undoes the fault and journals its end. Idempotent.
  virtual Status Stop() = 0;
  // Whether the fault is still in effect, as far as this process can see.
  virtual InjectionState State() const = 0;

 protected:
  Injection(std::string id, std::string kind) : id_(std::move(id)), kind_(std::move(kind)) {}

 private:
  std::string id_;
  std::string kind_;
};

// Starts fault `kind` with its validated `fields` (scalars as text, as the
// scenario loader gives them). InvalidArgument for a spec that is unsafe or
// wrong (an unknown process, a fill beyond the drill's area or cap) before
// anything starts; Unimplemented for a catalogued kind this build cannot
// run yet. With limits.dry_run, returns an injection that only describes.
Result<std::unique_ptr<Injection>> StartInjection(const std::string& kind, const nlohmann::json& fields,
                                                  InjectionContext& context);
// Whether this build can start `kind` (the registry of injector factories).
bool IsRunnable(std::string_view kind);

}  // namespace firedrill::injectors
