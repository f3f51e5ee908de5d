// HSOF stage 1: filter features by variance, Pearson correlation with the
// target and histogram mutual information, then prune redundant ones among
// the top candidates. Keeps about `keep_ratio` of the features (the
// reduction ratio the pipeline reports). CUDA and CPU compute the same
// function: the same statistics, the same bins, the same greedy pruning.
#pragma once

#include <cstdint>
#include <vector>

#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"
#include "firedrill/gpu/stats.h"

namespace firedrill::gpu {

inline constexpr int kMutualInformationBins = 16;  // per axis; 256 joint bins

struct Stage1Options {
  double keep_ratio = 0.1;
  // Two candidates whose correlation (in absolute value) exceeds this are
  // redundant: the lower-scored one is dropped.
  double redundancy_threshold = 0.8;
  // Rows whose spread sets each column's histogram bins (mean +- 3 sd), so
  // that the full pass can bin and sum in one read of the data.
  std::size_t binning_rows = 8192;
  // Rows used to estimate the candidates' correlations with each other.
  std::size_t redundancy_rows = 2048;
  // Features whose variance is below this never pass.
  double min_variance = 1e-8;
};

// Wall time of stage 1's parts, each ending when its results reach the host:
// where the time goes beside the one full pass over the data.
struct Stage1Timings {
  double binning_seconds = 0;     // sums over the first rows, bin edges up
  double pass_seconds = 0;        // the full pass: sums and mutual information
  double ranking_seconds = 0;     // scores and the candidate order, on the host
  double redundancy_seconds = 0;  // candidate correlations and the greedy pruning
};

struct Stage1Result {
  std::vector<std::uint32_t> selected;  // by descending score
  FeatureStats stats;
  std::vector<double> mutual_information;  // nats, per feature
  std::vector<double> score;               // 0..1, per feature; -1 when filtered by variance
  std::vector<std::uint32_t> pruned;       // candidates dropped as redundant
  double reduction_ratio = 0;              // selected / features
  Stage1Timings timings;
};

// Scratch memory reused across calls on one backend.
struct Stage1Workspace {
  DeviceBuffer sums;
  DeviceBuffer bins;
  DeviceBuffer mutual_information;
  DeviceBuffer candidates;
  DeviceBuffer gram;
};

Result<Stage1Result> RunStage1(const DeviceBuffer& data, const DeviceBuffer& target,
                               std::size_t samples, std::size_t features,
                               const Stage1Options& options, Stage1Workspace* workspace);

}  // namespace firedrill::gpu
