// The part of the device layer compiled by nvcc. Without CUDA in the build,
// cpu_only.cc supplies these functions, Built() is false and the rest fail
// with kUnimplemented. Pointers passed here are device pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "firedrill/core/status.h"
#include "firedrill/gpu/device.h"

namespace firedrill::gpu::cuda {

bool Built();
// Fills `info` for device 0 and returns true, or returns false with `why`
// (no driver, no device, ...). Never aborts.
bool Probe(DeviceInfo* info, std::string* why);
// Sum over i < count of (i % modulus), computed on the device.
Status SumModulo(std::uint64_t count, std::uint64_t modulus, std::uint64_t* sum);

Status Allocate(std::size_t bytes, void** pointer);
void Free(void* pointer);
Status CopyToDevice(void* device, const void* host, std::size_t bytes);
Status CopyToHost(void* host, const void* device, std::size_t bytes);
Status Memset(void* device, std::uint8_t byte, std::size_t bytes);
Status CopyOnDevice(void* destination, const void* source, std::size_t bytes);  // waits
Status FreeMemory(std::uint64_t* free_bytes, std::uint64_t* total_bytes);

// Raw shifted sums over the first `rows` values of each column (columns are
// `stride` floats apart): out[4*f + 0..3] = sum(x - x0), sum((x - x0)^2),
// sum((x - x0) * (y - y0)), x0, where x0 and y0 are the first values of the
// column and of y. `out` holds 4 * columns doubles on the device.
Status ColumnSums(const float* data, const float* target, std::size_t rows, std::size_t stride,
                  std::size_t columns, double* out);

// One launch of `blocks` x 256 threads, each running `iterations` rounds of
// 128 FMAs; returns its time in seconds.
Status FmaBurn(int blocks, int iterations, double* seconds);
// One copy of `count` floats from `source` to `destination` on `blocks` blocks.
Status CopyBurn(const float* source, float* destination, std::size_t count, int blocks,
                double* seconds);
int MultiprocessorCount();

// A tensor-core burn: n x n BF16 matrix products with FP32 accumulation
// through cuBLAS (loaded with dlopen; kUnavailable when it cannot be).
struct GemmBurner;
Status CreateGemmBurner(int n, GemmBurner** burner);
// Runs `repeats` products and returns their time in seconds.
Status RunGemmBurner(GemmBurner* burner, int repeats, double* seconds);
void DestroyGemmBurner(GemmBurner* burner);

// Stage 1's single pass (see stage1_math.h): the ColumnSums of every column
// into `sums` and its mutual information with the target into
// `mutual_information`. `bins` holds columns + 1 lower edges, then columns + 1
// inverse bin widths (the last of each for the target). All device pointers.
Status Stage1Pass(const float* data, const float* target, std::size_t rows, std::size_t columns,
                  const float* bins, double* sums, double* mutual_information);
// `candidates` holds `count` column indices, then `count` means and `count`
// inverse standard deviations (as floats, bit-cast for the indices). Writes
// the first `rows` standardized values of each candidate column to `z`
// (column-major) and z^T z / rows to `gram` (count x count).
Status CandidateCorrelations(const float* data, std::size_t samples, const float* candidates,
                             std::size_t count, std::size_t rows, float* z, float* gram);

// Stages 2 and 3: builds the design matrix over the first `rows` rows (see
// BuildDesignKernel; columns are `stride` floats apart; `candidates` as for
// CandidateCorrelations) into `design` (width x rows, width =
// count * (expand ? 2 : 1) + 2) and writes each fold's design^T design, in
// double, to `grams` (folds x width x width). Folds are contiguous row ranges.
Status FoldGrams(const float* data, std::size_t stride, std::size_t rows, const float* candidates,
                 std::size_t count, bool expand, const float* target, int folds, float* design,
                 double* grams);

// Stage 2: for each of `batch` subsets, given as masks of `n` bytes, its
// descriptor (stage2_math.h) into `descriptors` (batch x 8) and the
// metamodel's score into `scores`. `inputs` holds the n linear signals, the
// n nonlinear signals, the n x n correlations, then the metamodel's weights.
Status ScoreSubsets(const unsigned char* masks, int n, int batch, const float* inputs,
                    float* descriptors, float* scores);

// The dataset generator (see dataset_math.h). Arrays named *_host are host
// arrays of `features` (or `informative`) entries; outputs are device pointers.
Status GenerateColumns(std::uint64_t seed, const std::int32_t* roles_host,
                       const std::uint32_t* sources_host, std::size_t features, std::size_t samples,
                       float* data);
Status GenerateTarget(std::uint64_t seed, const std::uint32_t* informative_host,
                      std::size_t informative, std::size_t samples, double noise_scale,
                      float* target);

}  // namespace firedrill::gpu::cuda
