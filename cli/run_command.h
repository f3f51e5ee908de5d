// `firedrill run`: runs drills from scenario files against their target and
// writes each one's reports; exits with the worst verdict's code (0 held,
// 1 failed, 2 invalid, 3 aborted, 4 the harness could not do its job).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace firedrill::cli {

struct RunCommandOptions {
  std::vector<std::string> scenarios;
  std::vector<std::string> overrides;  // name=value
  std::string out_dir = "out/drills";
  double time_scale = 0;               // 0: the scenario's
  std::string monitoring;              // empty: the scenario's
  std::vector<std::string> reports;    // empty: the scenario's
  std::string journal;
  std::string pipeline;                // hsof-pipeline; empty: beside firedrill
  std::string progress = "auto";       // auto, tty, json, none
  std::string version;
};

CLI::App* AddRunCommand(CLI::App& app, RunCommandOptions& options);
int RunRunCommand(const RunCommandOptions& options);

}  // namespace firedrill::cli
