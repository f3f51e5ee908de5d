#include "firedrill/injectors/fault_metrics.h"

namespace firedrill::injectors {

FaultMetrics::FaultMetrics(prometheus::Registry& registry)
    : active_(prometheus::BuildGauge()
                  .Name("firedrill_fault_active")
                  .Help("Faults of this kind Firedrill has running on this target")
                  .Register(registry)),
      started_(prometheus::BuildCounter()
                   .Name("firedrill_faults_started_total")
                   .Help("Faults Firedrill began, journalled before they started")
                   .Register(registry)),
      ended_(prometheus::BuildCounter()
                 .Name("firedrill_faults_ended_total")
                 .Help("Faults that ended, by how they ended")
                 .Register(registry)) {}

void FaultMetrics::Record(const FaultRecord& record) {
  // Family::Add returns the same series for the same labels.
  prometheus::Gauge& active = active_.Add({{"kind", record.kind}, {"target", record.target}});
  if (record.ended_ms == 0) {
    active.Increment();
    started_.Add({{"kind", record.kind}}).Increment();
    return;
  }
  active.Decrement();
  ended_.Add({{"kind", record.kind}, {"outcome", OutcomeLabel(record.outcome)}}).Increment();
}

std::string OutcomeLabel(const std::string& outcome) {
  const std::size_t end = outcome.find_first_of(" :(");
  return outcome.substr(0, end);
}

}  // namespace firedrill::injectors
