// GPU stress beside a load phase, for noisy-neighbour and saturation drills:
// the gpu/ stress kernels (compute burn, bandwidth burn, memory hog) run on
// their own thread for the phase's length, on the same schedule as the load.
// Burns run in short slices, so Stop() takes effect within one slice; the
// memory hog takes its share once, holds it, and gives it back at the end.
//
// Thread-safety: Stop() may be called from any thread; Wait() by the owner.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <thread>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/gpu/device.h"

namespace firedrill::workload {

enum class StressMode { kCompute, kBandwidth, kMemory };
Result<StressMode> ParseStressMode(std::string_view text);  // "compute", "bandwidth", "memory"
std::string_view StressModeName(StressMode mode);

struct StressOptions {
  StressMode mode = StressMode::kCompute;
  // compute and bandwidth: the share of the device's SMs (of the CPU's
  // cores on the CPU backend); memory: the share of free device memory, or
  // of memory_cap on the CPU and simulated backends.
  double intensity = 0.5;
  Duration length{0};
  Duration slice = std::chrono::milliseconds(100);
  // The most host memory a memory stress may take where the device is the
  // CPU: Firedrill fills only memory it has bounded itself.
  std::uint64_t memory_cap = 1ULL << 30;
  std::size_t bandwidth_buffer_bytes = 64ULL << 20;
};

struct StressResult {
  StressMode mode = StressMode::kCompute;
  double intensity = 0;
  Duration ran{0};          // from start to the end of the last slice (or the release)
  std::int64_t slices = 0;  // burn slices run
  double busy_seconds = 0;  // the burns' own measured time
  double flops = 0;
  double bytes = 0;                // bandwidth: bytes read plus written
  std::uint64_t held_bytes = 0;    // memory: what the hog held
  Duration take_time{0};           // memory: allocating and touching it
  Status status;                   // the first failure, if any
  double Rate() const;             // FLOP/s or B/s over the slices' busy time
  nlohmann::json ToJson() const;
};

class StressPhase {
 public:
  // Checks the options and starts the stress thread. InvalidArgument for an
  // intensity outside (0, 1] or a non-positive length.
  static Result<std::unique_ptr<StressPhase>> Start(const StressOptions& options, const gpu::DeviceInfo& device,
                                                    Clock& clock);
  ~StressPhase();  // stops and waits
  StressPhase(const StressPhase&) = delete;
  StressPhase& operator=(const StressPhase&) = delete;

  void Stop();
  StressResult Wait();  // once

 private:
  StressPhase(const StressOptions& options, const gpu::DeviceInfo& device, Clock& clock);
  void Run();

  StressOptions options_;
  gpu::DeviceInfo device_;
  Clock& clock_;
  std::atomic<bool> stop_{false};
  StressResult result_;
  std::thread thread_;
};

}  // namespace firedrill::workload
