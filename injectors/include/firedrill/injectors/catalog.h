// The injector catalogue: every fault kind Firedrill can inject, with the
// targets it works on, how faithful it is, and its parameters. The scenario
// validator builds the `inject:` format from this list, so a new injector
// becomes valid in scenario files, the JSON Schema and the docs by being
// added here.
//
// Immutable after first use; thread-safe to read.
#pragma once

#include <string>
#include <vector>

#include "firedrill/core/spec.h"

namespace firedrill::injectors {

// What an injector can act on.
enum class TargetKind {
  kEmbeddedPipeline,  // the hsof-pipeline Firedrill starts (Faults service on)
  kLocalProcess,      // any process Firedrill started or was given a pid of
  kTcpService,        // any loopback TCP service (through a proxy)
  kGpu,               // the device itself
  kHost,              // this machine's CPU, memory or a drill-owned filesystem
};

// How real the fault is.
enum class Fidelity {
  kRealResource,      // real pressure on a real resource
  kInProcessHook,     // a lease-bound hook inside the target (Faults service)
  kTelemetryOverlay,  // reported values changed, with real contention beside them
  kSimulatedDevice,   // the simulated device's model is changed
};

std::string_view TargetKindName(TargetKind kind);
std::string_view FidelityName(Fidelity fidelity);

struct InjectorInfo {
  std::string kind;  // "gpu-memory-hog"
  std::string summary;
  std::vector<TargetKind> targets;
  std::vector<Fidelity> fidelities;
  std::vector<spec::Field> parameters;
  // Each group names parameters of which exactly one must be given.
  std::vector<std::vector<std::string>> exactly_one_of = {};
};

const std::vector<InjectorInfo>& Catalog();
const InjectorInfo* FindInjector(std::string_view kind);

}  // namespace firedrill::injectors
