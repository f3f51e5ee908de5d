#include "inject_command.h"

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "firedrill/core/clock.h"
#include "firedrill/core/text.h"
#include "firedrill/core/units.h"
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "firedrill/injectors/catalog.h"
#include "firedrill/injectors/fault_metrics.h"
#include "firedrill/injectors/injection.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/injectors/tcp_proxy.h"
#include "firedrill/net/http_server.h"
#include "signals.h"

namespace firedrill::cli {
namespace {

namespace fs = std::filesystem;
using injectors::InjectorInfo;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 3;
constexpr int kExitHarness = 4;

int Usage(const std::string& message) {
  std::cerr << "firedrill inject: " << message << '\n';
  return kExitUsage;
}

std::string ParameterNames(const InjectorInfo& info) {
  std::string names;
  for (const spec::Field& field : info.parameters) {
    names += (names.empty() ? "" : ", ") + field.name + (field.required ? " (required)" : "");
  }
  return names.empty() ? "none" : names;
}

// "name=value" pairs; false with a message naming the pair otherwise.
bool SplitPair(const std::string& pair, const std::string& what, std::string* name, std::string* value,
               std::string* error) {
  const std::size_t equals = pair.find('=');
  if (equals == std::string::npos || equals == 0) {
    *error = what + " \"" + pair + "\": expected NAME=VALUE";
    return false;
  }
  *name = pair.substr(0, equals);
  *value = pair.substr(equals + 1);
  return true;
}

}  // namespace

CLI::App* AddInjectCommand(CLI::App& app, InjectCommandOptions& options) {
  CLI::App* inject = app.add_subcommand(
      "inject", "Run one fault from the catalogue by hand: journalled, leased, and undone when it ends");
  inject->add_option("kind", options.kind, "the injector (firedrill reference lists them)")->required();
  inject->add_option("fields", options.fields, "the injector's parameters as NAME=VALUE, e.g. share=50%");
  inject->add_option("--for", options.duration, "end the fault after this long (default: on Ctrl-C or SIGTERM)");
  inject->add_option("--ttl", options.ttl, "the fault's lease: renewed while this runs, it lapses this long after a hang")
      ->capture_default_str();
  inject->add_option("--journal", options.journal, "the fault journal (default as for recover)");
  inject->add_option("--drill-dir", options.drill_dir,
                     "the area a disk fill writes in (default: a new folder, removed afterwards)");
  inject->add_option("--process", options.processes, "NAME=PID: a process the fault may act on (repeatable)");
  inject->add_option("--proxy", options.proxies,
                     "ENDPOINT=HOST:PORT: start a proxy in front of that loopback service for a network fault; "
                     "send the traffic to the address it prints");
  inject->add_option("--pipeline-grpc", options.pipeline_grpc,
                     "host:port of an hsof-pipeline started with --enable-faults (in-process faults)");
  inject->add_option("--device", options.device, "GPU faults: auto, cuda, cpu or simulated")
      ->check(CLI::IsMember({"auto", "cuda", "cpu", "simulated"}))
      ->capture_default_str();
  inject->add_option("--shared-device-memory", options.shared_device_memory,
                     "GPU memory hog on a CPU-only machine: the folder the pipeline's --shared-device-memory names");
  inject->add_option("--device-memory", options.device_memory,
                     "GPU memory hog on a CPU-only machine: the device's memory (the pipeline's --device-memory)")
      ->capture_default_str();
  inject->add_option("--faults-token-file", options.faults_token_file,
                     "a file holding the pipeline's Faults token (default: $HSOF_FAULTS_TOKEN)");
  inject->add_option("--max-memory", options.max_memory, "the most host memory a hog may take")->capture_default_str();
  inject->add_option("--max-disk", options.max_disk, "the largest area a disk fill may create")->capture_default_str();
  inject->add_option("--max-cpu-threads", options.max_cpu_threads, "the most busy threads a CPU hog may run")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  inject->add_option("--max-faults", options.max_faults, "faults this Firedrill may run at once")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  inject->add_option("--allow-host", options.allowed_hosts, "a host other than loopback that faults may target");
  inject->add_option("--seed", options.seed, "seed for which connections a network fault touches")
      ->capture_default_str();
  inject->add_option("--metrics-port", options.metrics_port,
                     "serve Firedrill's fault metrics (firedrill_fault_active{kind,target}, ...) at "
                     "http://127.0.0.1:PORT/metrics while the fault runs; 0 picks a free port")
      ->check(CLI::Range(0, 65535));
  inject->add_flag("--dry-run", options.dry_run, "say exactly what would be done, and do nothing");
  inject->footer(
      "The fault is written to the journal before it starts. While it runs its lease is renewed; if this\n"
      "process hangs the fault lapses after --ttl, and if it is killed its guardian undoes the fault at once\n"
      "(process faults, disk fills) or the fault ends with it (hogs, proxies). `firedrill recover` closes\n"
      "whatever is left. Exit 0 when the fault ran and was undone, 2 for a bad spec or one outside the\n"
      "blast radius, 3 when Ctrl-C ended a --for run early (the fault is still undone), 4 when it could not\n"
      "be started or undone.\n"
      "Examples:\n"
      "  firedrill inject cpu-hog threads=2 duty=50% --for 60s\n"
      "  firedrill inject host-memory-hog share=50% limit=2GiB --max-memory 2GiB --for 60s\n"
      "  firedrill inject process-pause process=pipeline --process pipeline=4242 --for 10s\n"
      "  firedrill inject network endpoint=http latency=200ms jitter=50ms --proxy http=127.0.0.1:8080\n"
      "  firedrill inject exporter-down --pipeline-grpc 127.0.0.1:50051 --for 2m\n"
      "  firedrill inject gpu-memory-hog share=80% --device cuda --for 5m\n"
      "  firedrill inject disk-fill share=90% areaSize=512MiB --dry-run");
  return inject;
}

int RunInjectCommand(const InjectCommandOptions& options) {
  // Ctrl-C and SIGTERM are taken by sigtimedwait below, never in the middle
  // of a start or a stop: blocked here, before any thread (metrics server,
  // proxy, gRPC, hog) starts, so that every thread inherits the mask.
  const sigset_t ending = BlockEndingSignals();
  const InjectorInfo* info = injectors::FindInjector(options.kind);
  if (info == nullptr) {
    std::string known;
    for (const InjectorInfo& entry : injectors::Catalog()) known += (known.empty() ? "" : ", ") + entry.kind;
    return Usage("unknown injector \"" + options.kind + "\" (known: " + known + ")");
  }
  nlohmann::json fields = nlohmann::json::object();
  std::string error;
  for (const std::string& pair : options.fields) {
    std::string name;
    std::string value;
    if (!SplitPair(pair, "parameter", &name, &value, &error)) return Usage(error);
    const bool known = std::any_of(info->parameters.begin(), info->parameters.end(),
                                   [&](const spec::Field& field) { return field.name == name; });
    if (!known) {
      return Usage(options.kind + ": \"" + name + "\" is not one of its parameters (" + ParameterNames(*info) + ")");
    }
    fields[name] = value;
  }
  for (const spec::Field& field : info->parameters) {
    if (field.required && !fields.contains(field.name)) {
      return Usage(options.kind + ": " + field.name + " is required (" + ParameterNames(*info) + ")");
    }
  }
  for (const std::vector<std::string>& group : info->exactly_one_of) {
    const auto given = std::count_if(group.begin(), group.end(), [&](const std::string& name) {
      const auto field = std::find_if(info->parameters.begin(), info->parameters.end(),
                                      [&](const spec::Field& each) { return each.name == name; });
      return fields.contains(name) && spec::CountsAsGiven(*field->schema, fields[name].get<std::string>());
    });
    if (given != 1) return Usage(options.kind + ": give exactly one of " + JoinNames(group, " and "));
  }
  Result<Duration> ttl = ParseDuration(options.ttl);
  if (!ttl.ok() || *ttl < std::chrono::milliseconds(100)) {
    return Usage("--ttl " + options.ttl + ": expected a duration of at least 100ms (it is renewed every third of it)");
  }
  std::optional<Duration> run_for;
  if (!options.duration.empty()) {
    Result<Duration> parsed = ParseDuration(options.duration);
    if (!parsed.ok() || *parsed <= Duration::zero()) {
      return Usage("--for " + options.duration + ": expected a positive duration");
    }
    run_for = *parsed;
  }
  injectors::InjectionContext context;
  Result<std::uint64_t> max_memory = ParseSize(options.max_memory);
  Result<std::uint64_t> max_disk = ParseSize(options.max_disk);
  if (!max_memory.ok()) return Usage("--max-memory: " + max_memory.status().message());
  if (!max_disk.ok()) return Usage("--max-disk: " + max_disk.status().message());
  context.limits.max_memory_bytes = *max_memory;
  context.limits.max_disk_bytes = *max_disk;
  context.limits.max_cpu_threads = options.max_cpu_threads;
  context.limits.max_concurrent_faults = options.max_faults;
  context.limits.allowed_hosts = options.allowed_hosts;
  context.limits.dry_run = options.dry_run;
  context.ttl = *ttl;
  for (const std::string& pair : options.processes) {
    std::string name;
    std::string pid;
    if (!SplitPair(pair, "--process", &name, &pid, &error)) return Usage(error);
    char* end = nullptr;
    const long number = std::strtol(pid.c_str(), &end, 10);
    if (end == pid.c_str() || *end != '\0' || number <= 0) return Usage("--process " + pair + ": the pid is not a number");
    context.processes[name] = static_cast<pid_t>(number);
  }
  context.pipeline_grpc = options.pipeline_grpc;
  Result<std::uint64_t> device_memory = ParseSize(options.device_memory);
  if (!device_memory.ok()) return Usage("--device-memory: " + device_memory.status().message());
  context.gpu.backend = options.device;
  context.gpu.shared_device_memory = options.shared_device_memory;
  context.gpu.device_memory = *device_memory;
  if (!options.faults_token_file.empty()) {
    std::ifstream in(options.faults_token_file);
    if (!in || !std::getline(in, context.faults_token)) {
      return Usage("--faults-token-file " + options.faults_token_file + ": cannot read it");
    }
  } else if (const char* token = std::getenv("HSOF_FAULTS_TOKEN"); token != nullptr) {
    context.faults_token = token;
  }

  const std::string journal_path = options.journal.empty() ? injectors::Journal::DefaultPath() : options.journal;
  auto journal = injectors::Journal::Open(journal_path);
  if (!journal.ok()) {
    std::cerr << "firedrill inject: " << journal.status().message() << '\n';
    return kExitHarness;
  }
  context.journal = journal->get();
  // The journal's listener feeds the metrics, so what they show is what was
  // journalled.
  prometheus::Registry registry;
  injectors::FaultMetrics metrics(registry);
  (*journal)->SetListener([&metrics](const injectors::FaultRecord& record) { metrics.Record(record); });
  std::unique_ptr<net::HttpServer> metrics_server;
  if (options.metrics_port >= 0 && !options.dry_run) {
    auto server = net::HttpServer::Start({.host = "127.0.0.1", .port = options.metrics_port, .threads = 2},
                                         [&registry](const net::HttpRequest& request) {
                                           if (request.path != "/metrics") return net::JsonError(404, "see /metrics");
                                           net::HttpResponse response;
                                           response.content_type = "text/plain; version=0.0.4";
                                           response.body = prometheus::TextSerializer().Serialize(registry.Collect());
                                           return response;
                                         });
    if (!server.ok()) return Usage("--metrics-port: " + server.status().message());
    metrics_server = std::move(*server);
    std::cout << "metrics: " << metrics_server->url() << "/metrics\n";
  }
  RealClock clock;
  context.clock = &clock;

  // A disk fill's area: the one given, or a folder made here and removed
  // afterwards (the fill file inside is the fault's own to remove).
  std::string made_area;
  if (!options.drill_dir.empty()) {
    context.drill_dir = options.drill_dir;
  } else if (options.kind == "disk-fill") {
    std::string pattern = (fs::temp_directory_path() / "firedrill-inject-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "firedrill inject: cannot create a drill area: " << std::strerror(errno) << '\n';
      return kExitHarness;
    }
    made_area = context.drill_dir = pattern;
  }

  std::vector<std::unique_ptr<injectors::TcpProxy>> proxies;
  for (const std::string& pair : options.proxies) {
    std::string endpoint;
    std::string upstream;
    auto proxy = SplitPair(pair, "--proxy", &endpoint, &upstream, &error)
                     ? injectors::TcpProxy::Start(upstream, options.seed, clock)
                     : Result<std::unique_ptr<injectors::TcpProxy>>(FD_STATUS(StatusCode::kInvalidArgument, error));
    if (!proxy.ok()) {
      if (!made_area.empty()) fs::remove_all(made_area);
      std::cerr << "firedrill inject: --proxy " << pair << ": " << proxy.status().message() << '\n';
      return proxy.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitHarness;
    }
    std::cout << "proxy: " << endpoint << " traffic to " << (*proxy)->address() << " reaches " << upstream << '\n';
    context.proxies[endpoint] = proxy->get();
    proxies.push_back(std::move(*proxy));
  }
  std::cout.flush();

  auto injection = injectors::StartInjection(options.kind, fields, context);
  if (!injection.ok()) {
    std::cerr << "firedrill inject: " << injection.status().message() << '\n';
    if (!made_area.empty()) fs::remove_all(made_area);
    return injection.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitHarness;
  }
  std::cout << ((*injection)->id() == "dry-run" ? "" : "started: ") << (*injection)->Describe() << '\n';
  if (options.dry_run) {
    if (!made_area.empty()) fs::remove_all(made_area);
    return kExitOk;
  }
  std::cout << "fault " << (*injection)->id() << " runs " << (run_for ? "for " + options.duration : "until Ctrl-C")
            << "; its lease is " << options.ttl << '\n'
            << std::flush;

  const MonotonicTime deadline = run_for ? clock.Now() + *run_for : MonotonicTime::max();
  const Duration renew_every = *ttl / 3;
  bool interrupted = false;
  int exit_code = kExitOk;
  for (;;) {
    const Duration left = deadline - clock.Now();
    if (left <= Duration::zero()) break;
    const Duration wait = std::min(left, renew_every);
    timespec timeout{};
    timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(wait).count();
    timeout.tv_nsec = (wait % std::chrono::seconds(1)).count();
    const int signal = sigtimedwait(&ending, nullptr, &timeout);
    if (signal > 0) {
      interrupted = true;
      break;
    }
    if (errno != EAGAIN && errno != EINTR) break;
    if (clock.Now() >= deadline) break;
    if (Status renewed = (*injection)->Renew(); !renewed.ok()) {
      std::cerr << "firedrill inject: " << renewed.message() << '\n';
      exit_code = kExitHarness;
      break;
    }
  }
  if (Status stopped = (*injection)->Stop(); !stopped.ok()) {
    std::cerr << "firedrill inject: undoing " << (*injection)->id() << ": " << stopped.message()
              << "; run `firedrill recover --journal " << journal_path << "`\n";
    return kExitHarness;
  }
  std::cout << "stopped: " << (*injection)->kind() << " (" << (*injection)->id() << ")"
            << (interrupted ? ", on a signal" : "") << '\n';
  if (!made_area.empty()) fs::remove_all(made_area);
  if (exit_code != kExitOk) return exit_code;
  return interrupted && run_for ? kExitInterrupted : kExitOk;
}

}  // namespace firedrill::cli
