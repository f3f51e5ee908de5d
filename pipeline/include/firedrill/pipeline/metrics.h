// The pipeline's metrics, built from the contract list (contract.h) with
// prometheus-cpp: one registry, served whole on /metrics and, for the GPU
// metrics alone, on the GPU exporter listener.
//
// Thread-safety: metric updates and Serialize may run concurrently.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace firedrill::pipeline {

class PipelineMetrics {
 public:
  PipelineMetrics();

  // The series of a contract metric with these labels (created on first
  // use). Asking for a name that is not in the contract, or for the wrong
  // type, is a programming error and throws std::logic_error.
  prometheus::Gauge& Gauge(const std::string& name, const prometheus::Labels& labels = {});
  prometheus::Counter& Counter(const std::string& name, const prometheus::Labels& labels = {});
  prometheus::Histogram& Histogram(const std::string& name, const prometheus::Labels& labels = {});

  // Prometheus text exposition format (version 0.0.4).
  std::string Serialize() const;
  std::string SerializeGpuOnly() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters_;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> histograms_;
};

}  // namespace firedrill::pipeline
