#include "firedrill/gpu/stage3.h"

#include <gtest/gtest.h>

#include <set>

#include "firedrill/gpu/dataset.h"
#include "firedrill/gpu/stage1.h"

namespace firedrill::gpu {
namespace {

struct Pipeline {
  Dataset dataset;
  Stage1Result stage1;
  Stage3Result stage3;
};

Pipeline RunStages(const DatasetSpec& spec, Backend backend = Backend::kCpu) {
  Pipeline out;
  auto dataset = GenerateDataset(backend, spec);
  EXPECT_TRUE(dataset.ok()) << dataset.status();
  out.dataset = std::move(dataset).value();
  Stage1Workspace stage1_workspace;
  auto stage1 = RunStage1(out.dataset.data, out.dataset.target, spec.samples, spec.features, {}, &stage1_workspace);
  EXPECT_TRUE(stage1.ok()) << stage1.status();
  out.stage1 = std::move(stage1).value();
  Stage3Workspace stage3_workspace;
  auto stage3 = RunStage3(out.dataset.data, out.dataset.target, spec.samples, spec.features, out.stage1.selected,
                          out.stage1.stats, {}, &stage3_workspace);
  EXPECT_TRUE(stage3.ok()) << stage3.status();
  out.stage3 = std::move(stage3).value();
  return out;
}

// Stage 1 then stage 3 on the default shape, scaled to CI: 10-20 features
// out, nearly all of them planted, and a high quality score.
TEST(Stage3Test, SelectsThePlantedFeaturesFromStageOnesCandidates) {
  const DatasetSpec spec{.samples = 4000, .features = 500, .informative = 12, .decoys = 12, .noise = 0.1, .seed = 21};
  const Pipeline run = RunStages(spec);
  const auto& selected = run.stage3.selected;
  EXPECT_GE(selected.size(), 10u);
  EXPECT_LE(selected.size(), 20u);
  const std::set<std::uint32_t> chosen(selected.begin(), selected.end());
  int found = 0;
  for (std::uint32_t feature : run.dataset.informative) found += chosen.count(feature);
  std::printf("stage 3 kept %zu features, %d of %zu planted, CV R^2 %.3f\n", selected.size(), found,
              run.dataset.informative.size(), run.stage3.cv_r2);
  EXPECT_GE(found, 11);
  EXPECT_GT(run.stage3.cv_r2, 0.6);
  // The path only climbs: each addition was chosen because it helped.
  for (std::size_t i = 1; i < run.stage3.cv_r2_path.size(); ++i) {
    EXPECT_GE(run.stage3.cv_r2_path[i], run.stage3.cv_r2_path[i - 1] - 1e-9);
  }
  const double oracle = 1 / (1 + spec.noise * spec.noise);
  EXPECT_GT(SelectionQuality(run.stage3.cv_r2, oracle, selected, run.dataset.informative), 0.8);
}

TEST(Stage3Test, QualityCombinesFitAndRecovery) {
  EXPECT_DOUBLE_EQ(SelectionQuality(0.5, 1.0, {1, 2}, {1, 2, 3, 4}), 0.5 * 0.5 + 0.5 * 0.5);
  EXPECT_DOUBLE_EQ(SelectionQuality(0.9, 0.9, {7}, {}), 1.0);
  EXPECT_DOUBLE_EQ(SelectionQuality(-0.2, 1.0, {}, {}), 0.0);
}

TEST(Stage3Test, RejectsBadInputs) {
  auto dataset = GenerateDataset(Backend::kCpu, {.samples = 100, .features = 10, .informative = 2, .decoys = 0});
  ASSERT_TRUE(dataset.ok());
  Stage3Workspace workspace;
  FeatureStats stats;
  EXPECT_EQ(RunStage3(dataset->data, dataset->target, 100, 10, {1}, stats, {}, &workspace).status().code(),
            StatusCode::kInvalidArgument);
  stats.mean.assign(10, 0);
  stats.variance.assign(10, 1);
  EXPECT_EQ(RunStage3(dataset->data, dataset->target, 100, 10, {42}, stats, {}, &workspace).status().code(),
            StatusCode::kInvalidArgument);
  Stage3Options too_many_folds;
  too_many_folds.folds = 51;
  const auto refused = RunStage3(dataset->data, dataset->target, 100, 10, {1}, stats, too_many_folds, &workspace);
  EXPECT_EQ(refused.status().message(),
            "stage 3: 51 cross-validation folds need at least 102 samples (2 a fold), the dataset has 100");
}

}  // namespace
}  // namespace firedrill::gpu
