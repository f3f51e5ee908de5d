// Stress kernels for noisy-neighbour and saturation drills, each on the CUDA
// backend and as a CPU equivalent: compute burns (FP32 FMA, tensor-core
// matrix products), a memory
// bandwidth burn (copy), and a memory hog that takes, touches, holds and
// gives back a given amount of memory.
//
// Thread-safety: independent calls may run concurrently; a MemoryHog has one
// owner.
#pragma once

#include <cstdint>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"
#include "firedrill/gpu/device.h"

namespace firedrill::gpu {

struct BurnResult {
  double seconds = 0;  // measured time the burn ran
  double flops = 0;    // floating-point operations done (compute burn)
  double bytes = 0;    // bytes read plus written (bandwidth burn)
  double Rate() const { return seconds > 0 ? (flops > 0 ? flops : bytes) / seconds : 0; }
};

// Runs FP32 FMAs for about `duration` on `intensity` of the device (the share
// of SMs on a GPU, of cores on the CPU), measured by `clock`.
Result<BurnResult> ComputeBurn(const DeviceInfo& device, Clock& clock, Duration duration,
                               double intensity = 1.0);

// Matrix products for about `duration`. On a GPU: 8192 x 8192 BF16 products
// with FP32 accumulation on the tensor cores through cuBLAS (loaded with
// dlopen; kUnavailable when it cannot be), `intensity` being the duty cycle
// (after each round the burn idles (1 - intensity) / intensity as long);
// `seconds` counts the busy time. On the CPU: blocked FP32 products on
// `intensity` of the cores.
Result<BurnResult> TensorBurn(const DeviceInfo& device, Clock& clock, Duration duration,
                              double intensity = 1.0);

// Copies between two buffers of `buffer_bytes` each for about `duration`.
Result<BurnResult> BandwidthBurn(const DeviceInfo& device, Clock& clock, std::size_t buffer_bytes,
                                 Duration duration, double intensity = 1.0);

// Memory held until Release() or destruction.
class MemoryHog {
 public:
  // Takes `bytes` and writes every page, so the memory is really resident.
  static Result<MemoryHog> Take(Backend backend, std::uint64_t bytes, Clock& clock);
  // Free memory on the device now (CUDA), for sizing a hog as a share of it.
  static Result<std::uint64_t> FreeDeviceMemory(Backend backend);

  Status Release();
  std::uint64_t bytes() const { return buffer_.bytes(); }
  Duration take_time() const { return take_time_; }
  Duration release_time() const { return release_time_; }

 private:
  DeviceBuffer buffer_;
  Clock* clock_ = nullptr;
  Duration take_time_{0};
  Duration release_time_{0};
};

}  // namespace firedrill::gpu
