// Built instead of cuda_backend.cu when this build has no CUDA compiler.
#include "cuda_backend.h"

namespace firedrill::gpu::cuda {
namespace {
Status NotBuilt() {
  return FD_STATUS(StatusCode::kUnimplemented, "this build has no CUDA backend");
}
}  // namespace

bool Built() { return false; }

bool Probe(DeviceInfo*, std::string* why) {
  *why = "this build has no CUDA backend";
  return false;
}

Status SumModulo(std::uint64_t, std::uint64_t, std::uint64_t*) { return NotBuilt(); }
Status Allocate(std::size_t, void**) { return NotBuilt(); }
void Free(void*) {}
Status CopyToDevice(void*, const void*, std::size_t) { return NotBuilt(); }
Status CopyToHost(void*, const void*, std::size_t) { return NotBuilt(); }
Status Memset(void*, std::uint8_t, std::size_t) { return NotBuilt(); }
Status CopyOnDevice(void*, const void*, std::size_t) { return NotBuilt(); }
Status FreeMemory(std::uint64_t*, std::uint64_t*) { return NotBuilt(); }
Status ColumnSums(const float*, const float*, std::size_t, std::size_t, std::size_t, double*) {
  return NotBuilt();
}
Status FmaBurn(int, int, double*) { return NotBuilt(); }
Status CopyBurn(const float*, float*, std::size_t, int, double*) { return NotBuilt(); }
int MultiprocessorCount() { return 0; }
struct GemmBurner {};
Status CreateGemmBurner(int, GemmBurner**) { return NotBuilt(); }
Status RunGemmBurner(GemmBurner*, int, double*) { return NotBuilt(); }
void DestroyGemmBurner(GemmBurner*) {}
Status Stage1Pass(const float*, const float*, std::size_t, std::size_t, const float*, double*,
                  double*) {
  return NotBuilt();
}
Status CandidateCorrelations(const float*, std::size_t, const float*, std::size_t, std::size_t,
                             float*, float*) {
  return NotBuilt();
}
Status FoldGrams(const float*, std::size_t, std::size_t, const float*, std::size_t, bool,
                 const float*, int, float*, double*) {
  return NotBuilt();
}
Status ScoreSubsets(const unsigned char*, int, int, const float*, float*, float*) {
  return NotBuilt();
}
Status GenerateColumns(std::uint64_t, const std::int32_t*, const std::uint32_t*, std::size_t,
                       std::size_t, float*) {
  return NotBuilt();
}
Status GenerateTarget(std::uint64_t, const std::uint32_t*, std::size_t, std::size_t, double,
                      float*) {
  return NotBuilt();
}

}  // namespace firedrill::gpu::cuda
