#include "firedrill/gpu/stage1.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "candidates.h"
#include "cuda_backend.h"
#include "parallel.h"
#include "stage1_math.h"
#include "stats_internal.h"

namespace firedrill::gpu {
namespace {

namespace sm = stage1_math;

// The CPU twin of Stage1PassKernel's histogram and mutual information.
void CpuMutualInformation(const float* data, const float* target, std::size_t rows, std::size_t columns,
                          const float* bins, double* out) {
  const float y_lo = bins[columns], y_inv = bins[2 * columns + 1];
  std::vector<int> target_bins(rows);
  for (std::size_t i = 0; i < rows; ++i) target_bins[i] = sm::Bin(target[i], y_lo, y_inv);
  ParallelFor(columns, [&](std::size_t f) {
    unsigned histogram[sm::kBins * sm::kBins] = {};
    const float* column = data + f * rows;
    const float x_lo = bins[f], x_inv = bins[columns + 1 + f];
    for (std::size_t i = 0; i < rows; ++i) ++histogram[sm::Bin(column[i], x_lo, x_inv) * sm::kBins + target_bins[i]];
    double row_sum[sm::kBins] = {}, column_sum[sm::kBins] = {};
    for (int b = 0; b < sm::kBins * sm::kBins; ++b) {
      row_sum[b / sm::kBins] += histogram[b];
      column_sum[b % sm::kBins] += histogram[b];
    }
    double mi = 0;
    for (int b = 0; b < sm::kBins * sm::kBins; ++b) {
      mi += sm::MutualInformationTerm(histogram[b], row_sum[b / sm::kBins], column_sum[b % sm::kBins],
                                      static_cast<double>(rows));
    }
    out[f] = mi;
  });
}

}  // namespace

Result<Stage1Result> RunStage1(const DeviceBuffer& data, const DeviceBuffer& target, std::size_t samples,
                               std::size_t features, const Stage1Options& options, Stage1Workspace* workspace) {
  if (!(options.keep_ratio > 0 && options.keep_ratio <= 1)) {
    return FD_STATUS(StatusCode::kInvalidArgument, "keep_ratio must be in (0, 1]");
  }
  if (samples < 2 || data.bytes() < samples * features * sizeof(float) || target.bytes() < samples * sizeof(float) ||
      data.backend() != target.backend()) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage 1 needs at least 2 samples, buffers of samples x features, on one backend");
  }
  const Backend backend = data.backend();
  Stage1Result result;
  // Instrumentation only: stage 1's logic never reads the time.
  auto lap = [last = std::chrono::steady_clock::now()](double* seconds) mutable {
    const auto now = std::chrono::steady_clock::now();
    *seconds = std::chrono::duration<double>(now - last).count();
    last = now;
  };
  const std::size_t sums_count = kSumsPerColumn * (features + 1);
  FD_RETURN_IF_ERROR(workspace->sums.EnsureAtLeast(backend, 2 * sums_count * sizeof(double)));
  double* full_sums = workspace->sums.as<double>();
  double* early_sums = full_sums + sums_count;
  std::vector<double> sums(sums_count);

  // Bins come from the first rows, so the full pass can bin and sum at once:
  // equal width over mean +- 3 standard deviations of each column.
  const std::size_t binning_rows = std::min(samples, std::max<std::size_t>(2, options.binning_rows));
  FD_RETURN_IF_ERROR(ColumnSumsWithTarget(data, target, binning_rows, samples, features, early_sums));
  FD_RETURN_IF_ERROR(workspace->sums.Download(sums.data(), sums_count * sizeof(double), sums_count * sizeof(double)));
  const FeatureStats early = StatsFromSums(sums.data(), features, binning_rows);
  std::vector<float> bins(2 * (features + 1));
  auto set_bins = [&](std::size_t index, double mean, double variance) {
    const double sd = std::sqrt(variance);
    bins[index] = static_cast<float>(sd > 0 ? mean - 3 * sd : mean);
    bins[features + 1 + index] = static_cast<float>(sd > 0 ? sm::kBins / (6 * sd) : 0.0);
  };
  for (std::size_t f = 0; f < features; ++f) set_bins(f, early.mean[f], early.variance[f]);
  set_bins(features, early.target_mean, early.target_variance);
  FD_RETURN_IF_ERROR(workspace->bins.EnsureAtLeast(backend, bins.size() * sizeof(float)));
  FD_RETURN_IF_ERROR(workspace->bins.Upload(bins.data(), bins.size() * sizeof(float)));
  FD_RETURN_IF_ERROR(workspace->mutual_information.EnsureAtLeast(backend, features * sizeof(double)));
  lap(&result.timings.binning_seconds);

  // The one full pass: sums and mutual information together.
  double* target_sums = full_sums + kSumsPerColumn * features;
  if (backend == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::Stage1Pass(data.as<float>(), target.as<float>(), samples, features,
                                        workspace->bins.as<float>(), full_sums,
                                        workspace->mutual_information.as<double>()));
    FD_RETURN_IF_ERROR(cuda::ColumnSums(target.as<float>(), target.as<float>(), samples, samples, 1, target_sums));
  } else {
    CpuColumnSums(data.as<float>(), target.as<float>(), samples, samples, features, full_sums);
    CpuColumnSums(target.as<float>(), target.as<float>(), samples, samples, 1, target_sums);
    CpuMutualInformation(data.as<float>(), target.as<float>(), samples, features, workspace->bins.as<float>(),
                         workspace->mutual_information.as<double>());
  }
  FD_RETURN_IF_ERROR(workspace->sums.Download(sums.data(), sums_count * sizeof(double)));
  result.stats = StatsFromSums(sums.data(), features, samples);
  result.mutual_information.resize(features);
  FD_RETURN_IF_ERROR(workspace->mutual_information.Download(result.mutual_information.data(), features * sizeof(double)));
  lap(&result.timings.pass_seconds);

  // Score: correlation and mutual information, each scaled by its maximum,
  // weighted equally (MI finds the non-linear links correlation misses).
  double max_correlation = 0, max_mi = 0;
  for (std::size_t f = 0; f < features; ++f) {
    max_correlation = std::max(max_correlation, std::abs(result.stats.correlation[f]));
    max_mi = std::max(max_mi, result.mutual_information[f]);
  }
  result.score.resize(features);
  for (std::size_t f = 0; f < features; ++f) {
    if (result.stats.variance[f] < options.min_variance) {
      result.score[f] = -1;
      continue;
    }
    const double c = max_correlation > 0 ? std::abs(result.stats.correlation[f]) / max_correlation : 0;
    const double m = max_mi > 0 ? result.mutual_information[f] / max_mi : 0;
    result.score[f] = 0.5 * c + 0.5 * m;
  }
  std::vector<std::uint32_t> order(features);
  std::iota(order.begin(), order.end(), 0u);
  const std::size_t keep = std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(options.keep_ratio * features)));
  const std::size_t candidate_count = std::min(features, 2 * keep);
  std::partial_sort(order.begin(), order.begin() + candidate_count, order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return result.score[a] != result.score[b] ? result.score[a] > result.score[b] : a < b;
  });
  std::vector<std::uint32_t> candidates;
  for (std::size_t i = 0; i < candidate_count && result.score[order[i]] >= 0; ++i) candidates.push_back(order[i]);
  lap(&result.timings.ranking_seconds);

  // Redundancy: correlations among the candidates on the first rows, then a
  // greedy pass in score order that drops whatever repeats a kept feature.
  const std::size_t count = candidates.size();
  FD_ASSIGN_OR_RETURN(const std::vector<float> gram,
                      CandidateCorrelationMatrix(data, samples, candidates, result.stats, options.redundancy_rows,
                                                 &workspace->candidates, &workspace->gram));
  std::vector<std::size_t> kept;
  for (std::size_t i = 0; i < count && kept.size() < keep; ++i) {
    const bool redundant = std::any_of(kept.begin(), kept.end(), [&](std::size_t k) {
      return std::abs(gram[i * count + k]) > options.redundancy_threshold;
    });
    if (redundant) {
      result.pruned.push_back(candidates[i]);
    } else {
      kept.push_back(i);
      result.selected.push_back(candidates[i]);
    }
  }
  result.reduction_ratio = static_cast<double>(result.selected.size()) / static_cast<double>(features);
  lap(&result.timings.redundancy_seconds);
  return result;
}

}  // namespace firedrill::gpu
