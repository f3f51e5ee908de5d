// Cross-validated ridge regression from per-fold Gram matrices: a fold's
// squared error is a function of its Gram matrix alone, so every fit of every
// subset of design columns works on small matrices on the host.
#pragma once

#include <cstddef>
#include <vector>

namespace firedrill::gpu {

class CrossValidation {
 public:
  // `grams` as CandidateFoldGrams returns them: folds x width x width, the
  // last two columns being the intercept and the target; `rows` in all folds.
  CrossValidation(std::vector<double> grams, std::size_t width, int folds, std::size_t rows, double ridge);

  // Cross-validated R^2 of ridge on design columns `columns` (the intercept
  // is always in): each fold fitted on the others' summed Gram matrices and
  // scored on its own. -1 when a fit is singular.
  double R2(const std::vector<std::size_t>& columns) const;

 private:
  std::vector<double> grams_;
  std::size_t width_;
  int folds_;
  double ridge_;
  std::vector<double> total_;
  double total_sst_ = 0;
};

}  // namespace firedrill::gpu
