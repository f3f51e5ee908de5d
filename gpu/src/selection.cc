#include "firedrill/gpu/selection.h"

#include <chrono>

namespace firedrill::gpu {
namespace {

constexpr std::string_view kModeNames[] = {"fast", "balanced", "accurate"};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::string_view ModeName(Mode mode) { return kModeNames[static_cast<int>(mode)]; }

bool ParseMode(std::string_view text, Mode* mode) {
  for (int i = 0; i < 3; ++i) {
    if (text == kModeNames[i]) {
      *mode = static_cast<Mode>(i);
      return true;
    }
  }
  return false;
}

SelectionOptions OptionsForMode(Mode mode, std::uint64_t seed) {
  SelectionOptions options;
  options.stage2.seed = seed;
  switch (mode) {
    case Mode::kFast:
      options.stage2.trees = 2;
      options.stage2.rounds = 16;
      options.stage2.batch = 128;
      options.stage3.folds = 3;
      options.stage3.max_features = 15;
      break;
    case Mode::kBalanced:
      break;
    case Mode::kAccurate:
      options.stage2.trees = 8;
      options.stage2.rounds = 96;
      options.stage2.evaluations_per_round = 8;
      options.stage3.folds = 10;
      break;
  }
  return options;
}

double OracleR2(const DatasetSpec& spec) {
  return spec.informative ? 1 / (1 + spec.noise * spec.noise) : 0;
}

Result<SelectionResult> RunSelection(const Dataset& dataset, const Metamodel& metamodel,
                                     const SelectionOptions& options, SelectionWorkspace* workspace,
                                     const StageHooks& hooks) {
  const DatasetSpec& spec = dataset.spec;
  SelectionResult result;
  auto stage = [&](int number, auto run) -> Status {
    if (hooks.started) FD_RETURN_IF_ERROR(hooks.started(number));
    const auto start = std::chrono::steady_clock::now();
    Status status = run();
    result.stage_seconds[number - 1] = SecondsSince(start);
    if (hooks.finished) hooks.finished(number, result.stage_seconds[number - 1]);
    return status;
  };
  FD_RETURN_IF_ERROR(stage(1, [&]() -> Status {
    FD_ASSIGN_OR_RETURN(result.stage1,
                        RunStage1(dataset.data, dataset.target, spec.samples, spec.features,
                                  options.stage1, &workspace->stage1));
    return Status::Ok();
  }));
  FD_RETURN_IF_ERROR(stage(2, [&]() -> Status {
    FD_ASSIGN_OR_RETURN(result.stage2,
                        RunStage2(dataset.data, dataset.target, spec.samples, result.stage1,
                                  metamodel, options.stage2, &workspace->stage2));
    return Status::Ok();
  }));
  FD_RETURN_IF_ERROR(stage(3, [&]() -> Status {
    FD_ASSIGN_OR_RETURN(
        result.stage3,
        RunStage3(dataset.data, dataset.target, spec.samples, spec.features, result.stage2.selected,
                  result.stage1.stats, options.stage3, &workspace->stage3));
    return Status::Ok();
  }));
  result.quality = SelectionQuality(result.stage3.cv_r2, OracleR2(spec), result.stage3.selected,
                                    dataset.informative);
  return result;
}

}  // namespace firedrill::gpu
