// Stage 1's statistics pass: per-feature mean, variance and Pearson
// correlation with the target, in one read of the data. The CUDA kernel and
// the CPU twin compute the same function (float inputs, double sums, shifted
// by each column's first value so large offsets do not cancel); the float64
// two-pass reference is what tests compare both with.
#pragma once

#include <cstddef>
#include <vector>

#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"

namespace firedrill::gpu {

struct FeatureStats {
  std::vector<double> mean;
  std::vector<double> variance;     // sample variance (n - 1)
  std::vector<double> correlation;  // with the target; 0 when either side is constant
  double target_mean = 0;
  double target_variance = 0;
};

// `data` holds `features` columns of `samples` floats each, column after
// column (feature-major); `target` holds `samples` floats. `workspace` is
// reused across calls (it is grown to fit). Needs samples >= 2.
Result<FeatureStats> ComputeFeatureStats(const DeviceBuffer& data, const DeviceBuffer& target,
                                         std::size_t samples, std::size_t features,
                                         DeviceBuffer* workspace);

// Float64, two passes, one thread: the reference the others are checked with.
FeatureStats ReferenceFeatureStats(const float* data, const float* target, std::size_t samples,
                                   std::size_t features);

}  // namespace firedrill::gpu
