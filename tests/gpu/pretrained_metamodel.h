// One pretrained metamodel per test binary: pretraining takes a second or two.
#pragma once

#include <gtest/gtest.h>

#include "firedrill/gpu/stage2.h"

namespace firedrill::gpu {

inline const Metamodel& Pretrained() {
  static const Metamodel model = [] {
    auto trained = PretrainMetamodel(Backend::kCpu, 7);
    EXPECT_TRUE(trained.ok()) << trained.status();
    return trained.ok() ? *trained : Metamodel::Initial(7);
  }();
  return model;
}

}  // namespace firedrill::gpu
