// The dataset generator's per-element math, shared verbatim by the CUDA
// kernels and the CPU twin so both compute the same function.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define FD_HOST_DEVICE __host__ __device__
#else
#define FD_HOST_DEVICE
#endif

namespace firedrill::gpu::dataset_math {

// Roles, one per feature: kNoise, or an informative rank j, or a decoy of j.
constexpr std::int32_t kNoise = -1;
constexpr std::int32_t kDecoyBase = 1 << 24;  // role = kDecoyBase + j

FD_HOST_DEVICE inline std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A standard normal value for (seed, stream, index), by Box-Muller in double.
FD_HOST_DEVICE inline double Normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const std::uint64_t bits = SplitMix64(seed ^ SplitMix64(stream * 0x100000001b3ULL + index));
  const double u1 = (static_cast<double>(bits >> 32) + 0.5) / 4294967296.0;
  const double u2 = (static_cast<double>(bits & 0xffffffffULL) + 0.5) / 4294967296.0;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// Unit-variance link of an informative feature's value, by its rank.
FD_HOST_DEVICE inline double LinkValue(std::int32_t rank, double x) {
  switch (rank % 3) {
    case 0: return x;
    case 1: return (x * x - 1.0) * 0.7071067811865476;      // var(x^2 - 1) = 2
    default: return sin(1.5 * x) * 1.4221905326370966;      // 1 / sqrt((1 - e^-4.5) / 2)
  }
}

// Value of feature `feature` (with `role`) at `sample`. A decoy of rank j
// mixes informative[j]'s base values with its own noise (correlation 0.9).
FD_HOST_DEVICE inline float FeatureValue(std::uint64_t seed, std::int32_t role, std::uint64_t feature,
                                         std::uint64_t informative_feature, std::uint64_t sample) {
  const double own = Normal(seed, feature, sample);
  if (role < kDecoyBase) return static_cast<float>(own);
  const double source = Normal(seed, informative_feature, sample);
  return static_cast<float>(0.9 * source + 0.4358898943540674 * own);  // sqrt(1 - 0.81)
}

}  // namespace firedrill::gpu::dataset_math
