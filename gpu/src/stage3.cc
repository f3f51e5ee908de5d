#include "firedrill/gpu/stage3.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "cuda_backend.h"
#include "stage3_math.h"
#include "stats_internal.h"

namespace firedrill::gpu {
namespace {

// The CPU twin of FoldGrams.
void CpuFoldGrams(const float* data, std::size_t samples, const float* candidates, std::size_t count, bool expand,
                  const float* target, int folds, float* design, double* grams) {
  const std::size_t width = (expand ? 2 : 1) * count + 2;
  const std::size_t per_candidate = expand ? 2 : 1;
  for (std::size_t column = 0; column < width; ++column) {
    float* out = design + column * samples;
    if (column < count * per_candidate) {
      const std::size_t c = column / per_candidate;
      std::uint32_t feature;
      std::memcpy(&feature, &candidates[c], sizeof(feature));
      const float mean = candidates[count + c], inverse_sd = candidates[2 * count + c];
      const bool square = column % per_candidate == 1;
      for (std::size_t r = 0; r < samples; ++r) {
        const float value = (data[feature * samples + r] - mean) * inverse_sd;
        out[r] = square ? stage3_math::Square(value) : value;
      }
    } else if (column == count * per_candidate) {
      std::fill(out, out + samples, 1.0f);
    } else {
      std::copy(target, target + samples, out);
    }
  }
  for (int f = 0; f < folds; ++f) {
    const std::size_t begin = samples * f / folds, end = samples * (f + 1) / folds;
    double* gram = grams + f * width * width;
    for (std::size_t i = 0; i < width; ++i) {
      for (std::size_t j = i; j < width; ++j) {
        const float* a = design + i * samples;
        const float* b = design + j * samples;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (std::size_t r = begin; r < end; ++r) sum += static_cast<double>(a[r]) * b[r];
        gram[i * width + j] = gram[j * width + i] = sum;
      }
    }
  }
}

// Solves the symmetric positive definite system a x = b in place (Cholesky);
// false when a is not positive definite.
bool SolveSpd(std::vector<double>& a, std::vector<double>& b, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    double diagonal = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) diagonal -= a[j * n + k] * a[j * n + k];
    if (!(diagonal > 0)) return false;
    diagonal = std::sqrt(diagonal);
    a[j * n + j] = diagonal;
    for (std::size_t i = j + 1; i < n; ++i) {
      double value = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) value -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = value / diagonal;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    double value = b[i];
    for (std::size_t k = 0; k < i; ++k) value -= a[i * n + k] * b[k];
    b[i] = value / a[i * n + i];
  }
  for (std::size_t i = n; i-- > 0;) {
    double value = b[i];
    for (std::size_t k = i + 1; k < n; ++k) value -= a[k * n + i] * b[k];
    b[i] = value / a[i * n + i];
  }
  return true;
}

// Cross-validated R^2 of ridge on design columns `columns` (the intercept is
// always in): for each fold, fit on the other folds' summed Gram matrices,
// then score the fold from its own Gram matrix.
class CrossValidation {
 public:
  CrossValidation(std::vector<double> grams, std::size_t width, int folds, std::size_t samples, double ridge)
      : grams_(std::move(grams)), width_(width), folds_(folds), ridge_(ridge), total_(width * width, 0.0) {
    for (int f = 0; f < folds; ++f) {
      for (std::size_t i = 0; i < width * width; ++i) total_[i] += grams_[f * width * width + i];
    }
    const std::size_t y = width - 1, one = width - 2;
    const double sum_y = total_[one * width + y];
    total_sst_ = total_[y * width + y] - sum_y * sum_y / static_cast<double>(samples);
  }

  double R2(const std::vector<std::size_t>& columns) const {
    std::vector<std::size_t> use = columns;
    use.push_back(width_ - 2);  // intercept
    const std::size_t n = use.size(), y = width_ - 1;
    double press = 0;
    for (int f = 0; f < folds_; ++f) {
      const double* fold = &grams_[f * width_ * width_];
      auto train = [&](std::size_t i, std::size_t j) { return total_[i * width_ + j] - fold[i * width_ + j]; };
      const double train_rows = train(width_ - 2, width_ - 2);
      std::vector<double> a(n * n), w(n);
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j) a[i * n + j] = train(use[i], use[j]);
        w[i] = train(use[i], y);
        if (i + 1 < n) a[i * n + i] += ridge_ * train_rows;  // no penalty on the intercept
      }
      if (!SolveSpd(a, w, n)) return -1;
      // Fold error: y'y - 2 w'X'y + w'X'Xw, all from the fold's Gram matrix.
      double error = fold[y * width_ + y];
      for (std::size_t i = 0; i < n; ++i) {
        error -= 2 * w[i] * fold[use[i] * width_ + y];
        for (std::size_t j = 0; j < n; ++j) error += w[i] * w[j] * fold[use[i] * width_ + use[j]];
      }
      press += error;
    }
    return total_sst_ > 0 ? 1 - press / total_sst_ : 0;
  }

 private:
  std::vector<double> grams_;
  std::size_t width_;
  int folds_;
  double ridge_;
  std::vector<double> total_;
  double total_sst_ = 0;
};

}  // namespace

Result<Stage3Result> RunStage3(const DeviceBuffer& data, const DeviceBuffer& target, std::size_t samples,
                               std::size_t features, const std::vector<std::uint32_t>& candidates,
                               const FeatureStats& stats, const Stage3Options& options, Stage3Workspace* workspace) {
  if (options.folds < 2 || samples < static_cast<std::size_t>(options.folds) * 2) {
    return FD_STATUS(StatusCode::kInvalidArgument, "stage 3 needs at least 2 folds of at least 2 samples");
  }
  if (candidates.empty() || stats.mean.size() != features) {
    return FD_STATUS(StatusCode::kInvalidArgument, "stage 3 needs candidates and stage 1's statistics");
  }
  for (std::uint32_t c : candidates) {
    if (c >= features) return FD_STATUS(StatusCode::kInvalidArgument, "candidate " + std::to_string(c) + " is not a feature");
  }
  const Backend backend = data.backend();
  const std::size_t count = candidates.size();
  const std::size_t per_candidate = options.expand_basis ? 2 : 1;
  const std::size_t width = per_candidate * count + 2;
  const std::vector<float> packed = PackCandidates(candidates, stats);
  FD_RETURN_IF_ERROR(workspace->candidates.EnsureAtLeast(backend, packed.size() * sizeof(float)));
  FD_RETURN_IF_ERROR(workspace->candidates.Upload(packed.data(), packed.size() * sizeof(float)));
  FD_RETURN_IF_ERROR(workspace->design.EnsureAtLeast(backend, width * samples * sizeof(float)));
  const std::size_t grams_count = static_cast<std::size_t>(options.folds) * width * width;
  FD_RETURN_IF_ERROR(workspace->grams.EnsureAtLeast(backend, grams_count * sizeof(double)));
  if (backend == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::FoldGrams(data.as<float>(), samples, workspace->candidates.as<float>(), count,
                                       options.expand_basis, target.as<float>(), options.folds,
                                       workspace->design.as<float>(), workspace->grams.as<double>()));
  } else {
    CpuFoldGrams(data.as<float>(), samples, workspace->candidates.as<float>(), count, options.expand_basis,
                 target.as<float>(), options.folds, workspace->design.as<float>(), workspace->grams.as<double>());
  }
  std::vector<double> grams(grams_count);
  FD_RETURN_IF_ERROR(workspace->grams.Download(grams.data(), grams_count * sizeof(double)));
  const CrossValidation cv(std::move(grams), width, options.folds, samples, options.ridge);

  // Forward selection: add the candidate (with its basis columns) that lifts
  // the cross-validated R^2 most, until the gain fades or the cap is reached.
  Stage3Result result;
  std::vector<std::size_t> columns;
  std::vector<bool> used(count, false);
  double current = 0;
  while (result.selected.size() < std::min(options.max_features, count)) {
    double best = -1e300;
    std::size_t best_candidate = count;
    for (std::size_t c = 0; c < count; ++c) {
      if (used[c]) continue;
      std::vector<std::size_t> trial = columns;
      for (std::size_t k = 0; k < per_candidate; ++k) trial.push_back(c * per_candidate + k);
      const double r2 = cv.R2(trial);
      if (r2 > best) {
        best = r2;
        best_candidate = c;
      }
    }
    if (best_candidate == count) break;
    if (result.selected.size() >= options.min_features && best - current < options.min_gain) break;
    used[best_candidate] = true;
    for (std::size_t k = 0; k < per_candidate; ++k) columns.push_back(best_candidate * per_candidate + k);
    result.selected.push_back(candidates[best_candidate]);
    result.cv_r2_path.push_back(best);
    current = best;
  }
  result.cv_r2 = current;
  return result;
}

double SelectionQuality(double cv_r2, double oracle_r2, const std::vector<std::uint32_t>& selected,
                        const std::vector<std::uint32_t>& planted) {
  const double fit = std::clamp(oracle_r2 > 0 ? cv_r2 / oracle_r2 : cv_r2, 0.0, 1.0);
  if (planted.empty()) return fit;
  const std::set<std::uint32_t> chosen(selected.begin(), selected.end());
  std::size_t found = 0;
  for (std::uint32_t feature : planted) found += chosen.count(feature);
  return 0.5 * fit + 0.5 * static_cast<double>(found) / static_cast<double>(planted.size());
}

}  // namespace firedrill::gpu
