// hsof-pipeline: the reference HSOF service Firedrill drills by default.
//
//   hsof-pipeline --data-dir /tmp/hsof --port-file /tmp/hsof/ports.json
//
// Listens on loopback: the API and /metrics on --http-port, the GPU metrics
// alone on --gpu-exporter-port, gRPC Pipeline and Admin on --grpc-port
// (port 0 picks free ports; --port-file says
// which; --ready-fd hands the same line to a parent). SIGINT or SIGTERM
// stops it after the jobs in flight finish.
// Exit codes: 0 stopped cleanly, 2 bad flags, 4 could not start.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "firedrill/core/log.h"
#include "firedrill/core/units.h"
#include "firedrill/net/http_server.h"
#include "firedrill/pipeline/config_file.h"
#include "firedrill/pipeline/grpc_server.h"
#include "firedrill/pipeline/service.h"

namespace {

using firedrill::Status;
using firedrill::StatusCode;

int Fail(const std::string& message, int code) {
  std::cerr << "hsof-pipeline: " << message << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  namespace pipeline = firedrill::pipeline;
  CLI::App app{
      "hsof-pipeline: the reference HSOF feature-selection service (jobs, health, metrics)"};
  app.footer(
      "Example:\n  hsof-pipeline --data-dir /tmp/hsof --port-file /tmp/hsof/ports.json\n"
      "  curl -s -XPOST localhost:PORT/v1/jobs -d '{\"dataset\": {\"samples\": 5000}}'");
  pipeline::ServiceOptions options;
  std::string listen = "127.0.0.1", backend = "auto", device_memory = "8GiB",
              backup_interval = "1h";
  std::string port_file, log_format = "human";
  int http_port = 0, gpu_exporter_port = 0, grpc_port = 0, ready_fd = -1;
  std::string config_file;
  app.add_option("--data-dir", options.data_dir, "job database, metamodel and backups")->required();
  app.add_option("--config", config_file,
                 "YAML mapping of config keys (MAX_CONCURRENT_BATCHES: 4, ...); environment "
                 "variables of the same "
                 "names override it");
  app.add_option("--csv-dir", options.csv_dir,
                 "CSV datasets jobs may name (default: DATA_DIR/datasets)");
  app.add_option("--listen", listen, "address to listen on (loopback unless you mean it)");
  app.add_option("--http-port", http_port, "API and /metrics port (0: a free one)");
  app.add_option("--gpu-exporter-port", gpu_exporter_port, "GPU metrics port (0: a free one)");
  app.add_option("--grpc-port", grpc_port, "gRPC Pipeline and Admin services port (0: a free one)");
  app.add_option("--port-file", port_file,
                 "write {\"http\", \"gpu_exporter\", \"grpc\", \"pid\"} here once listening");
  app.add_option("--ready-fd", ready_fd,
                 "write the same JSON line to this inherited descriptor, then close it");
  app.add_option("--backend", backend, "device: auto (CUDA, else simulated), cuda, cpu, simulated")
      ->check(CLI::IsMember({"auto", "cuda", "cpu", "simulated"}));
  app.add_option("--workers", options.workers, "job worker threads")->check(CLI::Range(0, 64));
  app.add_option("--max-concurrent-batches", options.max_concurrent_batches,
                 "MAX_CONCURRENT_BATCHES")
      ->check(CLI::Range(1, 1024));
  app.add_option("--gpu-memory-fraction", options.gpu_memory_fraction, "GPU_MEMORY_FRACTION")
      ->check(CLI::Range(0.01, 1.0));
  app.add_option("--device-memory", device_memory,
                 "memory the cpu and simulated devices have, e.g. 8GiB");
  app.add_option("--shared-device-memory", options.shared_device_memory,
                 "cpu and simulated devices: a folder where processes sharing the device record the memory "
                 "they hold (Firedrill's GPU memory hog does), so it is not free here");
  app.add_option("--backup-dir", options.backup_dir,
                 "where backups go (default: DATA_DIR/backups); elsewhere, they outlive the data directory");
  app.add_option("--backup-interval", backup_interval, "time between scheduled backups, e.g. 1h");
  app.add_option("--backup-retention", options.backup_retention, "backups kept")
      ->check(CLI::Range(1, 1000));
  app.add_option("--seed", options.seed, "seed of the metamodel's pretraining and of stage 2");
  double time_scale = 1;
  app.add_option("--time-scale", time_scale,
                 "run on drill time, this many times faster than real time (a compressed drill): stage "
                 "durations, backup ages, fault leases and timestamps all move that much faster")
      ->check(CLI::Range(0.001, 10000.0));
  app.add_flag("--drained", options.start_drained,
               "start draining: no job is accepted until the Admin Resume (restore a backup first)");
  std::int64_t time_zero_ms = -1;
  app.add_option("--time-zero-ms", time_zero_ms,
                 "with --time-scale: the drill's time zero, in Unix milliseconds, so a restarted pipeline "
                 "keeps the drill's wall clock (backup names and ages agree across restarts)")
      ->check(CLI::NonNegativeNumber);
  bool enable_faults = false;
  app.add_flag(
      "--enable-faults", enable_faults,
      "serve the gRPC Faults service; its token comes from HSOF_FAULTS_TOKEN (never a flag, so ps "
      "does not show it)");
  app.add_option("--log-format", log_format, "human or json")
      ->check(CLI::IsMember({"human", "json"}));
  CLI11_PARSE(app, argc, argv);

  const auto memory = firedrill::ParseSize(device_memory);
  if (!memory.ok()) return Fail("--device-memory: " + std::string(memory.status().message()), 2);
  options.host_device_memory = *memory;
  const auto interval = firedrill::ParseDuration(backup_interval);
  if (!interval.ok())
    return Fail("--backup-interval: " + std::string(interval.status().message()), 2);
  options.backup_interval = *interval;
  firedrill::gpu::ParseBackendChoice(backend, &options.backend);

  std::string faults_token;
  if (enable_faults) {
    const char* token = std::getenv("HSOF_FAULTS_TOKEN");
    if (token == nullptr || std::string_view(token).size() < 16) {
      return Fail(
          "--enable-faults needs HSOF_FAULTS_TOKEN set to a token of at least 16 characters", 2);
    }
    faults_token = token;
  }

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  firedrill::RealClock clock;
  firedrill::Logger logger(
      std::cerr, clock,
      log_format == "json" ? firedrill::LogFormat::kJson : firedrill::LogFormat::kHuman);
  std::vector<pipeline::ConfigSetting> settings;
  if (!config_file.empty()) {
    auto read = pipeline::ReadConfigFile(config_file);
    if (!read.ok()) return Fail(std::string(read.status().message()), 2);
    settings = std::move(read).value();
  }
  for (pipeline::ConfigSetting& setting : pipeline::ConfigFromEnvironment())
    settings.push_back(std::move(setting));

  // Its log keeps real time; the service runs on drill time.
  std::optional<firedrill::WallTime> time_zero;
  if (time_zero_ms >= 0) time_zero = firedrill::WallTime(std::chrono::milliseconds(time_zero_ms));
  firedrill::ScaledClock drill_clock(clock, time_scale, time_zero);
  auto service = pipeline::PipelineService::Start(options, drill_clock, logger);
  if (!service.ok()) return Fail(service.status().ToString(), 4);
  for (const pipeline::ConfigSetting& setting : settings) {
    auto applied = (*service)->SetConfig(setting.key, setting.value);
    if (!applied.ok())
      return Fail(setting.where + ": " + std::string(applied.status().message()), 2);
    logger.Info("pipeline", "config",
                {{"key", setting.key}, {"value", setting.value}, {"from", setting.where}});
  }
  firedrill::net::HttpServerOptions http_options;
  http_options.host = listen;
  http_options.port = http_port;
  http_options.max_body_bytes = pipeline::kMaxJobRequestBytes;
  // Each ?wait= long poll holds a thread while its job runs. With only a
  // few threads, jobs held by a stalled stage took them all and /metrics
  // went unanswered: a stall looked like the service being down.
  http_options.threads = 128;
  auto http = firedrill::net::HttpServer::Start(
      http_options,
      [&](const firedrill::net::HttpRequest& request) { return (*service)->HandleHttp(request); });
  if (!http.ok()) return Fail("API listener: " + http.status().ToString(), 4);
  http_options.port = gpu_exporter_port;
  http_options.threads = 4;
  auto exporter = firedrill::net::HttpServer::Start(
      http_options, [&](const firedrill::net::HttpRequest& request) {
        return (*service)->HandleGpuExporter(request);
      });
  if (!exporter.ok()) return Fail("GPU exporter listener: " + exporter.status().ToString(), 4);

  auto grpc = pipeline::GrpcServer::Start(**service, listen, grpc_port, faults_token);
  if (!grpc.ok()) return Fail("gRPC listener: " + grpc.status().ToString(), 4);

  logger.Info("pipeline", "listening",
              {{"api", (*http)->url()},
               {"gpu_exporter", (*exporter)->url()},
               {"grpc", (*grpc)->address()},
               {"backend", backend}});
  const std::string ports = nlohmann::json{{"http", (*http)->port()},
                                           {"gpu_exporter", (*exporter)->port()},
                                           {"grpc", (*grpc)->port()},
                                           {"pid", getpid()}}
                                .dump() +
                            "\n";
  if (!port_file.empty()) {
    const std::string temporary = port_file + ".tmp";
    std::ofstream(temporary) << ports;
    std::error_code error;
    std::filesystem::rename(temporary, port_file, error);
    if (error) return Fail("cannot write " + port_file + ": " + error.message(), 4);
  }
  if (ready_fd >= 0) {
    // Whoever started us reads this line instead of polling for the port file.
    if (write(ready_fd, ports.data(), ports.size()) != static_cast<ssize_t>(ports.size())) {
      logger.Warn("pipeline", "could not write to --ready-fd", {{"fd", ready_fd}});
    }
    close(ready_fd);
  }

  int signal = 0;
  sigwait(&signals, &signal);
  logger.Info("pipeline", "stopping", {{"signal", signal}});
  (*grpc)->Stop();
  (*http)->Stop();
  (*exporter)->Stop();
  (*service)->Stop();
  return 0;
}
