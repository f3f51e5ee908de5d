// Stage 3's per-element math, shared by the CUDA kernels and the CPU twin.
#pragma once

#include "dataset_math.h"  // FD_HOST_DEVICE

namespace firedrill::gpu::stage3_math {

// The second basis column of a standardized feature: (z^2 - 1) / sqrt(2),
// zero-mean and unit-variance for a normal z, so a quadratic link is linear in it.
FD_HOST_DEVICE inline float Square(float z) { return (z * z - 1.0f) * 0.70710678f; }

}  // namespace firedrill::gpu::stage3_math
