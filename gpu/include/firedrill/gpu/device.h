// Which compute device Firedrill runs on, and a self-test that proves it
// works. The CUDA backend is used when this build has it, a driver loads and
// a device answers; otherwise the CPU backend runs the same kernels' CPU
// twins. The simulated device (CPU compute plus modelled telemetry) is chosen
// explicitly. The choice is logged once, in one line, by whoever probes.
//
// Thread-safety: ProbeDevice and RunSelfTest may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "firedrill/core/log.h"
#include "firedrill/core/status.h"
#include "firedrill/gpu/backend.h"
#include "firedrill/gpu/buffer.h"

namespace firedrill::gpu {

struct DeviceInfo {
  Backend backend = Backend::kCpu;
  bool cuda_built = false;  // this binary contains the CUDA backend
  std::string name;         // "NVIDIA H100 80GB HBM3" or the CPU model
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

struct DeviceOptions {
  BackendChoice backend = BackendChoice::kAuto;
  double memory_fraction = 0.9;    // GPU_MEMORY_FRACTION: share of device memory the arena may use
  int max_concurrent_batches = 4;  // MAX_CONCURRENT_BATCHES
  // Capacity the CPU and simulated backends pretend to have (their arena's
  // 100%); the simulated device reports it as memory total.
  std::uint64_t host_device_memory = std::uint64_t{16} << 30;
  // CPU and simulated backends: a folder of SharedDeviceMemory records, so
  // that memory another process holds there (a GPU memory hog) is not free
  // here, as on a real GPU. Empty: this process has the device to itself.
  std::string shared_memory_dir = {};
};

class SimulatedDevice;
class DeviceArena;
class SharedDeviceMemory;

// One compute device for the pipeline: the backend chosen at start-up, a
// memory arena with a hard budget, a limit on concurrent batches, and a
// throttle that slows device work (what thermal faults act through). On the
// simulated backend it also owns the telemetry model, whose thermal
// throttling joins the throttle.
//
// Thread-safety: every method may be called from any thread.
class Device {
 public:
  // Logs the backend choice once, in one line.
  static Result<std::unique_ptr<Device>> Open(const DeviceOptions& options, Clock& clock,
                                              Logger& logger);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const DeviceInfo& info() const { return info_; }
  Backend backend() const { return info_.backend; }

  // Memory from the arena. Past the budget: kResourceExhausted with a message
  // that names the budget and GPU_MEMORY_FRACTION; never an abort.
  Result<DeviceBuffer> Allocate(std::size_t bytes);
  std::uint64_t memory_budget() const;
  std::uint64_t memory_used() const;
  // CPU twins with a shared device memory folder: what other processes hold
  // on the device (on a GPU, NVML reports the device-wide figure). 0 otherwise.
  std::uint64_t memory_held_by_others() const;
  // Changing the fraction takes effect for later allocations; memory already
  // held stays held.
  Status SetMemoryFraction(double fraction);

  // A held batch slot, given back on destruction.
  class BatchSlot {
   public:
    BatchSlot() = default;
    explicit BatchSlot(Device* device) : device_(device) {}
    BatchSlot(BatchSlot&& other) noexcept : device_(std::exchange(other.device_, nullptr)) {}
    BatchSlot& operator=(BatchSlot&& other) noexcept;
    ~BatchSlot();
    bool held() const { return device_ != nullptr; }

   private:
    Device* device_ = nullptr;
  };
  // Blocks until fewer than MAX_CONCURRENT_BATCHES batches run.
  BatchSlot AcquireBatch();
  // A slot if one is free now; an empty slot otherwise.
  BatchSlot TryAcquireBatch();
  Status SetMaxConcurrentBatches(int limit);
  int running_batches() const;

  // 1 runs at full speed; 0.5 makes work take twice as long.
  Status SetThrottle(double factor);
  // The throttle in force: the one set, further cut by thermal throttling on
  // the simulated device.
  double throttle();
  // Waits (on the clock) the extra time that `work` would have taken at the
  // current throttle; device work calls this after each batch.
  void ApplyThrottle(Duration work);

  // The telemetry model; null unless the backend is simulated.
  SimulatedDevice* simulated() { return simulated_.get(); }

 private:
  Device(DeviceInfo info, const DeviceOptions& options, Clock& clock, std::unique_ptr<SharedDeviceMemory> shared);
  void ReleaseBatch();

  const DeviceInfo info_;
  Clock& clock_;
  std::uint64_t capacity_;
  std::unique_ptr<SharedDeviceMemory> shared_;  // before arena_, which points at it
  std::shared_ptr<DeviceArena> arena_;
  std::unique_ptr<SimulatedDevice> simulated_;
  mutable std::mutex mutex_;
  std::condition_variable batch_freed_;
  int max_batches_;
  int running_batches_ = 0;
  double throttle_ = 1.0;
};

}  // namespace firedrill::gpu
