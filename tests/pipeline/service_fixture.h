// The pipeline service in process for tests: a fresh data directory, a
// simulated clock (ticks run when a test advances it) and a captured log.
// Derived fixtures put a transport in front and reset it in StopTransport.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "firedrill/pipeline/service.h"

namespace firedrill::pipeline {

class ServiceFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/firedrill-pipeline-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    options_.data_dir = pattern;
    options_.workers = 2;
    options_.host_device_memory = std::uint64_t{1} << 30;
  }
  void TearDown() override {
    StopTransport();  // before the service it calls into
    service_.reset();
    std::filesystem::remove_all(options_.data_dir);
  }
  virtual void StopTransport() {}

  void StartService() {
    auto service = PipelineService::Start(options_, clock_, logger_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = std::move(service).value();
  }

  SimulatedClock clock_;
  std::ostringstream log_;
  Logger logger_{log_, clock_};
  ServiceOptions options_;
  std::unique_ptr<PipelineService> service_;
};

}  // namespace firedrill::pipeline
