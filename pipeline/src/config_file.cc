#include "firedrill/pipeline/config_file.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "firedrill/pipeline/contract.h"

namespace firedrill::pipeline {
namespace {

std::string Where(const std::string& path, const YAML::Mark& mark) {
  return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

Result<std::vector<ConfigSetting>> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return FD_STATUS(StatusCode::kNotFound, "cannot open config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& error) {
    return FD_STATUS(StatusCode::kInvalidArgument, Where(path, error.mark) + ": " + error.msg);
  }
  std::vector<ConfigSetting> settings;
  if (root.IsNull()) return settings;
  if (!root.IsMap()) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     Where(path, root.Mark()) + ": expected a mapping of config keys");
  }
  const std::vector<std::string> names = ConfigKeyNames();
  const std::set<std::string> known(names.begin(), names.end());
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    if (!entry.first.IsScalar() || !known.count(key)) {
      std::string list;
      for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
      return FD_STATUS(StatusCode::kInvalidArgument, Where(path, entry.first.Mark()) +
                                                         ": unknown config key '" + key +
                                                         "' (known: " + list + ")");
    }
    if (!entry.second.IsScalar()) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       Where(path, entry.second.Mark()) + ": " + key + " needs a single value");
    }
    settings.push_back({key, entry.second.Scalar(), Where(path, entry.second.Mark())});
  }
  return settings;
}

std::vector<ConfigSetting> ConfigFromEnvironment() {
  std::vector<ConfigSetting> settings;
  for (const std::string& key : ConfigKeyNames()) {
    if (const char* value = std::getenv(key.c_str()))
      settings.push_back({key, value, "environment"});
  }
  return settings;
}

}  // namespace firedrill::pipeline
