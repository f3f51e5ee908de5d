// Stage 1's per-element math, shared by the CUDA kernels and the CPU twin.
#pragma once

#include <cmath>

#include "dataset_math.h"  // FD_HOST_DEVICE

namespace firedrill::gpu::stage1_math {

constexpr int kBins = 16;

// Equal-width bin over [lo, lo + kBins / inverse_width); outliers go to the
// end bins. Subtract then multiply, in float, so both backends round alike.
FD_HOST_DEVICE inline int Bin(float x, float lo, float inverse_width) {
  const float position = (x - lo) * inverse_width;
  if (!(position > 0.0f)) return 0;  // also catches NaN
  if (position >= static_cast<float>(kBins - 1)) return kBins - 1;
  return static_cast<int>(position);
}

// One joint bin's share of the mutual information, in nats.
FD_HOST_DEVICE inline double MutualInformationTerm(double count, double row, double column, double n) {
  if (count <= 0) return 0.0;
  return (count / n) * log(count * n / (row * column));
}

}  // namespace firedrill::gpu::stage1_math
