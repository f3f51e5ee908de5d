// Device-layer kernels on every backend this machine has. Rates are reported
// as counters: bytes/s for passes over memory (bytes read once for the
// statistics pass; read + written for copies), FLOP/s for the compute burn.
// CUDA cases run only where a GPU answers; they time with CUDA events.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/gpu/dataset.h"
#include "firedrill/gpu/device.h"
#include "firedrill/gpu/selection.h"
#include "firedrill/gpu/stage1.h"
#include "firedrill/gpu/stage2.h"
#include "firedrill/gpu/stage3.h"
#include "firedrill/gpu/stats.h"
#include "firedrill/gpu/stress.h"

namespace {

using firedrill::gpu::Backend;
using firedrill::gpu::DeviceBuffer;
using namespace std::chrono_literals;

bool HaveCuda() {
  static const bool have = [] {
    auto device = firedrill::gpu::ProbeDevice(firedrill::gpu::BackendChoice::kCuda);
    return device.ok();
  }();
  return have;
}

// The yardstick for the CPU twin: the same threads copying a buffer as fast
// as a plain loop can.
void BM_CpuCopyLoop(benchmark::State& state) {
  const std::size_t count = static_cast<std::size_t>(state.range(0));
  std::vector<float> source(count, 1.0f), destination(count);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (auto _ : state) {
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const std::size_t begin = count * t / threads, end = count * (t + 1) / threads;
        for (std::size_t i = begin; i < end; ++i) destination[i] = source[i];
      });
    }
    for (auto& worker : workers) worker.join();
    benchmark::DoNotOptimize(destination.data());
  }
  state.counters["bytes_per_second"] = benchmark::Counter(
      2.0 * count * sizeof(float) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CpuCopyLoop)->Arg(64 << 20)->UseRealTime()->Unit(benchmark::kMillisecond);

// The yardstick on the GPU: cudaMemcpy device to device, read + written.
void BM_CudaMemcpy(benchmark::State& state) {
  if (!HaveCuda()) return state.SkipWithError("no CUDA device");
  const std::size_t bytes = static_cast<std::size_t>(state.range(0));
  auto source = DeviceBuffer::Allocate(Backend::kCuda, bytes);
  auto destination = DeviceBuffer::Allocate(Backend::kCuda, bytes);
  if (!source.ok() || !destination.ok()) return state.SkipWithError("allocation failed");
  (void)source->Fill(1);
  for (auto _ : state) {
    if (!destination->CopyFrom(*source).ok()) return state.SkipWithError("copy failed");
  }
  state.counters["bytes_per_second"] =
      benchmark::Counter(2.0 * bytes * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CudaMemcpy)->Arg(std::int64_t{4} << 30)->UseRealTime()->Unit(benchmark::kMillisecond);

// Stage 1's statistics pass over samples x features floats, every input byte
// counted once.
void FeatureStats(benchmark::State& state, Backend backend) {
  if (backend == Backend::kCuda && !HaveCuda()) return state.SkipWithError("no CUDA device");
  const std::size_t samples = static_cast<std::size_t>(state.range(0));
  const std::size_t features = static_cast<std::size_t>(state.range(1));
  std::vector<float> target(samples);
  std::mt19937 random(1);
  std::normal_distribution<float> normal;
  for (float& y : target) y = normal(random);
  std::vector<float> column(samples);
  auto data = DeviceBuffer::Allocate(backend, samples * features * sizeof(float));
  auto target_buffer = DeviceBuffer::Allocate(backend, samples * sizeof(float));
  if (!data.ok() || !target_buffer.ok()) return state.SkipWithError("allocation failed");
  for (std::size_t f = 0; f < features; ++f) {
    for (float& x : column) x = normal(random);
    (void)data->Upload(column.data(), samples * sizeof(float), f * samples * sizeof(float));
  }
  (void)target_buffer->Upload(target.data(), samples * sizeof(float));
  DeviceBuffer workspace;
  for (auto _ : state) {
    auto stats =
        firedrill::gpu::ComputeFeatureStats(*data, *target_buffer, samples, features, &workspace);
    if (!stats.ok()) return state.SkipWithError(stats.status().ToString().c_str());
    benchmark::DoNotOptimize(stats->correlation.data());
  }
  state.counters["bytes_per_second"] =
      benchmark::Counter(double(samples) * (features + 1) * sizeof(float) * state.iterations(),
                         benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(FeatureStats, cpu, Backend::kCpu)
    ->Args({100000, 160})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(FeatureStats, cuda, Backend::kCuda)
    ->Args({200000, 5000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The default dataset shape at the benchmark's size (samples, features),
// generated on the backend; empty, with the benchmark skipped, when it cannot be.
std::optional<firedrill::gpu::Dataset> MakeDataset(benchmark::State& state, Backend backend) {
  if (backend == Backend::kCuda && !HaveCuda()) {
    state.SkipWithError("no CUDA device");
    return std::nullopt;
  }
  firedrill::gpu::DatasetSpec spec;
  spec.samples = static_cast<std::size_t>(state.range(0));
  spec.features = static_cast<std::size_t>(state.range(1));
  auto dataset = firedrill::gpu::GenerateDataset(backend, spec);
  if (!dataset.ok()) {
    state.SkipWithError(dataset.status().ToString().c_str());
    return std::nullopt;
  }
  return std::move(dataset).value();
}

// Stage 1's result on `dataset`: where stages 2 and 3 start from.
std::optional<firedrill::gpu::Stage1Result> Stage1Of(benchmark::State& state,
                                                     const firedrill::gpu::Dataset& dataset) {
  firedrill::gpu::Stage1Workspace workspace;
  auto stage1 = firedrill::gpu::RunStage1(dataset.data, dataset.target, dataset.spec.samples,
                                          dataset.spec.features, {}, &workspace);
  if (!stage1.ok()) {
    state.SkipWithError(stage1.status().ToString().c_str());
    return std::nullopt;
  }
  return std::move(stage1).value();
}

// The whole of stage 1 (statistics, mutual information, redundancy pruning)
// on a synthetic dataset generated on the backend.
void Stage1(benchmark::State& state, Backend backend) {
  const auto dataset = MakeDataset(state, backend);
  if (!dataset) return;
  const firedrill::gpu::DatasetSpec& spec = dataset->spec;
  firedrill::gpu::Stage1Workspace workspace;
  firedrill::gpu::Stage1Timings sum;
  for (auto _ : state) {
    auto result = firedrill::gpu::RunStage1(dataset->data, dataset->target, spec.samples,
                                            spec.features, {}, &workspace);
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    benchmark::DoNotOptimize(result->selected.data());
    sum.binning_seconds += result->timings.binning_seconds;
    sum.pass_seconds += result->timings.pass_seconds;
    sum.ranking_seconds += result->timings.ranking_seconds;
    sum.redundancy_seconds += result->timings.redundancy_seconds;
  }
  const double per_iteration_ms = 1e3 / static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  state.counters["binning_ms"] = sum.binning_seconds * per_iteration_ms;
  state.counters["pass_ms"] = sum.pass_seconds * per_iteration_ms;
  state.counters["ranking_ms"] = sum.ranking_seconds * per_iteration_ms;
  state.counters["redundancy_ms"] = sum.redundancy_seconds * per_iteration_ms;
  state.counters["bytes_per_second"] = benchmark::Counter(
      double(spec.samples) * (spec.features + 1) * sizeof(float) * state.iterations(),
      benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(Stage1, cpu, Backend::kCpu)
    ->Args({100000, 160})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Stage1, cuda, Backend::kCuda)
    ->Args({200000, 5000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Stage 3 on 50 candidates (stage 1's best), 5 folds, forward selection.
void Stage3(benchmark::State& state, Backend backend) {
  const auto dataset = MakeDataset(state, backend);
  if (!dataset) return;
  const auto stage1 = Stage1Of(state, *dataset);
  if (!stage1) return;
  const firedrill::gpu::DatasetSpec& spec = dataset->spec;
  const std::vector<std::uint32_t> candidates(
      stage1->selected.begin(),
      stage1->selected.begin() + std::min<std::size_t>(50, stage1->selected.size()));
  firedrill::gpu::Stage3Workspace workspace;
  for (auto _ : state) {
    auto result =
        firedrill::gpu::RunStage3(dataset->data, dataset->target, spec.samples, spec.features,
                                  candidates, stage1->stats, {}, &workspace);
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    benchmark::DoNotOptimize(result->selected.data());
  }
}
BENCHMARK_CAPTURE(Stage3, cpu, Backend::kCpu)
    ->Args({20000, 1000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Stage3, cuda, Backend::kCuda)
    ->Args({200000, 5000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

const firedrill::gpu::Metamodel& Pretrained() {
  static const firedrill::gpu::Metamodel model = [] {
    auto trained = firedrill::gpu::PretrainMetamodel(Backend::kCpu, 7);
    return trained.ok() ? *trained : firedrill::gpu::Metamodel::Initial(7);
  }();
  return model;
}

// Stage 2 in balanced mode on stage 1's candidates: subsets scored per
// second (batched on the device) and the mean batch's latency.
void Stage2(benchmark::State& state, Backend backend) {
  const auto dataset = MakeDataset(state, backend);
  if (!dataset) return;
  const auto stage1 = Stage1Of(state, *dataset);
  if (!stage1) return;
  const firedrill::gpu::DatasetSpec& spec = dataset->spec;
  firedrill::gpu::Stage2Workspace workspace;
  Pretrained();  // outside the timing
  double rollouts = 0, batch_seconds = 0, batches = 0;
  for (auto _ : state) {
    auto result = firedrill::gpu::RunStage2(dataset->data, dataset->target, spec.samples, *stage1,
                                            Pretrained(), {}, &workspace);
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    rollouts += static_cast<double>(result->rollouts);
    for (double seconds : result->batch_seconds) batch_seconds += seconds;
    batches += static_cast<double>(result->batch_seconds.size());
  }
  state.counters["subsets_per_second"] = benchmark::Counter(rollouts, benchmark::Counter::kIsRate);
  state.counters["batch_ms"] = 1e3 * batch_seconds / batches;
}
BENCHMARK_CAPTURE(Stage2, cpu, Backend::kCpu)
    ->Args({20000, 1000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Stage2, cuda, Backend::kCuda)
    ->Args({200000, 5000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// A whole balanced job on the default dataset shape (dataset made once).
void BalancedJob(benchmark::State& state, Backend backend) {
  const auto dataset = MakeDataset(state, backend);
  if (!dataset) return;
  firedrill::gpu::SelectionWorkspace workspace;
  const auto options = firedrill::gpu::OptionsForMode(firedrill::gpu::Mode::kBalanced, 1);
  double quality = 0;
  Pretrained();  // outside the timing
  for (auto _ : state) {
    auto result = firedrill::gpu::RunSelection(*dataset, Pretrained(), options, &workspace);
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    quality = result->quality;
  }
  state.counters["quality"] = quality;
}
BENCHMARK_CAPTURE(BalancedJob, cpu, Backend::kCpu)
    ->Args({10000, 1000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BalancedJob, cuda, Backend::kCuda)
    ->Args({200000, 5000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void GenerateDataset(benchmark::State& state, Backend backend) {
  if (backend == Backend::kCuda && !HaveCuda()) return state.SkipWithError("no CUDA device");
  firedrill::gpu::DatasetSpec spec{.samples = static_cast<std::size_t>(state.range(0)),
                                   .features = static_cast<std::size_t>(state.range(1)),
                                   .informative = 20,
                                   .decoys = 20};
  for (auto _ : state) {
    auto dataset = firedrill::gpu::GenerateDataset(backend, spec);
    if (!dataset.ok()) return state.SkipWithError(dataset.status().ToString().c_str());
  }
  state.counters["values_per_second"] = benchmark::Counter(
      double(spec.samples) * spec.features * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(GenerateDataset, cpu, Backend::kCpu)
    ->Args({20000, 200})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(GenerateDataset, cuda, Backend::kCuda)
    ->Args({200000, 5000})
    ->UseRealTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

firedrill::gpu::DeviceInfo Device(Backend backend) {
  return *firedrill::gpu::ProbeDevice(backend == Backend::kCuda
                                          ? firedrill::gpu::BackendChoice::kCuda
                                          : firedrill::gpu::BackendChoice::kCpu);
}

// A burn for half a second per iteration, timed by the burn itself;
// reports FLOP/s over the busy time.
template <auto Burn>
void RunBurn(benchmark::State& state, Backend backend) {
  if (backend == Backend::kCuda && !HaveCuda()) return state.SkipWithError("no CUDA device");
  firedrill::RealClock clock;
  const auto device = Device(backend);
  double flops = 0, seconds = 0;
  for (auto _ : state) {
    auto result = Burn(device, clock, 500ms, 1.0);
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    flops += result->flops;
    seconds += result->seconds;
    state.SetIterationTime(result->seconds);
  }
  state.counters["flop_per_second"] = flops / seconds;
}

// FP32 multiply-adds.
void ComputeBurn(benchmark::State& state, Backend backend) {
  RunBurn<firedrill::gpu::ComputeBurn>(state, backend);
}
BENCHMARK_CAPTURE(ComputeBurn, cpu, Backend::kCpu)
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ComputeBurn, cuda, Backend::kCuda)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// Matrix products: cuBLAS BF16 on the tensor cores, or blocked FP32 on the CPU.
void TensorBurn(benchmark::State& state, Backend backend) {
  RunBurn<firedrill::gpu::TensorBurn>(state, backend);
}
BENCHMARK_CAPTURE(TensorBurn, cpu, Backend::kCpu)
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(TensorBurn, cuda, Backend::kCuda)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

void BandwidthBurn(benchmark::State& state, Backend backend) {
  if (backend == Backend::kCuda && !HaveCuda()) return state.SkipWithError("no CUDA device");
  firedrill::RealClock clock;
  const auto device = Device(backend);
  double bytes = 0, seconds = 0;
  for (auto _ : state) {
    auto result = firedrill::gpu::BandwidthBurn(
        device, clock, static_cast<std::size_t>(state.range(0)), 500ms, 1.0);
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    bytes += result->bytes;
    seconds += result->seconds;
    state.SetIterationTime(result->seconds);
  }
  state.counters["bytes_per_second"] = bytes / seconds;
}
BENCHMARK_CAPTURE(BandwidthBurn, cpu, Backend::kCpu)
    ->Arg(256 << 20)
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BandwidthBurn, cuda, Backend::kCuda)
    ->Arg(std::int64_t{4} << 30)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// Takes 95% of free device memory, touches it, gives it back, three times. The
// second take comes right after a release (240 ms on an H100, 400 on an H200,
// against 30-60 ms for the first); the third waits 3 s first, which tells a
// delay that passes from a slow allocation path. worst_take_s is the worst take
// from a card at rest: the first and the third.
void BM_CudaMemoryHog(benchmark::State& state) {
  if (!HaveCuda()) return state.SkipWithError("no CUDA device");
  firedrill::RealClock clock;
  double take = 0, release = 0, share = 0;
  int iteration = 0;
  for (auto _ : state) {
    if (iteration == 2) std::this_thread::sleep_for(std::chrono::seconds(3));
    const std::uint64_t free_bytes = *firedrill::gpu::MemoryHog::FreeDeviceMemory(Backend::kCuda);
    const std::uint64_t want =
        static_cast<std::uint64_t>(free_bytes * 0.95) / (2 << 20) * (2 << 20);
    auto hog = firedrill::gpu::MemoryHog::Take(Backend::kCuda, want, clock);
    if (!hog.ok()) return state.SkipWithError(hog.status().ToString().c_str());
    (void)hog->Release();
    const double this_take = std::chrono::duration<double>(hog->take_time()).count();
    state.counters["take_" + std::to_string(++iteration) + "_s"] = this_take;
    if (iteration != 2) take = std::max(take, this_take);
    release = std::max(release, std::chrono::duration<double>(hog->release_time()).count());
    share = double(want) / double(free_bytes);
    state.SetIterationTime(
        std::chrono::duration<double>(hog->take_time() + hog->release_time()).count());
  }
  state.counters["worst_take_s"] = take;
  state.counters["worst_release_s"] = release;
  state.counters["share_of_free"] = share;
}
BENCHMARK(BM_CudaMemoryHog)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
