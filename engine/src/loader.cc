#include "firedrill/engine/loader.h"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "firedrill/alerts/rule_file.h"
#include "firedrill/core/text.h"
#include "firedrill/engine/format.h"
#include "firedrill/pipeline/contract.h"
#include "firedrill/workload/arrivals.h"
#include "tree.h"
#include "validator.h"

namespace firedrill::engine {
namespace fs = std::filesystem;
namespace {

// A config-fault or setConfig value the pipeline would refuse is refused
// here, before a drill starts rather than at the fault's offset.
void CheckConfigValue(const TreeNode& owner, const std::string& path, Validator& validator) {
  const TreeNode* key = owner.Find("key");
  const TreeNode* value = owner.Find("value");
  if (key == nullptr || value == nullptr) return;
  if (Result<double> parsed = pipeline::ParseConfigValue(key->scalar, value->scalar); !parsed.ok()) {
    validator.Report(*value, path + ".value: " + parsed.status().message());
  }
}

std::string Quote(const std::string& text) { return "\"" + text + "\""; }

SourceRef RefOf(const std::string& file, const TreeNode& node) {
  return SourceRef{file, node.line, node.column};
}

Spec SpecOf(const std::string& file, const TreeNode& node, const std::string& discriminator) {
  Spec spec;
  spec.where = RefOf(file, node);
  spec.fields = TreeToJson(node);
  if (spec.fields.contains(discriminator)) {
    spec.kind = spec.fields[discriminator].get<std::string>();
    spec.fields.erase(discriminator);
  }
  return spec;
}

std::string ScalarOr(const TreeNode* node, std::string fallback = {}) {
  return node != nullptr && node->IsScalar() ? node->scalar : fallback;
}

Duration DurationOf(const TreeNode& node) { return *ParseDuration(node.scalar); }

std::string ResolvePath(const std::string& base_file, const std::string& relative) {
  const fs::path path(relative);
  if (path.is_absolute()) return path.lexically_normal().string();
  const fs::path base = fs::path(base_file).parent_path();
  return (base / path).lexically_normal().string();
}

// ---- parameters ------------------------------------------------------------

struct ParameterEntry {
  Parameter parameter;
  const TreeNode* default_node = nullptr;
  bool bad_value = false;  // already reported; uses are not reported again
};

class ParameterTable {
 public:
  ParameterTable(const std::string& file, Validator& validator)
      : file_(file), validator_(validator) {}

  void Declare(const TreeNode* parameters) {
    if (parameters == nullptr || parameters->kind != TreeNode::Kind::kMap) return;
    for (const auto& [key, body] : parameters->entries) {
      if (body.kind != TreeNode::Kind::kMap) continue;  // the schema check reports it
      ParameterEntry entry;
      entry.parameter.name = key.name;
      entry.default_node = body.Find("default");
      entry.parameter.default_value = ScalarOr(entry.default_node);
      entry.parameter.value = entry.parameter.default_value;
      entry.parameter.description = ScalarOr(body.Find("description"));
      entry.parameter.type = ScalarOr(body.Find("type"));
      if (!IsName(key.name)) {
        validator_.Report(key.line, key.column,
                          "parameters: " + Quote(key.name) +
                              " is not a valid parameter name; use letters, digits and _");
      }
      entries_.emplace(key.name, entry);
      order_.push_back(key.name);
    }
  }

  void Override(const std::vector<std::pair<std::string, std::string>>& overrides,
                Diagnostics* diagnostics) {
    for (const auto& [name, value] : overrides) {
      auto it = entries_.find(name);
      if (it == entries_.end()) {
        std::string message = "-p " + name + "=" + value + ": the scenario " + file_ +
                              " declares no parameter " + Quote(name);
        const std::string suggestion = ClosestMatch(name, order_);
        if (!suggestion.empty()) message += "; did you mean " + Quote(suggestion) + "?";
        else if (!order_.empty()) message += "; it declares: " + JoinNames(order_);
        diagnostics->push_back(Diagnostic{"command line", 0, 0, std::move(message)});
        continue;
      }
      it->second.parameter.value = value;
      it->second.parameter.overridden = true;
    }
  }

  // Checks typed parameters' defaults and overrides.
  void CheckTypes(Diagnostics* diagnostics) {
    for (const std::string& name : order_) {
      ParameterEntry& entry = entries_.at(name);
      const spec::SchemaPtr type = TypeSchema(entry.parameter.type);
      if (type == nullptr) continue;
      if (entry.default_node != nullptr && entry.default_node->IsScalar()) {
        const std::string problem = Validator::CheckScalar(entry.parameter.default_value, *type);
        if (!problem.empty()) {
          validator_.Report(*entry.default_node, "parameters." + name + ".default: " + problem);
          entry.bad_value = !entry.parameter.overridden;
        }
      }
      if (entry.parameter.overridden) {
        const std::string problem = Validator::CheckScalar(entry.parameter.value, *type);
        if (!problem.empty()) {
          diagnostics->push_back(Diagnostic{"command line", 0, 0,
                                            "-p " + name + "=" + entry.parameter.value + ": " + problem});
          entry.bad_value = true;
        }
      }
    }
  }

  // Replaces ${name} references in every scalar under `node`.
  void Substitute(TreeNode& node, const std::string& path) {
    switch (node.kind) {
      case TreeNode::Kind::kScalar:
        SubstituteScalar(node, path);
        return;
      case TreeNode::Kind::kList:
        for (std::size_t i = 0; i < node.items.size(); ++i) {
          Substitute(node.items[i], ItemPath(path, node.items[i], i));
        }
        return;
      case TreeNode::Kind::kMap:
        for (auto& [key, value] : node.entries) {
          if (path.empty() && key.name == "parameters") continue;
          Substitute(value, FieldPath(path, key.name));
        }
        return;
      case TreeNode::Kind::kNull:
        return;
    }
  }

  std::vector<Parameter> Parameters() const {
    std::vector<Parameter> out;
    for (const std::string& name : order_) out.push_back(entries_.at(name).parameter);
    return out;
  }

 private:
  static bool IsName(const std::string& name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    }
    return true;
  }

  static spec::SchemaPtr TypeSchema(const std::string& type) {
    if (type == "integer") return spec::Integer();
    if (type == "number") return spec::Number();
    if (type == "boolean") return spec::Boolean();
    if (type == "duration") return spec::DurationValue();
    if (type == "rate") return spec::RateValue();
    if (type == "size") return spec::SizeValue();
    if (type == "ratio") return spec::RatioValue();
    return nullptr;
  }

  void SubstituteScalar(TreeNode& node, const std::string& path) {
    const std::string& text = node.scalar;
    if (text.find('$') == std::string::npos) return;
    std::string out;
    std::vector<std::string> used;
    std::size_t i = 0;
    while (i < text.size()) {
      if (text.compare(i, 3, "$${") == 0) {  // "$${" is a literal "${"
        out += "${";
        i += 3;
        continue;
      }
      if (text.compare(i, 2, "${") != 0) {
        out += text[i++];
        continue;
      }
      const std::size_t close = text.find('}', i + 2);
      if (close == std::string::npos) {
        validator_.Report(node, path + ": unterminated parameter reference; expected ${name}");
        node.reported = true;
        return;
      }
      const std::string name = text.substr(i + 2, close - i - 2);
      auto it = entries_.find(name);
      if (it == entries_.end()) {
        std::string message = path + ": undefined parameter " + Quote(name);
        const std::string suggestion = ClosestMatch(name, order_);
        if (!suggestion.empty()) message += "; did you mean " + Quote(suggestion) + "?";
        else message += "; declare it under parameters";
        validator_.Report(node, std::move(message));
        node.reported = true;
        return;
      }
      out += it->second.parameter.value;
      node.reported = node.reported || it->second.bad_value;
      used.push_back(name);
      i = close + 1;
    }
    node.scalar = out;
    if (used.size() == 1) {
      const Parameter& parameter = entries_.at(used.front()).parameter;
      node.origin = "parameter " + Quote(parameter.name) + (parameter.overridden ? ", set with -p" : "");
    } else if (!used.empty()) {
      node.origin = "parameters " + JoinNames(used);
    }
  }

  const std::string& file_;
  Validator& validator_;
  std::map<std::string, ParameterEntry> entries_;
  std::vector<std::string> order_;
};

// ---- cross-references ------------------------------------------------------

class ScenarioChecker {
 public:
  ScenarioChecker(const std::string& file, const TreeNode& root, Validator& validator,
                  const LoadOptions& options, Diagnostics* diagnostics)
      : file_(file), root_(root), validator_(validator), options_(options), diagnostics_(diagnostics) {}

  void Run(Scenario* scenario) {
    LoadRules(scenario);
    CollectNames();
    CheckTimeline();
    CheckReferences();
    CheckTarget();
    LoadRecovery(scenario);
  }

 private:
  void LoadRules(Scenario* scenario) {
    const TreeNode* monitoring = root_.Find("monitoring");
    const TreeNode* rules = monitoring != nullptr ? monitoring->Find("rules") : nullptr;
    if (rules == nullptr) return;
    rules_named_ = !rules->items.empty();
    for (const TreeNode& item : rules->items) {
      const std::string path = ResolvePath(file_, item.scalar);
      scenario->monitoring.rules.push_back(path);
      if (!options_.check_references) continue;
      if (!fs::is_regular_file(path)) {
        validator_.Report(item, "monitoring.rules: rules file " + Quote(item.scalar) + " not found (looked for " + path + ")");
        continue;
      }
      Result<alerts::RuleFile> loaded = alerts::LoadRuleFile(path);
      if (!loaded.ok()) {
        // The rules loader already names file:line:column in each line.
        std::istringstream lines(loaded.status().message());
        for (std::string line; std::getline(lines, line);) {
          diagnostics_->push_back(Diagnostic{"", 0, 0, line});
        }
        continue;
      }
      for (std::string& name : loaded->AlertNames()) alerts_.insert(std::move(name));
    }
    scenario->known_alerts.assign(alerts_.begin(), alerts_.end());
  }

  void CollectNames() {
    Duration offset{0};
    const TreeNode* phases = root_.Find("workload")->Find("phases");
    for (const TreeNode& phase : phases->items) {
      const TreeNode* name = phase.Find("name");
      AddEventSource(*name, "phase");
      phases_.insert(name->scalar);
      offset += DurationOf(*phase.Find("duration"));
    }
    workload_end_ = offset;
    if (const TreeNode* timeline = root_.Find("timeline")) {
      for (const TreeNode& injection : timeline->items) AddEventSource(*injection.Find("name"), "injection");
    }
    has_recovery_ = root_.Find("recovery") != nullptr;
  }

  void AddEventSource(const TreeNode& name, const std::string& what) {
    static const std::set<std::string> kReserved = {"start", "recovery", "alert"};
    if (kReserved.count(name.scalar)) {
      validator_.Report(name, what + " name " + Quote(name.scalar) +
                                  " is reserved for events; choose another name");
      return;
    }
    auto [it, inserted] = event_sources_.emplace(name.scalar, std::make_pair(what, name.line));
    if (!inserted && it->second.first != what) {
      validator_.Report(name, what + " name " + Quote(name.scalar) + " is also the name of a " +
                                  it->second.first + " (line " + std::to_string(it->second.second) +
                                  "); events need unique names");
    }
  }

  void CheckTimeline() {
    const TreeNode* timeline = root_.Find("timeline");
    if (timeline == nullptr) return;
    for (std::size_t i = 0; i < timeline->items.size(); ++i) {
      const TreeNode& injection = timeline->items[i];
      const std::string path = ItemPath("timeline", injection, i);
      if (injection.Find("duration") == nullptr && injection.Find("until") == nullptr) {
        validator_.Report(injection, path + ": needs duration or until, so the fault always ends");
      }
      const TreeNode* at = injection.Find("at");
      if (DurationOf(*at) >= workload_end_) {
        validator_.Report(*at, path + ".at: starts at " + at->scalar + ", when the workload (" +
                                   FormatDuration(workload_end_) + " of phases) has ended; faults need load running");
      }
      if (const TreeNode* duration = injection.Find("duration"); duration != nullptr && DurationOf(*duration) == Duration(0)) {
        validator_.Report(*duration, path + ".duration: must be longer than 0s");
      }
      const TreeNode* inject = injection.Find("inject");
      if (const TreeNode* kind = inject->Find("kind"); kind != nullptr && kind->scalar == "config-fault") {
        CheckConfigValue(*inject, path + ".inject", validator_);
      }
    }
  }

  // Walks the sections that name alerts, phases and events.
  void CheckReferences() {
    ForEachListItem("steadyState", "checks", [&](const TreeNode& check, const std::string& path) {
      if (const TreeNode* alert = check.Find("alert")) CheckAlert(*alert, path + ".alert");
      if (const TreeNode* kind = check.Find("kind"); kind != nullptr && kind->scalar == "jobsRetained") {
        validator_.Report(*kind, path + ".kind: jobsRetained counts from the first fault, so it cannot hold before "
                                        "one; use it in a runbook's verify");
      }
    });
    ForEachItem(root_.Find("timeline"), "timeline", [&](const TreeNode& injection, const std::string& path) {
      if (const TreeNode* until = injection.Find("until")) CheckEvent(*until, path + ".until");
    });
    if (const TreeNode* recovery = root_.Find("recovery")) {
      const TreeNode* trigger = recovery->Find("trigger");
      if (const TreeNode* alert = trigger->Find("alert")) CheckAlert(*alert, "recovery.trigger.alert");
      if (const TreeNode* at = trigger->Find("at"); at != nullptr && DurationOf(*at) >= workload_end_) {
        validator_.Report(*at, "recovery.trigger.at: " + at->scalar + " is after the workload ends (" +
                                   FormatDuration(workload_end_) + ")");
      }
    }
    ForEachItem(root_.Find("expectations"), "expectations", [&](const TreeNode& item, const std::string& path) {
      if (const TreeNode* alert = item.Find("alert")) CheckAlert(*alert, path + ".alert");
      if (const TreeNode* after = item.Find("after")) CheckEvent(*after, path + ".after");
      for (const char* key : {"phase", "during"}) {
        if (const TreeNode* phase = item.Find(key)) CheckPhase(*phase, path + "." + key);
      }
    });
    ForEachItem(root_.Find("guardrails"), "guardrails", [&](const TreeNode& item, const std::string& path) {
      if (const TreeNode* alert = item.Find("alert")) CheckAlert(*alert, path + ".alert");
    });
  }

  void CheckTarget() {
    const TreeNode* target = root_.Find("target");
    for (const char* key : {"http", "gpuExporter"}) {
      const TreeNode* url = target->Find(key);
      if (url == nullptr) continue;
      if (url->scalar.rfind("http://", 0) != 0 && url->scalar.rfind("https://", 0) != 0) {
        validator_.Report(*url, std::string("target.") + key + ": " + Quote(url->scalar) +
                                    " is not an http:// or https:// URL");
      }
    }
    if (const TreeNode* grpc = target->Find("grpc")) {
      const auto colon = grpc->scalar.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == grpc->scalar.size()) {
        validator_.Report(*grpc, "target.grpc: " + Quote(grpc->scalar) + " is not host:port");
      }
    }
  }

  void LoadRecovery(Scenario* scenario) {
    const TreeNode* recovery = root_.Find("recovery");
    if (recovery == nullptr) return;
    const TreeNode* runbook = recovery->Find("runbook");
    Recovery out;
    out.runbook_path = ResolvePath(file_, runbook->scalar);
    const TreeNode* trigger = recovery->Find("trigger");
    out.trigger_alert = ScalarOr(trigger->Find("alert"));
    if (const TreeNode* at = trigger->Find("at")) out.trigger_at = DurationOf(*at);
    if (options_.check_references) {
      if (!fs::is_regular_file(out.runbook_path)) {
        validator_.Report(*runbook, "recovery.runbook: runbook file " + Quote(runbook->scalar) +
                                        " not found (looked for " + out.runbook_path + ")");
      } else {
        // A runbook names no other files; loading without references also
        // stops a scenario that names itself from recursing.
        LoadOptions runbook_options = options_;
        runbook_options.check_references = false;
        runbook_options.parameter_overrides.clear();
        LoadResult loaded = LoadFile(out.runbook_path, runbook_options);
        if (!loaded.ok()) {
          validator_.Report(*runbook, "recovery.runbook: runbook file " + Quote(runbook->scalar) +
                                          " is not valid; its problems follow");
        }
        for (Diagnostic& diagnostic : loaded.diagnostics) diagnostics_->push_back(std::move(diagnostic));
        if (loaded.scenario() != nullptr) {
          validator_.Report(*runbook, "recovery.runbook: " + Quote(runbook->scalar) +
                                          " is a Scenario; expected a file of kind Runbook");
        } else if (loaded.runbook() != nullptr) {
          out.runbook = *loaded.runbook();
        }
      }
    }
    scenario->recovery = std::move(out);
  }

  template <typename Fn>
  void ForEachItem(const TreeNode* list, const std::string& path, Fn fn) {
    if (list == nullptr) return;
    for (std::size_t i = 0; i < list->items.size(); ++i) fn(list->items[i], ItemPath(path, list->items[i], i));
  }

  template <typename Fn>
  void ForEachListItem(const char* section, const char* list, Fn fn) {
    const TreeNode* node = root_.Find(section);
    if (node == nullptr) return;
    ForEachItem(node->Find(list), std::string(section) + "." + list, fn);
  }

  void CheckAlert(const TreeNode& alert, const std::string& path) {
    if (!options_.check_references) return;
    if (!rules_named_) {
      if (!reported_no_rules_) {
        validator_.Report(alert, path + ": alert " + Quote(alert.scalar) +
                                     " cannot be checked because monitoring.rules names no rules file");
        reported_no_rules_ = true;
      }
      return;
    }
    if (alerts_.count(alert.scalar)) return;
    if (alerts_.empty()) return;  // the rules files failed to load; already reported
    std::string message = path + ": no alert " + Quote(alert.scalar) + " in the rules files";
    const std::string suggestion = ClosestMatch(alert.scalar, {alerts_.begin(), alerts_.end()});
    if (!suggestion.empty()) message += "; did you mean " + Quote(suggestion) + "?";
    validator_.Report(alert, std::move(message));
  }

  void CheckPhase(const TreeNode& phase, const std::string& path) {
    if (phases_.count(phase.scalar)) return;
    std::string message = path + ": no phase " + Quote(phase.scalar);
    const std::string suggestion = ClosestMatch(phase.scalar, {phases_.begin(), phases_.end()});
    message += suggestion.empty() ? "; phases are: " + JoinNames({phases_.begin(), phases_.end()})
                                  : "; did you mean " + Quote(suggestion) + "?";
    validator_.Report(phase, std::move(message));
  }

  void CheckEvent(const TreeNode& event, const std::string& path) {
    const std::string& text = event.scalar;
    const std::string expected =
        "; expected start, NAME.start, NAME.end (NAME a phase or injection), recovery.start, "
        "recovery.end, alert.ALERT.firing or alert.ALERT.resolved";
    if (text == "start") return;
    if (text.rfind("alert.", 0) == 0) {
      const std::size_t last = text.rfind('.');
      const std::string state = text.substr(last + 1);
      if (last <= 6 || (state != "firing" && state != "resolved")) {
        validator_.Report(event, path + ": bad event " + Quote(text) + expected);
        return;
      }
      TreeNode alert = event;
      alert.scalar = text.substr(6, last - 6);
      CheckAlert(alert, path);
      return;
    }
    const std::size_t dot = text.rfind('.');
    const std::string suffix = dot == std::string::npos ? "" : text.substr(dot + 1);
    if (dot == std::string::npos || (suffix != "start" && suffix != "end")) {
      validator_.Report(event, path + ": bad event " + Quote(text) + expected);
      return;
    }
    const std::string name = text.substr(0, dot);
    if (name == "recovery") {
      if (!has_recovery_) validator_.Report(event, path + ": event " + Quote(text) + " needs a recovery section");
      return;
    }
    if (event_sources_.count(name)) return;
    std::vector<std::string> names;
    for (const auto& [source, info] : event_sources_) names.push_back(source);
    std::string message = path + ": event " + Quote(text) + " names no phase or injection " + Quote(name);
    const std::string suggestion = ClosestMatch(name, names);
    if (!suggestion.empty()) message += "; did you mean " + Quote(suggestion + "." + suffix) + "?";
    else message += "; phases and injections are: " + JoinNames(names);
    validator_.Report(event, std::move(message));
  }

  const std::string& file_;
  const TreeNode& root_;
  Validator& validator_;
  const LoadOptions& options_;
  Diagnostics* diagnostics_;
  std::set<std::string> alerts_;
  bool rules_named_ = false;
  bool reported_no_rules_ = false;
  std::set<std::string> phases_;
  std::map<std::string, std::pair<std::string, int>> event_sources_;
  Duration workload_end_{0};
  bool has_recovery_ = false;
};

void CheckRunbookSteps(const TreeNode& root, Validator& validator) {
  const TreeNode* steps = root.Find("steps");
  if (steps->items.empty()) validator.Report(*steps, "steps: a runbook needs at least one step");
  for (std::size_t i = 0; i < steps->items.size(); ++i) {
    const TreeNode& step = steps->items[i];
    const std::string path = ItemPath("steps", step, i);
    const std::string action = step.Find("action")->scalar;
    if (action == "http") {
      const TreeNode* url = step.Find("url");
      const std::string& text = url->scalar;
      if (text.rfind("/", 0) != 0 && text.rfind("http://", 0) != 0 && text.rfind("https://", 0) != 0) {
        validator.Report(*url, path + ".url: " + Quote(text) +
                                   " is neither a path on the target (/health) nor an http:// or https:// URL");
      }
    }
    if (action == "admin.setConfig") CheckConfigValue(step, path, validator);
    if (action == "exec" && step.Find("argv")->items.empty()) {
      validator.Report(*step.Find("argv"), path + ".argv: needs at least the program to run");
    }
    if (const TreeNode* timeout = step.Find("timeout"); timeout != nullptr && DurationOf(*timeout) == Duration(0)) {
      validator.Report(*timeout, path + ".timeout: must be longer than 0s");
    }
  }
}

// ---- model building (after validation) ------------------------------------

Metadata BuildMetadata(const TreeNode& node) {
  Metadata metadata;
  metadata.name = ScalarOr(node.Find("name"));
  metadata.description = ScalarOr(node.Find("description"));
  if (const TreeNode* tags = node.Find("tags")) {
    for (const TreeNode& tag : tags->items) metadata.tags.push_back(tag.scalar);
  }
  metadata.runbook = ScalarOr(node.Find("runbook"));
  metadata.alert = ScalarOr(node.Find("alert"));
  metadata.source = ScalarOr(node.Find("source"));
  return metadata;
}

std::optional<Checks> BuildChecks(const std::string& file, const TreeNode* node) {
  if (node == nullptr) return std::nullopt;
  Checks checks;
  if (const TreeNode* within = node->Find("within")) checks.within = DurationOf(*within);
  for (const TreeNode& check : node->Find("checks")->items) checks.checks.push_back(SpecOf(file, check, "kind"));
  return checks;
}

Runbook BuildRunbook(const std::string& file, const TreeNode& root) {
  Runbook runbook;
  runbook.path = file;
  runbook.metadata = BuildMetadata(*root.Find("metadata"));
  const TreeNode* steps = root.Find("steps");
  for (std::size_t i = 0; i < steps->items.size(); ++i) {
    const TreeNode& node = steps->items[i];
    RunbookStep step;
    step.action = SpecOf(file, node, "action");
    step.name = ScalarOr(node.Find("name"), "step-" + std::to_string(i + 1));
    if (const TreeNode* timeout = node.Find("timeout")) step.timeout = DurationOf(*timeout);
    step.continue_on_error = ScalarOr(node.Find("continueOnError")) == "true";
    for (const char* key : {"name", "timeout", "continueOnError"}) step.action.fields.erase(key);
    runbook.steps.push_back(std::move(step));
  }
  runbook.verify = BuildChecks(file, root.Find("verify"));
  return runbook;
}

// Builds each phase's arrival schedule, so what the schema cannot see (a
// spike longer than its period, a trace file that is missing or malformed)
// is found at validation, not minutes into a drill. Trace files are read
// only when references are checked.
void CheckArrivals(const std::string& file, const TreeNode& workload, Validator& validator, bool read_files) {
  const TreeNode* phases = workload.Find("phases");
  for (const TreeNode& node : phases->items) {
    const Spec arrival = SpecOf(file, *node.Find("arrival"), "kind");
    if (arrival.kind == "trace" && !read_files) continue;
    const Duration length = DurationOf(*node.Find("duration"));
    const std::string where = "workload.phases[" + node.Find("name")->scalar + "].arrival: ";
    Status status;
    if (arrival.kind == "closed") {
      status = workload::MakeClosedLoop(arrival.fields, length).status();
    } else {
      status = workload::MakeArrivalSchedule(arrival.kind, arrival.fields, length, 1,
                                             fs::path(file).parent_path())
                   .status();
    }
    if (!status.ok()) validator.Report(*node.Find("arrival"), where + status.message());
  }
}

void BuildWorkloadSection(const std::string& file, const TreeNode& workload, std::vector<Phase>* phases,
                          std::vector<Spec>* job_mix) {
  Duration offset{0};
  for (const TreeNode& node : workload.Find("phases")->items) {
    Phase phase;
    phase.name = node.Find("name")->scalar;
    phase.duration = DurationOf(*node.Find("duration"));
    phase.arrival = SpecOf(file, *node.Find("arrival"), "kind");
    if (const TreeNode* cap = node.Find("maxInFlight")) phase.max_in_flight = std::stoll(cap->scalar);
    if (const TreeNode* stress = node.Find("stress")) phase.stress = SpecOf(file, *stress, "mode");
    phase.start_offset = offset;
    offset += phase.duration;
    phases->push_back(std::move(phase));
  }
  if (const TreeNode* mix = workload.Find("mix")) {
    for (const TreeNode& shape : mix->items) job_mix->push_back(SpecOf(file, shape, "kind"));
  }
}

void BuildScenario(const std::string& file, const TreeNode& root, Scenario* scenario) {
  scenario->path = file;
  scenario->metadata = BuildMetadata(*root.Find("metadata"));
  if (const TreeNode* seed = root.Find("seed")) scenario->seed = std::stoull(seed->scalar);
  if (const TreeNode* scale = root.Find("timeScale")) scenario->time_scale = std::stod(scale->scalar);
  const TreeNode* target = root.Find("target");
  scenario->target.settings = SpecOf(file, *target, "kind");
  scenario->target.kind = scenario->target.settings.kind;
  if (const TreeNode* monitoring = root.Find("monitoring")) {
    scenario->monitoring.settings = SpecOf(file, *monitoring, "kind");
    scenario->monitoring.kind = scenario->monitoring.settings.kind;
    scenario->monitoring.scrape_interval =
        scenario->monitoring.settings.DurationOr("scrapeInterval", scenario->monitoring.scrape_interval);
    scenario->monitoring.evaluation_interval =
        scenario->monitoring.settings.DurationOr("evaluationInterval", scenario->monitoring.evaluation_interval);
  }
  BuildWorkloadSection(file, *root.Find("workload"), &scenario->phases, &scenario->job_mix);
  scenario->steady_state = BuildChecks(file, root.Find("steadyState"));
  if (const TreeNode* timeline = root.Find("timeline")) {
    for (const TreeNode& node : timeline->items) {
      Injection injection;
      injection.name = node.Find("name")->scalar;
      injection.at = DurationOf(*node.Find("at"));
      if (const TreeNode* duration = node.Find("duration")) injection.duration = DurationOf(*duration);
      injection.until = ScalarOr(node.Find("until"));
      injection.injector = SpecOf(file, *node.Find("inject"), "kind");
      scenario->timeline.push_back(std::move(injection));
    }
  }
  if (const TreeNode* expectations = root.Find("expectations")) {
    std::map<std::string, int> used;
    for (const TreeNode& node : expectations->items) {
      Expectation expectation;
      expectation.spec = SpecOf(file, node, "kind");
      expectation.name = ScalarOr(node.Find("name"));
      expectation.spec.fields.erase("name");
      if (expectation.name.empty()) {
        expectation.name = expectation.spec.kind;
        for (const char* key : {"alert", "phase", "during"}) {
          if (expectation.spec.Has(key)) expectation.name += ":" + expectation.spec.Text(key);
        }
        if (int n = ++used[expectation.name]; n > 1) expectation.name += "#" + std::to_string(n);
      }
      scenario->expectations.push_back(std::move(expectation));
    }
  }
  if (const TreeNode* guardrails = root.Find("guardrails")) {
    for (const TreeNode& node : guardrails->items) scenario->guardrails.push_back(SpecOf(file, node, "kind"));
  }
  if (const TreeNode* reports = root.Find("reports")) {
    for (const TreeNode& node : reports->items) scenario->reports.push_back(node.scalar);
  } else {
    scenario->reports = {"json", "markdown", "junit", "html"};
  }
}

LoadResult LoadUnsorted(const std::string& path, const std::string& text, const LoadOptions& options) {
  LoadResult result;
  TreeNode root;
  if (!ParseTree(path, text, &root, &result.diagnostics)) return result;
  Validator validator(path, &result.diagnostics);
  if (root.kind != TreeNode::Kind::kMap) {
    validator.Report(root, "expected a mapping starting with apiVersion: firedrill/v1 and kind: Scenario, Runbook or Workload, got " +
                               DescribeNode(root));
    return result;
  }
  const TreeNode* kind = root.Find("kind");
  const std::vector<std::string> kinds = {"Scenario", "Runbook", "Workload"};
  if (kind == nullptr) {
    validator.Report(root, "missing required key \"kind\"; expected Scenario, Runbook or Workload");
    if (root.Find("apiVersion") == nullptr) {
      validator.Report(root, "missing required key \"apiVersion\"; expected " + std::string(kApiVersion));
    }
    return result;
  }
  const std::string kind_name = ScalarOr(kind);
  if (std::find(kinds.begin(), kinds.end(), kind_name) == kinds.end()) {
    std::string message = "kind: unknown kind " + Quote(kind_name);
    const std::string suggestion = ClosestMatch(kind_name, kinds);
    message += suggestion.empty() ? "; expected Scenario, Runbook or Workload" : "; did you mean " + Quote(suggestion) + "?";
    validator.Report(*kind, std::move(message));
    return result;
  }

  if (kind_name == "Runbook") {
    validator.Check(root, *RunbookSchema(), "");
    if (!result.diagnostics.empty()) return result;
    CheckRunbookSteps(root, validator);
    if (!result.diagnostics.empty()) return result;
    result.document = BuildRunbook(path, root);
    return result;
  }

  if (kind_name == "Workload") {
    validator.Check(root, *WorkloadFileSchema(), "");
    if (!result.diagnostics.empty()) return result;
    CheckArrivals(path, *root.Find("workload"), validator, options.check_references);
    if (!result.diagnostics.empty()) return result;
    Workload workload;
    workload.path = path;
    workload.metadata = BuildMetadata(*root.Find("metadata"));
    if (const TreeNode* seed = root.Find("seed")) workload.seed = std::stoull(seed->scalar);
    BuildWorkloadSection(path, *root.Find("workload"), &workload.phases, &workload.job_mix);
    result.document = std::move(workload);
    return result;
  }

  ParameterTable parameters(path, validator);
  parameters.Declare(root.Find("parameters"));
  parameters.Override(options.parameter_overrides, &result.diagnostics);
  parameters.CheckTypes(&result.diagnostics);
  parameters.Substitute(root, "");
  validator.Check(root, *ScenarioSchema(), "");
  if (!result.diagnostics.empty()) return result;

  Scenario scenario;
  scenario.parameters = parameters.Parameters();
  ScenarioChecker checker(path, root, validator, options, &result.diagnostics);
  checker.Run(&scenario);
  CheckArrivals(path, *root.Find("workload"), validator, options.check_references);
  if (!result.diagnostics.empty()) return result;
  BuildScenario(path, root, &scenario);
  result.document = std::move(scenario);
  return result;
}

}  // namespace

LoadResult LoadText(const std::string& path, const std::string& text, const LoadOptions& options) {
  LoadResult result = LoadUnsorted(path, text, options);
  // Command-line problems first, then this file's in reading order, then
  // those of the files it names.
  const auto rank = [&](const Diagnostic& d) { return d.file == "command line" ? 0 : d.file == path ? 1 : 2; };
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) {
                     return std::make_tuple(rank(a), a.line, a.column) < std::make_tuple(rank(b), b.line, b.column);
                   });
  return result;
}

LoadResult LoadFile(const std::string& path, const LoadOptions& options) {
  std::error_code error;
  if (fs::is_directory(path, error)) {
    LoadResult result;
    result.diagnostics.push_back(Diagnostic{path, 0, 0, "is a directory; expected a scenario or runbook file"});
    return result;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.diagnostics.push_back(Diagnostic{path, 0, 0, std::string("cannot read file: ") + std::strerror(errno)});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return LoadText(path, text.str(), options);
}

}  // namespace firedrill::engine
