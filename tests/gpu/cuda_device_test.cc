// Runs only where a GPU is present (ctest label "gpu"): the CUDA backend
// must be chosen, and its kernels must compute what the CPU twins and the
// float64 reference compute.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "firedrill/gpu/dataset.h"
#include "firedrill/gpu/device.h"
#include "firedrill/gpu/selection.h"
#include "firedrill/gpu/stage1.h"
#include "firedrill/gpu/stage3.h"
#include "firedrill/gpu/stats.h"
#include "firedrill/gpu/stress.h"

namespace firedrill::gpu {
namespace {

using namespace std::chrono_literals;

DeviceInfo Cuda() {
  Result<DeviceInfo> device = ProbeDevice(BackendChoice::kCuda);
  if (!device.ok()) ADD_FAILURE() << device.status();
  return device.ok() ? *device : DeviceInfo{};
}

TEST(CudaDeviceTest, CudaBackendProbesAndRunsKernels) {
  const Result<DeviceInfo> device = ProbeDevice(BackendChoice::kCuda);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->backend, Backend::kCuda);
  EXPECT_GE(device->compute_major, 9) << "kernels are built for sm_90";
  EXPECT_GT(device->total_memory, 1ull << 30);
  const Status status = RunSelfTest(*device);
  EXPECT_TRUE(status.ok()) << status;
  std::printf("device: %s, compute %d.%d, %llu MiB, driver %d\n", device->name.c_str(),
              device->compute_major, device->compute_minor,
              static_cast<unsigned long long>(device->total_memory >> 20), device->driver_version);
}

// CUDA, the CPU twin and the float64 reference agree to 1e-4 relative on
// fresh random inputs; every output is written (the workspace is poisoned).
TEST(CudaDeviceTest, FeatureStatsMatchTheCpuTwinAndTheReference) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 random(seed);
  std::normal_distribution<float> normal;
  const std::size_t samples = 20011, features = 301;
  std::vector<float> data(samples * features), target(samples);
  for (float& y : target) y = normal(random);
  for (std::size_t f = 0; f < features; ++f) {
    const float offset = (f % 3 == 0) ? 500.0f : 0.0f;
    for (std::size_t i = 0; i < samples; ++i) {
      data[f * samples + i] = offset + (f % 2 ? 0.0f : 0.7f) * target[i] + normal(random);
    }
  }
  const FeatureStats reference =
      ReferenceFeatureStats(data.data(), target.data(), samples, features);
  for (Backend backend : {Backend::kCuda, Backend::kCpu}) {
    auto data_buffer = DeviceBuffer::Allocate(backend, data.size() * sizeof(float));
    auto target_buffer = DeviceBuffer::Allocate(backend, target.size() * sizeof(float));
    auto workspace = DeviceBuffer::Allocate(backend, 4 * (features + 1) * sizeof(double));
    ASSERT_TRUE(data_buffer.ok() && target_buffer.ok() && workspace.ok());
    ASSERT_TRUE(data_buffer->Upload(data.data(), data.size() * sizeof(float)).ok());
    ASSERT_TRUE(target_buffer->Upload(target.data(), target.size() * sizeof(float)).ok());
    ASSERT_TRUE(workspace->Fill(0xff).ok());
    const auto stats =
        ComputeFeatureStats(*data_buffer, *target_buffer, samples, features, &*workspace);
    ASSERT_TRUE(stats.ok()) << stats.status();
    for (std::size_t f = 0; f < features; ++f) {
      ASSERT_TRUE(std::isfinite(stats->variance[f]))
          << BackendName(backend) << " column " << f << " not written";
      EXPECT_LE(std::abs(stats->mean[f] - reference.mean[f]),
                1e-4 * std::abs(reference.mean[f]) + 1e-9);
      EXPECT_LE(std::abs(stats->variance[f] - reference.variance[f]), 1e-4 * reference.variance[f]);
      EXPECT_LE(std::abs(stats->correlation[f] - reference.correlation[f]),
                1e-4 * std::abs(reference.correlation[f]) + 1e-9);
    }
  }
}

TEST(CudaDeviceTest, BurnsDoWork) {
  const DeviceInfo device = Cuda();
  RealClock clock;
  const auto compute = ComputeBurn(device, clock, 200ms, 1.0);
  ASSERT_TRUE(compute.ok()) << compute.status();
  const auto bandwidth = BandwidthBurn(device, clock, 1ull << 30, 200ms, 1.0);
  ASSERT_TRUE(bandwidth.ok()) << bandwidth.status();
  std::printf("FP32 FMA burn: %.1f TFLOP/s; copy burn: %.0f GB/s\n", compute->Rate() / 1e12,
              bandwidth->Rate() / 1e9);
  EXPECT_GT(compute->Rate(), 1e12);
  EXPECT_GT(bandwidth->Rate(), 1e11);
  // Tensor cores through cuBLAS (dlopen): far past what FP32 FMAs reach.
  const auto tensor = TensorBurn(device, clock, 300ms, 1.0);
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  std::printf("tensor-core GEMM burn (BF16 in, FP32 accumulate): %.0f TFLOP/s\n",
              tensor->Rate() / 1e12);
  EXPECT_GT(tensor->Rate(), 2 * compute->Rate());
  // At half intensity the card idles as long as it works.
  const auto start = clock.Now();
  const auto half = TensorBurn(device, clock, 300ms, 0.5);
  ASSERT_TRUE(half.ok()) << half.status();
  const double wall = std::chrono::duration<double>(clock.Now() - start).count();
  std::printf("half-intensity GEMM burn: busy %.3f s of %.3f s\n", half->seconds, wall);
  EXPECT_NEAR(half->seconds / wall, 0.5, 0.15);
}

TEST(CudaDeviceTest, MemoryHogTakesAndGivesBackDeviceMemory) {
  RealClock clock;
  const Result<std::uint64_t> before = MemoryHog::FreeDeviceMemory(Backend::kCuda);
  ASSERT_TRUE(before.ok()) << before.status();
  const std::uint64_t want = static_cast<std::uint64_t>(*before * 0.95) / (2 << 20) * (2 << 20);
  Result<MemoryHog> hog = MemoryHog::Take(Backend::kCuda, want, clock);
  ASSERT_TRUE(hog.ok()) << hog.status();
  const std::uint64_t during = *MemoryHog::FreeDeviceMemory(Backend::kCuda);
  EXPECT_LE(during, *before - want + (256ull << 20));
  ASSERT_TRUE(hog->Release().ok());
  const std::uint64_t after = *MemoryHog::FreeDeviceMemory(Backend::kCuda);
  EXPECT_GE(after + (256ull << 20), *before);
  std::printf("hog: %.1f GiB taken in %.1f ms, released in %.1f ms\n", want / double(1ull << 30),
              std::chrono::duration<double, std::milli>(hog->take_time()).count(),
              std::chrono::duration<double, std::milli>(hog->release_time()).count());
  // Asking for more than the card has is a status, never an abort.
  Result<MemoryHog> too_much = MemoryHog::Take(Backend::kCuda, *before * 2, clock);
  ASSERT_FALSE(too_much.ok());
  EXPECT_EQ(too_much.status().code(), StatusCode::kResourceExhausted);
}

std::vector<float> Values(const DeviceBuffer& buffer) {
  std::vector<float> out(buffer.bytes() / sizeof(float));
  EXPECT_TRUE(buffer.Download(out.data(), buffer.bytes()).ok());
  return out;
}

// The same seed gives the same dataset on both backends.
TEST(CudaDeviceTest, DatasetsAgreeAcrossBackends) {
  const DatasetSpec spec{
      .samples = 30001, .features = 257, .informative = 20, .decoys = 20, .noise = 0.1, .seed = 5};
  auto cuda = GenerateDataset(Backend::kCuda, spec);
  auto cpu = GenerateDataset(Backend::kCpu, spec);
  ASSERT_TRUE(cuda.ok() && cpu.ok()) << cuda.status() << cpu.status();
  EXPECT_EQ(cuda->informative, cpu->informative);
  for (auto [a, b] : {std::pair{&cuda->data, &cpu->data}, std::pair{&cuda->target, &cpu->target}}) {
    const std::vector<float> x = Values(*a), y = Values(*b);
    ASSERT_EQ(x.size(), y.size());
    std::size_t differing = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_LE(std::abs(x[i] - y[i]), 1e-5f * (1 + std::abs(y[i]))) << "element " << i;
      differing += x[i] != y[i];
    }
    std::printf("%zu of %zu elements differ in the last bits\n", differing, x.size());
  }
}

// Stage 1 selects the same features on both backends from the same data.
TEST(CudaDeviceTest, Stage1AgreesAcrossBackends) {
  const DatasetSpec spec{
      .samples = 50000, .features = 1000, .informative = 20, .decoys = 20, .noise = 0.1, .seed = 9};
  auto cuda = GenerateDataset(Backend::kCuda, spec);
  auto cpu = GenerateDataset(Backend::kCpu, spec);
  ASSERT_TRUE(cuda.ok() && cpu.ok());
  Stage1Workspace cuda_workspace, cpu_workspace;
  auto on_cuda =
      RunStage1(cuda->data, cuda->target, spec.samples, spec.features, {}, &cuda_workspace);
  auto on_cpu = RunStage1(cpu->data, cpu->target, spec.samples, spec.features, {}, &cpu_workspace);
  ASSERT_TRUE(on_cuda.ok() && on_cpu.ok()) << on_cuda.status() << on_cpu.status();
  for (std::size_t f = 0; f < spec.features; ++f) {
    EXPECT_NEAR(on_cuda->mutual_information[f], on_cpu->mutual_information[f],
                1e-9 + 1e-6 * on_cpu->mutual_information[f]);
  }
  EXPECT_EQ(on_cuda->selected, on_cpu->selected);
  int found = 0;
  for (std::uint32_t feature : cuda->informative) {
    found += std::count(on_cuda->selected.begin(), on_cuda->selected.end(), feature) > 0;
  }
  std::printf("stage 1 kept %zu of %zu (ratio %.3f), %d of 20 planted\n", on_cuda->selected.size(),
              spec.features, on_cuda->reduction_ratio, found);
  EXPECT_GE(found, 18);

  // Stage 3 on stage 1's top 50: the same choice on both backends.
  const std::vector<std::uint32_t> top(on_cuda->selected.begin(), on_cuda->selected.begin() + 50);
  Stage3Workspace cuda_stage3, cpu_stage3;
  auto third_cuda = RunStage3(cuda->data, cuda->target, spec.samples, spec.features, top,
                              on_cuda->stats, {}, &cuda_stage3);
  auto third_cpu = RunStage3(cpu->data, cpu->target, spec.samples, spec.features, top,
                             on_cpu->stats, {}, &cpu_stage3);
  ASSERT_TRUE(third_cuda.ok() && third_cpu.ok()) << third_cuda.status() << third_cpu.status();
  EXPECT_EQ(third_cuda->selected, third_cpu->selected);
  EXPECT_NEAR(third_cuda->cv_r2, third_cpu->cv_r2, 1e-4);
  int planted = 0;
  for (std::uint32_t feature : third_cuda->selected) {
    planted += std::count(cuda->informative.begin(), cuda->informative.end(), feature) > 0;
  }
  std::printf("stage 3 kept %zu (%d planted), CV R^2 %.4f (CPU %.4f)\n",
              third_cuda->selected.size(), planted, third_cuda->cv_r2, third_cpu->cv_r2);
}

// Stage 2 scores its batches on the device; the CPU twin computes the same
// descriptors and scores to rounding, so both searches keep the same
// planted features. Then the whole job in balanced mode on the CUDA backend.
TEST(CudaDeviceTest, Stage2AndTheWholeJobAgreeAcrossBackends) {
  auto metamodel = PretrainMetamodel(Backend::kCuda, 7);
  ASSERT_TRUE(metamodel.ok()) << metamodel.status();
  const DatasetSpec spec{
      .samples = 10000, .features = 1000, .informative = 20, .decoys = 20, .noise = 0.1, .seed = 4};
  auto cuda = GenerateDataset(Backend::kCuda, spec);
  auto cpu = GenerateDataset(Backend::kCpu, spec);
  ASSERT_TRUE(cuda.ok() && cpu.ok());
  SelectionWorkspace cuda_workspace, cpu_workspace;
  const SelectionOptions options = OptionsForMode(Mode::kBalanced, 3);
  auto on_cuda = RunSelection(*cuda, *metamodel, options, &cuda_workspace);
  auto on_cpu = RunSelection(*cpu, *metamodel, options, &cpu_workspace);
  ASSERT_TRUE(on_cuda.ok() && on_cpu.ok()) << on_cuda.status() << on_cpu.status();
  auto planted = [&](const std::vector<std::uint32_t>& selected) {
    int found = 0;
    for (std::uint32_t feature : cuda->informative)
      found += std::count(selected.begin(), selected.end(), feature) > 0;
    return found;
  };
  EXPECT_EQ(on_cuda->stage1.selected, on_cpu->stage1.selected);
  EXPECT_EQ(planted(on_cuda->stage2.selected), planted(on_cpu->stage2.selected));
  EXPECT_NEAR(on_cuda->stage2.metamodel_rmse, on_cpu->stage2.metamodel_rmse, 0.01);
  EXPECT_GE(planted(on_cuda->stage3.selected), 18);
  EXPECT_NEAR(on_cuda->quality, on_cpu->quality, 0.05);
  double batch_total = 0;
  for (double seconds : on_cuda->stage2.batch_seconds) batch_total += seconds;
  std::printf(
      "balanced job on CUDA: stage 2 kept %d planted (CPU %d), stage 3 %d; quality %.3f (CPU "
      "%.3f); "
      "stages %.3f s, %.3f s, %.3f s; mean stage-2 batch %.3f ms\n",
      planted(on_cuda->stage2.selected), planted(on_cpu->stage2.selected),
      planted(on_cuda->stage3.selected), on_cuda->quality, on_cpu->quality,
      on_cuda->stage_seconds[0], on_cuda->stage_seconds[1], on_cuda->stage_seconds[2],
      1e3 * batch_total / on_cuda->stage2.batch_seconds.size());
}

}  // namespace
}  // namespace firedrill::gpu
