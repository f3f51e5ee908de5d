// Synthetic datasets for HSOF jobs, generated on the device from a seed.
// Every value is a pure function of (seed, feature, sample) through a
// counter-based hash, so the CUDA and CPU backends produce the same dataset
// (to the last bit in almost every element; transcendental functions may
// differ by an ulp of the double before rounding to float), and any tile can
// be generated without the others.
//
// Layout: `features` columns of `samples` floats, feature-major.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"

namespace firedrill::gpu {

struct DatasetSpec {
  std::size_t samples = 10000;
  std::size_t features = 1000;
  std::size_t informative = 20;  // planted features the target depends on
  std::size_t decoys = 20;       // noisy copies of informative features (redundant)
  double noise = 0.1;            // target noise, relative to the signal's spread
  std::uint64_t seed = 1;
};

// How the target depends on an informative feature, by its rank j: j % 3 is
// 0 linear, 1 quadratic, 2 sine. Each link is scaled to unit variance.
enum class Link { kLinear = 0, kQuadratic = 1, kSine = 2 };

struct Dataset {
  DatasetSpec spec;
  DeviceBuffer data;
  DeviceBuffer target;
  std::vector<std::uint32_t> informative;  // feature indices, in link order
  std::vector<std::uint32_t> decoys;       // decoys[j] copies informative[j % informative.size()]
};

// Fails with kInvalidArgument on an impossible spec, kResourceExhausted when
// the backend has no room.
Result<Dataset> GenerateDataset(Backend backend, const DatasetSpec& spec);

class Device;
// The same, in memory from the device's arena, so the dataset counts against
// its budget (GPU_MEMORY_FRACTION) and a dataset past it is kResourceExhausted.
Result<Dataset> GenerateDataset(Device& device, const DatasetSpec& spec);

}  // namespace firedrill::gpu
