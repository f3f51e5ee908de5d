#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <latch>
#include <sstream>

#include "firedrill/gpu/device.h"
#include "firedrill/gpu/shared_memory.h"
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

std::string FreshFolder(const std::string& name) {
  const auto folder = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(folder);
  return folder.string();
}

// Holders in other processes count while they live; one SIGKILLed counts
// for nothing, and its record goes.
TEST(SharedDeviceMemoryTest, CountsLiveHoldersOnly) {
  const std::string folder = FreshFolder("firedrill-shared-memory");
  auto mine = SharedDeviceMemory::Open(folder);
  auto other = SharedDeviceMemory::Open(folder);
  ASSERT_TRUE(mine.ok() && other.ok());
  ASSERT_TRUE((*other)->Hold(100).ok());
  EXPECT_EQ((*mine)->HeldByOthers(), 100u);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    auto held = SharedDeviceMemory::Open(folder);
    const char ok = held.ok() && (*held)->Hold(1000).ok() ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    for (;;) pause();
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  EXPECT_EQ((*mine)->HeldByOthers(), 1100u);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ((*mine)->HeldByOthers(), 100u);
  other->reset();
  EXPECT_EQ((*mine)->HeldByOthers(), 0u);
  mine->reset();
  EXPECT_TRUE(std::filesystem::is_empty(folder));
  close(ready[0]);
  close(ready[1]);
  std::filesystem::remove_all(folder);
}

// Two holders racing for more than half of the device: at most one gets it,
// in every round, because the check and the record happen under one lock.
TEST(SharedDeviceMemoryTest, TwoRacersCannotBothTakeTheLastOfTheDevice) {
  const std::string folder = FreshFolder("firedrill-shared-race");
  auto first = SharedDeviceMemory::Open(folder);
  auto second = SharedDeviceMemory::Open(folder);
  ASSERT_TRUE(first.ok() && second.ok());
  constexpr std::uint64_t kCapacity = 1000;
  int both = 0;
  int neither = 0;
  for (int round = 0; round < 300; ++round) {
    std::latch go(2);
    const auto race = [&go](SharedDeviceMemory& holder) {
      go.arrive_and_wait();
      return holder.HoldWithin(600, kCapacity);
    };
    auto racer = std::async(std::launch::async, race, std::ref(**second));
    const Status mine = race(**first);
    const Status theirs = racer.get();
    both += mine.ok() && theirs.ok();
    neither += !mine.ok() && !theirs.ok();
    for (const Status* refused : {&mine, &theirs}) {
      if (!refused->ok()) {
        EXPECT_EQ(refused->message(), "other processes hold 600B of the device's 1000B") << *refused;
      }
    }
    ASSERT_TRUE((*first)->Hold(0).ok() && (*second)->Hold(0).ok());
  }
  EXPECT_EQ(both, 0);
  EXPECT_EQ(neither, 0) << "the loser sees the winner's record, never a half-made one";
  first->reset();
  second->reset();
  EXPECT_TRUE(std::filesystem::is_empty(folder)) << "the folder lock leaves no file behind";
  std::filesystem::remove_all(folder);
}

// What another process holds is not free here, though the budget allows it,
// and the simulated device's telemetry reports it as NVML would.
TEST_F(DeviceRuntimeTest, MemoryAnotherProcessHoldsIsNotFree) {
  const std::string folder = FreshFolder("firedrill-shared-device");
  auto device = Open({.backend = BackendChoice::kSimulated, .memory_fraction = 0.9, .host_device_memory = 64 << 20,
                      .shared_memory_dir = folder});
  ASSERT_NE(device, nullptr);
  auto hog = SharedDeviceMemory::Open(folder);
  ASSERT_TRUE(hog.ok());
  ASSERT_TRUE((*hog)->Hold(60 << 20).ok());
  EXPECT_DOUBLE_EQ(device->simulated()->Read().memory_used_bytes.value, double(60 << 20));
  auto refused = device->Allocate(8 << 20);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("other processes hold 60MiB of the device's 64MiB"), std::string::npos)
      << refused.status();
  EXPECT_EQ(device->memory_used(), 0u) << "a refused allocation takes nothing";
  ASSERT_TRUE((*hog)->Hold(0).ok());
  auto buffer = device->Allocate(8 << 20);
  EXPECT_TRUE(buffer.ok()) << buffer.status();
  // The device's own holding is what the hog process sees.
  EXPECT_EQ((*hog)->HeldByOthers(), std::uint64_t{8} << 20);
  hog->reset();
  buffer = Result<DeviceBuffer>(Status(StatusCode::kCancelled, "released"));
  device.reset();
  std::filesystem::remove_all(folder);
}

TEST_F(DeviceRuntimeTest, RejectsBadOptions) {
  EXPECT_EQ(Device::Open({.memory_fraction = 1.5}, clock_, logger_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Device::Open({.max_concurrent_batches = 0}, clock_, logger_).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace firedrill::gpu
