// Unary gRPC calls/s the load generator drives from one client core against
// tests/'s tiny-grpc-server on another: the generator's ceiling for gRPC.
//
// The whole client process is pinned to the first CPU it may use (gRPC's own
// threads too, as they inherit it), the server to the second, so "one core"
// means one core. Each iteration is a closed-loop RunGrpcUnaryLoad of
// kIterationLength; the counters sum the iterations:
//   calls_per_second  answers / elapsed
//   p50_us, p99_us    latency of those answers
//   cpu_per_call_us   the generator thread's CPU time per answer
//   calls_per_cpu_second  answers per second of that CPU time: the rate one
//                     whole core would drive, whatever else the machine runs
//   generator_busy    that CPU time as a share of one core
//   process_busy      the whole client process's CPU time (gRPC's threads
//                     too) as a share of one core
//   server_busy       the server's CPU time as a share of its core: near 1,
//                     the server and not the client set the pace
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "firedrill/workload/grpc_client.h"

namespace {

using firedrill::workload::GrpcUnaryLoadOptions;
using firedrill::workload::LatencyHistogram;
using firedrill::workload::LoadReport;

constexpr auto kIterationLength = std::chrono::milliseconds(200);

std::string g_target;  // the server's host:port, once started
pid_t g_server = -1;

// The server's user + system CPU seconds, from /proc/PID/stat.
double ServerCpuSeconds() {
  const std::string path = "/proc/" + std::to_string(g_server) + "/stat";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return 0;
  char text[1024] = {};
  const std::size_t size = std::fread(text, 1, sizeof(text) - 1, file);
  std::fclose(file);
  // Fields after the command name (which may hold spaces) start after ')'.
  const char* rest = std::strrchr(text, ')');
  if (size == 0 || rest == nullptr) return 0;
  unsigned long utime = 0, stime = 0;
  if (std::sscanf(rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                  &stime) != 2) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The CPUs this process may run on, in order.
std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

// Starts tiny-grpc-server (on `cpu` when >= 0) and reads its port.
pid_t StartServer(int cpu, std::string* target) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    if (cpu >= 0) PinTo(cpu);
    dup2(fds[1], STDOUT_FILENO);
    execl(TINY_GRPC_SERVER, TINY_GRPC_SERVER, "--threads", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string line;
  char c = 0;
  while (pid > 0 && read(fds[0], &c, 1) == 1 && c != '\n') line += c;
  close(fds[0]);
  if (pid < 0 || line.rfind("port ", 0) != 0) return -1;
  *target = "127.0.0.1:" + line.substr(5);
  return pid;
}

void BM_GrpcUnaryClosedLoop(benchmark::State& state) {
  GrpcUnaryLoadOptions options;
  options.target = g_target;
  options.method = "/bench.Echo/Call";
  options.payload = std::string(16, 'x');
  options.concurrency = static_cast<int>(state.range(0));
  options.duration = kIterationLength;
  options.timeout = std::chrono::seconds(5);

  LatencyHistogram latency;
  std::int64_t answered = 0, errors = 0;
  double elapsed = 0, cpu = 0;
  const double process_cpu_start = ProcessCpuSeconds();
  const double server_cpu_start = ServerCpuSeconds();
  for (auto _ : state) {
    auto report = firedrill::workload::RunGrpcUnaryLoad(options, nullptr);
    if (!report.ok()) {
      state.SkipWithError(report.status().ToString().c_str());
      return;
    }
    (void)latency.Merge(report->uncorrected);
    answered += report->answered;
    errors += report->errors + report->failed;
    elapsed += std::chrono::duration<double>(report->elapsed).count();
    cpu += report->cpu_seconds;
  }
  const double process_cpu = ProcessCpuSeconds() - process_cpu_start;
  const double server_cpu = ServerCpuSeconds() - server_cpu_start;
  if (errors > 0) state.SkipWithError(("calls failed: " + std::to_string(errors)).c_str());
  state.counters["calls_per_second"] = elapsed > 0 ? static_cast<double>(answered) / elapsed : 0;
  state.counters["p50_us"] = static_cast<double>(latency.ValueAtQuantile(0.5)) / 1e3;
  state.counters["p99_us"] = static_cast<double>(latency.ValueAtQuantile(0.99)) / 1e3;
  state.counters["cpu_per_call_us"] = answered > 0 ? cpu / static_cast<double>(answered) * 1e6 : 0;
  state.counters["calls_per_cpu_second"] = cpu > 0 ? static_cast<double>(answered) / cpu : 0;
  state.counters["generator_busy"] = elapsed > 0 ? cpu / elapsed : 0;
  state.counters["process_busy"] = elapsed > 0 ? process_cpu / elapsed : 0;
  state.counters["server_busy"] = elapsed > 0 ? server_cpu / elapsed : 0;
  state.SetItemsProcessed(answered);
}
BENCHMARK(BM_GrpcUnaryClosedLoop)
    ->Arg(64)
    ->Arg(128)
    ->ArgName("concurrency")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  // Client on the first allowed CPU, server on the second; with one CPU
  // they share it, and the numbers say less.
  const std::vector<int> cpus = AllowedCpus();
  const int client_cpu = cpus.empty() ? -1 : cpus[0];
  const int server_cpu = cpus.size() >= 2 ? cpus[1] : -1;
  if (server_cpu < 0) std::fprintf(stderr, "grpc_load_bench: one CPU only; not pinning\n");
  const pid_t server = StartServer(server_cpu, &g_target);
  g_server = server;
  if (server < 0) {
    std::fprintf(stderr, "grpc_load_bench: could not start %s\n", TINY_GRPC_SERVER);
    return 1;
  }
  // Before gRPC starts any thread here, so they all stay on this core.
  if (server_cpu >= 0) PinTo(client_cpu);
  benchmark::AddCustomContext("client_cpu", std::to_string(client_cpu));
  benchmark::AddCustomContext("server_cpu", std::to_string(server_cpu));

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
  return 0;
}
