#include "firedrill/gpu/device.h"

#include <gtest/gtest.h>

#include <sstream>

namespace firedrill::gpu {
namespace {

TEST(DeviceTest, CpuBackendRunsTheSelfTest) {
  const Result<DeviceInfo> device = ProbeDevice(BackendChoice::kCpu);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->backend, Backend::kCpu);
  EXPECT_GT(device->total_memory, 0u);
  EXPECT_TRUE(RunSelfTest(*device).ok());
}

TEST(DeviceTest, SimulatedDeviceIsLabelledSimulated) {
  const Result<DeviceInfo> device = ProbeDevice(BackendChoice::kSimulated);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(BackendName(device->backend), "simulated");
}

// Whatever this machine has, auto picks something that works, and says why
// when it is not CUDA.
TEST(DeviceTest, AutoAlwaysYieldsAWorkingBackend) {
  const Result<DeviceInfo> device = ProbeDevice(BackendChoice::kAuto);
  ASSERT_TRUE(device.ok()) << device.status();
  if (device->backend == Backend::kCuda) {
    EXPECT_GT(device->device_count, 0);
  } else {
    EXPECT_FALSE(device->fallback_reason.empty());
  }
  EXPECT_TRUE(RunSelfTest(*device).ok());
  SimulatedClock clock;
  std::ostringstream out;
  Logger logger(out, clock);
  LogDeviceChoice(logger, *device);
  const std::string line = out.str();
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_NE(line.find("gpu: using the "), std::string::npos);
}

TEST(DeviceTest, ParsesBackendChoices) {
  BackendChoice choice;
  EXPECT_TRUE(ParseBackendChoice("cuda", &choice));
  EXPECT_EQ(choice, BackendChoice::kCuda);
  EXPECT_FALSE(ParseBackendChoice("rocm", &choice));
}

}  // namespace
}  // namespace firedrill::gpu
