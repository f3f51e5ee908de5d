// The part of the device layer compiled by nvcc. Without CUDA in the build,
// cpu_only.cc supplies these functions and Built() is false.
#pragma once

#include <cstdint>
#include <string>

#include "firedrill/core/status.h"
#include "firedrill/gpu/device.h"

namespace firedrill::gpu::cuda {

bool Built();
// Fills `info` for device 0 and returns true, or returns false with `why`
// (no driver, no device, ...). Never aborts.
bool Probe(DeviceInfo* info, std::string* why);
// Sum over i < count of (i % modulus), computed on the device.
Status SumModulo(std::uint64_t count, std::uint64_t modulus, std::uint64_t* sum);

}  // namespace firedrill::gpu::cuda
