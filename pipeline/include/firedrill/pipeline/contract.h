// The reference pipeline's contract surface as data: the metrics it exposes
// (named as HSOF's alert rules read them), its health statuses, and the
// configuration keys its Admin service accepts. Drills, rule linting and the
// scenario validator check against these lists; the pipeline serves them.
//
// Immutable; thread-safe to read.
#pragma once

#include <string>
#include <vector>

#include "firedrill/core/status.h"

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
  enum class Form { kWhole, kNumber, kBoolean, kDuration };
  std::string name;
  std::string help;
  Form form;
  double low = 0;   // kWhole, kNumber: the range; kDuration: the least seconds
  double high = 0;
};
// Keys the Admin service's SetConfig accepts.
const std::vector<ConfigKey>& ConfigKeys();
std::vector<std::string> ConfigKeyNames();

// What SetConfig makes of a value: the number it stands for (true/false as
// 1/0, a duration in seconds), or kInvalidArgument "KEY: expected a number
// in [0.001, 1.0], got '30%'". The scenario validator asks the same, so a
// bad config-fault or setConfig step is refused before a drill starts.
Result<double> ParseConfigValue(const std::string& key, const std::string& value);

}  // namespace firedrill::pipeline
