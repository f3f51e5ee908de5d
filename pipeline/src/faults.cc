// The pipeline's in-process faults: each Start applies an effect and keeps
// the action that undoes it; Stop, a lapsed lease and Stop() of the service
// run that action. Hooks in service.cc read the effects under the lock.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include "firedrill/core/units.h"
#include "firedrill/gpu/telemetry.h"
#include "firedrill/pipeline/service.h"

namespace firedrill::pipeline {
namespace {

double UnixSeconds(WallTime time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

Status ParamError(const std::string& kind, const std::string& name, const std::string& message) {
  return FD_STATUS(StatusCode::kInvalidArgument, kind + ": parameter '" + name + "': " + message);
}

// Reads the parameters a kind allows; unknown ones are errors.
class Params {
 public:
  Params(std::string kind, const std::map<std::string, std::string>& values)
      : kind_(std::move(kind)), values_(values) {}

  Status Allow(std::initializer_list<std::string> names) const {
    const std::set<std::string> allowed(names);
    for (const auto& [name, value] : values_) {
      if (!allowed.count(name)) {
        std::string list;
        for (const std::string& known : names) list += (list.empty() ? "" : ", ") + known;
        return ParamError(kind_, name,
                          "unknown (known: " + (list.empty() ? std::string("none") : list) + ")");
      }
    }
    return Status::Ok();
  }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  Result<std::string> Text(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return ParamError(kind_, name, "required");
    return it->second;
  }
  Result<double> Number(const std::string& name, double low, double high) const {
    FD_ASSIGN_OR_RETURN(const std::string text, Text(name));
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() ||
        !(value >= low && value <= high)) {
      char range[64];
      std::snprintf(range, sizeof(range), "[%g, %g]", low, high);
      return ParamError(kind_, name,
                        std::string("expected a number in ") + range + ", got '" + text + "'");
    }
    return value;
  }
  Result<double> Ratio(const std::string& name) const {
    FD_ASSIGN_OR_RETURN(const std::string text, Text(name));
    Result<double> ratio = ParseRatio(text);
    if (!ratio.ok()) return ParamError(kind_, name, std::string(ratio.status().message()));
    return *ratio;
  }
  Result<Duration> Time(const std::string& name) const {
    FD_ASSIGN_OR_RETURN(const std::string text, Text(name));
    Result<Duration> duration = ParseDuration(text);
    if (!duration.ok()) return ParamError(kind_, name, std::string(duration.status().message()));
    return *duration;
  }
  Result<std::uint64_t> Bytes(const std::string& name) const {
    FD_ASSIGN_OR_RETURN(const std::string text, Text(name));
    Result<std::uint64_t> size = ParseSize(text);
    if (!size.ok()) return ParamError(kind_, name, std::string(size.status().message()));
    return *size;
  }

 private:
  std::string kind_;
  const std::map<std::string, std::string>& values_;
};


}  // namespace

bool PipelineService::FaultActive(const std::string& kind) {
  std::lock_guard lock(mutex_);
  for (const auto& [id, fault] : faults_) {
    if (fault.lease.kind == kind) return true;
  }
  return false;
}

Status PipelineService::InjectedFailure(const std::string& kind) {
  if (!FaultActive(kind)) return Status::Ok();
  return FD_STATUS(StatusCode::kUnavailable, kind == "database-unavailable"
                                                 ? "job database unavailable (fault injected)"
                                                 : "backup target not writable (fault injected)");
}

bool PipelineService::WaitWhileHeld(const std::string& what, int stage) {
  std::unique_lock lock(mutex_);
  const std::uint64_t generation = stage_restarts_[stage];
  auto held = [&] {
    if (stopping_) return false;
    for (const auto& [id, fault] : faults_) {
      if (what == "feeder" && fault.lease.kind == "feeder-stall") return true;
      if (what.rfind("stage-", 0) == 0 && fault.lease.kind == "stage-stall" &&
          "stage-" + fault.lease.params.at("stage") == what &&
          fault.lease.params.at("mode") == "hang") {
        return true;
      }
    }
    return false;
  };
  // Woken when faults change, a stage restarts or the service stops.
  faults_changed_.wait(lock, [&] { return !held() || stage_restarts_[stage] != generation; });
  return stage_restarts_[stage] != generation;
}

Result<FaultLease> PipelineService::StartFault(const std::string& kind,
                                               const std::map<std::string, std::string>& values,
                                               Duration ttl) {
  if (ttl <= Duration::zero() || ttl > std::chrono::hours(24)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "a fault lease needs a time to live in (0, 24h]");
  }
  const Params params(kind, values);
  FaultLease lease;
  lease.kind = kind;
  lease.params = values;
  lease.device = std::string(gpu::BackendName(device_->backend()));
  std::function<void()> undo;
  // One fault of a kind at a time (per stage for stalls): a second would make
  // "undo" ambiguous.
  const std::string slot =
      kind == "stage-stall" && values.count("stage") ? kind + values.at("stage") : kind;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, fault] : faults_) {
      const std::string other = fault.lease.kind == "stage-stall"
                                    ? fault.lease.kind + fault.lease.params.at("stage")
                                    : fault.lease.kind;
      if (other == slot) {
        return FD_STATUS(StatusCode::kAlreadyExists, kind + " is already in force as lease " + id);
      }
    }
  }

  if (kind == "stage-stall") {
    FD_RETURN_IF_ERROR(params.Allow({"stage", "mode", "factor"}));
    FD_ASSIGN_OR_RETURN(const double stage, params.Number("stage", 1, 3));
    const std::string mode = params.Has("mode") ? *params.Text("mode") : "hang";
    if (mode != "hang" && mode != "slow")
      return ParamError(kind, "mode", "expected hang or slow, got '" + mode + "'");
    double factor = 0;
    if (mode == "slow") {
      FD_ASSIGN_OR_RETURN(
          factor, params.Has("factor") ? params.Number("factor", 1, 1000) : Result<double>(10.0));
    }
    lease.params["stage"] = std::to_string(static_cast<int>(stage));
    lease.params["mode"] = mode;
    const int number = static_cast<int>(stage);
    {
      std::lock_guard lock(mutex_);
      stage_slowdown_[number] = factor;
    }
    lease.effect =
        mode == "hang"
            ? "stage " + std::to_string(number) + " holds every job until the fault ends or the stage restarts"
            : "stage " + std::to_string(number) + " runs " + FormatNumber(factor) + "x slower";
    undo = [this, number] {
      std::lock_guard lock(mutex_);
      stage_slowdown_.erase(number);
    };
  } else if (kind == "error-injection") {
    FD_RETURN_IF_ERROR(params.Allow({"share", "stage"}));
    FD_ASSIGN_OR_RETURN(const double share, params.Ratio("share"));
    int stage = 0;
    if (params.Has("stage")) {
      FD_ASSIGN_OR_RETURN(const double number, params.Number("stage", 1, 3));
      stage = static_cast<int>(number);
    }
    {
      std::lock_guard lock(mutex_);
      error_share_ = share;
      error_stage_ = stage;
    }
    lease.effect = std::to_string(static_cast<int>(share * 100)) + "% of jobs fail" +
                   (stage ? " in stage " + std::to_string(stage) : "");
    undo = [this] {
      std::lock_guard lock(mutex_);
      error_share_ = 0;
    };
  } else if (kind == "inference-delay") {
    FD_RETURN_IF_ERROR(params.Allow({"delay", "jitter"}));
    FD_ASSIGN_OR_RETURN(const Duration delay, params.Time("delay"));
    Duration jitter{};
    if (params.Has("jitter")) {
      FD_ASSIGN_OR_RETURN(jitter, params.Time("jitter"));
    }
    {
      std::lock_guard lock(mutex_);
      inference_delay_ = delay;
      inference_jitter_ = jitter;
    }
    lease.effect = "each metamodel batch waits " + FormatDuration(delay) + " more";
    undo = [this] {
      std::lock_guard lock(mutex_);
      inference_delay_ = Duration::zero();
      inference_jitter_ = Duration::zero();
    };
  } else if (kind == "metamodel-corruption") {
    FD_RETURN_IF_ERROR(params.Allow({"noise", "invert"}));
    bool invert = false;
    if (params.Has("invert")) {
      FD_ASSIGN_OR_RETURN(const std::string text, params.Text("invert"));
      if (text != "true" && text != "false") {
        return ParamError(kind, "invert", "expected true or false, got '" + text + "'");
      }
      invert = text == "true";
    }
    // As the scenario validator counts them: invert: false is not given.
    if (params.Has("noise") == invert) {
      return ParamError(kind, "noise", "give exactly one of noise (a number) and invert: true");
    }
    double noise = 0;
    if (params.Has("noise")) {
      FD_ASSIGN_OR_RETURN(noise, params.Number("noise", 0, 100));
    }
    std::lock_guard lock(mutex_);
    const std::shared_ptr<const gpu::Metamodel> original = metamodel_;
    gpu::Metamodel corrupted = *original;
    if (invert) corrupted.Invert();
    if (noise > 0) corrupted.Perturb(noise, options_.seed + next_fault_);
    metamodel_ = std::make_shared<const gpu::Metamodel>(std::move(corrupted));
    const std::shared_ptr<const gpu::Metamodel> planted = metamodel_;
    lease.effect = invert ? "the metamodel's output is negated: it ranks subsets backwards"
                          : "metamodel weights carry noise of " + FormatNumber(noise) + "x their RMS";
    // Undo restores the original, unless a reload has replaced the model since.
    undo = [this, original, planted] {
      std::lock_guard restore_lock(mutex_);
      if (metamodel_ == planted) metamodel_ = original;
    };
  } else if (kind == "exporter-down" || kind == "database-unavailable" ||
             kind == "backup-target-failure" || kind == "feeder-stall") {
    FD_RETURN_IF_ERROR(params.Allow({}));
    lease.effect = kind == "exporter-down"          ? "the GPU exporter answers 503 to every scrape"
                   : kind == "database-unavailable" ? "job database calls fail with UNAVAILABLE"
                   : kind == "feeder-stall"         ? "jobs wait for their data; the device starves"
                                                    : "backups fail to write";
    undo = [] {};
  } else if (kind == "backup-scheduler-stop") {
    FD_RETURN_IF_ERROR(params.Allow({"lastSuccessAge"}));
    double age = -1;
    Duration age_duration{};
    if (params.Has("lastSuccessAge")) {
      FD_ASSIGN_OR_RETURN(age_duration, params.Time("lastSuccessAge"));
      age = std::chrono::duration<double>(age_duration).count();
    }
    {
      std::lock_guard lock(mutex_);
      backup_age_override_ = age;
    }
    lease.effect = age >= 0 ? "scheduled backups stop; the last success reads as " +
                                  FormatDuration(age_duration) + " old"
                            : "scheduled backups stop";
    undo = [this] {
      std::lock_guard lock(mutex_);
      backup_age_override_ = -1;
    };
  } else if (kind == "config-fault") {
    FD_RETURN_IF_ERROR(params.Allow({"key", "value"}));
    FD_ASSIGN_OR_RETURN(const std::string key, params.Text("key"));
    FD_ASSIGN_OR_RETURN(const std::string value, params.Text("value"));
    FD_ASSIGN_OR_RETURN(const ActionOutcome outcome, SetConfig(key, value));
    const std::string previous = outcome.before.at(key);
    lease.effect = key + " set to " + value + " (was " + previous + ")";
    undo = [this, key, previous] { (void)SetConfig(key, previous); };
  } else if (kind == "gpu-memory-leak") {
    FD_RETURN_IF_ERROR(params.Allow({"perJob", "rate"}));
    if (params.Has("perJob") == params.Has("rate")) {
      return ParamError(kind, "perJob",
                        "give exactly one of perJob (size per job) and rate (size per second)");
    }
    const std::string which = params.Has("perJob") ? "perJob" : "rate";
    FD_ASSIGN_OR_RETURN(const std::uint64_t bytes, params.Bytes(which));
    {
      std::lock_guard lock(mutex_);
      (which == "perJob" ? leak_per_job_ : leak_per_second_) = bytes;
    }
    lease.effect =
        which == "perJob"
            ? "each job leaves " + FormatSize(bytes) + " of device memory behind"
            : "device memory leaks at " + FormatSize(bytes) + " a second";
    undo = [this] {
      std::vector<gpu::DeviceBuffer> freed;
      std::lock_guard lock(mutex_);
      leak_per_job_ = 0;
      leak_per_second_ = 0;
      freed.swap(leaked_);
    };
  } else if (kind == "gpu-memory-hog") {
    FD_RETURN_IF_ERROR(params.Allow({"share", "device", "step"}));
    FD_ASSIGN_OR_RETURN(const double share, params.Ratio("share"));
    const std::uint64_t bytes =
        static_cast<std::uint64_t>(share * static_cast<double>(device_->memory_budget()));
    FD_ASSIGN_OR_RETURN(gpu::DeviceBuffer held,
                        device_->Allocate(std::max<std::uint64_t>(1, bytes)));
    auto buffer = std::make_shared<gpu::DeviceBuffer>(std::move(held));
    lease.effect = "holds " + FormatSize(bytes) + " of the device arena";
    undo = [buffer] { *buffer = gpu::DeviceBuffer(); };
  } else if (kind == "thermal") {
    FD_RETURN_IF_ERROR(params.Allow({"temperature", "rampTime", "slowdown"}));
    FD_ASSIGN_OR_RETURN(const double temperature, params.Number("temperature", 20, 110));
    double slowdown = 0;
    if (params.Has("slowdown")) {
      FD_ASSIGN_OR_RETURN(slowdown, params.Ratio("slowdown"));
    }
    gpu::SimulatedDevice* simulated = device_->simulated();
    if (simulated == nullptr) {
      // A real card is never heated or reclocked: its readings are overlaid
      // and the slowdown comes through the device throttle.
      return StartFault("telemetry-overlay", values, ttl);
    }
    // A cooling loss that brings even the idle die to the target: the model
    // heats with its time constant and throttles past its slowdown threshold.
    const gpu::ThermalModel model;
    const double loss = std::max(1.0, (temperature - model.ambient_c) /
                                          (model.thermal_resistance_c_per_w * model.idle_power_w));
    simulated->SetCoolingLoss(loss);
    if (slowdown > 0) FD_RETURN_IF_ERROR(device_->SetThrottle(1 - slowdown));
    lease.effect = "cooling " + FormatNumber(loss) + "x worse: the simulated die heats towards " +
                   FormatNumber(temperature) + " C";
    undo = [this, simulated, slowdown] {
      simulated->SetCoolingLoss(1);
      if (slowdown > 0) (void)device_->SetThrottle(1);
    };
  } else if (kind == "telemetry-overlay") {
    FD_RETURN_IF_ERROR(
        params.Allow({"temperature", "rampTime", "throttleReasons", "clockFactor", "slowdown"}));
    Overlay overlay;
    {
      std::lock_guard lock(mutex_);
      overlay.from_c =
          last_temperature_c_ > 0 ? last_temperature_c_ : gpu::ThermalModel{}.ambient_c;
    }
    overlay.to_c = overlay.from_c;
    if (params.Has("temperature")) {
      FD_ASSIGN_OR_RETURN(overlay.to_c, params.Number("temperature", 20, 110));
    }
    if (params.Has("rampTime")) {
      FD_ASSIGN_OR_RETURN(overlay.ramp, params.Time("rampTime"));
    }
    if (params.Has("clockFactor")) {
      FD_ASSIGN_OR_RETURN(overlay.clock_factor, params.Number("clockFactor", 0.05, 1));
    }
    if (params.Has("throttleReasons")) {
      // Names or numbers, comma-separated: sw_thermal, hw_thermal, power_cap.
      FD_ASSIGN_OR_RETURN(const std::string text, params.Text("throttleReasons"));
      std::uint64_t mask = 0;
      for (std::size_t start = 0; start <= text.size();) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string name = text.substr(start, comma - start);
        start = comma + 1;
        if (name == "sw_thermal") {
          mask |= gpu::kClockEventSwThermalSlowdown;
        } else if (name == "hw_thermal") {
          mask |= gpu::kClockEventHwThermalSlowdown;
        } else if (name == "power_cap") {
          mask |= gpu::kClockEventSwPowerCap;
        } else {
          std::uint64_t number = 0;
          const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), number);
          if (name.empty() || error != std::errc() || end != name.data() + name.size()) {
            return ParamError(
                kind, "throttleReasons",
                "expected sw_thermal, hw_thermal, power_cap or a number, got '" + name + "'");
          }
          mask |= number;
        }
      }
      overlay.reasons = mask;
    }
    double slowdown = 0;
    if (params.Has("slowdown")) {
      FD_ASSIGN_OR_RETURN(slowdown, params.Ratio("slowdown"));
      if (slowdown >= 1) return ParamError(kind, "slowdown", "must be under 100%");
    }
    overlay.started = clock_.Now();
    {
      std::lock_guard lock(mutex_);
      if (overlay_)
        return FD_STATUS(StatusCode::kAlreadyExists, "a telemetry overlay is already in force");
      overlay_ = overlay;
    }
    if (slowdown > 0) FD_RETURN_IF_ERROR(device_->SetThrottle(1 - slowdown));
    char text[160];
    std::snprintf(text, sizeof(text),
                  "telemetry reads %.1f C rising to %.1f C; clocks x%.2f; work %.0f%% slower",
                  overlay.from_c, overlay.to_c, overlay.clock_factor, slowdown * 100);
    lease.effect = text;
    undo = [this, slowdown] {
      {
        std::lock_guard lock(mutex_);
        overlay_.reset();
      }
      if (slowdown > 0) (void)device_->SetThrottle(1);
    };
  } else {
    return FD_STATUS(
        StatusCode::kInvalidArgument,
        "unknown fault kind '" + kind +
            "' (the pipeline's: stage-stall, error-injection, inference-delay, "
            "metamodel-corruption, "
            "exporter-down, database-unavailable, backup-target-failure, backup-scheduler-stop, "
            "config-fault, gpu-memory-leak, gpu-memory-hog, thermal, telemetry-overlay, "
            "feeder-stall)");
  }

  std::lock_guard lock(mutex_);
  lease.id = "fault-" + std::to_string(next_fault_++);
  lease.expires_at = UnixSeconds(clock_.WallNow()) + std::chrono::duration<double>(ttl).count();
  faults_[lease.id] = ActiveFault{lease, clock_.Now() + ttl, std::move(undo)};
  metrics_.Gauge("hsof_faults_active", {{"kind", kind}}).Set(1);
  logger_.Warn("faults", "fault started",
               {{"id", lease.id}, {"kind", kind}, {"effect", lease.effect}});
  faults_changed_.notify_all();
  return lease;
}

Result<FaultLease> PipelineService::RenewFault(const std::string& id, Duration ttl) {
  if (ttl <= Duration::zero() || ttl > std::chrono::hours(24)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "a fault lease needs a time to live in (0, 24h]");
  }
  std::lock_guard lock(mutex_);
  const auto it = faults_.find(id);
  if (it == faults_.end())
    return FD_STATUS(StatusCode::kNotFound, "no fault lease " + id + " (ended or lapsed)");
  it->second.expires = clock_.Now() + ttl;
  it->second.lease.expires_at =
      UnixSeconds(clock_.WallNow()) + std::chrono::duration<double>(ttl).count();
  return it->second.lease;
}

Result<FaultLease> PipelineService::StopFault(const std::string& id) {
  ActiveFault fault;
  {
    std::lock_guard lock(mutex_);
    const auto it = faults_.find(id);
    if (it == faults_.end())
      return FD_STATUS(StatusCode::kNotFound, "no fault lease " + id + " (ended or lapsed)");
    fault = std::move(it->second);
    faults_.erase(it);
  }
  // Undo actions take the locks they need themselves.
  fault.undo();
  metrics_.Gauge("hsof_faults_active", {{"kind", fault.lease.kind}}).Set(0);
  logger_.Info("faults", "fault stopped", {{"id", id}, {"kind", fault.lease.kind}});
  faults_changed_.notify_all();
  return fault.lease;
}

int PipelineService::StageRunning(int stage) {
  std::lock_guard lock(mutex_);
  const auto it = stage_running_.find(stage);
  return it == stage_running_.end() ? 0 : it->second;
}

std::vector<FaultLease> PipelineService::Faults() {
  std::lock_guard lock(mutex_);
  std::vector<FaultLease> leases;
  for (const auto& [id, fault] : faults_) leases.push_back(fault.lease);
  return leases;
}

void PipelineService::ExpireFaults(bool all) {
  std::vector<ActiveFault> ended;
  {
    std::lock_guard lock(mutex_);
    const MonotonicTime now = clock_.Now();
    for (auto it = faults_.begin(); it != faults_.end();) {
      if (!all && it->second.expires > now) {
        ++it;
        continue;
      }
      ended.push_back(std::move(it->second));
      it = faults_.erase(it);
    }
  }
  for (ActiveFault& fault : ended) {
    logger_.Warn("faults", all ? "fault undone at shutdown" : "fault lease lapsed: undone",
                 {{"id", fault.lease.id}, {"kind", fault.lease.kind}});
    fault.undo();
    metrics_.Gauge("hsof_faults_active", {{"kind", fault.lease.kind}}).Set(0);
  }
  if (!ended.empty()) faults_changed_.notify_all();
}

}  // namespace firedrill::pipeline
