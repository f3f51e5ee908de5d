// Pieces of the statistics pass that stage 1 reuses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"
#include "firedrill/gpu/stats.h"

namespace firedrill::gpu {

inline constexpr std::size_t kSumsPerColumn = 4;  // sum, sum of squares, cross sum, shift

// Shifted sums (see cuda::ColumnSums) over the first `rows` values of each
// of `columns` columns spaced `stride` floats apart, then of the target
// against itself, into `out` (kSumsPerColumn * (columns + 1) doubles on the
// backend of `data`).
Status ColumnSumsWithTarget(const DeviceBuffer& data, const DeviceBuffer& target, std::size_t rows,
                            std::size_t stride, std::size_t columns, double* out);

// Host-side CPU twin of the column sums kernel.
void CpuColumnSums(const float* data, const float* target, std::size_t rows, std::size_t stride,
                   std::size_t columns, double* out);

// Candidate columns as the kernels take them: `count` indices (bit-cast to
// float), then `count` means, then `count` inverse standard deviations.
std::vector<float> PackCandidates(const std::vector<std::uint32_t>& candidates, const FeatureStats& stats);

// Mean, variance and correlation from downloaded sums (target last) over `rows`.
FeatureStats StatsFromSums(const double* sums, std::size_t columns, std::size_t rows);

}  // namespace firedrill::gpu
