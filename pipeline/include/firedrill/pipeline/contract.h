// The reference pipeline's contract surface as data: the metrics it exposes
// (named as HSOF's alert rules read them), its health statuses, and the
// configuration keys its Admin service accepts. Drills, rule linting and the
// scenario validator check against these lists; the pipeline serves them.
//
// Immutable; thread-safe to read.
#pragma once

#include <string>
#include <vector>

namespace firedrill::pipeline {

enum class MetricType { kCounter, kGauge, kHistogram };

struct MetricInfo {
  std::string name;
  MetricType type;
  std::vector<std::string> labels;
  std::string help;
  bool gpu_exporter = false;  // also served on the GPU exporter listener
};

const std::vector<MetricInfo>& Metrics();

// Overall and per-component health, as /health reports it.
const std::vector<std::string>& HealthStatuses();    // HEALTHY, WARNING, CRITICAL, UNKNOWN
const std::vector<std::string>& HealthComponents();  // gpu, pipeline, model, database, backup

struct ConfigKey {
  std::string name;
  std::string help;
};
// Keys the Admin service's SetConfig accepts.
const std::vector<ConfigKey>& ConfigKeys();
std::vector<std::string> ConfigKeyNames();

}  // namespace firedrill::pipeline
