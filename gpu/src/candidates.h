// Work on stage 1's candidate columns that stages 1, 2 and 3 share: their
// correlations with each other, and the per-fold Gram matrices of a design
// built from them that cross-validated ridge needs (see cross_validation.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"
#include "firedrill/gpu/stats.h"

namespace firedrill::gpu {

// Correlations among `candidates` on the first `rows` rows: a count x count
// row-major matrix on the host. `scratch` and `gram` are grown to fit.
Result<std::vector<float>> CandidateCorrelationMatrix(const DeviceBuffer& data, std::size_t samples,
                                                      const std::vector<std::uint32_t>& candidates,
                                                      const FeatureStats& stats, std::size_t rows,
                                                      DeviceBuffer* scratch, DeviceBuffer* gram);

// The design matrix over the first `rows` rows — each candidate standardized
// (z), with (z^2 - 1)/sqrt(2) beside it when `expand`, then ones, then the
// target — and design^T design for each of `folds` contiguous row ranges,
// downloaded as folds x width x width doubles, width = count * (expand ? 2 : 1) + 2.
// The three buffers are scratch, grown to fit.
Result<std::vector<double>> CandidateFoldGrams(const DeviceBuffer& data, const DeviceBuffer& target,
                                               std::size_t samples, std::size_t rows,
                                               const std::vector<std::uint32_t>& candidates, const FeatureStats& stats,
                                               bool expand, int folds, DeviceBuffer* packed,
                                               DeviceBuffer* design, DeviceBuffer* grams);

}  // namespace firedrill::gpu
