// `firedrill load`: load from flags or a workload file against a URL (native
// HTTP/1.1 requests, or unary gRPC calls) or an HSOF pipeline (jobs over its
// HTTP or gRPC API, with the ledger), with live progress on a terminal and a
// JSON summary with the histograms.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "firedrill/core/log.h"

namespace firedrill::cli {

struct LoadCommandOptions {
  std::string target;
  std::string file;
  std::string rate;
  std::string arrival = "constant";
  bool closed = false;
  std::string duration;  // empty: 10s
  int connections = 64;
  int threads = 1;
  std::string method = "GET";
  std::vector<std::string> headers;
  std::string body;
  std::string body_file;
  std::string timeout = "10s";
  std::string max_lag = "10ms";
  std::uint64_t seed = 1;
  bool jobs = false;
  std::string ledger;  // --jobs: the ledger file (default OUT/ledger.jsonl)
  std::string resume;  // a ledger file of an earlier run to settle
  std::string http_version = "1.1";
  std::string grpc_method;
  std::string cacert;
  std::string stress;  // "compute:40%"
  std::string device = "auto";
  std::string stress_memory_cap = "1GiB";
  std::string out_dir;
  bool json = false;
  std::string progress = "auto";
  bool allow_remote = false;
};

CLI::App* AddLoadCommand(CLI::App& app, LoadCommandOptions& options);
int RunLoadCommand(const LoadCommandOptions& options, Logger& logger);

}  // namespace firedrill::cli
