// Firedrill's own fault metrics, fed by the journal's listener, so that
// dashboards can shade fault windows:
//   firedrill_fault_active{kind,target}          faults of that kind on that target now
//   firedrill_faults_started_total{kind}         faults begun
//   firedrill_faults_ended_total{kind,outcome}   faults ended, by how ("stopped", "recovered", "failed", ...)
//
// Thread-safety: Record may be called from any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "firedrill/injectors/journal.h"

namespace firedrill::injectors {

class FaultMetrics {
 public:
  explicit FaultMetrics(prometheus::Registry& registry);
  // A journal row begun (ended_ms == 0) or ended. Use as the Journal's
  // listener: journal.SetListener([&](const FaultRecord& r) { metrics.Record(r); }).
  void Record(const FaultRecord& record);

 private:
  prometheus::Family<prometheus::Gauge>& active_;
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& ended_;
};

// "failed: could not ..." -> "failed": an outcome's first word, as a label
// with few values.
std::string OutcomeLabel(const std::string& outcome);

}  // namespace firedrill::injectors
