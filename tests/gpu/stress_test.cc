#include "firedrill/gpu/stress.h"

#include <gtest/gtest.h>

#include <cmath>
#include <future>

namespace firedrill::gpu {
namespace {

using namespace std::chrono_literals;

DeviceInfo Cpu() { return *ProbeDevice(BackendChoice::kCpu); }

// The CPU burn sleeps on the injected clock while its threads work, so the
// test decides when the burn ends: no real waiting.
TEST(StressTest, CpuComputeBurnRunsUntilTheClockSaysStop) {
  SimulatedClock clock;
  auto burn = std::async(std::launch::async, [&] { return ComputeBurn(Cpu(), clock, 10s, 1.0); });
  clock.WaitForSleepers(1);
  clock.Advance(10s);
  const Result<BurnResult> result = burn.get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->flops, 0);
  EXPECT_DOUBLE_EQ(result->seconds, 10.0);
}

TEST(StressTest, CpuTensorBurnMultipliesMatricesUntilTheClockSaysStop) {
  SimulatedClock clock;
  auto burn = std::async(std::launch::async, [&] { return TensorBurn(Cpu(), clock, 5s, 0.5); });
  clock.WaitForSleepers(1);
  clock.Advance(5s);
  const Result<BurnResult> result = burn.get();
  ASSERT_TRUE(result.ok()) << result.status();
  // Whole 128^3 products only: 2 * 128^3 FLOPs each, at least one per thread.
  EXPECT_GE(result->flops, 2.0 * 128 * 128 * 128);
  EXPECT_EQ(std::fmod(result->flops, 2.0 * 128 * 128 * 128), 0.0);
  EXPECT_DOUBLE_EQ(result->seconds, 5.0);
  EXPECT_EQ(TensorBurn(Cpu(), clock, 1s, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(StressTest, CpuBandwidthBurnCopiesWholeBuffers) {
  SimulatedClock clock;  // time stands still: exactly one pass
  const Result<BurnResult> result = BandwidthBurn(Cpu(), clock, 1 << 20, 0s, 0.5);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->bytes, 2.0 * (1 << 20));
}

TEST(StressTest, RejectsIntensityOutsideItsRange) {
  SimulatedClock clock;
  EXPECT_EQ(ComputeBurn(Cpu(), clock, 1s, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BandwidthBurn(Cpu(), clock, 1 << 20, 1s, 1.5).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(StressTest, MemoryHogHoldsAndReleases) {
  SimulatedClock clock;
  Result<MemoryHog> hog = MemoryHog::Take(Backend::kCpu, 8 << 20, clock);
  ASSERT_TRUE(hog.ok()) << hog.status();
  EXPECT_EQ(hog->bytes(), 8u << 20);
  ASSERT_TRUE(hog->Release().ok());
  EXPECT_EQ(hog->bytes(), 0u);
  EXPECT_FALSE(MemoryHog::FreeDeviceMemory(Backend::kCpu).ok());
}

TEST(StressTest, HostAllocationFailureIsAStatusNotAnAbort) {
  SimulatedClock clock;
  Result<MemoryHog> hog = MemoryHog::Take(Backend::kCpu, std::uint64_t{1} << 60, clock);
  ASSERT_FALSE(hog.ok());
  EXPECT_EQ(hog.status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace firedrill::gpu
