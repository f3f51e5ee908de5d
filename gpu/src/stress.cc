#include "firedrill/gpu/stress.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "cuda_backend.h"

namespace firedrill::gpu {
namespace {

double Seconds(Duration duration) { return std::chrono::duration<double>(duration).count(); }

Status CheckIntensity(double intensity) {
  if (!(intensity > 0 && intensity <= 1)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "intensity must be in (0, 1], got " + std::to_string(intensity));
  }
  return Status::Ok();
}

unsigned CpuThreads(double intensity) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1u, static_cast<unsigned>(std::lround(cores * intensity)));
}

// Eight independent multiply-add chains, as in the CUDA kernel (a plain
// a*m + c: std::fma without hardware FMA in the baseline ISA is a library
// call); returns the number of multiply-adds done. Runs at least one round, then stops once `stop`
// is set.
std::uint64_t CpuFmaLoop(const std::atomic<bool>& stop) {
  float a[8];
  for (int k = 0; k < 8; ++k) a[k] = static_cast<float>(k);
  std::uint64_t fmas = 0;
  do {
    for (int i = 0; i < 4096; ++i) {
#pragma omp simd
      for (int k = 0; k < 8; ++k) a[k] = a[k] * 0.999999f + 1e-6f;
    }
    fmas += 4096 * 8;
  } while (!stop.load(std::memory_order_relaxed));
  volatile float sink = a[0] + a[7];
  (void)sink;
  return fmas;
}

// Products of 128 x 128 FP32 matrices, small enough to stay in cache, until
// `stop`; returns the number of products.
std::uint64_t CpuMatrixLoop(const std::atomic<bool>& stop) {
  constexpr int kN = 128;
  std::vector<float> a(kN * kN, 0.5f), b(kN * kN, 0.25f), c(kN * kN);
  std::uint64_t products = 0;
  do {
    std::fill(c.begin(), c.end(), 0.0f);
    for (int i = 0; i < kN; ++i) {
      for (int k = 0; k < kN; ++k) {
        const float scale = a[i * kN + k];
#pragma omp simd
        for (int j = 0; j < kN; ++j) c[i * kN + j] += scale * b[k * kN + j];
      }
    }
    ++products;
  } while (!stop.load(std::memory_order_relaxed));
  volatile float sink = c[kN + 1];
  (void)sink;
  return products;
}

// Runs `loop` on CpuThreads(intensity) threads for `duration` of `clock`;
// returns the seconds it ran and what each thread returned.
template <typename Loop>
double RunOnCpuThreads(Clock& clock, Duration duration, double intensity, Loop loop,
                       std::vector<std::uint64_t>* counts) {
  std::atomic<bool> stop{false};
  counts->assign(CpuThreads(intensity), 0);
  const MonotonicTime start = clock.Now();
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < counts->size(); ++t) {
    workers.emplace_back([&, t] { (*counts)[t] = loop(stop); });
  }
  clock.SleepFor(duration);
  stop = true;
  for (auto& worker : workers) worker.join();
  return Seconds(clock.Now() - start);
}

}  // namespace

Result<BurnResult> ComputeBurn(const DeviceInfo& device, Clock& clock, Duration duration,
                               double intensity) {
  FD_RETURN_IF_ERROR(CheckIntensity(intensity));
  BurnResult result;
  if (device.backend == Backend::kCuda) {
    const int sms = cuda::MultiprocessorCount();
    // Eight 256-thread blocks per SM fill it; intensity takes a share of SMs.
    const int blocks = std::max(1, static_cast<int>(std::lround(sms * 8 * intensity)));
    const int iterations = 20000;
    const MonotonicTime end = clock.Now() + duration;
    do {
      double seconds = 0;
      FD_RETURN_IF_ERROR(cuda::FmaBurn(blocks, iterations, &seconds));
      result.seconds += seconds;
      result.flops += 2.0 * 128 * iterations * 256.0 * blocks;
    } while (clock.Now() < end);
    return result;
  }
  std::vector<std::uint64_t> fmas;
  result.seconds = RunOnCpuThreads(clock, duration, intensity, CpuFmaLoop, &fmas);
  for (std::uint64_t count : fmas) result.flops += 2.0 * static_cast<double>(count);
  return result;
}

Result<BurnResult> TensorBurn(const DeviceInfo& device, Clock& clock, Duration duration,
                              double intensity) {
  FD_RETURN_IF_ERROR(CheckIntensity(intensity));
  BurnResult result;
  if (device.backend == Backend::kCuda) {
    constexpr int kN = 8192, kRepeats = 4;
    cuda::GemmBurner* burner = nullptr;
    FD_RETURN_IF_ERROR(cuda::CreateGemmBurner(kN, &burner));
    const std::unique_ptr<cuda::GemmBurner, void (*)(cuda::GemmBurner*)> owner(
        burner, cuda::DestroyGemmBurner);
    const MonotonicTime end = clock.Now() + duration;
    do {
      double seconds = 0;
      FD_RETURN_IF_ERROR(cuda::RunGemmBurner(burner, kRepeats, &seconds));
      result.seconds += seconds;
      result.flops += 2.0 * kN * kN * static_cast<double>(kN) * kRepeats;
      if (intensity < 1) {
        clock.SleepFor(std::chrono::duration_cast<Duration>(
            std::chrono::duration<double>(seconds * (1 - intensity) / intensity)));
      }
    } while (clock.Now() < end);
    return result;
  }
  std::vector<std::uint64_t> products;
  result.seconds = RunOnCpuThreads(clock, duration, intensity, CpuMatrixLoop, &products);
  for (std::uint64_t count : products)
    result.flops += 2.0 * 128 * 128 * 128 * static_cast<double>(count);
  return result;
}

Result<BurnResult> BandwidthBurn(const DeviceInfo& device, Clock& clock, std::size_t buffer_bytes,
                                 Duration duration, double intensity) {
  FD_RETURN_IF_ERROR(CheckIntensity(intensity));
  buffer_bytes = buffer_bytes / 64 * 64;
  if (buffer_bytes == 0)
    return FD_STATUS(StatusCode::kInvalidArgument, "bandwidth burn needs at least 64 bytes");
  FD_ASSIGN_OR_RETURN(DeviceBuffer source, DeviceBuffer::Allocate(device.backend, buffer_bytes));
  FD_ASSIGN_OR_RETURN(DeviceBuffer destination,
                      DeviceBuffer::Allocate(device.backend, buffer_bytes));
  FD_RETURN_IF_ERROR(source.Fill(0x3c));
  BurnResult result;
  const MonotonicTime end = clock.Now() + duration;
  if (device.backend == Backend::kCuda) {
    const int blocks =
        std::max(1, static_cast<int>(std::lround(cuda::MultiprocessorCount() * 4 * intensity)));
    do {
      double seconds = 0;
      FD_RETURN_IF_ERROR(cuda::CopyBurn(source.as<float>(), destination.as<float>(),
                                        buffer_bytes / sizeof(float), blocks, &seconds));
      result.seconds += seconds;
      result.bytes += 2.0 * static_cast<double>(buffer_bytes);
    } while (clock.Now() < end);
    return result;
  }
  // CPU: each thread copies its slice; `intensity` picks how many threads.
  const unsigned threads = CpuThreads(intensity);
  const MonotonicTime start = clock.Now();
  std::size_t passes = 0;
  do {
    std::vector<std::thread> workers;
    const std::size_t slice = (buffer_bytes / threads + 63) / 64 * 64;
    for (unsigned t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const std::size_t offset = std::min<std::size_t>(t * slice, buffer_bytes);
        const std::size_t length = std::min(slice, buffer_bytes - offset);
        std::memcpy(destination.as<char>() + offset, source.as<char>() + offset, length);
      });
    }
    for (auto& worker : workers) worker.join();
    ++passes;
  } while (clock.Now() < end);
  result.seconds = Seconds(clock.Now() - start);
  result.bytes = 2.0 * static_cast<double>(buffer_bytes) * static_cast<double>(passes);
  return result;
}

Result<MemoryHog> MemoryHog::Take(Backend backend, std::uint64_t bytes, Clock& clock) {
  MemoryHog hog;
  hog.clock_ = &clock;
  const MonotonicTime start = clock.Now();
  FD_ASSIGN_OR_RETURN(hog.buffer_, DeviceBuffer::Allocate(backend, bytes));
  // Writing every byte makes the pages resident, so the memory is really held.
  FD_RETURN_IF_ERROR(hog.buffer_.Fill(0xa5));
  hog.take_time_ = clock.Now() - start;
  return hog;
}

Result<std::uint64_t> MemoryHog::FreeDeviceMemory(Backend backend) {
  if (backend != Backend::kCuda) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "free device memory is only known on the CUDA backend");
  }
  std::uint64_t free_bytes = 0, total = 0;
  FD_RETURN_IF_ERROR(cuda::FreeMemory(&free_bytes, &total));
  return free_bytes;
}

Status MemoryHog::Release() {
  if (clock_ == nullptr) return Status::Ok();
  const MonotonicTime start = clock_->Now();
  buffer_ = DeviceBuffer();
  release_time_ = clock_->Now() - start;
  return Status::Ok();
}

}  // namespace firedrill::gpu
