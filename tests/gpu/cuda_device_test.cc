// Runs only where a GPU is present (ctest label "gpu"): the CUDA backend
// must be chosen, and its kernels must compute the exact answer.
#include <gtest/gtest.h>

#include "firedrill/gpu/device.h"

namespace firedrill::gpu {
namespace {

TEST(CudaDeviceTest, CudaBackendProbesAndRunsKernels) {
  const Result<DeviceInfo> device = ProbeDevice(BackendChoice::kCuda);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->backend, Backend::kCuda);
  EXPECT_GE(device->compute_major, 9) << "kernels are built for sm_90";
  EXPECT_GT(device->total_memory, 1ull << 30);
  const Status status = RunSelfTest(*device);
  EXPECT_TRUE(status.ok()) << status;
  std::printf("device: %s, compute %d.%d, %llu MiB, driver %d\n", device->name.c_str(), device->compute_major,
              device->compute_minor, static_cast<unsigned long long>(device->total_memory >> 20),
              device->driver_version);
}

}  // namespace
}  // namespace firedrill::gpu
