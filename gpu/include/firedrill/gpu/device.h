// Which compute device Firedrill runs on, and a self-test that proves it
// works. The CUDA backend is used when this build has it, a driver loads and
// a device answers; otherwise the CPU backend runs the same kernels' CPU
// twins. The simulated device (CPU compute plus modelled telemetry) is chosen
// explicitly. The choice is logged once, in one line, by whoever probes.
//
// Thread-safety: ProbeDevice and RunSelfTest may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "firedrill/core/log.h"
#include "firedrill/core/status.h"

namespace firedrill::gpu {

enum class Backend { kCuda, kCpu, kSimulated };
enum class BackendChoice { kAuto, kCuda, kCpu, kSimulated };

std::string_view BackendName(Backend backend);
bool ParseBackendChoice(std::string_view text, BackendChoice* choice);

struct DeviceInfo {
  Backend backend = Backend::kCpu;
  bool cuda_built = false;      // this binary contains the CUDA backend
  std::string name;             // "NVIDIA H100 80GB HBM3" or the CPU model
  int index = 0;
  std::uint64_t total_memory = 0;  // bytes (device memory, or host memory for CPU)
  int compute_major = 0;
  int compute_minor = 0;
  int device_count = 0;
  int driver_version = 0;       // CUDA driver API version, e.g. 13000
  std::string fallback_reason;  // why CUDA was not used, when it was not
};

// Picks the backend. kCuda fails with kUnavailable when no usable GPU is
// present; kAuto falls back to the CPU and says why in fallback_reason.
Result<DeviceInfo> ProbeDevice(BackendChoice choice = BackendChoice::kAuto);

// One log line: which backend, which device, and why CUDA was not used.
void LogDeviceChoice(Logger& logger, const DeviceInfo& device);

// Runs a small reduction on the chosen backend and checks the answer against
// exact arithmetic. Proves kernels for this architecture load and run.
Status RunSelfTest(const DeviceInfo& device);

}  // namespace firedrill::gpu
