#include "firedrill/gpu/stage2.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "candidates.h"
#include "cross_validation.h"
#include "cuda_backend.h"
#include "firedrill/gpu/dataset.h"
#include "parallel.h"
#include "stage1_math.h"
#include "stage2_math.h"

namespace firedrill::gpu {
namespace {

namespace s2 = stage2_math;

// What the descriptor reads, per candidate: its linear and nonlinear signal
// and its correlations with the other candidates; the weights follow on the device.
struct SubsetInputs {
  std::size_t count = 0;
  std::vector<float> values;  // count linear, count nonlinear, count x count correlations

  const float* linear() const { return values.data(); }
  const float* nonlinear() const { return values.data() + count; }
  const float* correlation() const { return values.data() + 2 * count; }
};

Result<SubsetInputs> BuildSubsetInputs(const DeviceBuffer& data, std::size_t samples,
                                       const Stage1Result& stage1, std::size_t correlation_rows,
                                       DeviceBuffer* scratch, DeviceBuffer* gram) {
  SubsetInputs inputs;
  inputs.count = stage1.selected.size();
  FD_ASSIGN_OR_RETURN(std::vector<float> correlation,
                      CandidateCorrelationMatrix(data, samples, stage1.selected, stage1.stats,
                                                 correlation_rows, scratch, gram));
  // The plug-in mutual information of independent variables is about
  // (bins - 1)^2 / 2n nats; take it off so noise features carry no signal.
  const double bias = (stage1_math::kBins - 1.0) * (stage1_math::kBins - 1.0) /
                      (2.0 * static_cast<double>(samples));
  inputs.values.resize(2 * inputs.count);
  for (std::size_t i = 0; i < inputs.count; ++i) {
    const std::uint32_t feature = stage1.selected[i];
    const double r = stage1.stats.correlation[feature];
    inputs.values[i] = static_cast<float>(r * r);
    const double information = std::max(0.0, stage1.mutual_information[feature] - bias);
    inputs.values[inputs.count + i] = static_cast<float>(1 - std::exp(-2 * information));
  }
  inputs.values.insert(inputs.values.end(), correlation.begin(), correlation.end());
  return inputs;
}

std::array<float, kSubsetDescriptorSize> Describe(const SubsetInputs& inputs,
                                                  const std::vector<int>& members) {
  std::array<float, kSubsetDescriptorSize> x{};
  s2::Describe(members.data(), static_cast<int>(members.size()), inputs.linear(),
               inputs.nonlinear(), inputs.correlation(), static_cast<int>(inputs.count), x.data());
  return x;
}

// Real evaluations: cross-validated ridge on the expanded basis (z and
// (z^2 - 1)/sqrt(2) of each member), as stage 3 fits.
Result<CrossValidation> BuildCrossValidation(const DeviceBuffer& data, const DeviceBuffer& target,
                                             std::size_t samples, const Stage1Result& stage1,
                                             std::size_t rows, int folds, double ridge,
                                             Stage2Workspace* workspace) {
  rows = std::min(rows, samples);
  FD_ASSIGN_OR_RETURN(
      std::vector<double> grams,
      CandidateFoldGrams(data, target, samples, rows, stage1.selected, stage1.stats, true, folds,
                         &workspace->packed, &workspace->design, &workspace->grams));
  return CrossValidation(std::move(grams), 2 * stage1.selected.size() + 2, folds, rows, ridge);
}

double EvaluateSubset(const CrossValidation& cv, const std::vector<int>& members) {
  std::vector<std::size_t> columns;
  for (int m : members) {
    columns.push_back(2 * static_cast<std::size_t>(m));
    columns.push_back(2 * static_cast<std::size_t>(m) + 1);
  }
  return cv.R2(columns);
}

// Scores a batch of subsets on the backend: descriptors and metamodel outputs.
class BatchScorer {
 public:
  BatchScorer(Backend backend, const SubsetInputs& inputs, Stage2Workspace* workspace)
      : backend_(backend), inputs_(inputs), workspace_(workspace) {}

  Status SetWeights(const std::vector<float>& weights) {
    weights_ = weights;
    if (backend_ != Backend::kCuda) return Status::Ok();
    const std::size_t bytes = (inputs_.values.size() + weights.size()) * sizeof(float);
    FD_RETURN_IF_ERROR(workspace_->inputs.EnsureAtLeast(backend_, bytes));
    FD_RETURN_IF_ERROR(
        workspace_->inputs.Upload(inputs_.values.data(), inputs_.values.size() * sizeof(float)));
    return workspace_->inputs.Upload(weights.data(), weights.size() * sizeof(float),
                                     inputs_.values.size() * sizeof(float));
  }

  // masks: batch x count bytes. Fills descriptors (batch x 8) and scores.
  Status Score(const std::vector<unsigned char>& masks, int batch, std::vector<float>* descriptors,
               std::vector<float>* scores) {
    const int n = static_cast<int>(inputs_.count);
    descriptors->resize(static_cast<std::size_t>(batch) * s2::kDescriptorSize);
    scores->resize(batch);
    if (backend_ != Backend::kCuda) {
      // The CPU twin of ScoreSubsetsKernel.
      ParallelFor(static_cast<std::size_t>(batch), [&](std::size_t b) {
        int members[s2::kMaxSubset];
        const int size = s2::Members(&masks[b * n], n, members);
        float* x = &(*descriptors)[b * s2::kDescriptorSize];
        s2::Describe(members, size, inputs_.linear(), inputs_.nonlinear(), inputs_.correlation(), n,
                     x);
        (*scores)[b] = s2::Forward(weights_.data(), x);
      });
      return Status::Ok();
    }
    const std::size_t mask_bytes = masks.size();
    const std::size_t output_floats = static_cast<std::size_t>(batch) * (s2::kDescriptorSize + 1);
    FD_RETURN_IF_ERROR(workspace_->masks.EnsureAtLeast(backend_, mask_bytes));
    FD_RETURN_IF_ERROR(workspace_->masks.Upload(masks.data(), mask_bytes));
    FD_RETURN_IF_ERROR(workspace_->outputs.EnsureAtLeast(backend_, output_floats * sizeof(float)));
    float* device_descriptors = workspace_->outputs.as<float>();
    float* device_scores =
        device_descriptors + static_cast<std::size_t>(batch) * s2::kDescriptorSize;
    FD_RETURN_IF_ERROR(cuda::ScoreSubsets(workspace_->masks.as<unsigned char>(), n, batch,
                                          workspace_->inputs.as<float>(), device_descriptors,
                                          device_scores));
    FD_RETURN_IF_ERROR(
        workspace_->outputs.Download(descriptors->data(), descriptors->size() * sizeof(float)));
    return workspace_->outputs.Download(scores->data(), scores->size() * sizeof(float),
                                        descriptors->size() * sizeof(float));
  }

 private:
  Backend backend_;
  const SubsetInputs& inputs_;
  Stage2Workspace* workspace_;
  std::vector<float> weights_;
};

// One search tree: node 0 is the root; a node at depth d has decided the
// first d candidates of `order`; child[1] includes the next one, child[0] not.
struct Node {
  int child[2] = {-1, -1};
  int visits = 0;
  int virtual_visits = 0;  // rollouts in flight through here, counted as losses
  double value = 0;
};

struct Tree {
  std::vector<int> order;  // candidate indices
  std::vector<Node> nodes;
};

struct Rollout {
  int tree = 0;
  std::vector<int> path;     // node indices from the root
  std::vector<int> members;  // candidate indices, ascending
};

class Search {
 public:
  Search(const Stage2Options& options, std::size_t count, std::mt19937_64* random)
      : options_(options), count_(count), random_(random) {}

  void AddTree(std::vector<int> order) {
    Tree tree;
    tree.order = std::move(order);
    tree.nodes.emplace_back();
    trees_.push_back(std::move(tree));
  }

  // Selects and expands a path with UCB1 under virtual loss, then finishes
  // the subset at random.
  Rollout Start(int tree_index) {
    Tree& tree = trees_[tree_index];
    Rollout rollout;
    rollout.tree = tree_index;
    int node = 0;
    std::size_t depth = 0;
    rollout.path.push_back(node);
    tree.nodes[node].virtual_visits++;
    while (depth < count_) {
      const bool can_include = rollout.members.size() < options_.max_subset;
      int choice = -1;
      // Expand an allowed child that does not exist yet, in random order.
      const int first = static_cast<int>((*random_)() & 1);
      for (int k = 0; k < 2 && choice < 0; ++k) {
        const int action = first ^ k;
        if (action == 1 && !can_include) continue;
        if (tree.nodes[node].child[action] < 0) {
          tree.nodes[node].child[action] = static_cast<int>(tree.nodes.size());
          tree.nodes.emplace_back();
          choice = action;
        }
      }
      const bool expanded = choice >= 0;
      if (!expanded) choice = can_include ? BestChild(tree, node) : 0;
      node = tree.nodes[node].child[choice];
      if (choice == 1) rollout.members.push_back(tree.order[depth]);
      rollout.path.push_back(node);
      tree.nodes[node].virtual_visits++;
      ++depth;
      if (expanded) break;
    }
    // Random completion towards a size drawn from [min, max].
    std::uniform_int_distribution<std::size_t> sizes(options_.min_subset, options_.max_subset);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const std::size_t goal = sizes(*random_);
    for (std::size_t position = depth; position < count_; ++position) {
      const double need = static_cast<double>(goal) - static_cast<double>(rollout.members.size());
      if (need > 0 && unit(*random_) < need / static_cast<double>(count_ - position)) {
        rollout.members.push_back(tree.order[position]);
      }
    }
    std::sort(rollout.members.begin(), rollout.members.end());
    return rollout;
  }

  void Finish(const Rollout& rollout, double score) {
    Tree& tree = trees_[rollout.tree];
    for (int node : rollout.path) {
      tree.nodes[node].virtual_visits--;
      tree.nodes[node].visits++;
      tree.nodes[node].value += score;
    }
  }

 private:
  int BestChild(const Tree& tree, int node) const {
    const Node& parent = tree.nodes[node];
    const double log_visits =
        std::log(static_cast<double>(std::max(1, parent.visits + parent.virtual_visits)));
    double best = -1e300;
    int best_action = 0;
    for (int action = 0; action < 2; ++action) {
      const Node& child = tree.nodes[parent.child[action]];
      const double visits = std::max(1, child.visits + child.virtual_visits);
      const double bound =
          child.value / visits + options_.exploration * std::sqrt(log_visits / visits);
      if (bound > best) {
        best = bound;
        best_action = action;
      }
    }
    return best_action;
  }

  const Stage2Options& options_;
  std::size_t count_;
  std::mt19937_64* random_;
  std::vector<Tree> trees_;
};

Status ValidateOptions(const Stage2Options& options, std::size_t samples) {
  if (options.trees < 1 || options.rounds < 1 || options.batch < options.trees) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage 2 needs at least one tree, one round and a rollout per tree");
  }
  if (options.min_subset < 1 || options.min_subset > options.max_subset ||
      options.max_subset > static_cast<std::size_t>(s2::kMaxSubset)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage 2 subsets must be 1 <= min_subset <= max_subset <= " +
                         std::to_string(s2::kMaxSubset));
  }
  if (options.folds < 2 ||
      std::min(samples, options.evaluation_rows) < 2 * static_cast<std::size_t>(options.folds)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage 2 needs at least 2 folds of at least 2 evaluation rows");
  }
  return Status::Ok();
}

}  // namespace

Result<Stage2Result> RunStage2(const DeviceBuffer& data, const DeviceBuffer& target,
                               std::size_t samples, const Stage1Result& stage1,
                               const Metamodel& metamodel, const Stage2Options& options,
                               Stage2Workspace* workspace) {
  FD_RETURN_IF_ERROR(ValidateOptions(options, samples));
  const std::size_t count = stage1.selected.size();
  const std::size_t features = stage1.stats.mean.size();
  if (count == 0 || stage1.mutual_information.size() != features ||
      data.bytes() < samples * features * sizeof(float)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stage 2 needs stage 1's candidates and statistics for this data");
  }
  const Backend backend = data.backend();
  FD_ASSIGN_OR_RETURN(const SubsetInputs inputs,
                      BuildSubsetInputs(data, samples, stage1, options.correlation_rows,
                                        &workspace->correlation_scratch, &workspace->correlation));
  FD_ASSIGN_OR_RETURN(const CrossValidation cv,
                      BuildCrossValidation(data, target, samples, stage1, options.evaluation_rows,
                                           options.folds, options.ridge, workspace));
  Stage2Result result;
  result.metamodel = metamodel;
  BatchScorer scorer(backend, inputs, workspace);
  FD_RETURN_IF_ERROR(scorer.SetWeights(result.metamodel.weights()));

  std::mt19937_64 random(options.seed);
  Search search(options, count, &random);
  std::normal_distribution<double> jitter(0.0, 0.1);
  for (int t = 0; t < options.trees; ++t) {
    // Tree 0 follows stage 1's ranking; the others a perturbed one.
    std::vector<double> key(count);
    for (std::size_t i = 0; i < count; ++i) {
      key[i] = stage1.score[stage1.selected[i]] + (t == 0 ? 0.0 : jitter(random));
    }
    std::vector<int> order(count);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key[a] > key[b]; });
    search.AddTree(std::move(order));
  }

  std::vector<double> sum_in(count,
                             0);  // the rollouts without candidate i scored score_total - sum_in[i]
  double score_total = 0;
  std::vector<std::size_t> count_in(count, 0);
  std::vector<TrainingExample> examples;
  std::set<std::vector<int>> evaluated;
  double squared_error = 0;
  std::vector<Rollout> rollouts;
  std::vector<unsigned char> masks;
  std::vector<float> descriptors, scores;
  for (int round = 0; round < options.rounds; ++round) {
    rollouts.clear();
    for (int b = 0; b < options.batch; ++b) rollouts.push_back(search.Start(b % options.trees));
    masks.assign(static_cast<std::size_t>(options.batch) * count, 0);
    for (int b = 0; b < options.batch; ++b) {
      for (int m : rollouts[b].members) masks[b * count + m] = 1;
    }
    const MonotonicTime started =
        options.clock ? options.clock->Now() : std::chrono::steady_clock::now();
    if (options.before_batch) options.before_batch();
    FD_RETURN_IF_ERROR(scorer.Score(masks, options.batch, &descriptors, &scores));
    const MonotonicTime finished =
        options.clock ? options.clock->Now() : std::chrono::steady_clock::now();
    result.batch_seconds.push_back(std::chrono::duration<double>(finished - started).count());

    double total = 0;
    for (int b = 0; b < options.batch; ++b) {
      search.Finish(rollouts[b], scores[b]);
      total += scores[b];
      for (int m : rollouts[b].members) {
        sum_in[m] += scores[b];
        count_in[m]++;
      }
    }
    result.rollouts += options.batch;
    score_total += total;

    // Real evaluations of the most promising and one at random; the
    // metamodel learns from each.
    std::vector<int> ranked(options.batch);
    std::iota(ranked.begin(), ranked.end(), 0);
    std::stable_sort(ranked.begin(), ranked.end(),
                     [&](int a, int b) { return scores[a] > scores[b]; });
    std::vector<int> picks(
        ranked.begin(),
        ranked.begin() + std::min(options.batch, options.evaluations_per_round - 1));
    picks.push_back(std::uniform_int_distribution<int>(0, options.batch - 1)(random));
    for (int b : picks) {
      const std::vector<int>& members = rollouts[b].members;
      if (members.empty() || !evaluated.insert(members).second) continue;
      const double r2 = EvaluateSubset(cv, members);
      result.evaluations++;
      squared_error += (scores[b] - r2) * (scores[b] - r2);
      TrainingExample example;
      std::copy_n(&descriptors[b * s2::kDescriptorSize], s2::kDescriptorSize,
                  example.descriptor.begin());
      example.value = static_cast<float>(r2);
      examples.push_back(example);
      if (r2 > result.best_r2 || result.best_subset.empty()) {
        result.best_r2 = r2;
        result.best_subset.clear();
        for (int m : members) result.best_subset.push_back(stage1.selected[m]);
      }
    }
    if (options.train && !examples.empty()) {
      result.metamodel.Train(examples, options.training_steps, options.learning_rate);
      FD_RETURN_IF_ERROR(scorer.SetWeights(result.metamodel.weights()));
    }
  }
  if (result.evaluations > 0) result.metamodel_rmse = std::sqrt(squared_error / result.evaluations);

  result.importance.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t out = result.rollouts - count_in[i];
    const double mean_in = count_in[i] ? sum_in[i] / count_in[i] : -1e9;
    const double mean_out = out ? (score_total - sum_in[i]) / out : 0;
    result.importance[i] = mean_in - mean_out;
  }
  std::vector<std::size_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return result.importance[a] > result.importance[b];
  });
  for (std::size_t i = 0; i < std::min(count, options.output_features); ++i) {
    result.selected.push_back(stage1.selected[order[i]]);
  }
  return result;
}

Result<Metamodel> PretrainMetamodel(Backend backend, std::uint64_t seed) {
  Metamodel model = Metamodel::Initial(seed);
  std::vector<TrainingExample> examples;
  std::mt19937_64 random(seed);
  constexpr int kDatasets = 3, kSubsetsPerDataset = 300;
  constexpr std::size_t kLargestSubset = 40;
  for (int k = 0; k < kDatasets; ++k) {
    // Calibration data of varied density and noise, so the model has seen
    // subsets rich and poor in signal.
    const DatasetSpec spec{.samples = 3000,
                           .features = 800,
                           .informative = static_cast<std::size_t>(8 + 6 * k),
                           .decoys = static_cast<std::size_t>(4 + 6 * k),
                           .noise = 0.1 + 0.25 * k,
                           .seed = seed * 1000003 + static_cast<std::uint64_t>(k)};
    FD_ASSIGN_OR_RETURN(Dataset dataset, GenerateDataset(backend, spec));
    Stage1Workspace stage1_workspace;
    FD_ASSIGN_OR_RETURN(const Stage1Result stage1,
                        RunStage1(dataset.data, dataset.target, spec.samples, spec.features, {},
                                  &stage1_workspace));
    Stage2Workspace workspace;
    const Stage2Options defaults;
    FD_ASSIGN_OR_RETURN(
        const SubsetInputs inputs,
        BuildSubsetInputs(dataset.data, spec.samples, stage1, defaults.correlation_rows,
                          &workspace.correlation_scratch, &workspace.correlation));
    FD_ASSIGN_OR_RETURN(
        const CrossValidation cv,
        BuildCrossValidation(dataset.data, dataset.target, spec.samples, stage1, spec.samples,
                             defaults.folds, defaults.ridge, &workspace));
    std::vector<int> all(inputs.count);
    std::iota(all.begin(), all.end(), 0);
    std::uniform_int_distribution<std::size_t> sizes(1, std::min(kLargestSubset, inputs.count));
    for (int s = 0; s < kSubsetsPerDataset; ++s) {
      const std::size_t size = sizes(random);
      for (std::size_t i = 0; i < size; ++i) {
        std::swap(all[i],
                  all[std::uniform_int_distribution<std::size_t>(i, all.size() - 1)(random)]);
      }
      std::vector<int> members(all.begin(), all.begin() + size);
      std::sort(members.begin(), members.end());
      examples.push_back(
          {Describe(inputs, members), static_cast<float>(EvaluateSubset(cv, members))});
    }
  }
  model.Train(examples, 2000, 1e-2);
  return model;
}

}  // namespace firedrill::gpu
