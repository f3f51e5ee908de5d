// The reference HSOF service: accepts jobs, runs them on the device with
// worker threads, and reports health and metrics. Transport-free: the HTTP
// handlers here and the gRPC services call the same methods.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/log.h"
#include "firedrill/core/status.h"
#include "firedrill/gpu/device.h"
#include "firedrill/gpu/metamodel.h"
#include "firedrill/gpu/telemetry.h"
#include "firedrill/net/http_server.h"
#include "firedrill/pipeline/job_store.h"
#include "firedrill/pipeline/metrics.h"

namespace firedrill::pipeline {

struct ServiceOptions {
  std::string data_dir;    // jobs.db, metamodel.txt, backups/
  std::string backup_dir;  // where backups go; empty: data_dir/backups
  std::string csv_dir;     // CSV datasets jobs may name; empty: data_dir/datasets
  gpu::BackendChoice backend = gpu::BackendChoice::kAuto;  // auto: CUDA, else the simulated device
  int workers = 2;
  int max_concurrent_batches = 2;
  double gpu_memory_fraction = 0.9;
  // The arena's 100% on the CPU and simulated backends.
  std::uint64_t host_device_memory = std::uint64_t{8} << 30;
  // cpu/simulated devices: the folder other processes' device memory is
  // counted in (gpu::SharedDeviceMemory), so a GPU memory hog beside the
  // pipeline takes memory from it as on a real GPU.
  std::string shared_device_memory;
  std::uint64_t seed = 1;  // metamodel pretraining and stage 2
  Duration telemetry_interval = std::chrono::seconds(1);
  Duration backup_interval = std::chrono::hours(1);
  int backup_retention = 5;
  // Start draining: no job is accepted until Resume (restore a backup first).
  bool start_drained = false;
  // Dollars per device-hour, for hsof_compute_cost_dollars_total.
  double gpu_dollars_per_hour = 4.0;
  double cpu_dollars_per_hour = 0.1;
};

enum class HealthStatus { kHealthy, kWarning, kCritical, kUnknown };
std::string_view HealthStatusName(HealthStatus status);

struct ComponentHealth {
  std::string name;
  HealthStatus status = HealthStatus::kUnknown;
  std::string message;
  std::map<std::string, std::string> details;  // values as JSON text
};

// What an Admin action changed; `changed` is false when it found things as asked.
struct ActionOutcome {
  bool changed = false;
  std::string message;
  std::map<std::string, std::string> before;
  std::map<std::string, std::string> after;
};

// A fault in force inside the pipeline: it lapses at `expires_at` unless renewed.
struct FaultLease {
  std::string id;
  std::string kind;
  std::map<std::string, std::string> params;
  double expires_at = 0;  // Unix seconds, from the service's clock
  std::string effect;     // what it did, in words
  std::string device;     // the backend it acts on: cuda, cpu, simulated
};

struct HealthReport {
  HealthStatus overall = HealthStatus::kUnknown;  // the worst component
  std::vector<ComponentHealth> components;
};

class PipelineService {
 public:
  // Opens the job store (requeueing jobs a crash left running), loads or
  // pretrains the metamodel, opens the device and starts the workers.
  static Result<std::unique_ptr<PipelineService>> Start(const ServiceOptions& options, Clock& clock,
                                                        Logger& logger);
  ~PipelineService();  // Stop()
  PipelineService(const PipelineService&) = delete;
  PipelineService& operator=(const PipelineService&) = delete;

  // Finishes the jobs in flight, then stops the workers and the ticker.
  void Stop();

  Result<SubmitOutcome> Submit(const JobRequest& request);
  Result<JobRecord> GetJob(std::int64_t id);
  // The job once it has completed or failed, or as it is when `timeout` of
  // the service's clock has passed.
  Result<JobRecord> WaitForJob(std::int64_t id, Duration timeout);
  HealthReport Health();
  PipelineMetrics& metrics() { return metrics_; }
  gpu::Device& device() { return *device_; }

  // Runbook actions (the Admin service calls these). The *Action forms are
  // idempotent and say what they changed.
  Status SetWorkers(int count);
  Status Drain();  // no new submissions or claims; jobs in flight finish
  Status Resume();
  Status BackupNow(std::string* path);
  // Keys: contract.h's ConfigKeys(). Bad keys and values are kInvalidArgument.
  Result<ActionOutcome> SetConfig(const std::string& key, const std::string& value);
  std::map<std::string, std::string> Config();
  Result<ActionOutcome> ScaleWorkers(int count);
  Result<ActionOutcome> DrainAction();
  Result<ActionOutcome> ResumeAction();
  Result<ActionOutcome> TriggerBackup();
  // Replaces the metamodel in memory with the one saved in the data directory.
  Result<ActionOutcome> ReloadMetamodel();
  // Deletes jobs that finished more than `age` ago and backups past the retention.
  Result<ActionOutcome> CleanupArtifacts(Duration age);
  // Releases the jobs a stage is holding and puts them back in the queue.
  Result<ActionOutcome> RestartStage(int stage);
  // Replaces the job database with a backup (a file name in backups/, or
  // "latest"). Only while drained with no job running.
  Result<ActionOutcome> RestoreBackup(const std::string& name);

  // In-process faults for drills (the Faults service calls these). Kinds:
  // stage-stall, error-injection, inference-delay, metamodel-corruption,
  // exporter-down, database-unavailable, backup-target-failure,
  // backup-scheduler-stop, config-fault, gpu-memory-leak, gpu-memory-hog,
  // thermal, feeder-stall; parameters as injectors/ documents them. Each is
  // undone when stopped or when its lease lapses (checked every tick).
  Result<FaultLease> StartFault(const std::string& kind,
                                const std::map<std::string, std::string>& params, Duration ttl);
  Result<FaultLease> RenewFault(const std::string& id, Duration ttl);
  Result<FaultLease> StopFault(const std::string& id);
  std::vector<FaultLease> Faults();
  // Jobs in `stage` now (1 to 3): lets a test see a stall take hold.
  int StageRunning(int stage);

  // HTTP: POST /v1/jobs, GET /v1/jobs/{id}, /health, /health/{component},
  // /metrics. The GPU exporter listener serves the GPU metrics alone.
  net::HttpResponse HandleHttp(const net::HttpRequest& request);
  net::HttpResponse HandleGpuExporter(const net::HttpRequest& request);

 private:
  PipelineService(const ServiceOptions& options, Clock& clock, Logger& logger);
  Status Open();
  void WorkerLoop(int index);
  void RunJob(const JobRecord& job, const std::string& worker);
  // Telemetry, health gauges and scheduled backups run on a timer of the
  // service's clock: in tests, advancing a simulated clock runs them.
  void ScheduleTick();
  void Tick();
  std::filesystem::path CsvDirectory() const;
  std::filesystem::path BackupDirectory() const;
  void UpdateTelemetry();
  void ProtectFromHeat(double temperature_c);
  // Undoes the faults whose leases have lapsed, or all of them.
  void ExpireFaults(bool all = false);
  bool FaultActive(const std::string& kind);
  // Blocks while a stall or feeder fault holds `what` ("feeder" or
  // "stage-N"); true when RestartStage(stage) released it.
  bool WaitWhileHeld(const std::string& what, int stage = 0);
  Status InjectedFailure(const std::string& kind);
  void UpdateBackupMetrics();
  Status PruneBackups();
  net::HttpResponse HandleHttpInner(const net::HttpRequest& request);
  std::shared_ptr<const gpu::Metamodel> metamodel();

  const ServiceOptions options_;
  Clock& clock_;
  Logger& logger_;
  PipelineMetrics metrics_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<gpu::Device> device_;
  std::unique_ptr<gpu::NvmlTelemetry> nvml_;

  std::mutex mutex_;
  std::condition_variable work_available_;
  std::condition_variable job_finished_;
  std::shared_ptr<const gpu::Metamodel> metamodel_;
  double metamodel_rmse_ = 0;
  double last_quality_ = -1;
  std::string last_fallback_;  // why the last job ran on the CPU; empty when it ran on the device
  bool draining_ = false;
  // Settable at run time (SetConfig); read under mutex_.
  bool thermal_protection_ = true;
  bool thermal_cut_ = false;  // concurrency cut to 1 by thermal protection
  int configured_batches_ = 0;
  double memory_fraction_ = 0;
  double stage1_min_variance_ = 1e-8;
  double stage1_keep_ratio_ = 0.1;
  int stage3_folds_ = 0;  // 0: the mode's own
  int metamodel_batch_ = 256;
  double admission_rate_ = 0;  // jobs per second; 0: unlimited
  double admission_tokens_ = 0;
  MonotonicTime admission_refilled_{};
  Duration backup_interval_{};
  int backup_retention_ = 0;
  bool stopping_ = false;
  int wanted_workers_ = 0;
  std::vector<std::thread> workers_;
  TimerId tick_timer_ = 0;
  bool tick_pending_ = false;  // scheduled or running; Stop waits it out
  std::condition_variable tick_done_;
  std::map<int, MonotonicTime> stage_started_;  // stage -> start of the oldest run in flight
  std::map<int, int> stage_running_;            // stage -> runs in flight
  std::atomic<std::int64_t> running_jobs_{0};
  Duration busy_{0};  // device time used by jobs, for utilisation
  Duration busy_seen_{0};
  MonotonicTime last_tick_{};
  std::string database_error_;
  double last_backup_time_ = 0;
  std::string last_backup_error_;
  MonotonicTime next_backup_{};

  struct ActiveFault {
    FaultLease lease;
    MonotonicTime expires;
    std::function<void()> undo;
  };
  std::map<std::string, ActiveFault> faults_;  // by id
  std::condition_variable faults_changed_;
  std::uint64_t next_fault_ = 1;
  // What the fault hooks read, under mutex_.
  std::map<int, double> stage_slowdown_;         // stage -> factor (0: hang)
  std::map<int, std::uint64_t> stage_restarts_;  // stage -> times RestartStage ran
  double error_share_ = 0;
  int error_stage_ = 0;
  Duration inference_delay_{};
  Duration inference_jitter_{};
  std::uint64_t leak_per_job_ = 0;
  std::vector<gpu::DeviceBuffer> leaked_;
  double backup_age_override_ = -1;  // seconds; reported age of the last backup, until the next one
  // A telemetry overlay fault: readings ramp from `from_c` to `to_c` over
  // `ramp`, clocks scale by `clock_factor`, reasons are replaced.
  struct Overlay {
    double from_c = 0;
    double to_c = 0;
    MonotonicTime started{};
    Duration ramp{};
    double clock_factor = 1;
    std::optional<std::uint64_t> reasons;
  };
  std::optional<Overlay> overlay_;
  double last_temperature_c_ = 0;
  std::uint64_t leak_per_second_ = 0;
  std::uint64_t fault_random_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace firedrill::pipeline
