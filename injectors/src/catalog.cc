#include "firedrill/injectors/catalog.h"

#include "firedrill/pipeline/contract.h"

namespace firedrill::injectors {
namespace {

using namespace spec;  // NOLINT: the catalogue reads as a table of fields

std::vector<InjectorInfo> BuildCatalog() {
  const auto stage = Integer("pipeline stage (1 filter, 2 search, 3 evaluate)", 1, 3);
  const auto process = String("a process Firedrill knows: pipeline, gpu-exporter, or a name the scenario gave");
  const auto endpoint = Enum({"http", "grpc", "gpu-exporter"}, "which of the target's listeners");
  return {
      {"gpu-memory-hog", "holds a share of GPU memory from a separate process (noisy neighbour)",
       {TargetKind::kGpu},
       {Fidelity::kRealResource, Fidelity::kSimulatedDevice},
       {Required("share", RatioValue("share of device memory to hold")),
        Optional("device", Integer("GPU index", 0, 63)),
        Optional("step", DurationValue("ramp to the share over this long instead of at once"))}},
      {"gpu-compute-burn", "runs compute or bandwidth kernels beside the pipeline",
       {TargetKind::kGpu},
       {Fidelity::kRealResource, Fidelity::kSimulatedDevice},
       {Required("intensity", RatioValue("share of the device's time the burn keeps busy")),
        Optional("mode", Enum({"compute", "bandwidth", "mixed"}, "what the burn stresses")),
        Optional("device", Integer("GPU index", 0, 63))}},
      {"thermal", "raises GPU temperature: cooling failure in the thermal model, or telemetry overlay plus real contention on a GPU; never a clock or power change",
       {TargetKind::kGpu, TargetKind::kEmbeddedPipeline},
       {Fidelity::kSimulatedDevice, Fidelity::kTelemetryOverlay, Fidelity::kRealResource},
       {Required("temperature", Number("temperature to reach, in °C", 20, 110)),
        Optional("rampTime", DurationValue("how long the rise takes")),
        Optional("slowdown", RatioValue("throughput the pipeline's device loses while hot (its throttle)")),
        Optional("contention",
                 RatioValue("a compute burn beside the pipeline on this share of the device, the real contention of a "
                            "hot card (default: 50% when the pipeline runs on a GPU of this host, else none)"))}},
      {"stage-stall", "hangs or slows a pipeline stage",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {Required("stage", stage),
        Optional("mode", Enum({"hang", "slow"}, "hang blocks the stage; slow multiplies its time")),
        Optional("factor", Number("slow-down factor for mode slow", 1, 1000))}},
      {"error-injection", "makes a stage fail a share of jobs",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {Required("share", RatioValue("share of jobs that fail")),
        Optional("stage", stage)}},
      {"inference-delay", "delays each metamodel inference batch",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {Required("delay", DurationValue("added latency per batch")),
        Optional("jitter", DurationValue("uniform random extra delay, up to this"))}},
      {"metamodel-corruption", "adds noise to the metamodel's weights, or inverts its output",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {Optional("noise", Number("standard deviation of the noise, relative to the weights (or give invert)", 0, 100)),
        Optional("invert", Boolean("true: the model ranks subsets backwards (or give noise)"))},
       {{"noise", "invert"}}},
      {"exporter-down", "stops the GPU exporter listener from answering",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {}},
      {"database-unavailable", "cuts the pipeline's database connection",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {}},
      {"backup-target-failure", "makes writes to the backup target fail",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {}},
      {"backup-scheduler-stop", "silently stops scheduled backups, optionally ageing the last success",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {Optional("lastSuccessAge", DurationValue("report the last successful backup as this old"))}},
      {"config-fault", "sets a configuration key to a bad value",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {Required("key", Enum(pipeline::ConfigKeyNames(), "configuration key")),
        Required("value", Scalar("the bad value"))}},
      {"gpu-memory-leak", "leaks device memory inside the pipeline on every job",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {Optional("perJob", SizeValue("memory leaked per completed job (or give rate)")),
        Optional("rate", SizeValue("memory leaked per second (or give perJob)"))},
       {{"perJob", "rate"}}},
      {"feeder-stall", "stalls data loading so the GPU starves",
       {TargetKind::kEmbeddedPipeline},
       {Fidelity::kInProcessHook},
       {}},
      {"process-pause", "stops a process with SIGSTOP and resumes it with SIGCONT",
       {TargetKind::kLocalProcess},
       {Fidelity::kRealResource},
       {Required("process", process)}},
      {"process-kill", "sends a signal to a process (SIGKILL by default)",
       {TargetKind::kLocalProcess},
       {Fidelity::kRealResource},
       {Required("process", process),
        Optional("signal", Enum({"SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGABRT"}, "signal to send")),
        Optional("destroyData", Boolean("then delete the process's data directory, only one Firedrill created (the embedded pipeline's; its backups live beside it): disaster recovery drills"))}},
      {"host-memory-hog", "holds host memory at a level, within the memory Firedrill may use",
       {TargetKind::kHost},
       {Fidelity::kRealResource},
       {Required("share", RatioValue("share of the memory budget to hold")),
        Optional("limit", SizeValue("memory budget; defaults to the guardrail limit"))}},
      {"cpu-hog", "runs busy threads at a duty cycle",
       {TargetKind::kHost},
       {Fidelity::kRealResource},
       {Required("threads", Integer("busy threads", 1, 1024)),
        Optional("duty", RatioValue("share of each period a thread is busy"))}},
      {"disk-fill", "fills a size-limited area Firedrill created for the drill",
       {TargetKind::kHost},
       {Fidelity::kRealResource},
       {Required("share", RatioValue("share of the area to fill")),
        Required("areaSize", SizeValue("size of the area Firedrill creates"))}},
      {"network", "puts a TCP proxy in front of a loopback listener of the target",
       {TargetKind::kTcpService},
       {Fidelity::kRealResource},
       {Required("endpoint", endpoint),
        Optional("latency", DurationValue("added one-way delay")),
        Optional("jitter", DurationValue("uniform random extra delay, up to this")),
        Optional("bandwidth", SizeValue("bytes per second each way")),
        Optional("reset", RatioValue("share of connections reset")),
        Optional("blackhole", RatioValue("share of connections that get no answer")),
        Optional("share", RatioValue("share of connections affected at all"))}},
  };
}

}  // namespace

std::string_view TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kEmbeddedPipeline: return "embedded-pipeline";
    case TargetKind::kLocalProcess: return "local-process";
    case TargetKind::kTcpService: return "tcp-service";
    case TargetKind::kGpu: return "gpu";
    case TargetKind::kHost: return "host";
  }
  return "unknown";
}

std::string_view FidelityName(Fidelity fidelity) {
  switch (fidelity) {
    case Fidelity::kRealResource: return "real-resource";
    case Fidelity::kInProcessHook: return "in-process-hook";
    case Fidelity::kTelemetryOverlay: return "telemetry-overlay";
    case Fidelity::kSimulatedDevice: return "simulated-device";
  }
  return "unknown";
}

const std::vector<InjectorInfo>& Catalog() {
  static const std::vector<InjectorInfo> catalog = BuildCatalog();
  return catalog;
}

const InjectorInfo* FindInjector(std::string_view kind) {
  for (const InjectorInfo& info : Catalog()) {
    if (info.kind == kind) return &info;
  }
  return nullptr;
}

}  // namespace firedrill::injectors
