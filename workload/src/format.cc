#include "firedrill/workload/format.h"

namespace firedrill::workload {

using namespace spec;  // NOLINT: the format reads as a table of fields

const std::vector<std::string>& JobModes() {
  static const std::vector<std::string> modes = {"fast", "balanced", "accurate"};
  return modes;
}

const std::vector<Variant>& ArrivalProcesses() {
  static const std::vector<Variant> processes = {
      {"constant", "one job every 1/rate, exactly (open loop)",
       {Required("rate", RateValue("jobs per unit of time"))}},
      {"poisson", "exponential gaps with the given mean rate (open loop)",
       {Required("rate", RateValue("mean jobs per unit of time"))}},
      {"ramp", "rate moves linearly from `from` to `to` over the phase",
       {Required("from", RateValue("rate at the start of the phase")),
        Required("to", RateValue("rate at the end of the phase"))}},
      {"steps", "a sequence of constant rates",
       {Required("steps", List(Object({Required("rate", RateValue("rate during this step")),
                                       Required("duration", DurationValue("how long the step lasts"))}),
                               "steps in order"))}},
      {"spike", "a base rate with periodic bursts",
       {Required("base", RateValue("rate between bursts")),
        Required("peak", RateValue("rate during a burst")),
        Required("every", DurationValue("time from one burst to the next")),
        Required("length", DurationValue("how long a burst lasts"))}},
      {"trace", "replays a CSV of offsets and job shapes",
       {Required("file", String("CSV file with columns offset,samples,features,informative,mode")),
        Optional("speed", Number("replay speed factor", 0.001, 1000))}},
      {"closed", "N users, each submitting after the previous job ends plus think time (closed loop)",
       {Required("users", Integer("concurrent users", 1, 100000)),
        Optional("thinkTime", DurationValue("pause between a user's jobs"))}},
  };
  return processes;
}

SchemaPtr JobShapeSchema() {
  static const SchemaPtr schema = Object(
      {Optional("weight", Number("relative weight in the mix", 0, 1e6)),
       Optional("samples", Integer("rows in the synthetic dataset", 1, 100'000'000)),
       Optional("features", Integer("columns in the synthetic dataset", 1, 10'000'000)),
       Optional("informative", Integer("planted informative features", 0, 100'000)),
       Optional("decoys", Integer("noisy copies of planted features (default 20, fewer where features are too few)", 0,
                                  10'000'000)),
       Optional("noise", Number("noise level on the target", 0, 100)),
       Optional("sizeDistribution",
                Enum({"fixed", "lognormal", "pareto"}, "how samples and features vary around the given values")),
       Optional("dataset", String("CSV file to use instead of a synthetic dataset")),
       Optional("mode", Enum(JobModes(), "pipeline mode"))},
      "one kind of job in the mix");
  return schema;
}

}  // namespace firedrill::workload
