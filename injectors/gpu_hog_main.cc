// firedrill-gpu-hog: the separate process a gpu-memory-hog fault runs in, so
// that the memory is held the way a noisy neighbour holds it: by another
// process. Its owner (Firedrill) talks to it over standard input:
//   'G'  take the memory; it answers "held BYTES" or "error: WHY" on stdout
//   'R'  renew the lease
//   end of file, SIGTERM, its owner's death, or a lease with no renewal:
//        give the memory back and exit 0.
// On a GPU it allocates and touches device memory (cudaMalloc); on the CPU
// twins it records its holding in the shared device memory folder that the
// pipeline's device counts (gpu/shared_memory.h).
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "firedrill/core/clock.h"
#include "firedrill/core/units.h"
#include "firedrill/gpu/device.h"
#include "firedrill/gpu/shared_memory.h"
#include "firedrill/gpu/stress.h"

namespace {

int Answer(const std::string& line, int code) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return code;
}

// The answer for a status that stopped the hog. A device that is full is
// "out of memory" first, on either backend: its owner reports it as such.
std::string ErrorAnswer(const firedrill::Status& status, std::uint64_t bytes) {
  if (status.code() != firedrill::StatusCode::kResourceExhausted) return "error: " + status.message();
  return "error: out of memory: " + firedrill::FormatSize(bytes) + " asked while " + status.message();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"firedrill-gpu-hog: holds a share of device memory for a gpu-memory-hog fault (run by Firedrill)"};
  std::string backend = "auto";
  double share = 0;
  std::string device_memory = "8GiB";
  std::string shared_memory;
  int lease_ms = 30000;
  pid_t owner = 0;
  app.add_option("--backend", backend, "auto, cuda, cpu or simulated")
      ->check(CLI::IsMember({"auto", "cuda", "cpu", "simulated"}));
  app.add_option("--share", share, "share of the device's memory to hold")->required()->check(CLI::Range(0.0, 1.0));
  app.add_option("--device-memory", device_memory, "cpu and simulated devices: the device's memory");
  app.add_option("--shared-memory", shared_memory, "cpu and simulated devices: the shared device memory folder");
  app.add_option("--lease-ms", lease_ms, "give the memory back when not renewed for this long")->check(CLI::Range(1, 86'400'000));
  app.add_option("--owner", owner, "the owner's pid: this process ends when it does")->required();
  CLI11_PARSE(app, argc, argv);

  // Ending signals arrive through a descriptor, beside the owner's pipe.
  sigset_t ending;
  sigemptyset(&ending);
  sigaddset(&ending, SIGTERM);
  sigaddset(&ending, SIGINT);
  sigaddset(&ending, SIGHUP);
  sigaddset(&ending, SIGUSR1);
  sigprocmask(SIG_BLOCK, &ending, nullptr);
  const int signals = signalfd(-1, &ending, SFD_CLOEXEC);
  // The owner's death ends this process too: its pipe's end of file says so,
  // and so does the parent-death signal — which also fires when the thread
  // that spawned it ends, so it only prompts a look at who the parent is.
  prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (getppid() != owner) return 0;

  // The next command within a lease; 0 when it is time to end.
  const auto next_command = [&]() -> char {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(lease_ms);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return 0;  // the lease lapsed
      pollfd watch[2] = {{STDIN_FILENO, POLLIN, 0}, {signals, POLLIN, 0}};
      const int ready = poll(watch, 2, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return 0;
      if (watch[1].revents & POLLIN) {
        signalfd_siginfo info{};
        (void)!read(signals, &info, sizeof info);
        if (info.ssi_signo == SIGUSR1 && getppid() == owner) continue;
        return 0;
      }
      char command = 0;
      return read(STDIN_FILENO, &command, 1) == 1 ? command : 0;
    }
  };
  if (next_command() != 'G') return 0;

  firedrill::gpu::BackendChoice choice = firedrill::gpu::BackendChoice::kAuto;
  firedrill::gpu::ParseBackendChoice(backend, &choice);
  auto device = firedrill::gpu::ProbeDevice(choice);
  if (!device.ok()) return Answer("error: " + device.status().message(), 1);
  firedrill::RealClock clock;
  std::optional<firedrill::gpu::MemoryHog> hog;
  std::unique_ptr<firedrill::gpu::SharedDeviceMemory> record;
  std::uint64_t bytes = 0;
  if (device->backend == firedrill::gpu::Backend::kCuda) {
    bytes = static_cast<std::uint64_t>(static_cast<double>(device->total_memory) * share);
    auto taken = firedrill::gpu::MemoryHog::Take(firedrill::gpu::Backend::kCuda, bytes, clock);
    if (!taken.ok()) return Answer(ErrorAnswer(taken.status(), bytes), 1);
    hog = std::move(*taken);
  } else {
    auto total = firedrill::ParseSize(device_memory);
    if (!total.ok()) return Answer("error: --device-memory: " + total.status().message(), 1);
    if (shared_memory.empty()) return Answer("error: the CPU twins need --shared-memory", 1);
    auto opened = firedrill::gpu::SharedDeviceMemory::Open(shared_memory);
    if (!opened.ok()) return Answer("error: " + opened.status().message(), 1);
    record = std::move(*opened);
    bytes = static_cast<std::uint64_t>(static_cast<double>(*total) * share);
    if (auto held = record->HoldWithin(bytes, *total); !held.ok()) return Answer(ErrorAnswer(held, bytes), 1);
  }
  Answer("held " + std::to_string(bytes), 0);
  while (next_command() == 'R') {
  }
  // Whatever ended it, the memory goes back on the way out.
  if (hog) (void)hog->Release();
  record.reset();
  return 0;
}
