#include "firedrill/gpu/metamodel.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <random>

#include "stage2_math.h"

namespace firedrill::gpu {
namespace {

namespace s2 = stage2_math;
static_assert(s2::kDescriptorSize == kSubsetDescriptorSize);

constexpr std::string_view kHeader = "firedrill-metamodel 1";
constexpr int kFirstLayer = s2::kHidden * s2::kDescriptorSize;
constexpr int kSecondLayer = kFirstLayer + s2::kHidden;  // offset of w2

// Weight ranges of each layer, for per-layer noise: [begin, end).
constexpr std::array<std::pair<int, int>, 4> kLayers = {
    {{0, kFirstLayer},
     {kFirstLayer, kSecondLayer},
     {kSecondLayer, kSecondLayer + s2::kHidden},
     {kSecondLayer + s2::kHidden, s2::kWeightCount}}};

}  // namespace

Metamodel Metamodel::Initial(std::uint64_t seed) {
  Metamodel model;
  model.weights_.assign(s2::kWeightCount, 0.0f);
  std::mt19937_64 random(seed);
  std::normal_distribution<float> first(0.0f, std::sqrt(2.0f / s2::kDescriptorSize));
  std::normal_distribution<float> second(0.0f, std::sqrt(1.0f / s2::kHidden));
  for (int i = 0; i < kFirstLayer; ++i) model.weights_[i] = first(random);
  for (int i = kSecondLayer; i < kSecondLayer + s2::kHidden; ++i)
    model.weights_[i] = second(random);
  model.first_moment_.assign(s2::kWeightCount, 0.0);
  model.second_moment_.assign(s2::kWeightCount, 0.0);
  return model;
}

Result<Metamodel> Metamodel::Parse(std::string_view text) {
  Metamodel model = Initial(0);
  int line_number = 0;
  std::size_t count = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line_number == 1) {
      if (line != kHeader) {
        return FD_STATUS(StatusCode::kInvalidArgument, "line 1: expected '" + std::string(kHeader) +
                                                           "', found '" + std::string(line) + "'");
      }
      continue;
    }
    if (line.empty()) continue;
    const std::string where = "line " + std::to_string(line_number);
    if (count == s2::kWeightCount) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       where + ": more than " + std::to_string(s2::kWeightCount) + " weights");
    }
    float value = 0;
    const auto [rest, error] = std::from_chars(line.data(), line.data() + line.size(), value);
    if (error != std::errc() || rest != line.data() + line.size() || !std::isfinite(value)) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       where + ": expected a finite number, found '" + std::string(line) + "'");
    }
    model.weights_[count++] = value;
  }
  if (line_number == 0)
    return FD_STATUS(StatusCode::kInvalidArgument, "line 1: the metamodel file is empty");
  if (count != s2::kWeightCount) {
    return FD_STATUS(StatusCode::kInvalidArgument, "line " + std::to_string(line_number) +
                                                       ": expected " +
                                                       std::to_string(s2::kWeightCount) +
                                                       " weights, found " + std::to_string(count));
  }
  return model;
}

std::string Metamodel::Serialize() const {
  std::string out(kHeader);
  out += '\n';
  char buffer[32];
  for (float weight : weights_) {
    // Nine significant digits round-trip a float exactly.
    std::snprintf(buffer, sizeof(buffer), "%.9g\n", static_cast<double>(weight));
    out += buffer;
  }
  return out;
}

float Metamodel::Predict(const float* descriptor) const {
  return s2::Forward(weights_.data(), descriptor);
}

double Metamodel::Train(const std::vector<TrainingExample>& examples, int steps,
                        double learning_rate) {
  if (examples.empty() || steps <= 0) return 0;
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEpsilon = 1e-8;
  const float* w1 = weights_.data();
  const float* b1 = w1 + kFirstLayer;
  const float* w2 = weights_.data() + kSecondLayer;
  std::vector<double> gradient(s2::kWeightCount);
  double rmse = 0;
  for (int step = 0; step < steps; ++step) {
    std::fill(gradient.begin(), gradient.end(), 0.0);
    double squared_error = 0;
    for (const TrainingExample& example : examples) {
      const float* x = example.descriptor.data();
      float hidden[s2::kHidden];
      double out = w2[s2::kHidden];
      for (int k = 0; k < s2::kHidden; ++k) {
        float h = b1[k];
        for (int d = 0; d < s2::kDescriptorSize; ++d) h += w1[k * s2::kDescriptorSize + d] * x[d];
        hidden[k] = h > 0 ? h : 0.0f;
        out += w2[k] * hidden[k];
      }
      const double error = out - example.value;
      squared_error += error * error;
      const double d_out = 2 * error / static_cast<double>(examples.size());
      gradient[kSecondLayer + s2::kHidden] += d_out;
      for (int k = 0; k < s2::kHidden; ++k) {
        gradient[kSecondLayer + k] += d_out * hidden[k];
        if (hidden[k] <= 0) continue;
        const double d_hidden = d_out * w2[k];
        gradient[kFirstLayer + k] += d_hidden;
        for (int d = 0; d < s2::kDescriptorSize; ++d)
          gradient[k * s2::kDescriptorSize + d] += d_hidden * x[d];
      }
    }
    rmse = std::sqrt(squared_error / static_cast<double>(examples.size()));
    ++steps_;
    const double correction1 = 1 - std::pow(kBeta1, static_cast<double>(steps_));
    const double correction2 = 1 - std::pow(kBeta2, static_cast<double>(steps_));
    for (int i = 0; i < s2::kWeightCount; ++i) {
      first_moment_[i] = kBeta1 * first_moment_[i] + (1 - kBeta1) * gradient[i];
      second_moment_[i] = kBeta2 * second_moment_[i] + (1 - kBeta2) * gradient[i] * gradient[i];
      const double update = learning_rate * (first_moment_[i] / correction1) /
                            (std::sqrt(second_moment_[i] / correction2) + kEpsilon);
      weights_[i] -= static_cast<float>(update);
    }
  }
  return rmse;
}

void Metamodel::Invert() {
  for (int i = kSecondLayer; i < s2::kWeightCount; ++i) weights_[i] = -weights_[i];
  std::fill(first_moment_.begin(), first_moment_.end(), 0.0);
  std::fill(second_moment_.begin(), second_moment_.end(), 0.0);
  steps_ = 0;
}

void Metamodel::Perturb(double relative, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  for (const auto& [begin, end] : kLayers) {
    double sum = 0;
    for (int i = begin; i < end; ++i) sum += static_cast<double>(weights_[i]) * weights_[i];
    // A layer of zeros (a fresh bias) still gets noise on the first layer's scale.
    double rms = std::sqrt(sum / (end - begin));
    if (rms == 0) rms = std::sqrt(2.0 / s2::kDescriptorSize);
    std::normal_distribution<double> noise(0.0, relative * rms);
    for (int i = begin; i < end; ++i) weights_[i] += static_cast<float>(noise(random));
  }
  std::fill(first_moment_.begin(), first_moment_.end(), 0.0);
  std::fill(second_moment_.begin(), second_moment_.end(), 0.0);
  steps_ = 0;
}

}  // namespace firedrill::gpu
