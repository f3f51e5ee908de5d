#include "firedrill/pipeline/service.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "firedrill/core/units.h"
#include "firedrill/gpu/dataset.h"
#include "firedrill/gpu/selection.h"
#include "firedrill/gpu/stage2.h"
#include "firedrill/pipeline/contract.h"
#include "firedrill/pipeline/csv.h"

namespace firedrill::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kHealthNames[] = {"HEALTHY", "WARNING", "CRITICAL", "UNKNOWN"};
const prometheus::Labels kGpu0 = {{"gpu_id", "0"}};

double Seconds(Duration duration) { return std::chrono::duration<double>(duration).count(); }

double UnixSeconds(WallTime time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

// Writes through a temporary file and a rename, so a crash never leaves half a file.
Status WriteFileAtomically(const fs::path& path, const std::string& contents) {
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << contents;
    out.flush();
    if (!out) return FD_STATUS(StatusCode::kUnavailable, "cannot write " + temporary.string());
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error)
    return FD_STATUS(StatusCode::kUnavailable,
                     "cannot rename to " + path.string() + ": " + error.message());
  return Status::Ok();
}

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

json JobToJson(const JobRecord& job) {
  json out = {{"id", job.id},
              {"state", JobStateName(job.state)},
              {"attempts", job.attempts},
              {"submitted_at", job.submitted_at},
              {"request", json::parse(job.request_json, nullptr, false)}};
  if (!job.idempotency_key.empty()) out["idempotency_key"] = job.idempotency_key;
  if (job.started_at > 0) out["started_at"] = job.started_at;
  if (job.finished_at > 0) out["finished_at"] = job.finished_at;
  if (!job.result_json.empty()) out["result"] = json::parse(job.result_json, nullptr, false);
  if (!job.error.empty()) out["error"] = job.error;
  return out;
}

net::HttpResponse JsonResponse(int status, const json& body) {
  return net::HttpResponse{status, "application/json", body.dump() + "\n", {}};
}

json ComponentToJson(const ComponentHealth& component) {
  json details = json::object();
  for (const auto& [key, value] : component.details)
    details[key] = json::parse(value, nullptr, false);
  return {{"status", HealthStatusName(component.status)},
          {"message", component.message},
          {"details", details}};
}

std::string Text(double value) { return json(value).dump(); }
std::string Text(const std::string& value) { return json(value).dump(); }
std::string Show(double value) { return json(value).dump(); }

}  // namespace

std::string_view HealthStatusName(HealthStatus status) {
  return kHealthNames[static_cast<int>(status)];
}

PipelineService::PipelineService(const ServiceOptions& options, Clock& clock, Logger& logger)
    : options_(options), clock_(clock), logger_(logger) {}

Result<std::unique_ptr<PipelineService>> PipelineService::Start(const ServiceOptions& options,
                                                                Clock& clock, Logger& logger) {
  if (options.data_dir.empty())
    return FD_STATUS(StatusCode::kInvalidArgument, "the pipeline needs a data directory");
  if (options.workers < 0 || options.workers > 64) {
    return FD_STATUS(StatusCode::kInvalidArgument, "workers must be in [0, 64]");
  }
  std::unique_ptr<PipelineService> service(new PipelineService(options, clock, logger));
  FD_RETURN_IF_ERROR(service->Open());
  return service;
}

Status PipelineService::Open() {
  draining_ = options_.start_drained;
  std::error_code error;
  const fs::path data(options_.data_dir);
  for (const fs::path& directory : {data, BackupDirectory()}) {
    fs::create_directories(directory, error);
    if (error) {
      return FD_STATUS(StatusCode::kUnavailable,
                       "cannot create directory " + directory.string() + ": " + error.message());
    }
  }
  if (options_.csv_dir.empty()) fs::create_directories(data / "datasets", error);
  FD_ASSIGN_OR_RETURN(store_, JobStore::Open((data / "jobs.db").string(), clock_));

  // The metamodel: the saved one, or a freshly pretrained one saved for next time.
  const fs::path model_path = data / "metamodel.txt";
  if (fs::exists(model_path)) {
    std::ifstream in(model_path);
    std::stringstream text;
    text << in.rdbuf();
    Result<gpu::Metamodel> parsed = gpu::Metamodel::Parse(text.str());
    if (!parsed.ok()) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       model_path.string() + ": " + std::string(parsed.status().message()));
    }
    metamodel_ = std::make_shared<const gpu::Metamodel>(std::move(parsed).value());
  } else {
    FD_ASSIGN_OR_RETURN(gpu::Metamodel model,
                        gpu::PretrainMetamodel(gpu::Backend::kCpu, options_.seed));
    FD_RETURN_IF_ERROR(WriteFileAtomically(model_path, model.Serialize()));
    metamodel_ = std::make_shared<const gpu::Metamodel>(std::move(model));
  }

  // The device: CUDA when there is one; otherwise the simulated device, so
  // the GPU metrics and thermal faults have a model to read and act on.
  gpu::DeviceOptions device_options;
  device_options.backend = options_.backend;
  if (options_.backend == gpu::BackendChoice::kAuto) {
    const Result<gpu::DeviceInfo> probe = gpu::ProbeDevice(gpu::BackendChoice::kAuto);
    if (!probe.ok() || probe->backend != gpu::Backend::kCuda)
      device_options.backend = gpu::BackendChoice::kSimulated;
  }
  device_options.memory_fraction = options_.gpu_memory_fraction;
  device_options.max_concurrent_batches = options_.max_concurrent_batches;
  device_options.host_device_memory = options_.host_device_memory;
  device_options.shared_memory_dir = options_.shared_device_memory;
  FD_ASSIGN_OR_RETURN(device_, gpu::Device::Open(device_options, clock_, logger_));
  for (const char* reason : {"out_of_memory", "device_error"})
    metrics_.Counter("hsof_cpu_fallbacks_total", {{"reason", reason}});
  if (device_->backend() == gpu::Backend::kCuda) {
    Result<std::unique_ptr<gpu::NvmlTelemetry>> nvml = gpu::NvmlTelemetry::Open();
    if (nvml.ok()) {
      nvml_ = std::move(nvml).value();
    } else {
      logger_.Warn("pipeline", "no NVML telemetry: " + std::string(nvml.status().message()));
    }
  }

  configured_batches_ = options_.max_concurrent_batches;
  memory_fraction_ = options_.gpu_memory_fraction;
  backup_interval_ = options_.backup_interval;
  backup_retention_ = options_.backup_retention;
  admission_refilled_ = clock_.Now();
  last_tick_ = clock_.Now();
  next_backup_ = clock_.Now() + backup_interval_;
  // Until the first backup of this run, the backup age counts from its
  // start: exporting 0 would page BackupOverdue on every fresh deployment
  // (a real Prometheus's time() minus 0 is always over a day).
  last_backup_time_ = UnixSeconds(clock_.WallNow());
  UpdateBackupMetrics();
  UpdateTelemetry();
  FD_RETURN_IF_ERROR(SetWorkers(options_.workers));
  ScheduleTick();
  return Status::Ok();
}

PipelineService::~PipelineService() { Stop(); }

void PipelineService::Stop() {
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    threads.swap(workers_);
    if (tick_pending_ && clock_.Cancel(tick_timer_)) tick_pending_ = false;
    // A tick already due or running finishes before the service goes away.
    tick_done_.wait(lock, [this] { return !tick_pending_; });
  }
  // Faults end with the service: stalls release their jobs, memory comes back.
  ExpireFaults(/*all=*/true);
  faults_changed_.notify_all();
  work_available_.notify_all();
  for (auto& thread : threads) thread.join();
}

std::shared_ptr<const gpu::Metamodel> PipelineService::metamodel() {
  std::lock_guard lock(mutex_);
  return metamodel_;
}

fs::path PipelineService::CsvDirectory() const {
  return options_.csv_dir.empty() ? fs::path(options_.data_dir) / "datasets"
                                  : fs::path(options_.csv_dir);
}

fs::path PipelineService::BackupDirectory() const {
  return options_.backup_dir.empty() ? fs::path(options_.data_dir) / "backups"
                                     : fs::path(options_.backup_dir);
}

Result<SubmitOutcome> PipelineService::Submit(const JobRequest& request) {
  FD_RETURN_IF_ERROR(InjectedFailure("database-unavailable"));
  if (!request.csv.empty()) {
    // The file must exist now and resolve (symbolic links included) inside
    // the dataset directory; its contents are checked when the job runs.
    std::error_code error;
    const fs::path directory = fs::weakly_canonical(CsvDirectory(), error);
    const fs::path file = fs::weakly_canonical(CsvDirectory() / request.csv, error);
    const auto [end, rest] =
        std::mismatch(directory.begin(), directory.end(), file.begin(), file.end());
    if (error || end != directory.end() || !fs::is_regular_file(file, error)) {
      return FD_STATUS(
          StatusCode::kInvalidArgument,
          "field 'dataset.csv': no file '" + request.csv + "' in " + CsvDirectory().string());
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (draining_) {
      return FD_STATUS(StatusCode::kUnavailable, "the pipeline is draining: not accepting jobs");
    }
    if (admission_rate_ > 0) {
      // A token bucket holding up to a second's worth of admissions.
      const MonotonicTime now = clock_.Now();
      admission_tokens_ =
          std::min(std::max(1.0, admission_rate_),
                   admission_tokens_ + admission_rate_ * Seconds(now - admission_refilled_));
      admission_refilled_ = now;
      if (admission_tokens_ < 1) {
        return FD_STATUS(
            StatusCode::kResourceExhausted,
            "admission rate of " + Show(admission_rate_) + " jobs/s exceeded; retry later");
      }
      admission_tokens_ -= 1;
    }
  }
  Result<SubmitOutcome> outcome = store_->Submit(request);
  if (outcome.ok() && outcome->created) {
    metrics_.Counter("hsof_jobs_submitted_total").Increment();
    work_available_.notify_one();
  }
  return outcome;
}

Result<JobRecord> PipelineService::GetJob(std::int64_t id) {
  FD_RETURN_IF_ERROR(InjectedFailure("database-unavailable"));
  return store_->Get(id);
}

Result<JobRecord> PipelineService::WaitForJob(std::int64_t id, Duration timeout) {
  const MonotonicTime deadline = clock_.Now() + timeout;
  for (;;) {
    FD_ASSIGN_OR_RETURN(JobRecord job, store_->Get(id));
    if (job.state == JobState::kCompleted || job.state == JobState::kFailed ||
        clock_.Now() >= deadline)
      return job;
    std::unique_lock lock(mutex_);
    if (stopping_) return job;
    // Woken by every finished job; the short bound covers a finish between
    // the read above and this wait.
    job_finished_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

Status PipelineService::SetWorkers(int count) {
  if (count < 0 || count > 64) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "workers must be in [0, 64], got " + std::to_string(count));
  }
  std::lock_guard lock(mutex_);
  if (stopping_) return FD_STATUS(StatusCode::kFailedPrecondition, "the pipeline is stopping");
  wanted_workers_ = count;
  // Workers past the count leave on their own; new ones start here. Each
  // index has one thread; an index whose thread has left is restarted.
  while (static_cast<int>(workers_.size()) < count) {
    const int index = static_cast<int>(workers_.size());
    workers_.emplace_back([this, index] { WorkerLoop(index); });
  }
  metrics_.Gauge("hsof_workers").Set(count);
  work_available_.notify_all();
  return Status::Ok();
}

Status PipelineService::Drain() {
  std::lock_guard lock(mutex_);
  draining_ = true;
  return Status::Ok();
}

Status PipelineService::Resume() {
  {
    std::lock_guard lock(mutex_);
    draining_ = false;
  }
  work_available_.notify_all();
  return Status::Ok();
}

void PipelineService::WorkerLoop(int index) {
  const std::string worker = "worker-" + std::to_string(index) + "@" + std::to_string(getpid());
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      // A worker past the wanted count idles rather than exits, so scaling
      // back up never races a thread that is still leaving.
      if (stopping_) return;
      if (draining_ || index >= wanted_workers_) {
        work_available_.wait_for(lock, std::chrono::milliseconds(200));
        continue;
      }
    }
    Status reachable = InjectedFailure("database-unavailable");
    Result<std::optional<JobRecord>> claimed =
        reachable.ok() ? store_->Claim(worker) : Result<std::optional<JobRecord>>(reachable);
    if (!claimed.ok()) {
      {
        std::lock_guard lock(mutex_);
        database_error_ = std::string(claimed.status().message());
      }
      std::unique_lock lock(mutex_);
      work_available_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      database_error_.clear();
    }
    if (!claimed->has_value()) {
      std::unique_lock lock(mutex_);
      if (!stopping_) work_available_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    RunJob(**claimed, worker);
  }
}

void PipelineService::RunJob(const JobRecord& job, const std::string& worker) {
  running_jobs_++;
  const Result<JobRequest> request = ParseJobRequest(job.request_json);
  auto fail = [&](const std::string& error) {
    metrics_.Counter("hsof_errors_total").Increment();
    metrics_.Counter("hsof_jobs_failed_total").Increment();
    if (Status status = store_->Fail(job.id, worker, error); !status.ok()) {
      logger_.Error("pipeline", "job " + std::to_string(job.id) + ": " + status.ToString());
    }
    running_jobs_--;
    job_finished_.notify_all();
  };
  if (!request.ok()) return fail("stored request no longer parses: " + request.status().ToString());
  // A CSV dataset is read into host memory first; its shape becomes the spec.
  std::optional<CsvTable> table;
  gpu::DatasetSpec spec = request->dataset;
  if (!request->csv.empty()) {
    Result<CsvTable> read =
        ReadCsvFile((CsvDirectory() / request->csv).string(), request->csv_target);
    if (!read.ok()) return fail(read.status().ToString());
    table = std::move(read).value();
    spec = gpu::DatasetSpec{.samples = table->samples,
                            .features = table->feature_names.size(),
                            .informative = 0,
                            .decoys = 0,
                            .noise = 0,
                            .seed = request->dataset.seed};
  }
  // Folds set by hand are held to 10 samples a fold (an R^2 on fewer rows is
  // noise); each mode's own need only stage 3's 2. Checked before any work,
  // and the error names the key.
  int configured_folds = 0;
  {
    std::lock_guard lock(mutex_);
    configured_folds = stage3_folds_;
  }
  if (configured_folds > 0 && spec.samples < 10 * static_cast<std::size_t>(configured_folds)) {
    return fail("STAGE3_CV_FOLDS " + std::to_string(configured_folds) + " needs at least " +
                std::to_string(10 * configured_folds) + " samples (10 a fold) for stage 3; the dataset has " +
                std::to_string(spec.samples));
  }
  // Generates the synthetic dataset, or uploads the CSV one, into `allocate`'s memory.
  auto make_dataset = [&](bool from_arena, gpu::Backend backend) -> Result<gpu::Dataset> {
    if (!table) {
      return from_arena ? gpu::GenerateDataset(*device_, spec)
                        : gpu::GenerateDataset(backend, spec);
    }
    gpu::Dataset dataset;
    dataset.spec = spec;
    FD_ASSIGN_OR_RETURN(
        dataset.data,
        from_arena ? device_->Allocate(table->data.size() * sizeof(float))
                   : gpu::DeviceBuffer::Allocate(backend, table->data.size() * sizeof(float)));
    FD_ASSIGN_OR_RETURN(
        dataset.target,
        from_arena ? device_->Allocate(table->target.size() * sizeof(float))
                   : gpu::DeviceBuffer::Allocate(backend, table->target.size() * sizeof(float)));
    FD_RETURN_IF_ERROR(dataset.data.Upload(table->data.data(), table->data.size() * sizeof(float)));
    FD_RETURN_IF_ERROR(
        dataset.target.Upload(table->target.data(), table->target.size() * sizeof(float)));
    return dataset;
  };

  // On the device when it has room and works; on the CPU otherwise, and say so.
  WaitWhileHeld("feeder");
  gpu::Device::BatchSlot slot = device_->AcquireBatch();
  Result<gpu::Dataset> dataset = make_dataset(true, device_->backend());
  std::string fallback;
  if (!dataset.ok() && dataset.status().code() != StatusCode::kInvalidArgument) {
    fallback = dataset.status().code() == StatusCode::kResourceExhausted ? "out_of_memory"
                                                                         : "device_error";
    logger_.Warn("pipeline", "job " + std::to_string(job.id) +
                                 " falls back to the CPU: " + dataset.status().ToString());
    metrics_.Counter("hsof_cpu_fallbacks_total", {{"reason", fallback}}).Increment();
    slot = gpu::Device::BatchSlot();
    dataset = make_dataset(false, gpu::Backend::kCpu);
  }
  if (!dataset.ok()) return fail(dataset.status().ToString());

  bool requeue = false;  // the stage was restarted: the job goes back in the queue
  gpu::StageHooks hooks;
  hooks.started = [&](int stage) -> Status {
    {
      std::lock_guard lock(mutex_);
      if (stage_running_[stage]++ == 0) stage_started_[stage] = clock_.Now();
    }
    // A hang holds the job here, with the stage's duration growing.
    const bool restarted = WaitWhileHeld("stage-" + std::to_string(stage), stage);
    std::lock_guard lock(mutex_);
    if (restarted) {
      if (--stage_running_[stage] == 0) stage_started_.erase(stage);
      requeue = true;
      return FD_STATUS(StatusCode::kCancelled, "stage " + std::to_string(stage) + " restarted");
    }
    if (error_share_ > 0 && (error_stage_ == 0 || error_stage_ == stage)) {
      // SplitMix64 steps: a seeded, lock-protected draw.
      fault_random_ += 0x9e3779b97f4a7c15ull;
      std::uint64_t z = fault_random_;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      if (static_cast<double>(z >> 11) / 9007199254740992.0 < error_share_) {
        if (--stage_running_[stage] == 0) stage_started_.erase(stage);
        return FD_STATUS(StatusCode::kInternal,
                         "stage " + std::to_string(stage) + " failed (fault injected)");
      }
    }
    return Status::Ok();
  };
  hooks.finished = [&](int stage, double seconds) {
    const auto work = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
    // Thermal throttling and throttle faults slow device work by waiting
    // out the time it would have taken at the reduced speed.
    if (fallback.empty()) device_->ApplyThrottle(work);
    double slowdown = 1;
    {
      std::lock_guard lock(mutex_);
      const auto it = stage_slowdown_.find(stage);
      if (it != stage_slowdown_.end() && it->second > 1) slowdown = it->second;
    }
    // A slow stall: the stage takes `slowdown` times as long.
    if (slowdown > 1) clock_.SleepFor(std::chrono::duration_cast<Duration>(work * (slowdown - 1)));
    std::lock_guard lock(mutex_);
    if (--stage_running_[stage] == 0) stage_started_.erase(stage);
    if (fallback.empty()) busy_ += work;
  };
  const std::shared_ptr<const gpu::Metamodel> model = metamodel();
  gpu::SelectionWorkspace workspace;
  gpu::SelectionOptions selection = gpu::OptionsForMode(request->mode, spec.seed);
  if (configured_folds > 0) selection.stage3.folds = configured_folds;
  {
    std::lock_guard lock(mutex_);
    selection.stage1.min_variance = stage1_min_variance_;
    selection.stage1.keep_ratio = stage1_keep_ratio_;
    selection.stage2.batch = std::max(selection.stage2.trees, metamodel_batch_);
  }
  selection.stage2.clock = &clock_;
  selection.stage2.before_batch = [this] {
    Duration delay;
    {
      std::lock_guard lock(mutex_);
      delay = inference_delay_;
      if (inference_jitter_ > Duration::zero()) {
        fault_random_ = fault_random_ * 6364136223846793005ull + 1442695040888963407ull;
        delay += Duration(
            static_cast<Duration::rep>((fault_random_ >> 33) % (inference_jitter_.count() + 1)));
      }
    }
    if (delay > Duration::zero()) clock_.SleepFor(delay);
  };
  const Result<gpu::SelectionResult> result =
      gpu::RunSelection(*dataset, *model, selection, &workspace, hooks);
  if (!result.ok() && requeue) {
    if (Status status = store_->Requeue(job.id, worker); !status.ok()) {
      logger_.Error("pipeline", "job " + std::to_string(job.id) + ": " + status.ToString());
    }
    running_jobs_--;
    job_finished_.notify_all();
    work_available_.notify_one();
    return;
  }
  if (!result.ok()) return fail(result.status().ToString());

  for (double seconds : result->stage2.batch_seconds) {
    metrics_.Histogram("hsof_metamodel_inference_latency_seconds").Observe(seconds);
  }
  const double device_seconds =
      result->stage_seconds[0] + result->stage_seconds[1] + result->stage_seconds[2];
  const bool on_gpu = fallback.empty() && device_->backend() == gpu::Backend::kCuda;
  metrics_.Counter("hsof_compute_cost_dollars_total")
      .Increment(device_seconds / 3600 *
                 (on_gpu ? options_.gpu_dollars_per_hour : options_.cpu_dollars_per_hour));
  metrics_.Counter("hsof_features_processed_total").Increment(static_cast<double>(spec.features));
  metrics_.Gauge("hsof_feature_reduction_ratio").Set(result->stage1.reduction_ratio);
  metrics_.Gauge("hsof_selection_quality_score").Set(result->quality);
  {
    std::lock_guard lock(mutex_);
    last_quality_ = result->quality;
    last_fallback_ = fallback;
    metamodel_rmse_ = result->stage2.metamodel_rmse;
  }
  std::size_t planted = 0;
  for (std::uint32_t feature : result->stage3.selected) {
    planted += std::count(dataset->informative.begin(), dataset->informative.end(), feature);
  }
  const json out = {
      {"selected", result->stage3.selected},
      {"selected_names",
       [&] {
         json names = json::array();
         if (table) {
           for (std::uint32_t feature : result->stage3.selected)
             names.push_back(table->feature_names[feature]);
         }
         return names;
       }()},
      {"quality", result->quality},
      {"cv_r2", result->stage3.cv_r2},
      {"planted_recovered", planted},
      {"planted", dataset->informative.size()},
      {"reduction_ratio", result->stage1.reduction_ratio},
      {"stage_features",
       {spec.features, result->stage1.selected.size(), result->stage2.selected.size(),
        result->stage3.selected.size()}},
      {"stage_seconds",
       {result->stage_seconds[0], result->stage_seconds[1], result->stage_seconds[2]}},
      {"metamodel_rmse", result->stage2.metamodel_rmse},
      {"backend", fallback.empty() ? gpu::BackendName(device_->backend()) : "cpu"},
      {"fallback", fallback}};
  slot = gpu::Device::BatchSlot();
  if (Status status = store_->Complete(job.id, worker, out.dump()); !status.ok()) {
    logger_.Error("pipeline", "job " + std::to_string(job.id) + ": " + status.ToString());
  } else {
    metrics_.Counter("hsof_datasets_processed_total").Increment();
    std::uint64_t leak = 0;
    {
      std::lock_guard lock(mutex_);
      leak = leak_per_job_;
    }
    if (leak > 0) {
      // The leak fault: memory a job should have given back stays held.
      Result<gpu::DeviceBuffer> leaked = device_->Allocate(leak);
      std::lock_guard lock(mutex_);
      if (leaked.ok() && leak_per_job_ > 0) leaked_.push_back(std::move(leaked).value());
    }
    metrics_.Histogram("hsof_request_duration_seconds")
        .Observe(std::max(0.0, UnixSeconds(clock_.WallNow()) - job.submitted_at));
  }
  running_jobs_--;
  job_finished_.notify_all();
}

void PipelineService::ScheduleTick() {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  tick_pending_ = true;
  tick_timer_ = clock_.ScheduleAt(clock_.Now() + options_.telemetry_interval, [this] { Tick(); });
}

void PipelineService::Tick() {
  bool stopping;
  {
    std::lock_guard lock(mutex_);
    stopping = stopping_;
  }
  if (!stopping) {
    ExpireFaults();
    UpdateTelemetry();
    if (clock_.Now() >= next_backup_ && !FaultActive("backup-scheduler-stop")) {
      next_backup_ = clock_.Now() + backup_interval_;
      std::string path;
      (void)BackupNow(&path);  // failures are counted and shown in health
    }
  }
  // The next tick is scheduled, or the pending flag cleared, under the lock
  // Stop waits on; nothing touches the service after the lock is released.
  std::lock_guard lock(mutex_);
  if (stopping_) {
    tick_pending_ = false;
    tick_done_.notify_all();
  } else {
    tick_timer_ = clock_.ScheduleAt(clock_.Now() + options_.telemetry_interval, [this] { Tick(); });
  }
}

void PipelineService::UpdateTelemetry() {
  const MonotonicTime now = clock_.Now();
  std::uint64_t leak = 0;
  {
    std::lock_guard lock(mutex_);
    leak = static_cast<std::uint64_t>(static_cast<double>(leak_per_second_) *
                                      Seconds(now - last_tick_));
  }
  if (leak > 0) {
    // The leak fault at a rate: device memory taken each tick and never given back.
    Result<gpu::DeviceBuffer> leaked = device_->Allocate(leak);
    std::lock_guard lock(mutex_);
    if (leaked.ok() && leak_per_second_ > 0) leaked_.push_back(std::move(leaked).value());
  }
  double utilization = 0;
  {
    std::lock_guard lock(mutex_);
    const Duration elapsed = now - last_tick_;
    if (elapsed > Duration::zero()) {
      utilization = std::clamp(Seconds(busy_ - busy_seen_) / Seconds(elapsed) /
                                   std::max(1, options_.max_concurrent_batches),
                               0.0, 1.0);
    }
    busy_seen_ = busy_;
    last_tick_ = now;
    for (int stage = 1; stage <= 3; ++stage) {
      const auto it = stage_started_.find(stage);
      metrics_.Gauge("hsof_stage_duration_seconds", {{"stage", std::to_string(stage)}})
          .Set(it == stage_started_.end() ? 0.0 : Seconds(now - it->second));
    }
  }
  gpu::Telemetry telemetry;
  std::string source = "none";
  if (gpu::SimulatedDevice* simulated = device_->simulated()) {
    simulated->SetUtilization(utilization);
    simulated->SetMemoryUsed(device_->memory_used());
    telemetry = simulated->Read();
    source = "simulated";
  } else if (nvml_) {
    if (Result<gpu::Telemetry> read = nvml_->Read(); read.ok()) {
      telemetry = *read;
      source = "nvml";
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (source != "none") last_temperature_c_ = telemetry.temperature_c.value;
    if (overlay_) {
      // The overlay fault: what the monitoring sees, on any backend.
      const double progress =
          overlay_->ramp > Duration::zero()
              ? std::clamp(Seconds(now - overlay_->started) / Seconds(overlay_->ramp), 0.0, 1.0)
              : 1.0;
      gpu::TelemetryOverlay overlay;
      overlay.temperature_c = overlay_->from_c + (overlay_->to_c - overlay_->from_c) * progress;
      if (overlay_->clock_factor != 1) {
        const double base = telemetry.sm_clock_mhz.value > 0 ? telemetry.sm_clock_mhz.value
                                                             : gpu::ThermalModel{}.sm_clock_mhz;
        overlay.sm_clock_mhz = base * overlay_->clock_factor;
      }
      overlay.clock_event_reasons = overlay_->reasons;
      gpu::ApplyOverlay(overlay, &telemetry);
      if (source == "none") source = "overlay";
    }
  }
  if (source != "none") ProtectFromHeat(telemetry.temperature_c.value);
  // Memory in use on the device, as a GPU exporter sees it: the pipeline's
  // and any other process's (NVML's device-wide figure on a GPU; the arena
  // plus the shared device memory folder on the CPU twins), against what
  // the pipeline may use.
  const double memory_in_use =
      source == "nvml" ? telemetry.memory_used_bytes.value
                       : static_cast<double>(device_->memory_used() + device_->memory_held_by_others());
  metrics_.Gauge("hsof_gpu_memory_used_bytes", kGpu0).Set(memory_in_use);
  metrics_.Gauge("hsof_gpu_memory_total_bytes", kGpu0)
      .Set(static_cast<double>(device_->memory_budget()));
  metrics_.Gauge("hsof_gpu_utilization_percent", kGpu0)
      .Set(source == "nvml" ? telemetry.utilization_percent.value : 100 * utilization);
  metrics_.Gauge("hsof_gpu_throttle_ratio", kGpu0).Set(device_->throttle());
  if (source != "none") {
    metrics_.Gauge("hsof_gpu_temperature_celsius", kGpu0).Set(telemetry.temperature_c.value);
    metrics_.Gauge("hsof_gpu_power_watts", kGpu0).Set(telemetry.power_watts.value);
    metrics_.Gauge("hsof_gpu_sm_clock_mhz", kGpu0).Set(telemetry.sm_clock_mhz.value);
    metrics_.Gauge("hsof_gpu_clock_event_reasons", kGpu0).Set(telemetry.clock_event_reasons.value);
  }
  metrics_
      .Gauge("hsof_gpu_info", {{"gpu_id", "0"},
                               {"backend", std::string(gpu::BackendName(device_->backend()))},
                               {"name", device_->info().name},
                               {"source", source}})
      .Set(1);
  if (Result<JobCounts> counts = store_->Counts(); counts.ok()) {
    metrics_.Gauge("hsof_jobs_queued").Set(static_cast<double>(counts->queued));
  }
  metrics_.Gauge("hsof_jobs_running").Set(static_cast<double>(running_jobs_.load()));
  for (const ComponentHealth& component : Health().components) {
    metrics_.Gauge("hsof_health_check_status", {{"component", component.name}})
        .Set(component.status == HealthStatus::kHealthy ? 1 : 0);
  }
  UpdateBackupMetrics();
}

Status PipelineService::BackupNow(std::string* path) {
  const fs::path directory = BackupDirectory();
  const auto stamp =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.WallNow().time_since_epoch());
  const fs::path target = directory / ("jobs-" + std::to_string(stamp.count()) + ".db");
  Status status = InjectedFailure("backup-target-failure");
  if (status.ok()) status = store_->Backup(target.string());
  if (status.ok()) status = PruneBackups();
  {
    std::lock_guard lock(mutex_);
    if (status.ok()) {
      last_backup_time_ = UnixSeconds(clock_.WallNow());
      last_backup_error_.clear();
      // A new success supersedes the stale one a backup-scheduler-stop fault
      // reports; the scheduler itself stays stopped until the fault ends.
      backup_age_override_ = -1;
    } else {
      last_backup_error_ = status.ToString();
    }
  }
  if (!status.ok()) {
    metrics_.Counter("hsof_backup_failed_total").Increment();
    logger_.Error("pipeline", "backup failed: " + status.ToString());
  } else {
    metrics_.Gauge("hsof_last_successful_backup_timestamp").Set(last_backup_time_);
    *path = target.string();
  }
  UpdateBackupMetrics();
  return status;
}

Status PipelineService::PruneBackups() {
  const fs::path directory = BackupDirectory();
  std::vector<fs::path> backups;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    if (entry.path().extension() == ".db") backups.push_back(entry.path());
  }
  if (error)
    return FD_STATUS(StatusCode::kUnavailable,
                     "cannot list " + directory.string() + ": " + error.message());
  // Names carry the time in milliseconds, so name order is age order.
  std::sort(backups.begin(), backups.end());
  int retention;
  {
    std::lock_guard lock(mutex_);
    retention = std::max(1, backup_retention_);
  }
  while (static_cast<int>(backups.size()) > retention) {
    fs::remove(backups.front(), error);
    backups.erase(backups.begin());
  }
  return Status::Ok();
}

void PipelineService::UpdateBackupMetrics() {
  const fs::path directory = BackupDirectory();
  std::uintmax_t used = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    if (entry.is_regular_file(error)) used += entry.file_size(error);
  }
  metrics_.Gauge("hsof_backup_storage_used_bytes").Set(static_cast<double>(used));
  {
    std::lock_guard lock(mutex_);
    if (backup_age_override_ >= 0) {
      metrics_.Gauge("hsof_last_successful_backup_timestamp")
          .Set(UnixSeconds(clock_.WallNow()) - backup_age_override_);
    } else if (last_backup_time_ > 0) {
      metrics_.Gauge("hsof_last_successful_backup_timestamp").Set(last_backup_time_);
    }
  }
  struct statvfs info {};
  if (statvfs(directory.c_str(), &info) == 0) {
    metrics_.Gauge("hsof_backup_storage_total_bytes")
        .Set(static_cast<double>(info.f_blocks) * static_cast<double>(info.f_frsize));
  }
}

HealthReport PipelineService::Health() {
  HealthReport report;
  std::lock_guard lock(mutex_);

  ComponentHealth gpu{"gpu", HealthStatus::kHealthy, "", {}};
  const double used = static_cast<double>(device_->memory_used());
  const double budget = static_cast<double>(device_->memory_budget());
  const double throttle = device_->throttle();
  gpu.details["backend"] = Text(std::string(gpu::BackendName(device_->backend())));
  gpu.details["name"] = Text(device_->info().name);
  gpu.details["memory_used_bytes"] = Text(used);
  gpu.details["memory_budget_bytes"] = Text(budget);
  if (const std::uint64_t others = device_->memory_held_by_others(); others > 0) {
    gpu.details["memory_held_by_other_processes_bytes"] = Text(static_cast<double>(others));
  }
  gpu.details["throttle"] = Text(throttle);
  gpu.details["running_batches"] = Text(static_cast<double>(device_->running_batches()));
  if (gpu::SimulatedDevice* simulated = device_->simulated()) {
    gpu.details["temperature_c"] = Text(simulated->Temperature());
    gpu.details["telemetry"] = Text(std::string("simulated"));
  }
  if (budget > 0 && used / budget > 0.9) {
    gpu.status = HealthStatus::kWarning;
    gpu.message = "device memory over 90% of its budget";
  } else if (thermal_cut_) {
    gpu.status = HealthStatus::kWarning;
    gpu.message = "thermal protection: concurrency cut to 1 batch until the device cools";
  } else if (throttle < 1) {
    gpu.status = HealthStatus::kWarning;
    gpu.message =
        "device work throttled to " + std::to_string(static_cast<int>(throttle * 100)) + "% speed";
  } else {
    gpu.message = "device ready";
  }

  ComponentHealth pipeline{"pipeline", HealthStatus::kHealthy, "accepting and running jobs", {}};
  pipeline.details["workers"] = Text(static_cast<double>(wanted_workers_));
  pipeline.details["running"] = Text(static_cast<double>(running_jobs_.load()));
  pipeline.details["draining"] = draining_ ? "true" : "false";
  pipeline.details["last_fallback"] = Text(last_fallback_);
  if (draining_) {
    pipeline.status = HealthStatus::kWarning;
    pipeline.message = "draining: not accepting jobs";
  } else if (!last_fallback_.empty()) {
    pipeline.status = HealthStatus::kWarning;
    pipeline.message = "the last job ran on the CPU fallback (" + last_fallback_ + ")";
  } else if (wanted_workers_ == 0) {
    pipeline.status = HealthStatus::kCritical;
    pipeline.message = "no workers: accepted jobs will not run";
  }

  ComponentHealth model{"model", HealthStatus::kHealthy, "metamodel loaded", {}};
  model.details["last_rmse"] = Text(metamodel_rmse_);
  if (last_quality_ >= 0) model.details["last_quality"] = Text(last_quality_);
  if (metamodel_rmse_ > 0.15) {
    model.status = HealthStatus::kWarning;
    model.message = "metamodel predictions are off (RMSE " + std::to_string(metamodel_rmse_) + ")";
  }

  ComponentHealth database{"database", HealthStatus::kHealthy, "job store answering", {}};
  if (!database_error_.empty()) {
    database.status = HealthStatus::kCritical;
    database.message = database_error_;
  }

  ComponentHealth backup{"backup", HealthStatus::kHealthy, "", {}};
  backup.details["last_success"] = Text(last_backup_time_);
  if (!last_backup_error_.empty()) {
    backup.status = HealthStatus::kWarning;
    backup.message = last_backup_error_;
  } else {
    backup.message = last_backup_time_ > 0 ? "last backup succeeded" : "no backup taken yet";
  }

  report.components = {gpu, pipeline, model, database, backup};
  report.overall = HealthStatus::kHealthy;
  for (const ComponentHealth& component : report.components) {
    report.overall = std::max(report.overall, component.status);
  }
  return report;
}

void PipelineService::ProtectFromHeat(double temperature_c) {
  // Above the HSOF alert's 85 C, run one batch at a time until below 80 C.
  std::lock_guard lock(mutex_);
  const bool hot = thermal_protection_ && temperature_c >= 85;
  if (hot && !thermal_cut_) {
    thermal_cut_ = true;
    (void)device_->SetMaxConcurrentBatches(1);
    logger_.Warn("pipeline", "thermal protection: one batch at a time",
                 {{"temperature_c", temperature_c}});
  } else if (thermal_cut_ && (!thermal_protection_ || temperature_c < 80)) {
    thermal_cut_ = false;
    (void)device_->SetMaxConcurrentBatches(configured_batches_);
    logger_.Info("pipeline", "thermal protection: concurrency restored",
                 {{"temperature_c", temperature_c}});
  }
}

std::map<std::string, std::string> PipelineService::Config() {
  std::lock_guard lock(mutex_);

  return {
      {"MAX_CONCURRENT_BATCHES", std::to_string(configured_batches_)},
      {"GPU_MEMORY_FRACTION", Show(memory_fraction_)},
      {"ENABLE_THERMAL_PROTECTION", thermal_protection_ ? "true" : "false"},
      {"WORKERS", std::to_string(wanted_workers_)},
      {"STAGE1_VARIANCE_THRESHOLD", Show(stage1_min_variance_)},
      {"STAGE1_KEEP_RATIO", Show(stage1_keep_ratio_)},
      {"STAGE3_CV_FOLDS", std::to_string(stage3_folds_)},
      {"METAMODEL_BATCH_SIZE", std::to_string(metamodel_batch_)},
      {"ADMISSION_RATE", Show(admission_rate_)},
      {"BACKUP_INTERVAL",
       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(backup_interval_).count()) +
           "s"},
      {"BACKUP_RETENTION", std::to_string(backup_retention_)}};
}

Result<ActionOutcome> PipelineService::SetConfig(const std::string& key, const std::string& value) {
  FD_ASSIGN_OR_RETURN(const double number, ParseConfigValue(key, value));
  const std::map<std::string, std::string> before = Config();
  const int whole = static_cast<int>(number);
  if (key == "WORKERS") {
    FD_RETURN_IF_ERROR(SetWorkers(whole));
  } else if (key == "MAX_CONCURRENT_BATCHES") {
    std::lock_guard lock(mutex_);
    configured_batches_ = whole;
    // While thermal protection holds concurrency at 1, the new limit waits.
    if (!thermal_cut_) FD_RETURN_IF_ERROR(device_->SetMaxConcurrentBatches(whole));
  } else if (key == "GPU_MEMORY_FRACTION") {
    FD_RETURN_IF_ERROR(device_->SetMemoryFraction(number));
    std::lock_guard lock(mutex_);
    memory_fraction_ = number;
  } else if (key == "ENABLE_THERMAL_PROTECTION") {
    std::lock_guard lock(mutex_);
    thermal_protection_ = number != 0;
  } else if (key == "STAGE1_VARIANCE_THRESHOLD") {
    std::lock_guard lock(mutex_);
    stage1_min_variance_ = number;
  } else if (key == "STAGE1_KEEP_RATIO") {
    std::lock_guard lock(mutex_);
    stage1_keep_ratio_ = number;
  } else if (key == "STAGE3_CV_FOLDS") {
    std::lock_guard lock(mutex_);
    stage3_folds_ = whole;
  } else if (key == "METAMODEL_BATCH_SIZE") {
    std::lock_guard lock(mutex_);
    metamodel_batch_ = whole;
  } else if (key == "ADMISSION_RATE") {
    std::lock_guard lock(mutex_);
    admission_rate_ = number;
    admission_tokens_ = std::max(1.0, number);
    admission_refilled_ = clock_.Now();
  } else if (key == "BACKUP_INTERVAL") {
    std::lock_guard lock(mutex_);
    backup_interval_ = std::chrono::round<Duration>(std::chrono::duration<double>(number));
    next_backup_ = clock_.Now() + backup_interval_;
  } else if (key == "BACKUP_RETENTION") {
    std::lock_guard lock(mutex_);
    backup_retention_ = whole;
  }
  const std::map<std::string, std::string> after = Config();
  ActionOutcome outcome;
  outcome.before = {{key, before.at(key)}};
  outcome.after = {{key, after.at(key)}};
  outcome.changed = before.at(key) != after.at(key);
  outcome.message =
      outcome.changed ? key + " set to " + after.at(key) : key + " was already " + after.at(key);
  return outcome;
}

Result<ActionOutcome> PipelineService::ScaleWorkers(int count) {
  return SetConfig("WORKERS", std::to_string(count));
}

Result<ActionOutcome> PipelineService::DrainAction() {
  ActionOutcome outcome;
  std::lock_guard lock(mutex_);
  outcome.before = {{"draining", draining_ ? "true" : "false"}};
  outcome.changed = !draining_;
  draining_ = true;
  outcome.after = {{"draining", "true"}};
  outcome.message =
      outcome.changed ? "draining: no new jobs; jobs in flight finish" : "already draining";
  return outcome;
}

Result<ActionOutcome> PipelineService::ResumeAction() {
  ActionOutcome outcome;
  {
    std::lock_guard lock(mutex_);
    outcome.before = {{"draining", draining_ ? "true" : "false"}};
    outcome.changed = draining_;
    draining_ = false;
    outcome.after = {{"draining", "false"}};
  }
  work_available_.notify_all();
  outcome.message = outcome.changed ? "resumed: accepting and running jobs" : "was not draining";
  return outcome;
}

Result<ActionOutcome> PipelineService::TriggerBackup() {
  std::string path;
  FD_RETURN_IF_ERROR(BackupNow(&path));
  ActionOutcome outcome;
  outcome.changed = true;
  outcome.after = {{"backup", path}};
  outcome.message = "backed up the job database to " + path;
  return outcome;
}

Result<ActionOutcome> PipelineService::ReloadMetamodel() {
  const fs::path path = fs::path(options_.data_dir) / "metamodel.txt";
  std::ifstream in(path);
  if (!in) return FD_STATUS(StatusCode::kNotFound, "no saved metamodel at " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  Result<gpu::Metamodel> parsed = gpu::Metamodel::Parse(text.str());
  if (!parsed.ok()) {
    return FD_STATUS(StatusCode::kFailedPrecondition,
                     path.string() + ": " + std::string(parsed.status().message()));
  }
  ActionOutcome outcome;
  std::lock_guard lock(mutex_);
  outcome.changed = metamodel_->weights() != parsed->weights();
  metamodel_ = std::make_shared<const gpu::Metamodel>(std::move(parsed).value());
  outcome.after = {{"metamodel", path.string()}};
  outcome.message = outcome.changed ? "reloaded the metamodel from " + path.string()
                                    : "the metamodel in use already matched " + path.string();
  return outcome;
}

Result<ActionOutcome> PipelineService::CleanupArtifacts(Duration age) {
  if (age < Duration::zero())
    return FD_STATUS(StatusCode::kInvalidArgument, "age must not be negative");
  FD_ASSIGN_OR_RETURN(const std::int64_t deleted,
                      store_->DeleteFinishedBefore(UnixSeconds(clock_.WallNow()) - Seconds(age)));
  FD_RETURN_IF_ERROR(PruneBackups());
  UpdateBackupMetrics();
  ActionOutcome outcome;
  outcome.changed = deleted > 0;
  outcome.after = {{"jobs_deleted", std::to_string(deleted)}};
  outcome.message =
      "deleted " + std::to_string(deleted) + " finished jobs; backups pruned to the retention";
  return outcome;
}

Result<ActionOutcome> PipelineService::RestartStage(int stage) {
  if (stage < 1 || stage > 3) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage must be 1, 2 or 3, got " + std::to_string(stage));
  }
  ActionOutcome outcome;
  // A hung stage is what a restart cures: the restart ends the hang
  // (a slow stage stays slow; that is the hardware, not the stage).
  std::vector<ActiveFault> cured;
  {
    std::lock_guard lock(mutex_);
    const auto running = stage_running_.find(stage);
    const int in_stage = running == stage_running_.end() ? 0 : running->second;
    stage_restarts_[stage]++;
    for (auto it = faults_.begin(); it != faults_.end();) {
      const FaultLease& lease = it->second.lease;
      if (lease.kind == "stage-stall" && lease.params.at("stage") == std::to_string(stage) &&
          lease.params.at("mode") == "hang") {
        cured.push_back(std::move(it->second));
        it = faults_.erase(it);
      } else {
        ++it;
      }
    }
    outcome.before = {{"jobs_in_stage", std::to_string(in_stage)}};
    outcome.changed = in_stage > 0 || !cured.empty();
    outcome.message = "restarted stage " + std::to_string(stage) + ": jobs it held go back in the queue" +
                      (cured.empty() ? "" : "; the hang is over");
  }
  for (ActiveFault& fault : cured) {
    fault.undo();
    metrics_.Gauge("hsof_faults_active", {{"kind", fault.lease.kind}}).Set(0);
    logger_.Info("faults", "fault ended by a stage restart", {{"id", fault.lease.id}, {"kind", fault.lease.kind}});
  }
  faults_changed_.notify_all();
  return outcome;
}

Result<ActionOutcome> PipelineService::RestoreBackup(const std::string& name) {
  const fs::path directory = BackupDirectory();
  fs::path path;
  if (name == "latest") {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(directory, error)) {
      if (entry.path().extension() == ".db" && entry.path() > path) path = entry.path();
    }
    if (path.empty())
      return FD_STATUS(StatusCode::kNotFound, "no backups in " + directory.string());
  } else {
    // A name, never a path: restores come only from the backup directory.
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return FD_STATUS(StatusCode::kInvalidArgument, "backup must be a file name in " +
                                                         directory.string() +
                                                         " or \"latest\", got '" + name + "'");
    }
    path = directory / name;
    if (!fs::exists(path)) return FD_STATUS(StatusCode::kNotFound, "no backup " + path.string());
  }
  {
    std::lock_guard lock(mutex_);
    if (!draining_ || running_jobs_ > 0) {
      return FD_STATUS(
          StatusCode::kFailedPrecondition,
          "restore needs the pipeline drained with no job running (Drain, wait, then restore); " +
              std::to_string(running_jobs_.load()) + " running");
    }
  }
  FD_ASSIGN_OR_RETURN(const JobCounts before, store_->Counts());
  FD_RETURN_IF_ERROR(store_->Restore(path.string()));
  FD_ASSIGN_OR_RETURN(const JobCounts after, store_->Counts());
  auto total = [](const JobCounts& counts) {
    return std::to_string(counts.queued + counts.running + counts.completed + counts.failed);
  };
  ActionOutcome outcome;
  outcome.changed = true;
  outcome.before = {{"jobs", total(before)}};
  outcome.after = {{"jobs", total(after)}, {"restored_from", path.string()}};
  outcome.message = "restored " + total(after) + " jobs from " + path.string();
  // Backup names carry their time (jobs-<unix ms>.db): its age is the recovery point.
  std::int64_t taken_ms = 0;
  const std::string stem = path.stem().string();
  if (stem.rfind("jobs-", 0) == 0 &&
      std::from_chars(stem.data() + 5, stem.data() + stem.size(), taken_ms).ec == std::errc()) {
    // To a tenth of a second: finer says nothing about a recovery point.
    const double age =
        std::round((UnixSeconds(clock_.WallNow()) - static_cast<double>(taken_ms) / 1000) * 10) / 10;
    outcome.after["backup_age_seconds"] = FormatNumber(age);
    outcome.message += ", a backup taken " + FormatDuration(std::chrono::duration_cast<Duration>(
                                                  std::chrono::duration<double>(std::max(0.0, age)))) +
                       " ago";
  }
  return outcome;
}

net::HttpResponse PipelineService::HandleHttp(const net::HttpRequest& request) {
  const bool api = request.path.rfind("/v1/", 0) == 0 || request.path.rfind("/health", 0) == 0;
  const MonotonicTime start = clock_.Now();
  net::HttpResponse response = HandleHttpInner(request);
  if (api) {
    metrics_.Counter("hsof_requests_total").Increment();
    metrics_.Counter("hsof_http_responses_total", {{"code", std::to_string(response.status)}})
        .Increment();
    metrics_.Histogram("hsof_http_request_duration_seconds").Observe(Seconds(clock_.Now() - start));
    if (response.status >= 500) metrics_.Counter("hsof_errors_total").Increment();
  }
  return response;
}

net::HttpResponse PipelineService::HandleHttpInner(const net::HttpRequest& request) {
  const std::string& path = request.path;
  if (path == "/metrics") {
    if (request.method != "GET") return net::JsonError(405, "use GET");
    return net::HttpResponse{
        200, "text/plain; version=0.0.4; charset=utf-8", metrics_.Serialize(), {}};
  }
  if (path == "/v1/jobs") {
    if (request.method != "POST") return net::JsonError(405, "use POST to submit a job");
    Result<JobRequest> parsed = ParseJobRequest(request.body);
    if (!parsed.ok()) return net::JsonError(400, std::string(parsed.status().message()));
    Result<SubmitOutcome> outcome = Submit(*parsed);
    if (!outcome.ok())
      return net::JsonError(HttpStatusFor(outcome.status()),
                            std::string(outcome.status().message()));
    // 202: accepted and queued; 200: a retry of a job already accepted.
    return JsonResponse(outcome->created ? 202 : 200, JobToJson(outcome->job));
  }
  if (path.rfind("/v1/jobs/", 0) == 0) {
    if (request.method != "GET") return net::JsonError(405, "use GET to read a job");
    const std::string_view text = std::string_view(path).substr(9);
    std::int64_t id = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (error != std::errc() || end != text.data() + text.size() || id <= 0) {
      return net::JsonError(400,
                            "job id must be a positive integer, got '" + std::string(text) + "'");
    }
    // ?wait=30s long-polls: the answer comes when the job finishes (or the
    // wait, at most a minute, runs out), so clients need not poll.
    Duration wait = Duration::zero();
    if (request.query.rfind("wait=", 0) == 0) {
      Result<Duration> parsed = ParseDuration(std::string_view(request.query).substr(5));
      if (!parsed.ok())
        return net::JsonError(400, "wait: " + std::string(parsed.status().message()));
      wait = std::min<Duration>(*parsed, std::chrono::minutes(1));
    } else if (!request.query.empty()) {
      return net::JsonError(400, "unknown query '" + request.query + "' (known: wait=DURATION)");
    }
    Result<JobRecord> job = wait > Duration::zero() ? WaitForJob(id, wait) : GetJob(id);
    if (!job.ok()) {
      return net::JsonError(HttpStatusFor(job.status()), std::string(job.status().message()));
    }
    return JsonResponse(200, JobToJson(*job));
  }
  if (path == "/health" || path.rfind("/health/", 0) == 0) {
    if (request.method != "GET") return net::JsonError(405, "use GET");
    const HealthReport report = Health();
    const int status = report.overall == HealthStatus::kCritical ? 503 : 200;
    if (path == "/health") {
      json components = json::object();
      for (const ComponentHealth& component : report.components) {
        components[component.name] = ComponentToJson(component);
      }
      return JsonResponse(status, {{"status", HealthStatusName(report.overall)},
                                   {"timestamp", UnixSeconds(clock_.WallNow())},
                                   {"components", components}});
    }
    const std::string name = path.substr(8);
    for (const ComponentHealth& component : report.components) {
      if (component.name != name) continue;
      json body = ComponentToJson(component);
      body["component"] = name;
      body["timestamp"] = UnixSeconds(clock_.WallNow());
      return JsonResponse(component.status == HealthStatus::kCritical ? 503 : 200, body);
    }
    return net::JsonError(
        404, "no health component '" + name + "' (gpu, pipeline, model, database, backup)");
  }
  return net::JsonError(404, "no route for " + request.method + " " + path);
}

net::HttpResponse PipelineService::HandleGpuExporter(const net::HttpRequest& request) {
  if (request.path != "/metrics")
    return net::JsonError(404, "the GPU exporter serves /metrics only");
  if (FaultActive("exporter-down"))
    return net::JsonError(503, "GPU exporter down (fault injected)");
  return net::HttpResponse{
      200, "text/plain; version=0.0.4; charset=utf-8", metrics_.SerializeGpuOnly(), {}};
}

}  // namespace firedrill::pipeline
