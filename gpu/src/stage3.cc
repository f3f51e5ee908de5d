#include "firedrill/gpu/stage3.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "candidates.h"
#include "cross_validation.h"

namespace firedrill::gpu {
Result<Stage3Result> RunStage3(const DeviceBuffer& data, const DeviceBuffer& target, std::size_t samples,
                               std::size_t features, const std::vector<std::uint32_t>& candidates,
                               const FeatureStats& stats, const Stage3Options& options, Stage3Workspace* workspace) {
  if (options.folds < 2) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage 3 needs at least 2 cross-validation folds, got " + std::to_string(options.folds));
  }
  if (samples < static_cast<std::size_t>(options.folds) * 2) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage 3: " + std::to_string(options.folds) + " cross-validation folds need at least " +
                         std::to_string(2 * options.folds) + " samples (2 a fold), the dataset has " +
                         std::to_string(samples));
  }
  if (candidates.empty() || stats.mean.size() != features) {
    return FD_STATUS(StatusCode::kInvalidArgument, "stage 3 needs candidates and stage 1's statistics");
  }
  for (std::uint32_t c : candidates) {
    if (c >= features) return FD_STATUS(StatusCode::kInvalidArgument, "candidate " + std::to_string(c) + " is not a feature");
  }
  const std::size_t count = candidates.size();
  const std::size_t per_candidate = options.expand_basis ? 2 : 1;
  const std::size_t width = per_candidate * count + 2;
  FD_ASSIGN_OR_RETURN(std::vector<double> grams,
                      CandidateFoldGrams(data, target, samples, samples, candidates, stats, options.expand_basis,
                                         options.folds, &workspace->candidates, &workspace->design,
                                         &workspace->grams));
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
