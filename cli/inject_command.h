// `firedrill inject`: one fault from the catalogue, by hand, outside a
// scenario: journalled before it starts, renewed as a lease while it runs,
// and undone when its time is up, on Ctrl-C or SIGTERM, or (should this
// process be killed) by its guardian, its lease, or `firedrill recover`.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace firedrill::cli {

struct InjectCommandOptions {
  std::string kind;
  std::vector<std::string> fields;  // "share=50%"
  std::string duration;             // empty: until Ctrl-C or SIGTERM
  std::string ttl = "30s";
  std::string journal;
  std::string drill_dir;                // empty: a new folder, removed at the end
  std::vector<std::string> processes;   // "pipeline=4242"
  std::vector<std::string> proxies;     // "http=127.0.0.1:8080"
  std::string pipeline_grpc;
  std::string device = "auto";     // GPU faults: auto, cuda, cpu, simulated
  std::string shared_device_memory;  // the CPU twins' shared device memory folder
  std::string device_memory = "8GiB";
  std::string faults_token_file;        // else $HSOF_FAULTS_TOKEN
  std::string max_memory = "1GiB";
  std::string max_disk = "1GiB";
  int max_cpu_threads = 64;
  int max_faults = 4;
  std::vector<std::string> allowed_hosts;
  std::uint64_t seed = 1;
  int metrics_port = -1;  // serve firedrill_fault_active on 127.0.0.1:PORT (0: a free port)
  bool dry_run = false;
};

CLI::App* AddInjectCommand(CLI::App& app, InjectCommandOptions& options);
int RunInjectCommand(const InjectCommandOptions& options);

}  // namespace firedrill::cli
