#include <cuda_runtime.h>

#include "cuda_backend.h"

// Turns a CUDA runtime error into a Status that keeps the failing call.
#define FD_CUDA_CALL(expr)                                                              \
  do {                                                                                  \
    const cudaError_t fd_err_ = (expr);                                                 \
    if (fd_err_ != cudaSuccess) {                                                       \
      return ::firedrill::Status(::firedrill::StatusCode::kUnavailable,                 \
                                 std::string(#expr) + ": " + cudaGetErrorString(fd_err_), \
                                 __FILE__, __LINE__);                                   \
    }                                                                                   \
  } while (false)

namespace firedrill::gpu::cuda {
namespace {

__global__ void SumModuloKernel(unsigned long long count, unsigned long long modulus,
                                unsigned long long* sum) {
  unsigned long long local = 0;
  for (unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += static_cast<unsigned long long>(gridDim.x) * blockDim.x) {
    local += i % modulus;
  }
  // Warp reduction first, so only one atomic per warp reaches memory.
  for (int offset = 16; offset > 0; offset /= 2) local += __shfl_down_sync(0xffffffffu, local, offset);
  if ((threadIdx.x & 31) == 0) atomicAdd(sum, local);
}

// Block-wide sum of a double; every thread passes its value, thread 0 gets
// the total. `shared` holds one double per warp.
__device__ double BlockSum(double value, double* shared) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = threadIdx.x < blockDim.x / 32 ? shared[lane] : 0.0;
  if (warp == 0) {
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  __syncthreads();
  return value;
}

constexpr int kSumThreads = 256;

// One block per column; float4 loads when the column is 16-byte aligned.
__global__ void __launch_bounds__(kSumThreads) ColumnSumsKernel(const float* __restrict__ data,
                                                                const float* __restrict__ target,
                                                                unsigned long long rows, double* __restrict__ out) {
  __shared__ double shared[kSumThreads / 32];
  const float* column = data + blockIdx.x * rows;
  const double x0 = column[0];
  const double y0 = target[0];
  double sx = 0, sxx = 0, sxy = 0;
  unsigned long long start = 0;
  const bool aligned = (reinterpret_cast<unsigned long long>(column) % 16 == 0) &&
                       (reinterpret_cast<unsigned long long>(target) % 16 == 0);
  if (aligned) {
    const unsigned long long vectors = rows / 4;
    const float4* column4 = reinterpret_cast<const float4*>(column);
    const float4* target4 = reinterpret_cast<const float4*>(target);
    for (unsigned long long i = threadIdx.x; i < vectors; i += blockDim.x) {
      const float4 x = column4[i];
      const float4 y = __ldg(&target4[i]);
      const double dx[4] = {x.x - x0, x.y - x0, x.z - x0, x.w - x0};
      const double dy[4] = {y.x - y0, y.y - y0, y.z - y0, y.w - y0};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        sx += dx[k];
        sxx = fma(dx[k], dx[k], sxx);
        sxy = fma(dx[k], dy[k], sxy);
      }
    }
    start = vectors * 4;
  }
  for (unsigned long long i = start + threadIdx.x; i < rows; i += blockDim.x) {
    const double dx = column[i] - x0;
    const double dy = target[i] - y0;
    sx += dx;
    sxx = fma(dx, dx, sxx);
    sxy = fma(dx, dy, sxy);
  }
  sx = BlockSum(sx, shared);
  sxx = BlockSum(sxx, shared);
  sxy = BlockSum(sxy, shared);
  if (threadIdx.x == 0) {
    out[4 * blockIdx.x + 0] = sx;
    out[4 * blockIdx.x + 1] = sxx;
    out[4 * blockIdx.x + 2] = sxy;
    out[4 * blockIdx.x + 3] = x0;
  }
}

// Eight independent FMA chains per thread keep every FP32 pipe busy; the
// result is stored only if it takes an impossible value, so nothing is
// optimised away and nothing is written.
__global__ void FmaBurnKernel(int iterations, float* sink) {
  float a0 = threadIdx.x, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7;
  const float m = 0.999999f;
  const float c = 1e-6f;
  for (int i = 0; i < iterations; ++i) {
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      a0 = fmaf(a0, m, c); a1 = fmaf(a1, m, c); a2 = fmaf(a2, m, c); a3 = fmaf(a3, m, c);
      a4 = fmaf(a4, m, c); a5 = fmaf(a5, m, c); a6 = fmaf(a6, m, c); a7 = fmaf(a7, m, c);
    }
  }
  const float total = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
  if (total == -1.0f) *sink = total;
}

__global__ void CopyKernel(const float4* __restrict__ source, float4* __restrict__ destination,
                           unsigned long long count4) {
  for (unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x; i < count4;
       i += static_cast<unsigned long long>(gridDim.x) * blockDim.x) {
    destination[i] = source[i];
  }
}

// Times work on the default stream with a pair of events.
class EventTimer {
 public:
  EventTimer() {
    cudaEventCreate(&start_);
    cudaEventCreate(&stop_);
  }
  ~EventTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void Start() { cudaEventRecord(start_); }
  Status StopAndRead(double* seconds) {
    FD_CUDA_CALL(cudaEventRecord(stop_));
    FD_CUDA_CALL(cudaEventSynchronize(stop_));
    float milliseconds = 0;
    FD_CUDA_CALL(cudaEventElapsedTime(&milliseconds, start_, stop_));
    *seconds = milliseconds / 1e3;
    return Status::Ok();
  }

 private:
  cudaEvent_t start_{};
  cudaEvent_t stop_{};
};

// Device memory owned by one scope.
class ScopedDeviceMemory {
 public:
  ScopedDeviceMemory() = default;
  ~ScopedDeviceMemory() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  ScopedDeviceMemory(const ScopedDeviceMemory&) = delete;
  ScopedDeviceMemory& operator=(const ScopedDeviceMemory&) = delete;
  void** address() { return &ptr_; }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

}  // namespace

bool Built() { return true; }

bool Probe(DeviceInfo* info, std::string* why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaErrorInsufficientDriver) {
    *why = "no usable CUDA driver (libcuda.so is missing or older than this build needs)";
    return false;
  }
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    *why = "no CUDA device present";
    return false;
  }
  if (err != cudaSuccess) {
    *why = std::string("CUDA could not be initialised: ") + cudaGetErrorString(err);
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    *why = "cudaGetDeviceProperties failed for device 0";
    return false;
  }
  info->backend = Backend::kCuda;
  info->name = prop.name;
  info->index = 0;
  info->total_memory = prop.totalGlobalMem;
  info->compute_major = prop.major;
  info->compute_minor = prop.minor;
  info->device_count = count;
  cudaDriverGetVersion(&info->driver_version);
  return true;
}

Status SumModulo(std::uint64_t count, std::uint64_t modulus, std::uint64_t* sum) {
  ScopedDeviceMemory device_sum;
  FD_CUDA_CALL(cudaMalloc(device_sum.address(), sizeof(unsigned long long)));
  FD_CUDA_CALL(cudaMemset(device_sum.get(), 0, sizeof(unsigned long long)));
  SumModuloKernel<<<264, 256>>>(count, modulus, static_cast<unsigned long long*>(device_sum.get()));
  FD_CUDA_CALL(cudaGetLastError());
  unsigned long long host_sum = 0;
  FD_CUDA_CALL(cudaMemcpy(&host_sum, device_sum.get(), sizeof(host_sum), cudaMemcpyDeviceToHost));
  *sum = host_sum;
  return Status::Ok();
}

Status Allocate(std::size_t bytes, void** pointer) {
  const cudaError_t err = cudaMalloc(pointer, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the sticky-free error so later calls work
    return FD_STATUS(StatusCode::kResourceExhausted,
                     "out of GPU memory: cudaMalloc of " + std::to_string(bytes) + " bytes failed");
  }
  FD_CUDA_CALL(err);
  return Status::Ok();
}

void Free(void* pointer) { cudaFree(pointer); }

Status CopyToDevice(void* device, const void* host, std::size_t bytes) {
  FD_CUDA_CALL(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice));
  return Status::Ok();
}

Status CopyToHost(void* host, const void* device, std::size_t bytes) {
  FD_CUDA_CALL(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

Status Memset(void* device, std::uint8_t byte, std::size_t bytes) {
  FD_CUDA_CALL(cudaMemset(device, byte, bytes));
  FD_CUDA_CALL(cudaDeviceSynchronize());
  return Status::Ok();
}

Status CopyOnDevice(void* destination, const void* source, std::size_t bytes) {
  FD_CUDA_CALL(cudaMemcpy(destination, source, bytes, cudaMemcpyDeviceToDevice));
  FD_CUDA_CALL(cudaDeviceSynchronize());
  return Status::Ok();
}

Status FreeMemory(std::uint64_t* free_bytes, std::uint64_t* total_bytes) {
  std::size_t free_now = 0, total = 0;
  FD_CUDA_CALL(cudaMemGetInfo(&free_now, &total));
  *free_bytes = free_now;
  *total_bytes = total;
  return Status::Ok();
}

Status ColumnSums(const float* data, const float* target, std::size_t rows, std::size_t columns, double* out) {
  if (columns == 0) return Status::Ok();
  ColumnSumsKernel<<<static_cast<unsigned>(columns), kSumThreads>>>(data, target, rows, out);
  FD_CUDA_CALL(cudaGetLastError());
  FD_CUDA_CALL(cudaDeviceSynchronize());
  return Status::Ok();
}

int MultiprocessorCount() {
  int count = 0;
  cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, 0);
  return count;
}

Status FmaBurn(int blocks, int iterations, double* seconds) {
  ScopedDeviceMemory sink;
  FD_CUDA_CALL(cudaMalloc(sink.address(), sizeof(float)));
  EventTimer timer;
  timer.Start();
  FmaBurnKernel<<<blocks, 256>>>(iterations, static_cast<float*>(sink.get()));
  FD_CUDA_CALL(cudaGetLastError());
  return timer.StopAndRead(seconds);
}

Status CopyBurn(const float* source, float* destination, std::size_t count, int blocks, double* seconds) {
  EventTimer timer;
  timer.Start();
  CopyKernel<<<blocks, 512>>>(reinterpret_cast<const float4*>(source), reinterpret_cast<float4*>(destination),
                              count / 4);
  FD_CUDA_CALL(cudaGetLastError());
  return timer.StopAndRead(seconds);
}

}  // namespace firedrill::gpu::cuda
