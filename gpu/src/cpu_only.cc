// Built instead of cuda_backend.cu when this build has no CUDA compiler.
#include "cuda_backend.h"

namespace firedrill::gpu::cuda {

bool Built() { return false; }

bool Probe(DeviceInfo*, std::string* why) {
  *why = "this build has no CUDA backend";
  return false;
}

Status SumModulo(std::uint64_t, std::uint64_t, std::uint64_t*) {
  return FD_STATUS(StatusCode::kUnimplemented, "this build has no CUDA backend");
}

}  // namespace firedrill::gpu::cuda
