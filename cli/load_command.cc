#include "load_command.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "firedrill/core/units.h"
#include "firedrill/engine/loader.h"
#include "firedrill/workload/arrivals.h"
#include "firedrill/workload/http_load.h"

namespace firedrill::cli {
namespace {

namespace fs = std::filesystem;
using workload::ArrivalSchedule;
using workload::LoadReport;

constexpr int kExitOk = 0;
constexpr int kExitInvalidRun = 1;
constexpr int kExitUsage = 2;
constexpr int kExitHarness = 4;

std::atomic<bool> stop_requested{false};

extern "C" void OnInterrupt(int) {
  // The first Ctrl-C ends the run and still writes the summary; a second
  // one kills the program the usual way.
  stop_requested.store(true);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

// One phase of load: a name, a length, and how to build each thread's share
// of its arrivals (none: closed loop).
struct LoadPhase {
  std::string name;
  Duration duration{0};
  std::string description;
  double offered_rate = 0;
  std::function<Result<std::unique_ptr<ArrivalSchedule>>(int, int)> schedule;
};

std::string Milliseconds(std::int64_t nanoseconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2fms", static_cast<double>(nanoseconds) / 1e6);
  return text;
}

Result<std::vector<LoadPhase>> PhasesFromFlags(const LoadCommandOptions& options) {
  FD_ASSIGN_OR_RETURN(const Duration duration, ParseDuration(options.duration.empty() ? "10s" : options.duration));
  if (duration <= Duration::zero()) return FD_STATUS(StatusCode::kInvalidArgument, "--duration must be positive");
  LoadPhase phase;
  phase.name = "load";
  phase.duration = duration;
  if (options.closed) {
    if (!options.rate.empty()) {
      return FD_STATUS(StatusCode::kInvalidArgument, "--closed and --rate do not go together: closed loop sends as "
                                                     "fast as answers come back");
    }
    phase.description = "closed loop";
    return std::vector<LoadPhase>{phase};
  }
  if (options.rate.empty()) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "give --rate (open loop, e.g. --rate 1000/s), --closed (as fast as the target answers) "
                     "or -f a workload file");
  }
  FD_ASSIGN_OR_RETURN(const Rate rate, ParseRate(options.rate));
  if (rate.per_second <= 0) return FD_STATUS(StatusCode::kInvalidArgument, "--rate must be positive");
  const std::string kind = options.arrival;
  const std::uint64_t seed = options.seed;
  phase.description = kind + " " + FormatRate(rate);
  phase.offered_rate = rate.per_second;
  phase.schedule = [=](int index, int shares) -> Result<std::unique_ptr<ArrivalSchedule>> {
    std::unique_ptr<ArrivalSchedule> whole = kind == "poisson" ? workload::PoissonArrivals(rate, duration, seed)
                                                               : workload::ConstantArrivals(rate, duration);
    return workload::ShareOfSchedule(std::move(whole), index, shares);
  };
  return std::vector<LoadPhase>{phase};
}

Result<std::vector<LoadPhase>> PhasesFromFile(const LoadCommandOptions& options, std::uint64_t* seed) {
  const engine::LoadResult loaded = engine::LoadFile(options.file);
  if (!loaded.ok()) {
    std::string message;
    for (const auto& diagnostic : loaded.diagnostics) {
      std::ostringstream line;
      line << diagnostic;
      message += (message.empty() ? "" : "\n") + line.str();
    }
    return FD_STATUS(StatusCode::kInvalidArgument, message);
  }
  const std::vector<engine::Phase>* phases = nullptr;
  std::optional<std::uint64_t> file_seed;
  if (const engine::Workload* workload = loaded.workload()) {
    phases = &workload->phases;
    file_seed = workload->seed;
  } else if (const engine::Scenario* scenario = loaded.scenario()) {
    phases = &scenario->phases;
    file_seed = scenario->seed;
  } else {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     options.file + ": a runbook has no workload; give a Workload or Scenario file");
  }
  if (file_seed) *seed = *file_seed;
  const fs::path base = fs::path(options.file).parent_path();
  std::vector<LoadPhase> out;
  for (const engine::Phase& phase : *phases) {
    LoadPhase load;
    load.name = phase.name;
    load.duration = phase.duration;
    const std::string kind = phase.arrival.kind;
    if (kind == "closed") {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       options.file + ": phase " + phase.name +
                           ": closed-loop users need jobs (--jobs); for requests use --closed");
    }
    const nlohmann::json fields = phase.arrival.fields;
    const std::uint64_t phase_seed = *seed + out.size();
    auto probe = workload::MakeArrivalSchedule(kind, fields, phase.duration, phase_seed, base);
    if (!probe.ok()) return probe.status().WithContext(options.file + ": phase " + phase.name);
    load.offered_rate = (*probe)->expected_sends() / std::chrono::duration<double>(phase.duration).count();
    load.description = kind;
    if (fields.contains("rate")) load.description += " " + fields["rate"].get<std::string>();
    load.schedule = [=](int index, int shares) -> Result<std::unique_ptr<ArrivalSchedule>> {
      FD_ASSIGN_OR_RETURN(auto whole, workload::MakeArrivalSchedule(kind, fields, phase.duration, phase_seed, base));
      return workload::ShareOfSchedule(std::move(whole), index, shares);
    };
    out.push_back(std::move(load));
  }
  return out;
}

void PrintProgress(const std::string& phase, Duration length, const workload::LoadProgress& progress) {
  char line[256];
  std::snprintf(line, sizeof line,
                "\r\033[K[%s] %5.1fs/%.0fs  %9.1f/s  in flight %lld  waiting %lld  p50 %s  p99 %s  errors %lld",
                phase.c_str(), std::chrono::duration<double>(progress.elapsed).count(),
                std::chrono::duration<double>(length).count(), progress.rate,
                static_cast<long long>(progress.in_flight), static_cast<long long>(progress.waiting),
                Milliseconds(progress.p50_ns).c_str(), Milliseconds(progress.p99_ns).c_str(),
                static_cast<long long>(progress.errors));
  std::fputs(line, stderr);
  std::fflush(stderr);
}

Status WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return FD_STATUS(StatusCode::kUnavailable, "cannot write " + path.string());
  return Status();
}

int RunRequestLoad(const LoadCommandOptions& options, std::vector<LoadPhase> phases, Logger& logger) {
  workload::HttpLoadOptions http;
  http.url = options.target;
  http.method = options.method;
  http.headers = options.headers;
  http.body = options.body;
  if (!options.body_file.empty()) {
    std::ifstream in(options.body_file, std::ios::binary);
    if (!in) {
      std::cerr << "firedrill load: --body-file " << options.body_file << ": cannot read it\n";
      return kExitUsage;
    }
    http.body.assign(std::istreambuf_iterator<char>(in), {});
  }
  http.threads = options.threads;
  http.connections = options.connections;
  http.allow_remote = options.allow_remote;
  http.stop = &stop_requested;
  auto timeout = ParseDuration(options.timeout);
  if (!timeout.ok()) {
    std::cerr << "firedrill load: --timeout: " << timeout.status().message() << '\n';
    return kExitUsage;
  }
  http.timeout = *timeout;
  const bool live = options.progress == "always" || (options.progress == "auto" && isatty(STDERR_FILENO));

  nlohmann::json summary;
  summary["target"] = options.target;
  summary["seed"] = options.seed;
  summary["phases"] = nlohmann::json::array();
  bool all_valid = true;
  std::string table;
  for (const LoadPhase& phase : phases) {
    if (stop_requested.load()) break;
    http.duration = phase.duration;
    http.schedule = phase.schedule;
    http.arrival_description = phase.description;
    http.offered_rate = phase.offered_rate;
    if (live) {
      http.progress = [&](const workload::LoadProgress& progress) { PrintProgress(phase.name, phase.duration, progress); };
    }
    logger.Info("load", "phase starts", {{"phase", phase.name}, {"arrival", phase.description},
                                         {"duration", FormatDuration(phase.duration)}});
    Result<LoadReport> report = workload::RunHttpLoad(http);
    if (live) std::fputs("\r\033[K", stderr);
    if (!report.ok()) {
      const bool usage = report.status().code() == StatusCode::kInvalidArgument;
      std::cerr << "firedrill load: " << report.status().message() << '\n';
      return usage ? kExitUsage : kExitHarness;
    }
    all_valid = all_valid && report->valid;
    nlohmann::json entry = report->ToJson();
    entry["phase"] = phase.name;
    summary["phases"].push_back(std::move(entry));
    table += "phase " + phase.name + ": " + report->Summary();
  }
  summary["valid"] = all_valid;
  summary["interrupted"] = stop_requested.load();
  if (!options.out_dir.empty()) {
    std::error_code error;
    fs::create_directories(options.out_dir, error);
    const Status written = WriteFile(fs::path(options.out_dir) / "load-summary.json", summary.dump(2) + "\n");
    if (!written.ok()) {
      std::cerr << "firedrill load: " << written.message() << '\n';
      return kExitHarness;
    }
  }
  if (options.json) {
    std::cout << summary.dump(2) << '\n';
  } else {
    std::cout << table;
    if (!options.out_dir.empty()) std::cout << "summary and histograms: " << options.out_dir << "/load-summary.json\n";
  }
  return all_valid ? kExitOk : kExitInvalidRun;
}

}  // namespace

CLI::App* AddLoadCommand(CLI::App& app, LoadCommandOptions& options) {
  CLI::App* load = app.add_subcommand(
      "load", "Send load to a URL or an HSOF pipeline and measure it honestly (open loop, no coordinated omission)");
  load->add_option("target", options.target, "http://host:port/path (requests), or with --jobs the pipeline")
      ->required();
  load->add_option("-f,--file", options.file, "a Workload (or Scenario) file: its phases and job mix");
  load->add_option("-r,--rate", options.rate, "open-loop rate, e.g. 10000/s");
  load->add_option("--arrival", options.arrival, "constant or poisson (with --rate)")
      ->check(CLI::IsMember({"constant", "poisson"}))
      ->capture_default_str();
  load->add_flag("--closed", options.closed, "closed loop: each connection sends again when answered (saturation)");
  load->add_option("-d,--duration", options.duration, "how long to send (with --rate or --closed; 10s by default)");
  load->add_option("-c,--connections", options.connections, "kept-alive connections in all")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  load->add_option("-t,--threads", options.threads, "generator threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  load->add_option("-X,--method", options.method, "HTTP method")->capture_default_str();
  load->add_option("-H,--header", options.headers, "extra header \"Name: value\" (repeatable)");
  load->add_option("--body", options.body, "request body");
  load->add_option("--body-file", options.body_file, "request body from a file");
  load->add_option("--timeout", options.timeout, "a request unanswered this long is an error")->capture_default_str();
  load->add_option("--seed", options.seed, "seed for random arrivals (a workload file's seed wins)")
      ->capture_default_str();
  load->add_flag("--jobs", options.jobs, "the target is an HSOF pipeline: submit jobs and follow them (ledger)");
  load->add_option("-o,--out", options.out_dir, "write load-summary.json (with the histograms) here");
  load->add_flag("--json", options.json, "print the JSON summary on stdout instead of the table");
  load->add_option("--progress", options.progress, "live progress line on stderr: auto (on a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  load->add_flag("--allow-remote", options.allow_remote, "allow a target that is not on loopback");
  load->footer(
      "Latency is measured from each request's intended send time (and, as 'uncorrected', from when it\n"
      "really went out). A run where the generator, not the target, was the bottleneck is marked INVALID.\n"
      "Exit 0 for a valid run, 1 for an invalid one, 2 for bad usage or a bad file, 4 when it could not run.\n"
      "Examples:\n"
      "  firedrill load http://127.0.0.1:8080/ --rate 10000/s -d 30s -c 64\n"
      "  firedrill load http://127.0.0.1:8080/ --closed -c 100 -d 10s       # saturation, like wrk\n"
      "  firedrill load http://127.0.0.1:8080/healthz -f workloads/steps.yaml -o out/\n"
      "  firedrill load --jobs http://127.0.0.1:44979 -f workloads/steady-jobs.yaml -o out/");
  return load;
}

int RunLoadCommand(const LoadCommandOptions& options, Logger& logger) {
  if (!options.file.empty() && (!options.rate.empty() || options.closed || !options.duration.empty())) {
    std::cerr << "firedrill load: -f " << options.file
              << " gives the phases; --rate, --closed and --duration are for load without a file\n";
    return kExitUsage;
  }
  std::uint64_t seed = options.seed;
  Result<std::vector<LoadPhase>> phases =
      options.file.empty() ? PhasesFromFlags(options) : PhasesFromFile(options, &seed);
  if (!phases.ok()) {
    std::cerr << (options.file.empty() ? "firedrill load: " : "") << phases.status().message() << '\n';
    return kExitUsage;
  }
  if (options.jobs) {
    std::cerr << "firedrill load: --jobs is not available in this build yet\n";
    return kExitUsage;
  }
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  LoadCommandOptions with_seed = options;
  with_seed.seed = seed;
  return RunRequestLoad(with_seed, std::move(*phases), logger);
}

}  // namespace firedrill::cli
