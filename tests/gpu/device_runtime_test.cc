#include <gtest/gtest.h>

#include <future>
#include <sstream>

#include "firedrill/gpu/device.h"
#include "firedrill/gpu/telemetry.h"

namespace firedrill::gpu {
namespace {

using namespace std::chrono_literals;

class DeviceTestBase : public ::testing::Test {
 protected:
  std::unique_ptr<Device> Open(DeviceOptions options) {
    auto device = Device::Open(options, clock_, logger_);
    EXPECT_TRUE(device.ok()) << device.status();
    return device.ok() ? std::move(*device) : nullptr;
  }
  SimulatedClock clock_;
  std::ostringstream log_;
  Logger logger_{log_, clock_};
};

using DeviceRuntimeTest = DeviceTestBase;

TEST_F(DeviceRuntimeTest, ArenaEnforcesTheMemoryFraction) {
  auto device = Open({.backend = BackendChoice::kCpu, .memory_fraction = 0.5, .host_device_memory = 64 << 20});
  ASSERT_NE(device, nullptr);
  EXPECT_EQ(device->memory_budget(), 32u << 20);
  Result<DeviceBuffer> a = device->Allocate(20 << 20);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(device->memory_used(), 20u << 20);
  Result<DeviceBuffer> b = device->Allocate(20 << 20);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(b.status().message(),
            "GPU memory budget exhausted: asked for 20MiB with 20MiB of 32MiB in use (GPU_MEMORY_FRACTION=50%)");
  *a = DeviceBuffer();  // freeing gives the bytes back
  EXPECT_EQ(device->memory_used(), 0u);
  EXPECT_TRUE(device->Allocate(20 << 20).ok());
  EXPECT_EQ(device->memory_used(), 0u) << "a temporary buffer is freed at once";
  EXPECT_EQ(device->SetMemoryFraction(0).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(device->SetMemoryFraction(0.25).ok());
  EXPECT_FALSE(device->Allocate(20 << 20).ok());
}

TEST_F(DeviceRuntimeTest, BuffersMayOutliveTheirDevice) {
  DeviceBuffer survivor;
  {
    auto device = Open({.backend = BackendChoice::kSimulated, .host_device_memory = 64 << 20});
    ASSERT_NE(device, nullptr);
    survivor = device->Allocate(1 << 20).value();
  }
  survivor = DeviceBuffer();  // returns its bytes to an arena nobody else holds
  EXPECT_EQ(survivor.bytes(), 0u);
}

TEST_F(DeviceRuntimeTest, ConcurrencyLimitHoldsAndReleases) {
  auto device = Open({.backend = BackendChoice::kCpu, .max_concurrent_batches = 2});
  ASSERT_NE(device, nullptr);
  Device::BatchSlot first = device->TryAcquireBatch();
  Device::BatchSlot second = device->TryAcquireBatch();
  EXPECT_TRUE(first.held() && second.held());
  EXPECT_FALSE(device->TryAcquireBatch().held());
  EXPECT_EQ(device->running_batches(), 2);
  // A blocked acquirer gets the slot the moment one is given back.
  auto waiter = std::async(std::launch::async, [&] { return device->AcquireBatch().held(); });
  EXPECT_EQ(waiter.wait_for(0s), std::future_status::timeout);
  first = Device::BatchSlot();
  EXPECT_TRUE(waiter.get());
  EXPECT_EQ(device->running_batches(), 1);  // the waiter's slot ended with its lambda
  ASSERT_TRUE(device->SetMaxConcurrentBatches(3).ok());
  EXPECT_TRUE(device->TryAcquireBatch().held());
  EXPECT_EQ(device->SetMaxConcurrentBatches(0).code(), StatusCode::kInvalidArgument);
}

TEST_F(DeviceRuntimeTest, ThrottleStretchesWorkOnTheClock) {
  auto device = Open({.backend = BackendChoice::kCpu});
  ASSERT_NE(device, nullptr);
  ASSERT_TRUE(device->SetThrottle(0.5).ok());
  const MonotonicTime start = clock_.Now();
  auto worker = std::async(std::launch::async, [&] { device->ApplyThrottle(100ms); });
  clock_.WaitForSleepers(1);
  clock_.Advance(100ms);
  worker.get();
  EXPECT_EQ(clock_.Now() - start, 100ms) << "half speed doubles 100 ms of work";
  EXPECT_EQ(device->SetThrottle(0).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(device->SetThrottle(1).ok());
  device->ApplyThrottle(100ms);  // full speed: returns at once
}

TEST_F(DeviceRuntimeTest, SimulatedDeviceReportsArenaMemoryAndThermalThrottle) {
  auto device = Open({.backend = BackendChoice::kSimulated, .memory_fraction = 1.0, .host_device_memory = 64 << 20});
  ASSERT_NE(device, nullptr);
  ASSERT_NE(device->simulated(), nullptr);
  EXPECT_NE(log_.str().find("gpu: using the simulated backend"), std::string::npos);
  auto buffer = device->Allocate(16 << 20);
  ASSERT_TRUE(buffer.ok());
  EXPECT_DOUBLE_EQ(device->simulated()->Read().memory_used_bytes.value, double(16 << 20));
  EXPECT_DOUBLE_EQ(device->simulated()->Read().memory_total_bytes.value, double(64 << 20));
  // A cooling fault under full load throttles the device's work.
  device->simulated()->SetUtilization(1.0);
  device->simulated()->SetCoolingLoss(5);
  clock_.Advance(3min);
  EXPECT_LT(device->throttle(), 1.0);
}

TEST_F(DeviceRuntimeTest, RejectsBadOptions) {
  EXPECT_EQ(Device::Open({.memory_fraction = 1.5}, clock_, logger_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Device::Open({.max_concurrent_batches = 0}, clock_, logger_).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace firedrill::gpu
