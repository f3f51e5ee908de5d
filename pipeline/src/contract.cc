#include "firedrill/pipeline/contract.h"

#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>

#include "firedrill/core/units.h"

namespace firedrill::pipeline {

const std::vector<MetricInfo>& Metrics() {
  using enum MetricType;
  static const std::vector<MetricInfo> metrics = {
      {"hsof_gpu_utilization_percent", kGauge, {"gpu_id"}, "GPU busy time, percent", true},
      {"hsof_gpu_memory_used_bytes", kGauge, {"gpu_id"}, "device memory in use, by the pipeline and any other process", true},
      {"hsof_gpu_memory_total_bytes",
       kGauge,
       {"gpu_id"},
       "device memory the pipeline may use",
       true},
      {"hsof_gpu_temperature_celsius", kGauge, {"gpu_id"}, "die temperature", true},
      {"hsof_stage_duration_seconds",
       kGauge,
       {"stage"},
       "how long the stage's current execution has been running"},
      {"hsof_selection_quality_score",
       kGauge,
       {},
       "quality of the last completed selection (0..1)"},
      {"hsof_metamodel_inference_latency_seconds",
       kHistogram,
       {},
       "metamodel inference batch latency"},
      {"hsof_errors_total", kCounter, {}, "failed jobs and API requests answered 5xx"},
      // Unlabelled, like hsof_errors_total, so that HSOF's error-ratio rule
      // (errors / requests) can match; the breakdown by code is below.
      {"hsof_requests_total", kCounter, {}, "API requests served"},
      {"hsof_request_duration_seconds", kHistogram, {}, "job latency, submission to completion"},
      {"hsof_features_processed_total", kCounter, {}, "features read by stage 1"},
      {"hsof_datasets_processed_total", kCounter, {}, "jobs completed"},
      {"hsof_feature_reduction_ratio", kGauge, {}, "stage-1 output features over input features"},
      {"hsof_compute_cost_dollars_total", kCounter, {}, "modelled compute cost"},
      {"hsof_health_check_status", kGauge, {"component"}, "1 healthy, 0 not"},
      {"hsof_backup_failed_total", kCounter, {}, "failed backups"},
      {"hsof_last_successful_backup_timestamp", kGauge, {}, "unix time of the last good backup"},
      {"hsof_backup_storage_used_bytes", kGauge, {}, "bytes in the backup directory"},
      {"hsof_backup_storage_total_bytes", kGauge, {}, "capacity of the backup directory"},
      // For the operator, beyond what HSOF's rules read.
      {"hsof_http_responses_total", kCounter, {"code"}, "API responses by HTTP status code"},
      {"hsof_http_request_duration_seconds", kHistogram, {}, "API request handling time"},
      {"hsof_jobs_submitted_total", kCounter, {}, "jobs accepted (idempotent replays not counted)"},
      {"hsof_jobs_failed_total", kCounter, {}, "jobs that ended failed"},
      {"hsof_jobs_queued", kGauge, {}, "accepted jobs waiting for a worker"},
      {"hsof_jobs_running", kGauge, {}, "jobs a worker is running"},
      {"hsof_workers", kGauge, {}, "job worker threads"},
      {"hsof_cpu_fallbacks_total",
       kCounter,
       {"reason"},
       "jobs run on the CPU because the device failed or was full"},
      {"hsof_faults_active", kGauge, {"kind"}, "fault leases in force"},
      {"hsof_gpu_throttle_ratio", kGauge, {"gpu_id"}, "speed of device work, 1 = full", true},
      {"hsof_gpu_power_watts", kGauge, {"gpu_id"}, "board power", true},
      {"hsof_gpu_sm_clock_mhz", kGauge, {"gpu_id"}, "SM clock", true},
      {"hsof_gpu_clock_event_reasons",
       kGauge,
       {"gpu_id"},
       "NVML clock-event (throttle) reason bits",
       true},
      {"hsof_gpu_info",
       kGauge,
       {"gpu_id", "backend", "name", "source"},
       "the device and where its telemetry comes from (1)",
       true},
  };
  return metrics;
}

const std::vector<std::string>& HealthStatuses() {
  static const std::vector<std::string> statuses = {"HEALTHY", "WARNING", "CRITICAL", "UNKNOWN"};
  return statuses;
}

const std::vector<std::string>& HealthComponents() {
  static const std::vector<std::string> components = {"gpu", "pipeline", "model", "database",
                                                      "backup"};
  return components;
}

const std::vector<ConfigKey>& ConfigKeys() {
  using enum ConfigKey::Form;
  static const std::vector<ConfigKey> keys = {
      {"MAX_CONCURRENT_BATCHES", "device batches allowed at once", kWhole, 1, 1024},
      {"GPU_MEMORY_FRACTION", "share of device memory the arena may use", kNumber, 0.01, 1},
      {"ENABLE_THERMAL_PROTECTION", "cut concurrency when the GPU runs hot", kBoolean},
      {"WORKERS", "job worker threads", kWhole, 0, 64},
      {"STAGE1_VARIANCE_THRESHOLD", "minimum variance for a feature to pass stage 1", kNumber, 0, 1e6},
      {"STAGE1_KEEP_RATIO", "share of features stage 1 keeps", kNumber, 0.001, 1},
      {"STAGE3_CV_FOLDS", "stage 3's cross-validation folds (0: each mode's own, 3, 5 or 10)", kWhole, 0, 100},
      {"METAMODEL_BATCH_SIZE", "candidate subsets scored per inference batch", kWhole, 8, 65536},
      {"ADMISSION_RATE", "jobs admitted per second (0: unlimited)", kNumber, 0, 1e6},
      {"BACKUP_INTERVAL", "time between scheduled backups", kDuration, 1},
      {"BACKUP_RETENTION", "backups kept", kWhole, 1, 1000},
  };
  return keys;
}

std::vector<std::string> ConfigKeyNames() {
  std::vector<std::string> names;
  for (const ConfigKey& key : ConfigKeys()) names.push_back(key.name);
  return names;
}

namespace {

std::string Show(double value) { return nlohmann::json(value).dump(); }

Status BadValue(const std::string& key, const std::string& expected, const std::string& value) {
  return FD_STATUS(StatusCode::kInvalidArgument, key + ": expected " + expected + ", got '" + value + "'");
}

}  // namespace

Result<double> ParseConfigValue(const std::string& key, const std::string& value) {
  const ConfigKey* found = nullptr;
  for (const ConfigKey& each : ConfigKeys()) {
    if (each.name == key) found = &each;
  }
  if (found == nullptr) {
    std::string keys;
    for (const std::string& name : ConfigKeyNames()) keys += (keys.empty() ? "" : ", ") + name;
    return FD_STATUS(StatusCode::kInvalidArgument, "unknown config key '" + key + "' (known: " + keys + ")");
  }
  const ConfigKey& config = *found;
  switch (config.form) {
    case ConfigKey::Form::kBoolean:
      if (value != "true" && value != "false") return BadValue(key, "true or false", value);
      return value == "true" ? 1.0 : 0.0;
    case ConfigKey::Form::kDuration: {
      Result<Duration> interval = ParseDuration(value);
      const double seconds = interval.ok() ? std::chrono::duration<double>(*interval).count() : 0;
      if (!interval.ok() || seconds < config.low) {
        return BadValue(key, "a duration of at least " + FormatDuration(std::chrono::seconds(static_cast<int>(config.low))),
                        value);
      }
      return seconds;
    }
    case ConfigKey::Form::kWhole: {
      long long number = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (error != std::errc() || end != value.data() + value.size() || number < config.low || number > config.high) {
        return BadValue(key, "an integer in [" + std::to_string(static_cast<long long>(config.low)) + ", " +
                                 std::to_string(static_cast<long long>(config.high)) + "]",
                        value);
      }
      // One fold leaves nothing to validate on.
      if (key == "STAGE3_CV_FOLDS" && number == 1) return BadValue(key, "0 (each mode's own) or 2 to 100", value);
      return static_cast<double>(number);
    }
    case ConfigKey::Form::kNumber: {
      double number = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (error != std::errc() || end != value.data() + value.size() || !(number >= config.low && number <= config.high)) {
        return BadValue(key, "a number in [" + Show(config.low) + ", " + Show(config.high) + "]", value);
      }
      return number;
    }
  }
  return BadValue(key, "a known form", value);
}

}  // namespace firedrill::pipeline
