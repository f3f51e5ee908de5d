// hsof-pipeline's configuration file: a YAML mapping of the Admin config keys
// (contract.h's ConfigKeys) to values, applied at start-up before the
// environment, which applies before nothing else (environment wins).
//
//   MAX_CONCURRENT_BATCHES: 4
//   GPU_MEMORY_FRACTION: 0.8
//   ENABLE_THERMAL_PROTECTION: true
#pragma once

#include <string>
#include <vector>

#include "firedrill/core/status.h"

namespace firedrill::pipeline {

struct ConfigSetting {
  std::string key;
  std::string value;
  std::string where;  // "file:line:column" of the value, or "environment"
};

// Errors name file:line:column.
Result<std::vector<ConfigSetting>> ReadConfigFile(const std::string& path);
// The config keys set in the environment, under the same names.
std::vector<ConfigSetting> ConfigFromEnvironment();

}  // namespace firedrill::pipeline
