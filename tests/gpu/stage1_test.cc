#include "firedrill/gpu/stage1.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "firedrill/gpu/dataset.h"

namespace firedrill::gpu {
namespace {

std::vector<float> Values(const DeviceBuffer& buffer) {
  std::vector<float> out(buffer.bytes() / sizeof(float));
  EXPECT_TRUE(buffer.Download(out.data(), buffer.bytes()).ok());
  return out;
}

TEST(DatasetTest, SameSeedSameBytesOtherSeedOtherBytes) {
  DatasetSpec spec{.samples = 500, .features = 64, .informative = 6, .decoys = 4, .noise = 0.1, .seed = 7};
  auto a = GenerateDataset(Backend::kCpu, spec);
  auto b = GenerateDataset(Backend::kCpu, spec);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(Values(a->data), Values(b->data));
  EXPECT_EQ(Values(a->target), Values(b->target));
  EXPECT_EQ(a->informative, b->informative);
  spec.seed = 8;
  auto c = GenerateDataset(Backend::kCpu, spec);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(Values(a->data), Values(c->data));
}

TEST(DatasetTest, PlantsInformativeFeaturesAndDecoys) {
  const DatasetSpec spec{.samples = 20000, .features = 100, .informative = 9, .decoys = 9, .noise = 0.1, .seed = 3};
  auto dataset = GenerateDataset(Backend::kCpu, spec);
  ASSERT_TRUE(dataset.ok());
  ASSERT_EQ(dataset->informative.size(), 9u);
  ASSERT_EQ(dataset->decoys.size(), 9u);
  std::set<std::uint32_t> planted(dataset->informative.begin(), dataset->informative.end());
  for (std::uint32_t decoy : dataset->decoys) EXPECT_FALSE(planted.count(decoy));
  const std::vector<float> data = Values(dataset->data);
  const std::vector<float> target = Values(dataset->target);
  const FeatureStats stats = ReferenceFeatureStats(data.data(), target.data(), spec.samples, spec.features);
  // A linear link (rank 0) shows in the correlation: 1/sqrt(9 * 1.01) = 0.33.
  EXPECT_NEAR(stats.correlation[dataset->informative[0]], 0.33, 0.05);
  // Features are standard normal.
  EXPECT_NEAR(stats.mean[dataset->informative[0]], 0.0, 0.05);
  EXPECT_NEAR(stats.variance[dataset->informative[0]], 1.0, 0.05);
  // A decoy tracks its source at 0.9.
  const float* decoy = &data[dataset->decoys[0] * spec.samples];
  const float* source = &data[dataset->informative[0] * spec.samples];
  double cross = 0;
  for (std::size_t i = 0; i < spec.samples; ++i) cross += decoy[i] * source[i];
  EXPECT_NEAR(cross / spec.samples, 0.9, 0.03);
}

TEST(DatasetTest, RejectsImpossibleSpecs) {
  EXPECT_EQ(GenerateDataset(Backend::kCpu, {.samples = 10, .features = 5, .informative = 4, .decoys = 2}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(GenerateDataset(Backend::kCpu, {.samples = 1, .features = 5, .informative = 1, .decoys = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

// The default shape stage 1 sees, scaled to what CI affords.
TEST(Stage1Test, KeepsATenthAndFindsThePlantedFeatures) {
  const DatasetSpec spec{.samples = 4000, .features = 500, .informative = 20, .decoys = 20, .noise = 0.1, .seed = 11};
  auto dataset = GenerateDataset(Backend::kCpu, spec);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  Stage1Workspace workspace;
  auto result = RunStage1(dataset->data, dataset->target, spec.samples, spec.features, {}, &workspace);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NEAR(result->reduction_ratio, 0.1, 0.02);
  const std::set<std::uint32_t> selected(result->selected.begin(), result->selected.end());
  int found = 0;
  for (std::uint32_t feature : dataset->informative) found += selected.count(feature);
  EXPECT_GE(found, 18) << "of 20 planted features";
  // Decoys repeat what an informative feature says: at most a few survive.
  int decoys_kept = 0;
  for (std::uint32_t feature : dataset->decoys) decoys_kept += selected.count(feature);
  EXPECT_LE(decoys_kept, 2);
  EXPECT_FALSE(result->pruned.empty());
  ASSERT_EQ(result->mutual_information.size(), spec.features);
  for (double mi : result->mutual_information) EXPECT_GE(mi, 0);
}

TEST(Stage1Test, ConstantFeaturesNeverPass) {
  const std::size_t samples = 200, features = 10;
  std::vector<float> data(samples * features), target(samples);
  for (std::size_t i = 0; i < samples; ++i) target[i] = static_cast<float>(i % 17);
  for (std::size_t f = 0; f < features; ++f) {
    for (std::size_t i = 0; i < samples; ++i) data[f * samples + i] = f == 3 ? 2.0f : target[i] + static_cast<float>((i * (f + 1)) % 5);
  }
  auto data_buffer = DeviceBuffer::Allocate(Backend::kCpu, data.size() * sizeof(float));
  auto target_buffer = DeviceBuffer::Allocate(Backend::kCpu, target.size() * sizeof(float));
  ASSERT_TRUE(data_buffer->Upload(data.data(), data.size() * sizeof(float)).ok());
  ASSERT_TRUE(target_buffer->Upload(target.data(), target.size() * sizeof(float)).ok());
  Stage1Workspace workspace;
  auto result = RunStage1(*data_buffer, *target_buffer, samples, features, {.keep_ratio = 1.0}, &workspace);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->score[3], -1);
  EXPECT_EQ(std::count(result->selected.begin(), result->selected.end(), 3u), 0);
}

}  // namespace
}  // namespace firedrill::gpu
