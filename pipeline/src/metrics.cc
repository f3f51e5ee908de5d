#include "firedrill/pipeline/metrics.h"

#include <set>
#include <sstream>
#include <stdexcept>

#include "firedrill/pipeline/contract.h"
#include "prometheus/text_serializer.h"

namespace firedrill::pipeline {
namespace {

// Buckets around what the rules compare with: the metamodel's 5 ms p95 and
// the 30 s job-latency p95.
prometheus::Histogram::BucketBoundaries Buckets(const std::string& name) {
  if (name == "hsof_metamodel_inference_latency_seconds") {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005,
            0.0075, 0.01,    0.02,   0.05,  0.1,   0.5};
  }
  if (name == "hsof_request_duration_seconds") {
    return {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 120, 300, 600};
  }
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}

template <typename T>
prometheus::Family<T>& Find(std::map<std::string, prometheus::Family<T>*>& families,
                            const std::string& name, const char* type) {
  const auto it = families.find(name);
  if (it == families.end())
    throw std::logic_error(name + " is not a " + type + " in the pipeline's metric contract");
  return *it->second;
}

}  // namespace

PipelineMetrics::PipelineMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  for (const MetricInfo& metric : Metrics()) {
    switch (metric.type) {
      case MetricType::kGauge:
        gauges_[metric.name] =
            &prometheus::BuildGauge().Name(metric.name).Help(metric.help).Register(*registry_);
        break;
      case MetricType::kCounter:
        counters_[metric.name] =
            &prometheus::BuildCounter().Name(metric.name).Help(metric.help).Register(*registry_);
        break;
      case MetricType::kHistogram:
        histograms_[metric.name] =
            &prometheus::BuildHistogram().Name(metric.name).Help(metric.help).Register(*registry_);
        break;
    }
  }
  // Unlabelled series exist from the start, at zero: a rule reading a
  // counter that has not moved yet must still find it.
  for (const MetricInfo& metric : Metrics()) {
    if (!metric.labels.empty()) continue;
    switch (metric.type) {
      case MetricType::kGauge:
        Gauge(metric.name);
        break;
      case MetricType::kCounter:
        Counter(metric.name);
        break;
      case MetricType::kHistogram:
        Histogram(metric.name);
        break;
    }
  }
}

prometheus::Gauge& PipelineMetrics::Gauge(const std::string& name,
                                          const prometheus::Labels& labels) {
  return Find(gauges_, name, "gauge").Add(labels);
}

prometheus::Counter& PipelineMetrics::Counter(const std::string& name,
                                              const prometheus::Labels& labels) {
  return Find(counters_, name, "counter").Add(labels);
}

prometheus::Histogram& PipelineMetrics::Histogram(const std::string& name,
                                                  const prometheus::Labels& labels) {
  return Find(histograms_, name, "histogram").Add(labels, Buckets(name));
}

std::string PipelineMetrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

std::string PipelineMetrics::SerializeGpuOnly() const {
  static const std::set<std::string> gpu = [] {
    std::set<std::string> names;
    for (const MetricInfo& metric : Metrics()) {
      if (metric.gpu_exporter) names.insert(metric.name);
    }
    return names;
  }();
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::erase_if(families,
                [](const prometheus::MetricFamily& family) { return !gpu.count(family.name); });
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace firedrill::pipeline
