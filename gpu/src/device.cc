#include "firedrill/gpu/device.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "parallel.h"

namespace firedrill::gpu {
namespace {

std::string CpuModelName() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown CPU";
}

DeviceInfo CpuDevice(Backend backend, std::string reason) {
  DeviceInfo info;
  info.backend = backend;
  info.cuda_built = cuda::Built();
  info.name = CpuModelName();
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) {
    info.total_memory = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
  }
  info.device_count = 0;
  info.fallback_reason = std::move(reason);
  return info;
}

}  // namespace

std::string_view BackendName(Backend backend) {
  switch (backend) {
    case Backend::kCuda: return "cuda";
    case Backend::kCpu: return "cpu";
    case Backend::kSimulated: return "simulated";
  }
  return "cpu";
}

bool ParseBackendChoice(std::string_view text, BackendChoice* choice) {
  if (text == "auto") *choice = BackendChoice::kAuto;
  else if (text == "cuda") *choice = BackendChoice::kCuda;
  else if (text == "cpu") *choice = BackendChoice::kCpu;
  else if (text == "simulated") *choice = BackendChoice::kSimulated;
  else return false;
  return true;
}

Result<DeviceInfo> ProbeDevice(BackendChoice choice) {
  if (choice == BackendChoice::kCpu) return CpuDevice(Backend::kCpu, "CPU backend requested");
  if (choice == BackendChoice::kSimulated) {
    return CpuDevice(Backend::kSimulated, "simulated device requested");
  }
  if (!cuda::Built()) {
    if (choice == BackendChoice::kCuda) {
      return FD_STATUS(StatusCode::kUnimplemented, "this build has no CUDA backend (nvcc was not found at build time)");
    }
    return CpuDevice(Backend::kCpu, "this build has no CUDA backend");
  }
  DeviceInfo info;
  std::string why;
  if (cuda::Probe(&info, &why)) {
    info.cuda_built = true;
    return info;
  }
  if (choice == BackendChoice::kCuda) return FD_STATUS(StatusCode::kUnavailable, why);
  return CpuDevice(Backend::kCpu, why);
}

void LogDeviceChoice(Logger& logger, const DeviceInfo& device) {
  if (device.backend == Backend::kCuda) {
    logger.Info("gpu", "using the CUDA backend",
                {{"device", device.name},
                 {"index", device.index},
                 {"compute", std::to_string(device.compute_major) + "." + std::to_string(device.compute_minor)},
                 {"memory_bytes", device.total_memory},
                 {"driver", device.driver_version}});
  } else {
    logger.Info("gpu", std::string("using the ") + std::string(BackendName(device.backend)) + " backend",
                {{"reason", device.fallback_reason}, {"cpu", device.name}});
  }
}

Status RunSelfTest(const DeviceInfo& device) {
  // Sum of (i mod 1000) over i < n is exact in 64-bit integers on any backend.
  constexpr std::uint64_t kCount = 1 << 22;
  std::uint64_t expected = 0;
  for (std::uint64_t i = 0; i < kCount; ++i) expected += i % 1000;
  std::uint64_t got = 0;
  if (device.backend == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::SumModulo(kCount, 1000, &got));
  } else {
    constexpr std::uint64_t kChunks = 64;
    std::vector<std::uint64_t> partial(kChunks, 0);
    ParallelFor(kChunks, [&](std::size_t chunk) {
      for (std::uint64_t i = chunk; i < kCount; i += kChunks) partial[chunk] += i % 1000;
    });
    for (std::uint64_t value : partial) got += value;
  }
  if (got != expected) {
    return FD_STATUS(StatusCode::kInternal, "device self-test computed " + std::to_string(got) +
                                                ", expected " + std::to_string(expected));
  }
  return Status::Ok();
}

}  // namespace firedrill::gpu
