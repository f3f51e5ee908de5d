// HSOF stage 3: k-fold cross-validated ridge regression on the candidate
// features, choosing 10-20 of them by forward selection. The device builds a
// design matrix (each candidate standardized, plus (z^2 - 1)/sqrt(2) so that
// quadratic links show, an intercept and the target) and each fold's Gram
// matrix in double; everything after that — every fit, every fold, every
// step of the selection — works on those small matrices on the host, since
// a fold's squared error is a function of its Gram matrix alone.
#pragma once

#include <cstdint>
#include <vector>

#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"
#include "firedrill/gpu/stats.h"

namespace firedrill::gpu {

struct Stage3Options {
  int folds = 5;
  double ridge = 1e-3;  // added to the diagonal of the standardized, per-row Gram matrix
  std::size_t min_features = 10;
  std::size_t max_features = 20;
  double min_gain = 1e-3;  // past min_features, stop when cross-validated R^2 gains less
  bool expand_basis = true;
};

struct Stage3Result {
  std::vector<std::uint32_t> selected;  // in the order forward selection added them
  double cv_r2 = 0;                     // cross-validated R^2 of the final selection
  std::vector<double> cv_r2_path;       // after each addition
};

struct Stage3Workspace {
  DeviceBuffer candidates;
  DeviceBuffer design;
  DeviceBuffer grams;
};

// `stats` gives the means and variances used to standardize (stage 1's).
Result<Stage3Result> RunStage3(const DeviceBuffer& data, const DeviceBuffer& target,
                               std::size_t samples, std::size_t features,
                               const std::vector<std::uint32_t>& candidates,
                               const FeatureStats& stats, const Stage3Options& options,
                               Stage3Workspace* workspace);

// The job's quality score: half the cross-validated R^2 as a share of the
// best a model could reach (`oracle_r2`), half the share of `planted`
// features in `selected`. Without planted features it is the R^2 alone.
double SelectionQuality(double cv_r2, double oracle_r2, const std::vector<std::uint32_t>& selected,
                        const std::vector<std::uint32_t>& planted);

}  // namespace firedrill::gpu
