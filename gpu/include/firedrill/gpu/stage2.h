// HSOF stage 2: Monte Carlo tree search over subsets of stage 1's candidates,
// guided by the metamodel, about 50 features out.
//
// Each tree decides, candidate by candidate in its own order (stage 1's
// score, perturbed per tree), to include or exclude it; UCB1 picks among
// expanded children, virtual loss spreads a batch over different paths, and
// a rollout finishes each path at random to a subset of min..max features.
// The rollouts of all trees are scored together in one batch on the device
// (descriptor and MLP, see metamodel.h). The best-scored few of each batch,
// and one at random, are evaluated for real (cross-validated ridge on the
// first evaluation rows), and the metamodel trains on them as it goes. A
// candidate's importance is the mean score of rollouts that include it less
// that of rollouts that do not; the top `output_features` go on to stage 3.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/gpu/buffer.h"
#include "firedrill/gpu/metamodel.h"
#include "firedrill/gpu/stage1.h"

namespace firedrill::gpu {

struct Stage2Options {
  std::size_t output_features = 50;
  int trees = 4;
  int rounds = 48;
  int batch = 256;  // rollouts per round, over all trees
  std::size_t min_subset = 5;
  std::size_t max_subset = 40;  // at most 64
  int evaluations_per_round = 4;
  std::size_t evaluation_rows = 16384;
  std::size_t correlation_rows = 2048;
  int folds = 5;
  double ridge = 1e-3;
  double exploration = 0.1;  // UCB1's constant, in units of R^2
  bool train = true;
  int training_steps = 5;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
  // Called before each batch is scored, inside its timing: where a fault
  // delays inference the way a slow or contended device would.
  std::function<void()> before_batch = nullptr;
  // Times the batches; null: the steady clock. The pipeline passes its own,
  // so that simulated time drives what the latency histogram shows.
  const Clock* clock = nullptr;
};

struct Stage2Result {
  std::vector<std::uint32_t> selected;     // by descending importance
  std::vector<double> importance;          // per stage-1 candidate, in stage 1's order
  std::vector<std::uint32_t> best_subset;  // the best subset evaluated for real
  double best_r2 = 0;
  std::size_t rollouts = 0;
  std::size_t evaluations = 0;
  std::vector<double> batch_seconds;  // each batched scoring on the device, upload to download
  // Root mean squared error of the metamodel's predictions against the real
  // evaluations, each taken before the model trained on it.
  double metamodel_rmse = 0;
  Metamodel metamodel;  // after this job's online training
};

struct Stage2Workspace {
  DeviceBuffer correlation_scratch;
  DeviceBuffer correlation;
  DeviceBuffer inputs;  // per-candidate signal, correlations, weights
  DeviceBuffer masks;
  DeviceBuffer outputs;  // descriptors and scores
  DeviceBuffer packed;
  DeviceBuffer design;
  DeviceBuffer grams;
};

Result<Stage2Result> RunStage2(const DeviceBuffer& data, const DeviceBuffer& target,
                               std::size_t samples, const Stage1Result& stage1,
                               const Metamodel& metamodel, const Stage2Options& options,
                               Stage2Workspace* workspace);

// Trains a metamodel from scratch on calibration datasets generated from
// `seed` (random subsets of their stage-1 candidates, each evaluated for
// real). What a fresh pipeline starts with.
Result<Metamodel> PretrainMetamodel(Backend backend, std::uint64_t seed);

}  // namespace firedrill::gpu
