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
#include <thread>

#include "firedrill/core/units.h"
#include "firedrill/engine/loader.h"
#include "firedrill/workload/arrivals.h"
#include "firedrill/workload/curl_load.h"
#include "firedrill/workload/grpc_client.h"
#include "firedrill/workload/http_job_client.h"
#include "firedrill/workload/http_load.h"
#include "firedrill/workload/job_load.h"
#include "firedrill/workload/stress_phase.h"

namespace firedrill::cli {
namespace {

namespace fs = std::filesystem;
using workload::ArrivalSchedule;
using workload::LedgerSummary;
using workload::LoadReport;

constexpr int kExitOk = 0;
constexpr int kExitInvalidRun = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 3;
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
// of its arrivals (none: closed loop). Jobs also use the phase's own
// arrival spec (closed-loop users included) and in-flight cap.
struct LoadPhase {
  std::string name;
  Duration duration{0};
  std::string description;
  double offered_rate = 0;
  std::function<Result<std::unique_ptr<ArrivalSchedule>>(int, int)> schedule;
  std::string arrival_kind;
  nlohmann::json arrival_fields;
  std::optional<std::int64_t> max_in_flight;
  std::optional<workload::StressOptions> stress;  // GPU stress beside the load (length set per phase)
};

// What a workload file adds to its phases: the job mix.
struct WorkloadSource {
  std::vector<LoadPhase> phases;
  std::vector<nlohmann::json> job_mix;
  fs::path base_dir;
};

std::string Milliseconds(std::int64_t nanoseconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2fms", static_cast<double>(nanoseconds) / 1e6);
  return text;
}

// "compute:40%" -> stress options (the length is the phase's).
Result<workload::StressOptions> ParseStress(const LoadCommandOptions& options, std::string_view mode,
                                            std::string_view intensity, Duration length) {
  workload::StressOptions stress;
  FD_ASSIGN_OR_RETURN(stress.mode, workload::ParseStressMode(mode));
  FD_ASSIGN_OR_RETURN(stress.intensity, ParseRatio(intensity));
  Result<std::uint64_t> cap = ParseSize(options.stress_memory_cap);
  if (!cap.ok()) return cap.status().WithContext("--stress-memory-cap");
  stress.memory_cap = *cap;
  stress.length = length;
  return stress;
}

Result<std::vector<LoadPhase>> PhasesFromFlags(const LoadCommandOptions& options) {
  FD_ASSIGN_OR_RETURN(const Duration duration, ParseDuration(options.duration.empty() ? "10s" : options.duration));
  if (duration <= Duration::zero()) return FD_STATUS(StatusCode::kInvalidArgument, "--duration must be positive");
  LoadPhase phase;
  phase.name = "load";
  phase.duration = duration;
  if (!options.stress.empty()) {
    const std::size_t colon = options.stress.find(':');
    auto stress = ParseStress(options, options.stress.substr(0, colon),
                              colon == std::string::npos ? "100%" : options.stress.substr(colon + 1), duration);
    if (!stress.ok()) return stress.status().WithContext("--stress " + options.stress);
    phase.stress = *stress;
  }
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
  phase.arrival_kind = kind;
  phase.arrival_fields = {{"rate", FormatRate(rate)}};
  phase.schedule = [=](int index, int shares) -> Result<std::unique_ptr<ArrivalSchedule>> {
    std::unique_ptr<ArrivalSchedule> whole = kind == "poisson" ? workload::PoissonArrivals(rate, duration, seed)
                                                               : workload::ConstantArrivals(rate, duration);
    return workload::ShareOfSchedule(std::move(whole), index, shares);
  };
  return std::vector<LoadPhase>{phase};
}

Result<WorkloadSource> PhasesFromFile(const LoadCommandOptions& options, std::uint64_t* seed) {
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
  const std::vector<engine::Spec>* mix = nullptr;
  std::optional<std::uint64_t> file_seed;
  if (const engine::Workload* workload = loaded.workload()) {
    phases = &workload->phases;
    mix = &workload->job_mix;
    file_seed = workload->seed;
  } else if (const engine::Scenario* scenario = loaded.scenario()) {
    phases = &scenario->phases;
    mix = &scenario->job_mix;
    file_seed = scenario->seed;
  } else {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     options.file + ": a runbook has no workload; give a Workload or Scenario file");
  }
  if (file_seed) *seed = *file_seed;
  const fs::path base = fs::path(options.file).parent_path();
  WorkloadSource source;
  source.base_dir = base;
  for (const engine::Spec& kind : *mix) source.job_mix.push_back(kind.fields);
  std::vector<LoadPhase>& out = source.phases;
  for (const engine::Phase& phase : *phases) {
    LoadPhase load;
    load.name = phase.name;
    load.duration = phase.duration;
    const std::string kind = phase.arrival.kind;
    const nlohmann::json fields = phase.arrival.fields;
    load.arrival_kind = kind;
    load.arrival_fields = fields;
    load.max_in_flight = phase.max_in_flight;
    if (phase.stress) {
      auto stress = ParseStress(options, phase.stress->kind, phase.stress->Text("intensity"), phase.duration);
      if (!stress.ok()) return stress.status().WithContext(options.file + ": phase " + phase.name + ": stress");
      load.stress = *stress;
    }
    if (kind == "closed") {
      if (!options.jobs) {
        return FD_STATUS(StatusCode::kInvalidArgument,
                         options.file + ": phase " + phase.name +
                             ": closed-loop users need jobs (--jobs); for requests use --closed");
      }
      load.description = "closed " + fields.dump();
      out.push_back(std::move(load));
      continue;
    }
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
  return source;
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


// "grpc://host:port" -> "host:port", when the target is a gRPC one.
std::optional<std::string> GrpcTarget(const std::string& target) {
  constexpr std::string_view kScheme = "grpc://";
  if (target.rfind(kScheme, 0) != 0) return std::nullopt;
  std::string rest = target.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  return rest;
}

std::string HostOf(const std::string& host_port) {
  if (!host_port.empty() && host_port.front() == '[') return host_port.substr(1, host_port.find(']') - 1);
  return host_port.substr(0, host_port.rfind(':'));
}

// Error texts in a summary come from servers and need not be UTF-8.
std::string Dump(const nlohmann::json& summary) {
  return summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Writes the summary where asked and prints it: the table, or the JSON.
int Finish(const LoadCommandOptions& options, const nlohmann::json& summary, const std::string& table, int code) {
  if (!options.out_dir.empty()) {
    std::error_code error;
    fs::create_directories(options.out_dir, error);
    const Status written = WriteFile(fs::path(options.out_dir) / "load-summary.json", Dump(summary) + "\n");
    if (!written.ok()) {
      std::cerr << "firedrill load: " << written.message() << '\n';
      return kExitHarness;
    }
  }
  if (options.json) {
    std::cout << Dump(summary) << '\n';
  } else {
    std::cout << table;
    if (!options.out_dir.empty()) std::cout << "summary and histograms: " << options.out_dir << "/load-summary.json\n";
  }
  return code;
}

// The device stress kernels run on, probed once and only when a phase asks.
class StressDevice {
 public:
  explicit StressDevice(const LoadCommandOptions& options) : options_(options) {}
  Result<gpu::DeviceInfo> Get() {
    if (!device_) {
      gpu::BackendChoice choice = gpu::BackendChoice::kAuto;
      if (!gpu::ParseBackendChoice(options_.device, &choice)) {
        return FD_STATUS(StatusCode::kInvalidArgument, "--device " + options_.device + ": expected auto, cuda, cpu or simulated");
      }
      FD_ASSIGN_OR_RETURN(device_, gpu::ProbeDevice(choice));
      std::cerr << "firedrill load: GPU stress on " << gpu::BackendName(device_->backend) << " (" << device_->name
                << ")" << (device_->fallback_reason.empty() ? "" : "; " + device_->fallback_reason) << '\n';
    }
    return *device_;
  }

 private:
  const LoadCommandOptions& options_;
  std::optional<gpu::DeviceInfo> device_;
};

Result<std::unique_ptr<workload::StressPhase>> StartStress(const LoadPhase& phase, StressDevice& device,
                                                           Clock& clock) {
  if (!phase.stress) return std::unique_ptr<workload::StressPhase>();
  FD_ASSIGN_OR_RETURN(const gpu::DeviceInfo info, device.Get());
  return workload::StressPhase::Start(*phase.stress, info, clock);
}

bool ShowProgress(const LoadCommandOptions& options) {
  return options.progress == "always" || (options.progress == "auto" && isatty(STDERR_FILENO));
}

std::string StressTable(const workload::StressResult& stress) {
  char line[200];
  if (stress.mode == workload::StressMode::kMemory) {
    std::snprintf(line, sizeof line, "  GPU stress memory %.0f%%: held %s for %.1f s\n", stress.intensity * 100,
                  FormatSize(stress.held_bytes).c_str(), std::chrono::duration<double>(stress.ran).count());
  } else {
    std::snprintf(line, sizeof line, "  GPU stress %s %.0f%%: %lld slices, %.3g %s\n",
                  std::string(workload::StressModeName(stress.mode)).c_str(), stress.intensity * 100,
                  static_cast<long long>(stress.slices), stress.Rate(),
                  stress.mode == workload::StressMode::kCompute ? "FLOP/s" : "B/s");
  }
  std::string out = line;
  if (!stress.status.ok()) out += "  GPU stress failed: " + stress.status.message() + "\n";
  return out;
}

// Request load, phase after phase: native HTTP/1.1 for http:// targets,
// unary gRPC calls for grpc:// ones.
int RunRequests(const LoadCommandOptions& options, std::vector<LoadPhase> phases, Logger& logger) {
  std::string body = options.body;
  if (!options.body_file.empty()) {
    std::ifstream in(options.body_file, std::ios::binary);
    if (!in) {
      std::cerr << "firedrill load: --body-file " << options.body_file << ": cannot read it\n";
      return kExitUsage;
    }
    body.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto timeout = ParseDuration(options.timeout);
  if (!timeout.ok()) {
    std::cerr << "firedrill load: --timeout: " << timeout.status().message() << '\n';
    return kExitUsage;
  }
  auto max_lag = ParseDuration(options.max_lag);
  if (!max_lag.ok() || *max_lag <= Duration::zero()) {
    std::cerr << "firedrill load: --max-lag " << options.max_lag << ": "
              << (max_lag.ok() ? std::string("must be positive") : std::string(max_lag.status().message())) << '\n';
    return kExitUsage;
  }
  const std::optional<std::string> grpc = GrpcTarget(options.target);
  if (grpc && options.grpc_method.empty()) {
    std::cerr << "firedrill load: a grpc:// target needs --grpc-method /package.Service/Method (and --body-file "
                 "with the serialized request), or --jobs for an HSOF pipeline\n";
    return kExitUsage;
  }
  const bool live = ShowProgress(options);
  StressDevice device(options);
  RealClock clock;

  nlohmann::json summary;
  summary["target"] = options.target;
  summary["seed"] = options.seed;
  summary["phases"] = nlohmann::json::array();
  bool all_valid = true;
  std::string table;
  for (const LoadPhase& phase : phases) {
    if (stop_requested.load()) break;
    logger.Info("load", "phase starts", {{"phase", phase.name}, {"arrival", phase.description},
                                         {"duration", FormatDuration(phase.duration)}});
    auto stress = StartStress(phase, device, clock);
    if (!stress.ok()) {
      std::cerr << "firedrill load: phase " << phase.name << ": GPU stress: " << stress.status().message() << '\n';
      return stress.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitHarness;
    }
    Result<LoadReport> report = LoadReport{};
    if (grpc) {
      workload::GrpcUnaryLoadOptions calls;
      calls.target = *grpc;
      calls.method = options.grpc_method;
      calls.payload = body;
      calls.concurrency = options.connections;
      calls.duration = phase.duration;
      calls.timeout = *timeout;
      calls.arrival_description = phase.description;
      calls.offered_rate = phase.offered_rate;
      calls.allow_remote = options.allow_remote;
      calls.stop = &stop_requested;
      std::unique_ptr<ArrivalSchedule> schedule;
      if (phase.schedule) {
        auto made = phase.schedule(0, 1);
        if (!made.ok()) {
          std::cerr << "firedrill load: " << made.status().message() << '\n';
          return kExitUsage;
        }
        schedule = std::move(*made);
      }
      report = workload::RunGrpcUnaryLoad(calls, schedule.get());
    } else {
      workload::HttpLoadOptions http;
      http.url = options.target;
      http.method = options.method;
      http.headers = options.headers;
      http.body = body;
      http.threads = options.threads;
      http.connections = options.connections;
      http.allow_remote = options.allow_remote;
      http.tls_ca_file = options.cacert;
      http.stop = &stop_requested;
      http.timeout = *timeout;
      http.duration = phase.duration;
      http.schedule = phase.schedule;
      http.arrival_description = phase.description;
      http.offered_rate = phase.offered_rate;
      if (live) {
        http.progress = [&](const workload::LoadProgress& progress) {
          PrintProgress(phase.name, phase.duration, progress);
        };
      }
      // The native client speaks HTTP/1.1 in clear text; libcurl does TLS and h2.
      const bool curl = options.http_version == "2" || options.target.rfind("https://", 0) == 0;
      report = curl ? workload::RunCurlLoad(http, options.http_version == "2" ? workload::CurlHttpVersion::kHttp2
                                                                            : workload::CurlHttpVersion::kHttp1_1)
                    : workload::RunHttpLoad(http);
    }
    if (live) std::fputs("\r\033[K", stderr);
    if (!report.ok()) {
      const bool usage = report.status().code() == StatusCode::kInvalidArgument;
      std::cerr << "firedrill load: " << report.status().message() << '\n';
      return usage ? kExitUsage : kExitHarness;
    }
    report->Judge(*max_lag);
    all_valid = all_valid && report->valid;
    nlohmann::json entry = report->ToJson();
    entry["phase"] = phase.name;
    table += "phase " + phase.name + ": " + report->Summary();
    if (*stress) {
      (*stress)->Stop();  // the load may have ended early (Ctrl-C)
      const workload::StressResult result = (*stress)->Wait();
      entry["stress"] = result.ToJson();
      table += StressTable(result);
    }
    summary["phases"].push_back(std::move(entry));
  }
  summary["valid"] = all_valid;
  summary["interrupted"] = stop_requested.load();
  if (stop_requested.load()) table += "interrupted: the run was cut short (Ctrl-C)\n";
  return Finish(options, summary, table,
                stop_requested.load() ? kExitInterrupted : all_valid ? kExitOk : kExitInvalidRun);
}

Result<std::unique_ptr<workload::JobClient>> MakeJobClient(const LoadCommandOptions& options) {
  if (const std::optional<std::string> grpc = GrpcTarget(options.target)) {
    FD_RETURN_IF_ERROR(workload::CheckLoadTarget(options.target, HostOf(*grpc), options.allow_remote));
    workload::GrpcJobClientOptions client;
    client.target = *grpc;
    return workload::MakeGrpcJobClient(client);
  }
  std::string base = options.target;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::size_t scheme = base.find("://");
  if (scheme == std::string::npos || (base.substr(0, scheme) != "http" && base.substr(0, scheme) != "https")) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     options.target + ": with --jobs, give the pipeline as http://host:port or grpc://host:port");
  }
  FD_RETURN_IF_ERROR(
      workload::CheckLoadTarget(options.target, HostOf(base.substr(scheme + 3)), options.allow_remote));
  workload::HttpJobClientOptions client;
  client.base_url = base;
  client.http_version = options.http_version == "2" ? workload::HttpVersion::kHttp2 : workload::HttpVersion::kHttp1_1;
  return workload::MakeHttpJobClient(client);
}

std::string LedgerTable(const LedgerSummary& ledger) {
  return "  ledger: " + ledger.ToString() + "\n  nothing lost: " + (ledger.NothingLost() ? "yes" : "NO") + "\n";
}

// Jobs against an HSOF pipeline, with the ledger. The ledger file is written
// as the run goes, so a run killed half-way can be settled with --resume.
int RunJobs(const LoadCommandOptions& options, WorkloadSource source) {
  Result<std::unique_ptr<workload::JobClient>> client = MakeJobClient(options);
  if (!client.ok()) {
    std::cerr << "firedrill load: " << client.status().message() << '\n';
    return kExitUsage;
  }
  Result<workload::JobMix> mix = workload::JobMix::FromJson(source.job_mix, options.seed);
  if (!mix.ok()) {
    std::cerr << "firedrill load: job mix: " << mix.status().message() << '\n';
    return kExitUsage;
  }
  workload::JobLoadOptions load_options;
  for (std::size_t i = 0; i < source.phases.size(); ++i) {
    const LoadPhase& phase = source.phases[i];
    Result<workload::JobPhase> job_phase = workload::MakeJobPhase(phase.name, phase.duration, phase.max_in_flight, phase.arrival_kind,
                                                                  phase.arrival_fields, options.seed + i, source.base_dir);
    if (!job_phase.ok()) {
      std::cerr << "firedrill load: " << job_phase.status().message() << '\n';
      return kExitUsage;
    }
    load_options.phases.push_back(std::move(*job_phase));
  }
  RealClock clock;
  load_options.run_id =
      "fd-" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch()).count());

  std::string ledger_path = options.ledger;
  if (ledger_path.empty() && !options.out_dir.empty()) {
    std::error_code error;
    fs::create_directories(options.out_dir, error);
    ledger_path = (fs::path(options.out_dir) / "ledger.jsonl").string();
  }
  std::unique_ptr<workload::JobLedger> ledger;
  if (ledger_path.empty()) {
    ledger = std::make_unique<workload::JobLedger>();
  } else {
    auto opened = workload::JobLedger::OpenFile(ledger_path);
    if (!opened.ok()) {
      std::cerr << "firedrill load: ledger: " << opened.status().message() << '\n';
      return kExitHarness;
    }
    ledger = std::move(*opened);
    std::cerr << "firedrill load: ledger " << ledger_path << " (if this run is cut short, settle it with: firedrill load "
              << options.target << " --jobs --resume " << ledger_path << ")\n";
  }
  auto load = workload::JobLoad::Make(std::move(load_options), std::move(*mix), **client, *ledger, clock);
  if (!load.ok()) {
    std::cerr << "firedrill load: " << load.status().message() << '\n';
    return kExitUsage;
  }
  const bool live = ShowProgress(options);
  StressDevice device(options);
  bool any_stress = false;
  for (const LoadPhase& phase : source.phases) any_stress = any_stress || phase.stress.has_value();
  if (any_stress && !device.Get().ok()) {
    std::cerr << "firedrill load: GPU stress: " << device.Get().status().message() << '\n';
    return kExitHarness;
  }
  const MonotonicTime start = clock.Now();
  (*load)->Start();
  // Stress follows the same phase boundaries as the jobs, on its own thread.
  std::vector<std::pair<std::string, workload::StressResult>> stress_results;
  std::atomic<bool> load_done{false};
  std::thread stress_thread([&] {
    MonotonicTime phase_start = start;
    for (const LoadPhase& phase : source.phases) {
      if (load_done.load()) break;
      auto stress = StartStress(phase, device, clock);
      if (!stress.ok()) {
        workload::StressResult failed;
        failed.status = stress.status();
        stress_results.emplace_back(phase.name, failed);
      }
      phase_start += phase.duration;
      while (!load_done.load() && clock.Now() < phase_start) {
        clock.SleepUntil(std::min(phase_start, clock.Now() + std::chrono::milliseconds(100)));
      }
      // Ends with its phase, or at once when the jobs ended early.
      if (stress.ok() && *stress) {
        (*stress)->Stop();
        stress_results.emplace_back(phase.name, (*stress)->Wait());
      }
    }
  });
  while (!(*load)->done()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (!live) continue;
    const LedgerSummary now = ledger->Summary();
    std::fprintf(stderr, "\r\033[K%5.1fs  submitted %lld  accepted %lld  completed %lld  failed %lld  in flight %lld",
                 std::chrono::duration<double>(clock.Now() - start).count(), static_cast<long long>(now.submitted),
                 static_cast<long long>(now.accepted), static_cast<long long>(now.completed),
                 static_cast<long long>(now.failed), static_cast<long long>((*client)->in_flight()));
    std::fflush(stderr);
  }
  if (live) std::fputs("\r\033[K", stderr);
  const workload::JobLoadResult result = (*load)->Wait();
  load_done.store(true);
  stress_thread.join();
  (*client)->Shutdown();

  nlohmann::json summary = result.ToJson();
  summary["target"] = options.target;
  summary["seed"] = options.seed;
  if (!ledger_path.empty()) summary["ledger_file"] = ledger_path;
  std::string table;
  char line[256];
  for (const workload::JobPhaseCounts& phase : result.phases) {
    std::snprintf(line, sizeof line,
                  "phase %s: sent %lld, accepted %lld, rejected %lld, completed %lld, failed %lld, lost %lld, "
                  "unanswered %lld, unsent %lld\n",
                  phase.name.c_str(), static_cast<long long>(phase.sent), static_cast<long long>(phase.accepted),
                  static_cast<long long>(phase.rejected), static_cast<long long>(phase.completed),
                  static_cast<long long>(phase.failed), static_cast<long long>(phase.lost),
                  static_cast<long long>(phase.unanswered), static_cast<long long>(phase.unsent));
    table += line;
  }
  const auto ms = [](std::int64_t ns) { return static_cast<double>(ns) / 1e6; };
  std::snprintf(line, sizeof line, "  job latency  p50 %.1f ms  p99 %.1f ms  max %.1f ms (uncorrected p99 %.1f ms)\n",
                ms(result.corrected.ValueAtQuantile(0.5)), ms(result.corrected.ValueAtQuantile(0.99)),
                ms(result.corrected.max()), ms(result.uncorrected.ValueAtQuantile(0.99)));
  table += line;
  table += LedgerTable(result.ledger);
  for (const auto& [name, stress] : stress_results) {
    summary["stress"][name] = stress.ToJson();
    table += "phase " + name + ":" + StressTable(stress);
  }
  return Finish(options, summary, table, result.ledger.NothingLost() ? kExitOk : kExitInvalidRun);
}

// Settles the jobs of an earlier run's ledger: follows the accepted ones and
// resends, under their keys, those never answered.
int ResumeJobs(const LoadCommandOptions& options) {
  auto ledger = workload::JobLedger::ReadFile(options.resume);
  if (!ledger.ok()) {
    std::cerr << "firedrill load: --resume: " << ledger.status().message() << '\n';
    return kExitUsage;
  }
  Result<std::unique_ptr<workload::JobClient>> client = MakeJobClient(options);
  if (!client.ok()) {
    std::cerr << "firedrill load: " << client.status().message() << '\n';
    return kExitUsage;
  }
  RealClock clock;
  const workload::JobResumeResult result = workload::ResumeLedger(**client, **ledger, clock, std::chrono::minutes(5));
  (*client)->Shutdown();
  nlohmann::json summary = result.ToJson();
  summary["target"] = options.target;
  summary["resumed_ledger"] = options.resume;
  char line[256];
  std::snprintf(line, sizeof line,
                "resumed %s: followed %lld, resent %lld; completed %lld, failed %lld, lost %lld, still out %lld\n",
                options.resume.c_str(), static_cast<long long>(result.followed),
                static_cast<long long>(result.resubmitted), static_cast<long long>(result.completed),
                static_cast<long long>(result.failed), static_cast<long long>(result.lost),
                static_cast<long long>(result.outstanding));
  return Finish(options, summary, line + LedgerTable(result.ledger),
                result.ledger.NothingLost() ? kExitOk : kExitInvalidRun);
}

}  // namespace

CLI::App* AddLoadCommand(CLI::App& app, LoadCommandOptions& options) {
  CLI::App* load = app.add_subcommand(
      "load", "Send load to a URL or an HSOF pipeline and measure it honestly (open loop, no coordinated omission)");
  load->add_option("target", options.target,
                   "http(s)://host:port/path (requests), grpc://host:port (calls), or with --jobs the pipeline")
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
  load->add_flag("--jobs", options.jobs,
                 "the target is an HSOF pipeline (http://host:port or grpc://host:port): submit jobs, follow them "
                 "to the end, and keep the ledger");
  load->add_option("--ledger", options.ledger, "with --jobs: write the ledger here (default OUT/ledger.jsonl)");
  load->add_option("--resume", options.resume,
                   "with --jobs: settle an earlier run's ledger file (follow its jobs, resend unanswered ones)");
  load->add_option("--http", options.http_version,
                   "HTTP version: 1.1 or 2 (h2 by prior knowledge over http://, by ALPN over https://; "
                   "https and h2 go through libcurl)")
      ->check(CLI::IsMember({"1.1", "2"}))
      ->capture_default_str();
  load->add_option("--grpc-method", options.grpc_method,
                   "for a grpc:// target without --jobs: the full method name, e.g. /hsof.v1.Pipeline/GetJob; the "
                   "request is --body-file's bytes");
  load->add_option("--max-lag", options.max_lag,
                   "the generator's schedule lag (p99) past which the run is INVALID; raise it on a shared, noisy "
                   "machine")
      ->capture_default_str();
  load->add_option("-o,--out", options.out_dir, "write load-summary.json (with the histograms) here");
  load->add_flag("--json", options.json, "print the JSON summary on stdout instead of the table");
  load->add_option("--progress", options.progress, "live progress line on stderr: auto (on a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  load->add_flag("--allow-remote", options.allow_remote, "allow a target that is not on loopback");
  load->add_option("--cacert", options.cacert, "https: trust the CA certificates in this PEM file");
  load->add_option("--stress", options.stress,
                   "GPU stress beside the load (without -f): compute, bandwidth or memory, with an intensity, "
                   "e.g. compute:40%");
  load->add_option("--device", options.device, "device for GPU stress: auto, cuda, cpu or simulated")
      ->capture_default_str();
  load->add_option("--stress-memory-cap", options.stress_memory_cap,
                   "the most host memory a memory stress may take on a CPU device")
      ->capture_default_str();
  load->footer(
      "Latency is measured from each request's intended send time (and, as 'uncorrected', from when it\n"
      "really went out). A run where the generator, not the target, was the bottleneck is marked INVALID.\n"
      "With --jobs, every job is entered in a ledger before it is sent and accounted for at the end.\n"
      "Exit 0 for a valid run (with --jobs: nothing lost), 1 for an invalid run (or a lost job), 2 for bad usage\n"
      "or a bad file, 3 when Ctrl-C cut it short (the summary is still written), 4 when it could not run.\n"
      "Examples:\n"
      "  firedrill load http://127.0.0.1:8080/ --rate 10000/s -d 30s -c 64\n"
      "  firedrill load http://127.0.0.1:8080/ --closed -c 100 -d 10s       # saturation, like wrk\n"
      "  firedrill load http://127.0.0.1:8080/healthz -f workloads/http-steps.yaml -o out/\n"
      "  firedrill load http://127.0.0.1:44979 --jobs -f workloads/steady-jobs.yaml -o out/\n"
      "  firedrill load http://127.0.0.1:44979 --jobs --resume out/ledger.jsonl\n"
      "  firedrill load grpc://127.0.0.1:50051 --grpc-method /hsof.v1.Pipeline/GetJob --body-file req.bin --rate 5000/s");
  return load;
}

int RunLoadCommand(const LoadCommandOptions& options, Logger& logger) {
  if (!options.resume.empty() && !options.jobs) {
    std::cerr << "firedrill load: --resume settles a job ledger; give --jobs and the pipeline's address\n";
    return kExitUsage;
  }
  if (!options.file.empty() && (!options.rate.empty() || options.closed || !options.duration.empty() ||
                                !options.stress.empty())) {
    std::cerr << "firedrill load: -f " << options.file
              << " gives the phases; --rate, --closed, --duration and --stress are for load without a file\n";
    return kExitUsage;
  }
  if (!options.resume.empty()) return ResumeJobs(options);
  std::uint64_t seed = options.seed;
  Result<WorkloadSource> source = WorkloadSource{};
  if (options.file.empty()) {
    auto phases = PhasesFromFlags(options);
    if (phases.ok()) {
      source->phases = std::move(*phases);
    } else {
      source = phases.status();
    }
  } else {
    source = PhasesFromFile(options, &seed);
  }
  if (!source.ok()) {
    std::cerr << (options.file.empty() ? "firedrill load: " : "") << source.status().message() << '\n';
    return kExitUsage;
  }
  LoadCommandOptions with_seed = options;
  with_seed.seed = seed;
  if (options.jobs) return RunJobs(with_seed, std::move(*source));
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  return RunRequests(with_seed, std::move(source->phases), logger);
}

}  // namespace firedrill::cli
