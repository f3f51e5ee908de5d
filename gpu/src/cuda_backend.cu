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

// Device memory owned by one scope.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
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
  DeviceBuffer device_sum;
  FD_CUDA_CALL(cudaMalloc(device_sum.address(), sizeof(unsigned long long)));
  FD_CUDA_CALL(cudaMemset(device_sum.get(), 0, sizeof(unsigned long long)));
  SumModuloKernel<<<264, 256>>>(count, modulus, static_cast<unsigned long long*>(device_sum.get()));
  FD_CUDA_CALL(cudaGetLastError());
  unsigned long long host_sum = 0;
  FD_CUDA_CALL(cudaMemcpy(&host_sum, device_sum.get(), sizeof(host_sum), cudaMemcpyDeviceToHost));
  *sum = host_sum;
  return Status::Ok();
}

}  // namespace firedrill::gpu::cuda
