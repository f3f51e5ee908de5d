// Stage 2's metamodel: a small MLP that predicts a feature subset's
// cross-validated R^2 from a fixed-size description of the subset (see
// stage2.h), so that one model serves every job and can be saved, reloaded,
// corrupted by a fault, and trained online from real evaluations.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/status.h"

namespace firedrill::gpu {

inline constexpr int kSubsetDescriptorSize = 8;

struct TrainingExample {
  std::array<float, kSubsetDescriptorSize> descriptor;
  float value;  // the real cross-validated R^2
};

class Metamodel {
 public:
  // Small random weights from `seed`: a model that knows nothing yet.
  static Metamodel Initial(std::uint64_t seed);
  // Reads what Serialize wrote; errors name the line.
  static Result<Metamodel> Parse(std::string_view text);

  std::string Serialize() const;
  float Predict(const float* descriptor) const;
  // Adam steps on the mean squared error over all `examples`; returns the
  // root mean squared error before the last step.
  double Train(const std::vector<TrainingExample>& examples, int steps, double learning_rate);
  // Adds Gaussian noise of `relative` times each layer's RMS weight: the
  // metamodel-corruption fault.
  void Perturb(double relative, std::uint64_t seed);
  // Negates the output layer, so the model ranks subsets backwards (what a
  // sign error in a bad checkpoint does): the corruption that misleads the
  // search every time, where noise of a given size may or may not.
  void Invert();

  const std::vector<float>& weights() const { return weights_; }

 private:
  std::vector<float> weights_;
  // Adam's moments and step count, kept across calls so online training
  // continues where it left off.
  std::vector<double> first_moment_, second_moment_;
  std::int64_t steps_ = 0;
};

}  // namespace firedrill::gpu
