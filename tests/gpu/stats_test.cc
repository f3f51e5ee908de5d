#include "firedrill/gpu/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace firedrill::gpu {
namespace {

// Fresh inputs every run; the seed is printed so a failure can be replayed
// with FIREDRILL_SEED.
unsigned Seed() {
  if (const char* fixed = std::getenv("FIREDRILL_SEED")) return static_cast<unsigned>(std::stoul(fixed));
  return std::random_device{}();
}

struct Inputs {
  std::vector<float> data;
  std::vector<float> target;
};

// Columns with assorted offsets and scales (including large offsets, where a
// naive sum of squares cancels), half of them linked to the target.
Inputs MakeInputs(std::size_t samples, std::size_t features, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal;
  Inputs in;
  in.target.resize(samples);
  for (float& y : in.target) y = normal(random);
  in.data.resize(samples * features);
  for (std::size_t f = 0; f < features; ++f) {
    const float offset = (f % 3 == 0) ? 1000.0f : static_cast<float>(f);
    const float scale = 0.5f + static_cast<float>(f % 7);
    const float link = (f % 2 == 0) ? 0.8f : 0.0f;
    for (std::size_t i = 0; i < samples; ++i) {
      in.data[f * samples + i] = offset + scale * (link * in.target[i] + normal(random));
    }
  }
  return in;
}

void ExpectClose(const std::vector<double>& actual, const std::vector<double>& expected, const char* what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TRUE(std::isfinite(actual[i])) << what << "[" << i << "] was not written";
    EXPECT_LE(std::abs(actual[i] - expected[i]), 1e-4 * std::abs(expected[i]) + 1e-9)
        << what << "[" << i << "]: " << actual[i] << " vs " << expected[i];
  }
}

TEST(FeatureStatsTest, CpuTwinMatchesTheFloat64Reference) {
  const unsigned seed = Seed();
  std::printf("seed %u\n", seed);
  const std::size_t samples = 10007;  // odd, so the vector loop has a tail
  const std::size_t features = 37;
  const Inputs in = MakeInputs(samples, features, seed);
  auto data = DeviceBuffer::Allocate(Backend::kCpu, in.data.size() * sizeof(float));
  auto target = DeviceBuffer::Allocate(Backend::kCpu, in.target.size() * sizeof(float));
  ASSERT_TRUE(data.ok() && target.ok());
  ASSERT_TRUE(data->Upload(in.data.data(), in.data.size() * sizeof(float)).ok());
  ASSERT_TRUE(target->Upload(in.target.data(), in.target.size() * sizeof(float)).ok());
  // Poison the workspace: every sum must be overwritten by the pass.
  auto workspace = DeviceBuffer::Allocate(Backend::kCpu, 4 * (features + 1) * sizeof(double));
  ASSERT_TRUE(workspace.ok());
  ASSERT_TRUE(workspace->Fill(0xff).ok());  // all-ones bytes are NaN doubles
  const Result<FeatureStats> stats = ComputeFeatureStats(*data, *target, samples, features, &*workspace);
  ASSERT_TRUE(stats.ok()) << stats.status();
  const FeatureStats reference = ReferenceFeatureStats(in.data.data(), in.target.data(), samples, features);
  ExpectClose(stats->mean, reference.mean, "mean");
  ExpectClose(stats->variance, reference.variance, "variance");
  ExpectClose(stats->correlation, reference.correlation, "correlation");
  EXPECT_NEAR(stats->target_mean, reference.target_mean, 1e-9 + 1e-4 * std::abs(reference.target_mean));
  EXPECT_NEAR(stats->target_variance, reference.target_variance, 1e-4 * reference.target_variance);
  // The planted links show: linked columns correlate near 0.8/sqrt(1.64).
  EXPECT_GT(reference.correlation[0], 0.5);
  EXPECT_LT(std::abs(reference.correlation[1]), 0.1);
}

TEST(FeatureStatsTest, ConstantColumnsHaveZeroVarianceAndCorrelation) {
  const std::size_t samples = 100;
  std::vector<float> data(samples, 3.5f);
  std::vector<float> target(samples);
  for (std::size_t i = 0; i < samples; ++i) target[i] = static_cast<float>(i);
  auto data_buffer = DeviceBuffer::Allocate(Backend::kCpu, samples * sizeof(float));
  auto target_buffer = DeviceBuffer::Allocate(Backend::kCpu, samples * sizeof(float));
  ASSERT_TRUE(data_buffer->Upload(data.data(), samples * sizeof(float)).ok());
  ASSERT_TRUE(target_buffer->Upload(target.data(), samples * sizeof(float)).ok());
  DeviceBuffer workspace;
  const auto stats = ComputeFeatureStats(*data_buffer, *target_buffer, samples, 1, &workspace);
  ASSERT_TRUE(stats.ok());
  EXPECT_DOUBLE_EQ(stats->mean[0], 3.5);
  EXPECT_DOUBLE_EQ(stats->variance[0], 0.0);
  EXPECT_DOUBLE_EQ(stats->correlation[0], 0.0);
}

TEST(FeatureStatsTest, RejectsShortOrMismatchedInputs) {
  auto small = DeviceBuffer::Allocate(Backend::kCpu, 4 * sizeof(float));
  DeviceBuffer workspace;
  EXPECT_EQ(ComputeFeatureStats(*small, *small, 1, 1, &workspace).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeFeatureStats(*small, *small, 4, 2, &workspace).status().code(), StatusCode::kInvalidArgument);
}

TEST(DeviceBufferTest, UploadDownloadAndBounds) {
  auto buffer = DeviceBuffer::Allocate(Backend::kCpu, 16);
  ASSERT_TRUE(buffer.ok());
  const char text[] = "firedrill-buffer";
  ASSERT_TRUE(buffer->Upload(text, 16).ok());
  char back[16];
  ASSERT_TRUE(buffer->Download(back, 8, 8).ok());
  EXPECT_EQ(std::memcmp(back, text + 8, 8), 0);
  EXPECT_EQ(buffer->Upload(text, 16, 1).code(), StatusCode::kInvalidArgument);
  DeviceBuffer moved = std::move(*buffer);
  EXPECT_EQ(moved.bytes(), 16u);
  EXPECT_EQ(buffer->bytes(), 0u);
}

}  // namespace
}  // namespace firedrill::gpu
