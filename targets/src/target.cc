#include "firedrill/targets/target.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "firedrill/core/spawn.h"
#include "firedrill/core/units.h"
#include "firedrill/injectors/undo.h"
#include "firedrill/workload/http_load.h"
#include "firedrill/workload/load_report.h"

extern char** environ;

namespace firedrill::targets {
namespace {

namespace fs = std::filesystem;
using injectors::TcpProxy;

// A token for the Faults service: 32 hex digits from the kernel's generator.
Result<std::string> RandomToken() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[16];
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    return FD_STATUS(StatusCode::kUnavailable, "embedded target: cannot read /dev/urandom for the faults token");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (const unsigned char byte : bytes) {
    token += kHex[byte >> 4];
    token += kHex[byte & 15];
  }
  return token;
}

std::string LogTail(const fs::path& log) {
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return text.size() > 600 ? "..." + text.substr(text.size() - 600) : text;
}

// Proxies in front of the HTTP and gRPC listeners; the drill talks to them.
Status StartProxies(const std::string& http_host_port, const std::string& grpc_host_port, std::uint64_t seed,
                    Clock& clock, std::map<std::string, std::unique_ptr<TcpProxy>>* proxies,
                    TargetEndpoints* endpoints) {
  FD_ASSIGN_OR_RETURN((*proxies)["http"], TcpProxy::Start(http_host_port, seed, clock));
  endpoints->http = "http://" + (*proxies)["http"]->address();
  if (!grpc_host_port.empty()) {
    FD_ASSIGN_OR_RETURN((*proxies)["grpc"], TcpProxy::Start(grpc_host_port, seed + 1, clock));
    endpoints->grpc = (*proxies)["grpc"]->address();
  }
  return Status();
}

class ProxiedTarget : public Target {
 public:
  const TargetEndpoints& endpoints() const override { return endpoints_; }
  std::map<std::string, TcpProxy*> proxies() override {
    std::map<std::string, TcpProxy*> out;
    for (const auto& [name, proxy] : proxies_) out[name] = proxy.get();
    return out;
  }

 protected:
  TargetEndpoints endpoints_;
  std::map<std::string, std::unique_ptr<TcpProxy>> proxies_;
};

class EmbeddedTarget final : public ProxiedTarget {
 public:
  EmbeddedTarget(fs::path directory, EmbeddedTargetOptions options)
      : directory_(std::move(directory)), options_(std::move(options)) {}
  ~EmbeddedTarget() override { (void)Stop(); }

  Status Stop() override {
    proxies_.clear();
    Terminate();
    std::error_code error;
    if (!directory_.empty()) fs::remove_all(directory_, error);
    directory_.clear();
    return Status();
  }

  Status Restart(bool drained) override {
    if (directory_.empty()) return FD_STATUS(StatusCode::kFailedPrecondition, "embedded target: stopped");
    Terminate();
    return Spawn(drained);
  }

  // Starts hsof-pipeline and waits for its ready line; the first start
  // takes free ports, a restart the same ones.
  Status Spawn(bool drained = false) {
    // Close-on-exec from the start, so no other child inherits either end;
    // the pipeline gets the write end as its descriptor 3.
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return FD_STATUS(StatusCode::kUnavailable, "embedded target: pipe");
    if (ready[1] == 3) {  // dup2 onto itself would leave it close-on-exec
      const int moved = fcntl(ready[1], F_DUPFD_CLOEXEC, 10);
      close(ready[1]);
      ready[1] = moved;
    }
    char scale[32];
    std::snprintf(scale, sizeof scale, "%.17g", options_.time_scale);
    const fs::path log = directory_ / "pipeline.log";
    std::vector<std::string> arguments = {
        options_.binary, "--data-dir", (directory_ / "data").string(),
        "--backup-dir", (directory_ / "backups").string(), "--ready-fd", "3",
        "--backend", options_.device, "--workers", std::to_string(options_.workers),
        "--gpu-memory-fraction", std::to_string(options_.gpu_memory_fraction),
        "--max-concurrent-batches", std::to_string(options_.max_concurrent_batches),
        "--device-memory", std::to_string(options_.device_memory) + "B",
        "--shared-device-memory", endpoints_.shared_device_memory,
        "--seed", std::to_string(options_.seed), "--time-scale", scale,
        "--http-port", std::to_string(ports_.http), "--grpc-port", std::to_string(ports_.grpc),
        "--gpu-exporter-port", std::to_string(ports_.gpu_exporter),
        "--enable-faults"};
    if (drained) arguments.push_back("--drained");
    if (options_.backup_interval > Duration::zero()) {
      arguments.insert(arguments.end(), {"--backup-interval", FormatDuration(options_.backup_interval)});
    }
    if (options_.time_zero) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.time_zero->time_since_epoch());
      arguments.insert(arguments.end(), {"--time-zero-ms", std::to_string(ms.count())});
    }
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    // The token reaches the pipeline through its environment, never argv (ps).
    std::vector<std::string> environment;
    for (char** entry = environ; *entry != nullptr; ++entry) {
      if (std::strncmp(*entry, "HSOF_FAULTS_TOKEN=", 18) != 0) environment.emplace_back(*entry);
    }
    environment.push_back("HSOF_FAULTS_TOKEN=" + endpoints_.faults_token);
    std::vector<char*> envp;
    for (std::string& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, ready[1], 3);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    // Its own group: Ctrl-C reaches Firedrill, which undoes its faults before
    // it stops the pipeline.
    posix_spawnattr_t attributes;
    InitChildAttributes(&attributes);
    fs::create_directories(directory_ / "data");
    pid_t pid = -1;
    const int spawned = posix_spawn(&pid, options_.binary.c_str(), &actions, &attributes, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(ready[1]);
    if (spawned != 0) {
      close(ready[0]);
      return FD_STATUS(StatusCode::kUnavailable,
                       "embedded target: starting " + options_.binary + ": " + std::strerror(spawned));
    }
    endpoints_.pid = pid;  // from here on, Stop ends it
    Journal(pid);

    // Its ready line names its ports: no polling for them.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    for (char c = 0;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd watch{ready[0], POLLIN, 0};
      const int polled = left.count() > 0 ? poll(&watch, 1, static_cast<int>(left.count())) : 0;
      if (polled < 0 && errno == EINTR) continue;
      if (polled != 1 || read(ready[0], &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    close(ready[0]);
    const nlohmann::json ports = nlohmann::json::parse(line, nullptr, false);
    if (ports.is_discarded() || !ports.contains("http") || !ports.contains("grpc")) {
      const std::string tail = LogTail(log);
      Terminate();
      return FD_STATUS(StatusCode::kUnavailable, "embedded target: " + options_.binary +
                                                     " did not start listening within " +
                                                     FormatDuration(options_.start_timeout) + "; its log ends: " + tail);
    }
    ports_.http = ports["http"].get<int>();
    ports_.grpc = ports["grpc"].get<int>();
    ports_.gpu_exporter = ports.value("gpu_exporter", 0);
    return Status();
  }

  struct Ports {
    int http = 0;
    int grpc = 0;
    int gpu_exporter = 0;
  };
  const Ports& ports() const { return ports_; }
  TargetEndpoints& mutable_endpoints() { return endpoints_; }
  std::map<std::string, std::unique_ptr<TcpProxy>>& mutable_proxies() { return proxies_; }

 private:
  // The running pipeline as a journal row, so recover can stop an orphan.
  void Journal(pid_t pid) {
    if (options_.journal == nullptr) return;
    Result<injectors::ProcessId> process = injectors::IdentifyProcess(pid);
    if (!process.ok()) return;
    injectors::FaultRecord record;
    record.id = "target-" + std::to_string(pid) + "-" + std::to_string(process->start_ticks);
    record.kind = "embedded-target";
    record.target = "pid " + std::to_string(pid) + " (hsof-pipeline in " + directory_.string() + ")";
    record.undo = injectors::UndoSignal(*process, SIGTERM);
    record.undo["folder"] = directory_.string();  // recover removes it once the pipeline is gone
    record.owner_pid = getpid();
    if (Result<injectors::ProcessId> self = injectors::IdentifyProcess(getpid()); self.ok()) {
      record.owner_start_ticks = self->start_ticks;
    }
    record.started_ms = NowMillis();
    if (options_.journal->Begin(record).ok()) journal_id_ = record.id;
  }

  static std::int64_t NowMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // SIGTERM, then SIGKILL after the grace; reaps it and closes its row.
  void Terminate() {
    if (endpoints_.pid <= 0) return;
    kill(endpoints_.pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + options_.grace;
    int status = 0;
    for (;;) {
      const pid_t waited = waitpid(endpoints_.pid, &status, WNOHANG);
      if (waited == endpoints_.pid || (waited < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(endpoints_.pid, SIGKILL);
        while (waitpid(endpoints_.pid, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    endpoints_.pid = 0;
    if (!journal_id_.empty()) (void)options_.journal->End(journal_id_, "stopped", NowMillis());
    journal_id_.clear();
  }

  fs::path directory_;
  EmbeddedTargetOptions options_;
  Ports ports_;
  std::string journal_id_;
};

class RemoteTarget final : public ProxiedTarget {
 public:
  Status Stop() override {
    proxies_.clear();  // a remote pipeline is not Firedrill's to stop
    return Status();
  }
  Status Restart(bool) override {
    return FD_STATUS(StatusCode::kUnimplemented, "a remote target is not Firedrill's to restart");
  }
  TargetEndpoints& mutable_endpoints() { return endpoints_; }
  std::map<std::string, std::unique_ptr<TcpProxy>>& mutable_proxies() { return proxies_; }
};

}  // namespace

Result<std::unique_ptr<Target>> StartEmbeddedTarget(const EmbeddedTargetOptions& options, Clock& clock) {
  if (!(options.time_scale >= 0.001 && options.time_scale <= 10000)) {
    return FD_STATUS(StatusCode::kInvalidArgument, "embedded target: the time scale must be between 0.001 and 10000");
  }
  if (access(options.binary.c_str(), X_OK) != 0) {
    return FD_STATUS(StatusCode::kUnavailable, "embedded target: " + options.binary + " is not there (build hsof-pipeline)");
  }
  std::string pattern = (fs::temp_directory_path() / "firedrill-target-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return FD_STATUS(StatusCode::kUnavailable, std::string("embedded target: a data directory: ") + std::strerror(errno));
  }
  auto target = std::make_unique<EmbeddedTarget>(pattern, options);
  const fs::path directory = pattern;
  TargetEndpoints& endpoints = target->mutable_endpoints();
  FD_ASSIGN_OR_RETURN(endpoints.faults_token, RandomToken());
  endpoints.shared_device_memory = (directory / "device").string();
  endpoints.data_dir = (directory / "data").string();
  endpoints.device_memory = options.device_memory;
  if (Status started = target->Spawn(); !started.ok()) {
    (void)target->Stop();
    return started;
  }
  const std::string host = "127.0.0.1:";
  const auto& ports = target->ports();
  endpoints.direct_http = "http://" + host + std::to_string(ports.http);
  endpoints.direct_grpc = host + std::to_string(ports.grpc);
  endpoints.faults_grpc = endpoints.direct_grpc;
  if (ports.gpu_exporter > 0) {
    endpoints.gpu_exporter = "http://" + host + std::to_string(ports.gpu_exporter) + "/metrics";
  }
  FD_RETURN_IF_ERROR(StartProxies(host + std::to_string(ports.http), endpoints.direct_grpc, options.seed, clock,
                                  &target->mutable_proxies(), &endpoints));
  return std::unique_ptr<Target>(std::move(target));
}

Result<std::unique_ptr<Target>> ConnectRemoteTarget(const RemoteTargetOptions& options, Clock& clock) {
  Result<workload::HttpUrl> url = workload::ParseHttpUrl(options.http);
  if (!url.ok()) return FD_STATUS(StatusCode::kInvalidArgument, "remote target: http: " + url.status().message());
  FD_RETURN_IF_ERROR(workload::CheckLoadTarget(options.http, url->host, options.allow_remote));
  if (!options.grpc.empty()) {
    const std::string grpc_host = options.grpc.substr(0, options.grpc.rfind(':'));
    FD_RETURN_IF_ERROR(workload::CheckLoadTarget(options.grpc, grpc_host, options.allow_remote));
  }
  // It must answer before the drill relies on it.
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return FD_STATUS(StatusCode::kUnavailable, "remote target: libcurl");
  const std::string health = options.http + (options.http.back() == '/' ? "health" : "/health");
  curl_easy_setopt(curl, CURLOPT_URL, health.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char*, size_t size, size_t count, void*) { return size * count; });
  const CURLcode code = curl_easy_perform(curl);  // any answer will do: an unhealthy pipeline is a target too
  curl_easy_cleanup(curl);
  if (code != CURLE_OK) {
    return FD_STATUS(StatusCode::kUnavailable, "remote target: GET " + health + ": " + curl_easy_strerror(code));
  }
  auto target = std::make_unique<RemoteTarget>();
  TargetEndpoints& endpoints = target->mutable_endpoints();
  endpoints.direct_http = options.http;
  endpoints.direct_grpc = options.grpc;
  endpoints.gpu_exporter = options.gpu_exporter;
  if (!options.faults_token.empty()) {
    endpoints.faults_grpc = options.faults_grpc.empty() ? options.grpc : options.faults_grpc;
    endpoints.faults_token = options.faults_token;
  }
  FD_RETURN_IF_ERROR(StartProxies(url->host + ":" + std::to_string(url->port), options.grpc, options.seed, clock,
                                  &target->mutable_proxies(), &endpoints));
  return std::unique_ptr<Target>(std::move(target));
}

}  // namespace firedrill::targets
