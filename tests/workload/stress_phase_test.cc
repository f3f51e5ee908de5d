#include "firedrill/workload/stress_phase.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace firedrill::workload {
namespace {

using namespace std::chrono_literals;

gpu::DeviceInfo Cpu() {
  auto device = gpu::ProbeDevice(gpu::BackendChoice::kCpu);
  EXPECT_TRUE(device.ok()) << device.status();
  return *device;
}

TEST(StressPhase, ComputeBurnsInSlicesForThePhase) {
  RealClock clock;
  StressOptions options;
  options.mode = StressMode::kCompute;
  options.intensity = 0.5;
  options.length = 300ms;
  options.slice = 50ms;
  auto phase = StressPhase::Start(options, Cpu(), clock);
  ASSERT_TRUE(phase.ok()) << phase.status();
  const StressResult result = (*phase)->Wait();
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_GE(result.slices, 5);
  EXPECT_GE(result.ran, 300ms);
  EXPECT_GT(result.flops, 0);
  EXPECT_GT(result.Rate(), 1e8);  // FLOP/s: any real CPU does this
  EXPECT_EQ(result.ToJson()["mode"], "compute");
}

TEST(StressPhase, BandwidthBurnMovesBytes) {
  RealClock clock;
  StressOptions options;
  options.mode = StressMode::kBandwidth;
  options.length = 200ms;
  options.bandwidth_buffer_bytes = 8 << 20;
  auto phase = StressPhase::Start(options, Cpu(), clock);
  ASSERT_TRUE(phase.ok()) << phase.status();
  const StressResult result = (*phase)->Wait();
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_GT(result.bytes, 0);
  EXPECT_GT(result.ToJson()["bytes_per_second"].get<double>(), 0);
}

TEST(StressPhase, MemoryHoldsItsShareOfTheCapThenGivesItBack) {
  RealClock clock;
  StressOptions options;
  options.mode = StressMode::kMemory;
  options.intensity = 0.25;
  options.memory_cap = 64 << 20;
  options.length = 100ms;
  options.slice = 20ms;
  auto phase = StressPhase::Start(options, Cpu(), clock);
  ASSERT_TRUE(phase.ok()) << phase.status();
  const StressResult result = (*phase)->Wait();
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.held_bytes, 16u << 20);
  EXPECT_GE(result.ran, 100ms);
}

TEST(StressPhase, StopEndsALongPhaseWithinASlice) {
  SimulatedClock clock;
  StressOptions options;
  options.mode = StressMode::kMemory;
  options.intensity = 0.01;
  options.memory_cap = 1 << 20;
  options.length = std::chrono::hours(1);
  auto phase = StressPhase::Start(options, Cpu(), clock);
  ASSERT_TRUE(phase.ok()) << phase.status();
  clock.WaitForSleepers(1);  // the hog is taken and held
  (*phase)->Stop();
  clock.Advance(options.slice);  // wakes the holder, which sees the stop
  const StressResult result = (*phase)->Wait();
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_LT(result.ran, std::chrono::hours(1));
}

TEST(StressPhase, RefusesBadOptions) {
  RealClock clock;
  StressOptions options;
  options.length = 1s;
  options.intensity = 1.5;
  EXPECT_EQ(StressPhase::Start(options, Cpu(), clock).status().code(), StatusCode::kInvalidArgument);
  options.intensity = 0;
  EXPECT_FALSE(StressPhase::Start(options, Cpu(), clock).ok());
  options.intensity = 0.5;
  options.length = 0s;
  EXPECT_FALSE(StressPhase::Start(options, Cpu(), clock).ok());
  EXPECT_EQ(ParseStressMode("thermal").status().message(),
            "stress mode \"thermal\": expected compute, bandwidth or memory");
  EXPECT_EQ(*ParseStressMode("bandwidth"), StressMode::kBandwidth);
}

}  // namespace
}  // namespace firedrill::workload
