#include "cross_validation.h"

#include <cmath>

namespace firedrill::gpu {
namespace {

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

}  // namespace

CrossValidation::CrossValidation(std::vector<double> grams, std::size_t width, int folds,
                                 std::size_t rows, double ridge)
    : grams_(std::move(grams)),
      width_(width),
      folds_(folds),
      ridge_(ridge),
      total_(width * width, 0.0) {
  for (int f = 0; f < folds; ++f) {
    for (std::size_t i = 0; i < width * width; ++i) total_[i] += grams_[f * width * width + i];
  }
  const std::size_t y = width - 1, one = width - 2;
  const double sum_y = total_[one * width + y];
  total_sst_ = total_[y * width + y] - sum_y * sum_y / static_cast<double>(rows);
}

double CrossValidation::R2(const std::vector<std::size_t>& columns) const {
  std::vector<std::size_t> use = columns;
  use.push_back(width_ - 2);  // intercept
  const std::size_t n = use.size(), y = width_ - 1;
  double press = 0;
  std::vector<double> a(n * n), w(n);
  for (int f = 0; f < folds_; ++f) {
    const double* fold = &grams_[f * width_ * width_];
    auto train = [&](std::size_t i, std::size_t j) {
      return total_[i * width_ + j] - fold[i * width_ + j];
    };
    const double train_rows = train(width_ - 2, width_ - 2);
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

}  // namespace firedrill::gpu
