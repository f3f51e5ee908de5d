// Stage 2's per-subset math, shared by the CUDA kernel and the CPU twin: the
// descriptor of a feature subset and the metamodel's forward pass on it.
#pragma once

#include "dataset_math.h"  // FD_HOST_DEVICE

namespace firedrill::gpu::stage2_math {

constexpr int kDescriptorSize = 8;
constexpr int kHidden = 16;
// W1 (kHidden x kDescriptorSize, row-major), b1, w2, b2.
constexpr int kWeightCount = kHidden * kDescriptorSize + kHidden + kHidden + 1;
constexpr int kMaxSubset = 64;

// The candidate indices set in mask[0..n), at most kMaxSubset of them.
FD_HOST_DEVICE inline int Members(const unsigned char* mask, int n, int* members) {
  int size = 0;
  for (int i = 0; i < n && size < kMaxSubset; ++i) {
    if (mask[i]) members[size++] = i;
  }
  return size;
}

// A subset described by numbers that mean the same on any dataset, so one
// metamodel serves every job: its size; the signal its members carry
// (`linear` = squared correlation with the target, `nonlinear` = the
// information coefficient from mutual information), in total and net of each
// member's strongest redundancy with another member; and that redundancy.
// `correlation` is the n x n correlation matrix among the candidates.
FD_HOST_DEVICE inline void Describe(const int* members, int size, const float* linear,
                                    const float* nonlinear, const float* correlation, int n,
                                    float* x) {
  float sum_linear = 0, sum_nonlinear = 0, unique_linear = 0, unique_nonlinear = 0;
  float pair_sum = 0, pair_max = 0;
  for (int a = 0; a < size; ++a) {
    const int i = members[a];
    float redundancy = 0;
    for (int b = 0; b < size; ++b) {
      if (b == a) continue;
      const float c = correlation[i * n + members[b]];
      const float square = c * c;
      redundancy = square > redundancy ? square : redundancy;
      if (b > a) {
        const float magnitude = c < 0 ? -c : c;
        pair_sum += magnitude;
        pair_max = magnitude > pair_max ? magnitude : pair_max;
      }
    }
    sum_linear += linear[i];
    sum_nonlinear += nonlinear[i];
    unique_linear += linear[i] * (1.0f - redundancy);
    unique_nonlinear += nonlinear[i] * (1.0f - redundancy);
  }
  const float scaled_size = static_cast<float>(size) / 32.0f;
  const int pairs = size * (size - 1) / 2;
  x[0] = scaled_size;
  x[1] = sum_linear;
  x[2] = sum_nonlinear;
  x[3] = unique_linear;
  x[4] = unique_nonlinear;
  x[5] = pairs > 0 ? pair_sum / static_cast<float>(pairs) : 0.0f;
  x[6] = pair_max;
  x[7] = scaled_size * scaled_size;
}

// One hidden ReLU layer, one linear output: the predicted cross-validated R^2.
FD_HOST_DEVICE inline float Forward(const float* weights, const float* x) {
  const float* w1 = weights;
  const float* b1 = w1 + kHidden * kDescriptorSize;
  const float* w2 = b1 + kHidden;
  float out = w2[kHidden];
  for (int k = 0; k < kHidden; ++k) {
    float h = b1[k];
    for (int d = 0; d < kDescriptorSize; ++d) h += w1[k * kDescriptorSize + d] * x[d];
    out += w2[k] * (h > 0 ? h : 0.0f);
  }
  return out;
}

}  // namespace firedrill::gpu::stage2_math
