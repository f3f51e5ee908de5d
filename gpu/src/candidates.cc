#include "candidates.h"

#include <algorithm>
#include <cstring>

#include "cuda_backend.h"
#include "parallel.h"
#include "stage3_math.h"
#include "stats_internal.h"

namespace firedrill::gpu {
namespace {

std::uint32_t CandidateColumn(const float* packed, std::size_t c) {
  std::uint32_t column;
  std::memcpy(&column, &packed[c], sizeof(column));
  return column;
}

// The CPU twin of cuda::CandidateCorrelations: standardized rows, then z^T z / rows.
void CpuCandidateCorrelations(const float* data, std::size_t samples, const float* candidates,
                              std::size_t count, std::size_t rows, float* z, float* gram) {
  for (std::size_t c = 0; c < count; ++c) {
    const std::uint32_t column = CandidateColumn(candidates, c);
    const float mean = candidates[count + c], inverse_sd = candidates[2 * count + c];
    for (std::size_t r = 0; r < rows; ++r)
      z[c * rows + r] = (data[column * samples + r] - mean) * inverse_sd;
  }
  const float scale = 1.0f / static_cast<float>(rows);
  ParallelFor(count, [&](std::size_t i) {
    for (std::size_t j = i; j < count; ++j) {
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (std::size_t r = 0; r < rows; ++r) sum += z[i * rows + r] * z[j * rows + r];
      gram[i * count + j] = gram[j * count + i] = sum * scale;
    }
  });
}

// The CPU twin of cuda::FoldGrams.
void CpuFoldGrams(const float* data, std::size_t stride, std::size_t rows, const float* candidates,
                  std::size_t count, bool expand, const float* target, int folds, float* design,
                  double* grams) {
  const std::size_t per_candidate = expand ? 2 : 1;
  const std::size_t width = per_candidate * count + 2;
  for (std::size_t column = 0; column < width; ++column) {
    float* out = design + column * rows;
    if (column < count * per_candidate) {
      const std::size_t c = column / per_candidate;
      const std::uint32_t feature = CandidateColumn(candidates, c);
      const float mean = candidates[count + c], inverse_sd = candidates[2 * count + c];
      const bool square = column % per_candidate == 1;
      for (std::size_t r = 0; r < rows; ++r) {
        const float value = (data[feature * stride + r] - mean) * inverse_sd;
        out[r] = square ? stage3_math::Square(value) : value;
      }
    } else if (column == count * per_candidate) {
      std::fill(out, out + rows, 1.0f);
    } else {
      std::copy(target, target + rows, out);
    }
  }
  ParallelFor(width, [&](std::size_t i) {
    for (int f = 0; f < folds; ++f) {
      const std::size_t begin = rows * f / folds, end = rows * (f + 1) / folds;
      double* gram = grams + f * width * width;
      for (std::size_t j = i; j < width; ++j) {
        const float* a = design + i * rows;
        const float* b = design + j * rows;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (std::size_t r = begin; r < end; ++r) sum += static_cast<double>(a[r]) * b[r];
        gram[i * width + j] = gram[j * width + i] = sum;
      }
    }
  });
}

}  // namespace

Result<std::vector<float>> CandidateCorrelationMatrix(const DeviceBuffer& data, std::size_t samples,
                                                      const std::vector<std::uint32_t>& candidates,
                                                      const FeatureStats& stats, std::size_t rows,
                                                      DeviceBuffer* scratch, DeviceBuffer* gram) {
  const Backend backend = data.backend();
  const std::size_t count = candidates.size();
  rows = std::min(rows, samples);
  const std::vector<float> packed = PackCandidates(candidates, stats);
  FD_RETURN_IF_ERROR(
      scratch->EnsureAtLeast(backend, (packed.size() + rows * count) * sizeof(float)));
  FD_RETURN_IF_ERROR(scratch->Upload(packed.data(), packed.size() * sizeof(float)));
  FD_RETURN_IF_ERROR(
      gram->EnsureAtLeast(backend, std::max<std::size_t>(1, count * count) * sizeof(float)));
  float* z = scratch->as<float>() + packed.size();
  if (backend == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::CandidateCorrelations(data.as<float>(), samples, scratch->as<float>(),
                                                   count, rows, z, gram->as<float>()));
  } else {
    CpuCandidateCorrelations(data.as<float>(), samples, scratch->as<float>(), count, rows, z,
                             gram->as<float>());
  }
  std::vector<float> matrix(count * count);
  FD_RETURN_IF_ERROR(gram->Download(matrix.data(), matrix.size() * sizeof(float)));
  return matrix;
}

Result<std::vector<double>> CandidateFoldGrams(const DeviceBuffer& data, const DeviceBuffer& target,
                                               std::size_t samples, std::size_t rows,
                                               const std::vector<std::uint32_t>& candidates,
                                               const FeatureStats& stats, bool expand, int folds,
                                               DeviceBuffer* packed_buffer, DeviceBuffer* design,
                                               DeviceBuffer* grams_buffer) {
  const Backend backend = data.backend();
  const std::size_t count = candidates.size();
  rows = std::min(rows, samples);
  const std::size_t width = (expand ? 2 : 1) * count + 2;
  const std::vector<float> host_packed = PackCandidates(candidates, stats);
  FD_RETURN_IF_ERROR(packed_buffer->EnsureAtLeast(backend, host_packed.size() * sizeof(float)));
  FD_RETURN_IF_ERROR(packed_buffer->Upload(host_packed.data(), host_packed.size() * sizeof(float)));
  FD_RETURN_IF_ERROR(design->EnsureAtLeast(backend, width * rows * sizeof(float)));
  const std::size_t grams_count = static_cast<std::size_t>(folds) * width * width;
  FD_RETURN_IF_ERROR(grams_buffer->EnsureAtLeast(backend, grams_count * sizeof(double)));
  if (backend == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::FoldGrams(data.as<float>(), samples, rows, packed_buffer->as<float>(),
                                       count, expand, target.as<float>(), folds,
                                       design->as<float>(), grams_buffer->as<double>()));
  } else {
    CpuFoldGrams(data.as<float>(), samples, rows, packed_buffer->as<float>(), count, expand,
                 target.as<float>(), folds, design->as<float>(), grams_buffer->as<double>());
  }
  std::vector<double> grams(grams_count);
  FD_RETURN_IF_ERROR(grams_buffer->Download(grams.data(), grams_count * sizeof(double)));
  return grams;
}

}  // namespace firedrill::gpu
