#include "firedrill/gpu/dataset.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "cuda_backend.h"
#include "dataset_math.h"
#include "firedrill/gpu/device.h"
#include "parallel.h"

namespace firedrill::gpu {
namespace {

namespace dm = dataset_math;

// The stream id of the target's noise, distinct from every feature's.
constexpr std::uint64_t kTargetNoiseStream = 0xffffffffULL;

void CpuGenerateColumns(std::uint64_t seed, const std::vector<std::int32_t>& roles,
                        const std::vector<std::uint32_t>& sources, std::size_t samples,
                        float* data) {
  ParallelFor(roles.size(), [&](std::size_t f) {
    float* column = data + f * samples;
    for (std::size_t i = 0; i < samples; ++i)
      column[i] = dm::FeatureValue(seed, roles[f], f, sources[f], i);
  });
}

void CpuGenerateTarget(std::uint64_t seed, const std::vector<std::uint32_t>& informative,
                       std::size_t samples, double noise_scale, float* target) {
  for (std::size_t i = 0; i < samples; ++i) {
    double y = 0;
    for (std::size_t j = 0; j < informative.size(); ++j) {
      y += dm::LinkValue(static_cast<std::int32_t>(j), dm::Normal(seed, informative[j], i));
    }
    y += noise_scale * dm::Normal(seed, kTargetNoiseStream, i);
    target[i] = static_cast<float>(y);
  }
}

}  // namespace

namespace {

using Allocator = std::function<Result<DeviceBuffer>(std::size_t bytes)>;

Result<Dataset> Generate(Backend backend, const DatasetSpec& spec, const Allocator& allocate) {
  if (spec.samples < 2 || spec.features == 0) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "a dataset needs at least 2 samples and 1 feature");
  }
  if (spec.informative == 0 || spec.informative + spec.decoys > spec.features) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "informative (" + std::to_string(spec.informative) + ") plus decoys (" +
                         std::to_string(spec.decoys) +
                         ") must be at least 1 and at most features (" +
                         std::to_string(spec.features) + ")");
  }
  if (spec.features >= static_cast<std::size_t>(dm::kDecoyBase) ||
      spec.features >= kTargetNoiseStream) {
    return FD_STATUS(StatusCode::kInvalidArgument, "too many features");
  }
  Dataset dataset;
  dataset.spec = spec;
  // Which features are planted: a seeded Fisher-Yates shuffle, with the same
  // hash as the values, so the choice is the same on every platform.
  std::vector<std::uint32_t> order(spec.features);
  for (std::size_t f = 0; f < spec.features; ++f) order[f] = static_cast<std::uint32_t>(f);
  for (std::size_t f = spec.features - 1; f > 0; --f) {
    const std::size_t pick = dm::SplitMix64(spec.seed ^ (0xa5a5a5a5ULL + f)) % (f + 1);
    std::swap(order[f], order[pick]);
  }
  std::vector<std::int32_t> roles(spec.features, dm::kNoise);
  std::vector<std::uint32_t> sources(spec.features);
  for (std::size_t f = 0; f < spec.features; ++f) sources[f] = static_cast<std::uint32_t>(f);
  for (std::size_t j = 0; j < spec.informative; ++j) {
    dataset.informative.push_back(order[j]);
    roles[order[j]] = static_cast<std::int32_t>(j);
  }
  for (std::size_t d = 0; d < spec.decoys; ++d) {
    const std::uint32_t feature = order[spec.informative + d];
    const std::size_t j = d % spec.informative;
    dataset.decoys.push_back(feature);
    roles[feature] = dm::kDecoyBase + static_cast<std::int32_t>(j);
    sources[feature] = dataset.informative[j];
  }
  const double noise_scale = spec.noise * std::sqrt(static_cast<double>(spec.informative));

  FD_ASSIGN_OR_RETURN(dataset.data, allocate(spec.samples * spec.features * sizeof(float)));
  FD_ASSIGN_OR_RETURN(dataset.target, allocate(spec.samples * sizeof(float)));
  if (backend == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::GenerateColumns(spec.seed, roles.data(), sources.data(), spec.features,
                                             spec.samples, dataset.data.as<float>()));
    FD_RETURN_IF_ERROR(cuda::GenerateTarget(spec.seed, dataset.informative.data(), spec.informative,
                                            spec.samples, noise_scale, dataset.target.as<float>()));
  } else {
    CpuGenerateColumns(spec.seed, roles, sources, spec.samples, dataset.data.as<float>());
    CpuGenerateTarget(spec.seed, dataset.informative, spec.samples, noise_scale,
                      dataset.target.as<float>());
  }
  return dataset;
}

}  // namespace

Result<Dataset> GenerateDataset(Backend backend, const DatasetSpec& spec) {
  return Generate(backend, spec,
                  [backend](std::size_t bytes) { return DeviceBuffer::Allocate(backend, bytes); });
}

Result<Dataset> GenerateDataset(Device& device, const DatasetSpec& spec) {
  return Generate(device.backend(), spec,
                  [&device](std::size_t bytes) { return device.Allocate(bytes); });
}

}  // namespace firedrill::gpu
