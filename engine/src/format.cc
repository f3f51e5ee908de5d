#include "firedrill/engine/format.h"

#include <cstdio>

#include "firedrill/core/text.h"

#include "firedrill/injectors/catalog.h"
#include "firedrill/pipeline/contract.h"
#include "firedrill/reports/formats.h"
#include "firedrill/workload/format.h"

namespace firedrill::engine {

using namespace spec;  // NOLINT: the formats read as tables of fields

namespace {


SchemaPtr EventRef(std::string description) {
  return String(std::move(description) +
                " (an event: start, PHASE.start/.end, INJECTION.start/.end, recovery.start/.end, "
                "alert.NAME.firing/.resolved)");
}

SchemaPtr ChecksSchema() {
  static const SchemaPtr schema = Object(
      {Optional("within", DurationValue("how long the checks may take to hold")),
       Required("checks", List(Union("check", CheckKinds(), "a condition on the target")))},
      "conditions that must all hold");
  return schema;
}

SchemaPtr InjectorUnion() {
  std::vector<Variant> variants;
  for (const injectors::InjectorInfo& info : injectors::Catalog()) {
    variants.push_back(Variant{info.kind, info.summary, info.parameters, info.exactly_one_of});
  }
  return Union("injector", std::move(variants), "the fault to inject");
}

SchemaPtr MetadataSchema(bool runbook) {
  std::vector<Field> fields = {
      Required("name", String("short name, unique in its folder")),
      Optional("description", String("what this drill or runbook is about")),
      Optional("tags", List(String(), "free-form labels for selecting drills")),
  };
  if (runbook) {
    fields.push_back(Optional("alert", String("the alert this runbook answers")));
    fields.push_back(Optional("source", String("the human runbook this automates (path or URL)")));
  } else {
    fields.push_back(Optional("runbook", String("the HSOF runbook this drill exercises")));
  }
  return Object(std::move(fields), "who this is and what it is for");
}

}  // namespace

const std::vector<Variant>& CheckKinds() {
  static const std::vector<Variant> kinds = {
      {"health", "the target's /health reports a status",
       {Optional("status", Enum(pipeline::HealthStatuses(), "expected status (HEALTHY by default)")),
        Optional("component", Enum(pipeline::HealthComponents(), "one component instead of the overall status"))}},
      {"noAlertsFiring", "no alert from the rules files is firing", {}},
      {"alertNotFiring", "one alert is not firing",
       {Required("alert", String("alert name from the rules files"))}},
      {"loadFlowing", "jobs are completing",
       {Optional("minRate", RateValue("lowest completion rate that counts as flowing"))}},
      {"metric", "a PromQL expression compared with a value",
       {Required("query", String("PromQL expression with a single result")),
        Required("op", Enum({"<", "<=", ">", ">=", "==", "!="}, "comparison")),
        Required("value", Number("value to compare with"))}},
      {"jobsComplete", "every accepted job has finished", {}},
      {"jobsRetained",
       "the pipeline still holds, completed under the same key, every job that finished more than recoveryPoint "
       "before the first fault began (what a restore from backup must bring back)",
       {Optional("recoveryPoint", DurationValue("how much work before the fault may be lost (0 by default)"))}},
  };
  return kinds;
}

const std::vector<Variant>& ExpectationKinds() {
  static const std::vector<Variant> kinds = {
      {"alertFires", "an alert fires within a time of an event",
       {Required("alert", String("alert name")), Required("within", DurationValue("deadline")),
        Required("after", EventRef("the event the deadline counts from"))}},
      {"alertNeverFires", "an alert never fires (during a phase, or the whole drill)",
       {Required("alert", String("alert name")), Optional("during", String("phase name"))}},
      {"alertResolves", "a firing alert resolves within a time of an event",
       {Required("alert", String("alert name")), Required("within", DurationValue("deadline")),
        Optional("after", EventRef("the event the deadline counts from (recovery.end by default)"))}},
      {"healthy", "health returns to a status within a time of an event",
       {Required("within", DurationValue("deadline")),
        Optional("after", EventRef("the event the deadline counts from (recovery.end by default)")),
        Optional("status", Enum(pipeline::HealthStatuses(), "status to reach (HEALTHY by default)"))}},
      {"latency", "a latency percentile stays under a bound during a phase",
       {Optional("phase", String("phase name (every phase by default)")),
        Required("percentile", Number("percentile, e.g. 99", 0, 100)),
        Required("max", DurationValue("bound"))}},
      {"errorRate", "the share of failed jobs stays under a bound during a phase",
       {Optional("phase", String("phase name (every phase by default)")),
        Required("max", RatioValue("highest share of failed jobs"))}},
      {"throughput", "completed jobs per unit of time stay over a bound during a phase",
       {Optional("phase", String("phase name (every phase by default)")),
        Required("min", RateValue("lowest completion rate"))}},
      {"lostJobs", "accepted jobs that never completed or failed, from the job ledger",
       {Optional("max", Integer("most jobs that may be lost (0 by default)", 0))}},
      {"quality", "selection quality of completed jobs",
       {Required("min", Number("lowest mean quality score", 0, 1)),
        Optional("phase", String("only the jobs this phase sent (every phase's by default)"))}},
      {"timeToDetect", "time from an event to the alert firing",
       {Required("alert", String("alert name")),
        Required("after", EventRef("the event detection counts from")),
        Required("max", DurationValue("bound"))}},
      {"timeToRecover", "time from the alert firing to it resolving",
       {Required("alert", String("alert name")), Required("max", DurationValue("bound"))}},
  };
  return kinds;
}

const std::vector<Variant>& GuardrailKinds() {
  static const std::vector<Variant> kinds = {
      {"alertFires", "abort when this alert fires", {Required("alert", String("alert name"))}},
      {"errorRate", "abort when the share of failed jobs stays over a bound",
       {Required("max", RatioValue("bound")), Optional("for", DurationValue("how long it must last"))}},
      {"latency", "abort when a latency percentile stays over a bound",
       {Required("percentile", Number("percentile", 0, 100)), Required("max", DurationValue("bound")),
        Optional("for", DurationValue("how long it must last"))}},
      {"health", "abort when health reaches a status",
       {Required("status", Enum(pipeline::HealthStatuses(), "status that aborts")),
        Optional("for", DurationValue("how long it must last"))}},
  };
  return kinds;
}

const std::vector<Variant>& RunbookActions() {
  static const std::vector<Variant> actions = {
      {"admin.scaleWorkers", "set the number of job workers",
       {Required("workers", Integer("worker count", 0, 64))}},
      {"admin.setConfig", "set a configuration key",
       {Required("key", Enum(pipeline::ConfigKeyNames(), "configuration key")),
        Required("value", Scalar("new value"))}},
      {"admin.restartStage", "restart a pipeline stage; its jobs are retried",
       {Required("stage", Integer("stage", 1, 3))}},
      {"admin.drain", "stop taking new jobs and let running ones finish", {}},
      {"admin.resume", "take jobs again after a drain", {}},
      {"admin.triggerBackup", "take a backup now", {}},
      {"admin.restore", "restore the job database from a backup",
       {Optional("backup", String("backup name (latest by default)"))}},
      {"admin.reloadMetamodel", "reload the metamodel from its last good checkpoint", {}},
      {"admin.cleanup", "delete old artifacts and prune backups by retention",
       {Optional("olderThan", DurationValue("delete artifacts older than this"))}},
      {"restartTarget", "restart the target process (embedded target only)",
       {Optional("drained", Boolean("start it draining, accepting no job until admin.resume (restore a backup first)"))}},
      {"http", "send an HTTP request",
       {Required("url", String("a path on the target's HTTP API (/health), or a full http:// URL")),
        Optional("method", Enum({"GET", "POST", "PUT", "DELETE"}, "HTTP method (GET by default)")),
        Optional("body", String("request body")),
        Optional("expectStatus", Integer("status the step requires (2xx by default)", 100, 599))}},
      {"exec", "run a command from an argument list, with no shell",
       {Required("argv", List(String(), "program and arguments")),
        Optional("expectExit", Integer("exit code the step requires (0 by default)", 0, 255))}},
      {"wait", "wait a while", {Required("duration", DurationValue("how long"))}},
      {"prompt", "ask the person running the drill to act, and record when they confirm; unattended in CI",
       {Required("message", String("what to do"))}},
  };
  return actions;
}

SchemaPtr RunbookSchema() {
  static const SchemaPtr schema = Object(
      {Required("apiVersion", Enum({std::string(kApiVersion)}, "format version")),
       Required("kind", Enum({"Runbook"}, "file kind")),
       Required("metadata", MetadataSchema(true)),
       Required("steps", List(Union("action", RunbookActions(), "one recovery step",
                                    {Optional("name", String("step name, unique in the runbook")),
                                     Optional("timeout", DurationValue("how long the step may take (1m by default)")),
                                     Optional("continueOnError", Boolean("go on when this step fails"))},
                                    "action"),
                              "steps run in order", "name")),
       Optional("verify", ChecksSchema())},
      "a recovery as typed steps, and how to tell it worked");
  return schema;
}

// workload: in a scenario, and the body of a Workload file.
SchemaPtr WorkloadSchema() {
  static const SchemaPtr schema = [] {
    const auto phase = Object(
        {Required("name", String("phase name, unique among phases and injections")),
         Required("duration", DurationValue("how long the phase lasts")),
         Required("arrival", Union("arrival process", workload::ArrivalProcesses(), "how jobs arrive")),
         Optional("maxInFlight", Integer("cap on jobs in flight (open loop)", 1, 1'000'000)),
         Optional("stress", Object({Required("mode", Enum({"compute", "bandwidth", "memory"}, "what to stress")),
                                    Required("intensity", RatioValue("share of the device"))},
                                   "GPU stress kernels run during this phase"))},
        "a stretch of load");
    return Object(
        {Required("phases", List(phase, "phases run back to back", "name")),
         Optional("mix", List(workload::JobShapeSchema(), "kinds of job, chosen by weight"))},
        "the load before, during and after the faults");
  }();
  return schema;
}

SchemaPtr WorkloadFileSchema() {
  static const SchemaPtr schema = Object(
      {Required("apiVersion", Enum({std::string(kApiVersion)}, "format version")),
       Required("kind", Enum({"Workload"}, "file kind")),
       Required("metadata", MetadataSchema(false)),
       Optional("seed", Integer("seed for every random source (printed in the summary)", 0)),
       Required("workload", WorkloadSchema())},
      "a workload on its own, for firedrill load");
  return schema;
}

SchemaPtr ScenarioSchema() {
  static const SchemaPtr schema = [] {
    const auto parameter = Object(
        {Required("default", Scalar("value used unless -p name=value overrides it")),
         Optional("description", String("what the parameter controls")),
         Optional("type", Enum({"string", "integer", "number", "boolean", "duration", "rate", "size", "ratio"},
                               "checks the default and any override"))},
        "a value the scenario reads as ${name}");
    const auto target = Union(
        "target",
        {{"embedded", "Firedrill starts hsof-pipeline in a fresh data directory on free loopback ports",
          {Optional("device", Enum({"auto", "cuda", "cpu", "simulated"}, "device backend (auto by default)")),
           Optional("workers", Integer("job workers", 1, 4096)),
           Optional("gpuMemoryFraction", RatioValue("GPU_MEMORY_FRACTION at start")),
           Optional("maxConcurrentBatches", Integer("MAX_CONCURRENT_BATCHES at start", 1, 4096)),
           Optional("backupInterval", DurationValue("BACKUP_INTERVAL at start: time between scheduled backups (1h by default)"))}},
         {"remote", "a pipeline that is already running",
          {Required("http", String("base URL of the HTTP API, e.g. http://127.0.0.1:8080")),
           Optional("grpc", String("host:port of the gRPC API")),
           Optional("gpuExporter", String("URL of the GPU exporter's /metrics"))}}},
        "the pipeline to drill");
    const auto monitoring = Union(
        "monitoring",
        {{"embedded", "Firedrill scrapes the target and evaluates the rules itself (no servers needed)", {}},
         {"managed", "Firedrill starts a real Prometheus and Alertmanager for the drill", {}},
         {"external", "a Prometheus (and Alertmanager) that is already running",
          {Required("prometheus", String("Prometheus base URL")),
           Optional("alertmanager", String("Alertmanager base URL"))}}},
        "how alerts are watched",
        {Optional("rules", List(String(), "Prometheus rule files, relative to this file")),
         Optional("scrapeInterval", DurationValue("scrape interval (15s by default)")),
         Optional("evaluationInterval", DurationValue("rule evaluation interval (15s by default)"))});
    const auto injection = Object(
        {Required("name", String("injection name, unique among phases and injections")),
         Required("at", DurationValue("offset from the drill's start")),
         Optional("duration", DurationValue("how long the fault lasts (with until: the longest it may last)")),
         Optional("until", EventRef("end the fault at this event")),
         Required("inject", InjectorUnion())},
        "one fault on the timeline");
    const auto recovery = Object(
        {Required("runbook", String("runbook file, relative to this file")),
         Required("trigger", Object({Optional("alert", String("run when this alert fires")),
                                     Optional("at", DurationValue("run at this offset from the start"))},
                                    "when the runbook runs", {{"alert", "at"}}))},
        "the runbook to run and when");
    return Object(
        {Required("apiVersion", Enum({std::string(kApiVersion)}, "format version")),
         Required("kind", Enum({"Scenario"}, "file kind")),
         Required("metadata", MetadataSchema(false)),
         Optional("parameters", Map(parameter, "named values, overridable with -p name=value")),
         Optional("seed", Integer("seed for every random source (printed in the report)", 0)),
         Optional("timeScale", Number("compress every duration by this factor (1 = real time; 20 runs 20x faster)",
                                      0.001, 10000)),
         Required("target", target),
         Optional("monitoring", monitoring),
         Required("workload", WorkloadSchema()),
         Optional("steadyState", ChecksSchema()),
         Optional("timeline", List(injection, "faults to inject", "name")),
         Optional("recovery", recovery),
         Optional("expectations", List(Union("expectation", ExpectationKinds(), "one verdict of the drill",
                                             {Optional("name", String("expectation name, unique"))}),
                                       "what must hold for the drill to pass", "name")),
         Optional("guardrails", List(Union("guardrail", GuardrailKinds(), "aborts the drill when it trips"),
                                     "conditions that abort the drill")),
         Optional("reports", List(Enum(reports::FormatNames(), "report format"), "reports to write"))},
        "a drill: load, faults, the runbook, and what must hold");
  }();
  return schema;
}

namespace {

std::string TypeName(const Schema& schema) {
  const auto range = [&](std::string base) {
    char bounds[64] = "";
    if (schema.minimum && schema.maximum) std::snprintf(bounds, sizeof(bounds), " (%g..%g)", *schema.minimum, *schema.maximum);
    else if (schema.minimum) std::snprintf(bounds, sizeof(bounds), " (>= %g)", *schema.minimum);
    else if (schema.maximum) std::snprintf(bounds, sizeof(bounds), " (<= %g)", *schema.maximum);
    return base + bounds;
  };
  switch (schema.type) {
    case Type::kString: return "string";
    case Type::kInteger: return range("integer");
    case Type::kNumber: return range("number");
    case Type::kBoolean: return "boolean";
    case Type::kDuration: return "duration";
    case Type::kRate: return "rate";
    case Type::kSize: return "size";
    case Type::kRatio: return "ratio";
    case Type::kScalar: return "any scalar";
    case Type::kEnum: {
      if (schema.enum_values.size() > 6) return "name (see description)";
      std::string out = "one of ";
      for (std::size_t i = 0; i < schema.enum_values.size(); ++i) out += (i ? ", `" : "`") + schema.enum_values[i] + "`";
      return out;
    }
    case Type::kList: return "list of " + TypeName(*schema.items);
    case Type::kMap: return "mapping of names to " + TypeName(*schema.items);
    case Type::kObject: return "mapping";
    case Type::kUnion: return "mapping with `" + schema.discriminator + "`";
  }
  return "value";
}

void FieldTable(std::string& out, const std::vector<Field>& fields) {
  if (fields.empty()) {
    out += "No parameters.\n\n";
    return;
  }
  out += "| field | type | required | meaning |\n|---|---|---|---|\n";
  for (const Field& field : fields) {
    std::string description = field.description;
    if (field.schema->type == Type::kEnum && field.schema->enum_values.size() > 6) {
      description += ": " + JoinNames(field.schema->enum_values);
    }
    out += "| `" + field.name + "` | " + TypeName(*field.schema) + " | " + (field.required ? "yes" : "no") + " | " +
           description + " |\n";
  }
  out += "\n";
}

void VariantSection(std::string& out, const std::string& title, const std::string& key,
                    const std::vector<Variant>& variants, const std::string& intro) {
  out += "## " + title + "\n\n" + intro + "\n\n";
  for (const Variant& variant : variants) {
    out += "### `" + key + ": " + variant.kind + "`\n\n" + variant.description + ".\n\n";
    FieldTable(out, variant.fields);
  }
}

}  // namespace

std::string ReferenceMarkdown() {
  std::string out =
      "# Scenario and runbook reference\n\n"
      "Generated by `firedrill reference` from the same descriptions the validator uses; "
      "a test fails when this file is stale. Units: durations `250ms` `30s` `5m` `1h30m`, "
      "rates `20/s` `3/m`, sizes `512MiB` `4GiB`, ratios `95%` or `0.95`. Any scalar may be a "
      "`${parameter}` reference.\n\n"
      "Status in this release: `firedrill run` executes everything below against an embedded or remote "
      "target with embedded, managed or external monitoring (docs/DRILLS.md; external at time scale 1 "
      "only), except GPU `stress` in a phase, `process-kill`'s `destroyData`, `gpu-memory-hog`'s `step`, "
      "and GPU indexes other than 0; each is refused with a clear message before the drill starts.\n\n";
  out += "## Injectors (`timeline[].inject`)\n\n| kind | acts on | fidelity | what it does |\n|---|---|---|---|\n";
  for (const injectors::InjectorInfo& info : injectors::Catalog()) {
    std::vector<std::string> targets;
    for (auto target : info.targets) targets.emplace_back(injectors::TargetKindName(target));
    std::vector<std::string> fidelities;
    for (auto fidelity : info.fidelities) fidelities.emplace_back(injectors::FidelityName(fidelity));
    out += "| `" + info.kind + "` | " + JoinNames(targets) + " | " + JoinNames(fidelities) + " | " + info.summary + " |\n";
  }
  out += "\n";
  for (const injectors::InjectorInfo& info : injectors::Catalog()) {
    out += "### `kind: " + info.kind + "`\n\n" + info.summary + ".\n\n";
    FieldTable(out, info.parameters);
  }
  VariantSection(out, "Arrival processes (`workload.phases[].arrival`)", "kind", workload::ArrivalProcesses(),
                 "How jobs arrive during a phase.");
  out += "## Job mix (`workload.mix[]`)\n\n";
  FieldTable(out, workload::JobShapeSchema()->fields);
  VariantSection(out, "Checks (`steadyState.checks[]`, runbook `verify.checks[]`)", "kind", CheckKinds(),
                 "Conditions on the target; all must hold within `within`.");
  VariantSection(out, "Expectations (`expectations[]`)", "kind", ExpectationKinds(),
                 "Each expectation is one verdict (one JUnit test case). Optional `name`.");
  VariantSection(out, "Guardrails (`guardrails[]`)", "kind", GuardrailKinds(),
                 "Any guardrail that trips aborts the drill: every fault is undone and the run exits 3.");
  VariantSection(out, "Runbook actions (`steps[]`)", "action", RunbookActions(),
                 "Every step also takes `name`, `timeout` (default 1m) and `continueOnError`.");
  return out;
}

nlohmann::ordered_json JsonSchema(std::string_view which) {
  using Json = nlohmann::ordered_json;
  Json out;
  out["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  if (which == "scenario") {
    out["title"] = "Firedrill scenario (firedrill/v1)";
    out.update(ToJsonSchema(*ScenarioSchema()));
    return out;
  }
  if (which == "workload") {
    out["title"] = "Firedrill workload (firedrill/v1)";
    out.update(ToJsonSchema(*WorkloadFileSchema()));
    return out;
  }
  if (which == "runbook") {
    out["title"] = "Firedrill runbook (firedrill/v1)";
    out.update(ToJsonSchema(*RunbookSchema()));
    return out;
  }
  out["title"] = "Firedrill scenario, runbook and workload files (firedrill/v1)";
  out["type"] = "object";
  out["required"] = {"apiVersion", "kind"};
  out["properties"] = {{"kind", {{"enum", {"Scenario", "Runbook", "Workload"}}}}};
  out["$defs"] = {{"scenario", ToJsonSchema(*ScenarioSchema())},
                  {"runbook", ToJsonSchema(*RunbookSchema())},
                  {"workload", ToJsonSchema(*WorkloadFileSchema())}};
  out["if"] = {{"properties", {{"kind", {{"const", "Runbook"}}}}}};
  out["then"] = {{"$ref", "#/$defs/runbook"}};
  out["else"] = {{"if", {{"properties", {{"kind", {{"const", "Workload"}}}}}}},
                 {"then", {{"$ref", "#/$defs/workload"}}},
                 {"else", {{"$ref", "#/$defs/scenario"}}}};
  return out;
}

}  // namespace firedrill::engine
