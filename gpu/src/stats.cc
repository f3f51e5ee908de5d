#include "firedrill/gpu/stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_backend.h"
#include "parallel.h"
#include "stats_internal.h"

namespace firedrill::gpu {
namespace {

// Turns shifted sums into mean and sample variance: with d = x - x0,
// mean = x0 + S/n and var = (S2 - S^2/n) / (n - 1).
void Moments(double x0, double s, double s2, double n, double* mean, double* variance) {
  *mean = x0 + s / n;
  *variance = std::max(0.0, (s2 - s * s / n) / (n - 1));
}

}  // namespace

namespace {

// One column's shifted double sums. Built for AVX-512, AVX2 and baseline
// x86-64, picked at load time by the CPU: double lanes are what bound this
// loop, and baseline SSE2 has only two of them.
#if defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void ShiftedColumnSums(const float* column, const float* target, std::size_t rows, double* out) {
  const double x0 = column[0];
  const double y0 = target[0];
  double sx = 0, sxx = 0, sxy = 0;
#pragma omp simd reduction(+ : sx, sxx, sxy)
  for (std::size_t i = 0; i < rows; ++i) {
    const double dx = static_cast<double>(column[i]) - x0;
    const double dy = static_cast<double>(target[i]) - y0;
    sx += dx;
    sxx += dx * dx;
    sxy += dx * dy;
  }
  out[0] = sx;
  out[1] = sxx;
  out[2] = sxy;
  out[3] = x0;
}

}  // namespace

// The CPU twin of ColumnSumsKernel: the same shifted double sums, one column
// per task, the inner loop left to the compiler's vectoriser (-fopenmp-simd).
void CpuColumnSums(const float* data, const float* target, std::size_t rows, std::size_t stride, std::size_t columns,
                   double* out) {
  ParallelFor(columns, [&](std::size_t c) { ShiftedColumnSums(data + c * stride, target, rows, out + 4 * c); });
}

Status ColumnSumsWithTarget(const DeviceBuffer& data, const DeviceBuffer& target, std::size_t rows,
                            std::size_t stride, std::size_t columns, double* out) {
  double* target_out = out + kSumsPerColumn * columns;
  if (data.backend() == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::ColumnSums(data.as<float>(), target.as<float>(), rows, stride, columns, out));
    return cuda::ColumnSums(target.as<float>(), target.as<float>(), rows, rows, 1, target_out);
  }
  CpuColumnSums(data.as<float>(), target.as<float>(), rows, stride, columns, out);
  CpuColumnSums(target.as<float>(), target.as<float>(), rows, rows, 1, target_out);
  return Status::Ok();
}

FeatureStats StatsFromSums(const double* sums, std::size_t columns, std::size_t rows) {
  FeatureStats stats;
  const double n = static_cast<double>(rows);
  const double* target_sums = &sums[kSumsPerColumn * columns];
  Moments(target_sums[3], target_sums[0], target_sums[1], n, &stats.target_mean, &stats.target_variance);
  stats.mean.resize(columns);
  stats.variance.resize(columns);
  stats.correlation.resize(columns);
  for (std::size_t f = 0; f < columns; ++f) {
    const double* s = &sums[kSumsPerColumn * f];
    Moments(s[3], s[0], s[1], n, &stats.mean[f], &stats.variance[f]);
    // Covariance is shift-invariant: sum(dx*dy) - sum(dx)*sum(dy)/n.
    const double covariance = (s[2] - s[0] * target_sums[0] / n) / (n - 1);
    const double scale = std::sqrt(stats.variance[f] * stats.target_variance);
    stats.correlation[f] = scale > 0 ? covariance / scale : 0.0;
  }
  return stats;
}

Result<FeatureStats> ComputeFeatureStats(const DeviceBuffer& data, const DeviceBuffer& target,
                                         std::size_t samples, std::size_t features,
                                         DeviceBuffer* workspace) {
  if (samples < 2) return FD_STATUS(StatusCode::kInvalidArgument, "feature statistics need at least 2 samples");
  if (data.bytes() < samples * features * sizeof(float) || target.bytes() < samples * sizeof(float)) {
    return FD_STATUS(StatusCode::kInvalidArgument, "data or target buffer is smaller than samples x features");
  }
  if (data.backend() != target.backend()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "data and target live on different backends");
  }
  const std::size_t out_bytes = kSumsPerColumn * (features + 1) * sizeof(double);
  FD_RETURN_IF_ERROR(workspace->EnsureAtLeast(data.backend(), out_bytes));
  FD_RETURN_IF_ERROR(ColumnSumsWithTarget(data, target, samples, samples, features, workspace->as<double>()));
  std::vector<double> sums(kSumsPerColumn * (features + 1));
  FD_RETURN_IF_ERROR(workspace->Download(sums.data(), out_bytes));
  return StatsFromSums(sums.data(), features, samples);
}

FeatureStats ReferenceFeatureStats(const float* data, const float* target, std::size_t samples,
                                   std::size_t features) {
  FeatureStats stats;
  const double n = static_cast<double>(samples);
  double target_sum = 0;
  for (std::size_t i = 0; i < samples; ++i) target_sum += target[i];
  stats.target_mean = target_sum / n;
  double target_ss = 0;
  for (std::size_t i = 0; i < samples; ++i) target_ss += (target[i] - stats.target_mean) * (target[i] - stats.target_mean);
  stats.target_variance = target_ss / (n - 1);
  for (std::size_t f = 0; f < features; ++f) {
    const float* column = data + f * samples;
    double sum = 0;
    for (std::size_t i = 0; i < samples; ++i) sum += column[i];
    const double mean = sum / n;
    double ss = 0, sp = 0;
    for (std::size_t i = 0; i < samples; ++i) {
      const double dx = column[i] - mean;
      ss += dx * dx;
      sp += dx * (target[i] - stats.target_mean);
    }
    stats.mean.push_back(mean);
    stats.variance.push_back(ss / (n - 1));
    const double scale = std::sqrt(ss * target_ss);
    stats.correlation.push_back(scale > 0 ? sp / scale : 0.0);
  }
  return stats;
}

std::vector<float> PackCandidates(const std::vector<std::uint32_t>& candidates, const FeatureStats& stats) {
  const std::size_t count = candidates.size();
  std::vector<float> packed(3 * count);
  for (std::size_t c = 0; c < count; ++c) {
    std::memcpy(&packed[c], &candidates[c], sizeof(float));
    packed[count + c] = static_cast<float>(stats.mean[candidates[c]]);
    const double variance = stats.variance[candidates[c]];
    packed[2 * count + c] = static_cast<float>(variance > 0 ? 1 / std::sqrt(variance) : 0.0);
  }
  return packed;
}

}  // namespace firedrill::gpu
