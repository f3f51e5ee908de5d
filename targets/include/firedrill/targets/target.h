// The pipeline a drill runs against. `embedded` starts hsof-pipeline in a
// fresh temporary data directory on free loopback ports, with its Faults
// service on behind a random token and the CPU twins' shared device memory
// folder, and stops it (and removes the directory) afterwards. `remote` is
// a pipeline that already runs, given by its addresses. Either way Firedrill
// puts a TCP proxy in front of the HTTP and gRPC listeners, and the drill's
// traffic goes through it, so network faults can act on it.
//
// Thread-safety: a Target has one owner; its endpoints may be read from any
// thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/injectors/tcp_proxy.h"

namespace firedrill::targets {

struct TargetEndpoints {
  std::string http;          // base URL the drill uses (through the proxy)
  std::string grpc;          // host:port the drill uses (through the proxy); empty when unknown
  std::string gpu_exporter;  // URL of the GPU exporter's /metrics; empty when unknown
  std::string direct_http;   // the listeners themselves, for the monitoring
  std::string direct_grpc;
  // The embedded pipeline's Faults service and its token; empty for remote.
  std::string faults_grpc;
  std::string faults_token;
  pid_t pid = 0;  // the embedded pipeline's process
  // The embedded pipeline's data directory, which Firedrill created (and a
  // disaster-recovery drill may destroy); its backups live beside it.
  std::string data_dir;
  // The CPU twins' shared device memory folder and the device's size, for a
  // GPU memory hog beside the embedded pipeline.
  std::string shared_device_memory;
  std::uint64_t device_memory = 0;
};

class Target {
 public:
  virtual ~Target() = default;  // stops an embedded pipeline
  virtual const TargetEndpoints& endpoints() const = 0;
  // The proxies in front of the listeners, by endpoint ("http", "grpc").
  virtual std::map<std::string, injectors::TcpProxy*> proxies() = 0;
  // Ends what Firedrill started: the embedded pipeline (SIGTERM, then
  // SIGKILL after `grace`) and its data directory. Idempotent.
  virtual Status Stop() = 0;
  // Stops the pipeline if it still runs and starts it again on the same
  // data directory and ports (what a runbook's restartTarget does);
  // `drained`: accepting no job until an Admin Resume. Unimplemented for a
  // remote target. The endpoints' pid changes.
  virtual Status Restart(bool drained) = 0;
};

struct EmbeddedTargetOptions {
  std::string binary;            // hsof-pipeline
  std::string device = "auto";   // auto, cuda, cpu, simulated
  int workers = 2;
  double gpu_memory_fraction = 0.9;
  int max_concurrent_batches = 4;
  std::uint64_t device_memory = std::uint64_t{8} << 30;  // the CPU twins' device
  std::uint64_t seed = 1;
  Duration backup_interval = Duration::zero();  // BACKUP_INTERVAL at start; zero: the pipeline's default
  // A compressed drill: the pipeline runs on drill time (its stage
  // durations, backup ages and fault leases move this much faster).
  double time_scale = 1;
  // The drill clock's time zero (real wall time): every start of the
  // pipeline, restarts included, keeps the drill's wall clock.
  std::optional<WallTime> time_zero;
  Duration start_timeout = std::chrono::seconds(60);
  Duration grace = std::chrono::seconds(10);  // between SIGTERM and SIGKILL on stop
  // When set, the running pipeline is a journal row (undo: SIGTERM), so
  // `firedrill recover` stops it after Firedrill was killed.
  injectors::Journal* journal = nullptr;
};

// Unavailable, naming the binary and the end of its log, when it does not
// start listening within start_timeout.
Result<std::unique_ptr<Target>> StartEmbeddedTarget(const EmbeddedTargetOptions& options, Clock& clock);

struct RemoteTargetOptions {
  std::string http = {};          // http://host:port
  std::string grpc = {};          // host:port, optional
  std::string gpu_exporter = {};  // URL, optional
  bool allow_remote = false; // a host off loopback only when the drill lists it
  std::uint64_t seed = 1;
  // The pipeline's Faults service (host:port) and its token, when it was
  // started with --enable-faults; in-process faults need both.
  std::string faults_grpc = {};
  std::string faults_token = {};
};

// InvalidArgument for a malformed address or one off loopback without
// allow_remote; Unavailable, naming the URL, when GET /health does not answer.
Result<std::unique_ptr<Target>> ConnectRemoteTarget(const RemoteTargetOptions& options, Clock& clock);

}  // namespace firedrill::targets
