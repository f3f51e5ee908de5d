// firedrill: the command-line front door. Each subcommand is a thin layer
// over a component; exit codes follow the contract in docs/CLI.md:
// 0 ok, 1 an expectation failed, 2 bad usage or invalid file,
// 3 aborted by a guardrail, 4 the harness could not do its job.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "firedrill/alerts/rules_lint.h"
#include "firedrill/alerts/rules_test.h"
#include "firedrill/core/clock.h"
#include "firedrill/core/log.h"
#include "firedrill/engine/format.h"
#include "firedrill/engine/loader.h"
#include "firedrill/engine/plan.h"
#include "firedrill/gpu/device.h"
#include "firedrill/injectors/undo.h"
#include "inject_command.h"
#include "load_command.h"
#include "run_command.h"

namespace {

using firedrill::engine::LoadOptions;
using firedrill::engine::LoadResult;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitInvalid = 2;
constexpr int kExitHarness = 4;

struct GlobalOptions {
  std::string log_format = "human";
  std::string log_level = "info";
};

bool ParseOverrides(const std::vector<std::string>& raw, LoadOptions* options) {
  for (const std::string& item : raw) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "firedrill: -p " << item << ": expected name=value\n";
      return false;
    }
    options->parameter_overrides.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return true;
}

int Validate(const std::vector<std::string>& files, const std::vector<std::string>& overrides,
             const std::string& format, bool quiet) {
  LoadOptions options;
  if (!ParseOverrides(overrides, &options)) return kExitInvalid;
  bool all_valid = true;
  nlohmann::ordered_json report = nlohmann::ordered_json::array();
  for (const std::string& file : files) {
    const LoadResult result = firedrill::engine::LoadFile(file, options);
    all_valid = all_valid && result.ok();
    std::string kind = result.scenario()   ? "Scenario"
                       : result.runbook()  ? "Runbook"
                       : result.workload() ? "Workload"
                                           : "";
    std::string name = result.scenario()   ? result.scenario()->metadata.name
                       : result.runbook()  ? result.runbook()->metadata.name
                       : result.workload() ? result.workload()->metadata.name
                                           : "";
    if (format == "json") {
      nlohmann::ordered_json entry{{"file", file}, {"valid", result.ok()}};
      if (!kind.empty()) entry["kind"] = kind, entry["name"] = name;
      entry["diagnostics"] = nlohmann::ordered_json::array();
      for (const auto& d : result.diagnostics) {
        entry["diagnostics"].push_back(
            {{"file", d.file}, {"line", d.line}, {"column", d.column}, {"message", d.message}});
      }
      report.push_back(std::move(entry));
      continue;
    }
    for (const auto& diagnostic : result.diagnostics) std::cerr << diagnostic << '\n';
    if (result.ok() && !quiet) std::cout << file << ": ok (" << kind << " " << name << ")\n";
  }
  if (format == "json")
    std::cout << report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  return all_valid ? kExitOk : kExitInvalid;
}

int Plan(const std::string& file, const std::vector<std::string>& overrides) {
  LoadOptions options;
  if (!ParseOverrides(overrides, &options)) return kExitInvalid;
  const LoadResult result = firedrill::engine::LoadFile(file, options);
  for (const auto& diagnostic : result.diagnostics) std::cerr << diagnostic << '\n';
  if (!result.ok()) return kExitInvalid;
  if (result.scenario() == nullptr) {
    std::cerr << file << ": is a Runbook; plan takes a Scenario\n";
    return kExitInvalid;
  }
  firedrill::engine::DescribePlan(*result.scenario(), std::cout);
  return kExitOk;
}

int Doctor(firedrill::Logger& logger, const std::string& backend) {
  firedrill::gpu::BackendChoice choice;
  if (!firedrill::gpu::ParseBackendChoice(backend, &choice)) {
    std::cerr << "firedrill doctor: --device " << backend
              << ": expected auto, cuda, cpu or simulated\n";
    return kExitInvalid;
  }
  auto device = firedrill::gpu::ProbeDevice(choice);
  if (!device.ok()) {
    logger.Error("gpu", "no usable device", {{"error", device.status().ToString()}});
    return kExitHarness;
  }
  firedrill::gpu::LogDeviceChoice(logger, *device);
  const firedrill::Status self_test = firedrill::gpu::RunSelfTest(*device);
  if (!self_test.ok()) {
    logger.Error("gpu", "device self-test failed", {{"error", self_test.ToString()}});
    return kExitHarness;
  }
  logger.Info("gpu", "device self-test passed",
              {{"backend", std::string(firedrill::gpu::BackendName(device->backend))}});
  for (const char* program :
       {"prometheus", "prometheus-alertmanager", "promtool", "prometheus-node-exporter"}) {
    bool found = false;
    const char* path_env = std::getenv("PATH");
    std::string paths = path_env ? path_env : "";
    for (std::size_t start = 0; start <= paths.size();) {
      const std::size_t end = std::min(paths.find(':', start), paths.size());
      const std::filesystem::path candidate =
          std::filesystem::path(paths.substr(start, end - start)) / program;
      std::error_code error;
      if (std::filesystem::is_regular_file(candidate, error)) found = true;
      start = end + 1;
    }
    if (found) {
      logger.Info("doctor", "found", {{"program", program}});
    } else {
      logger.Warn("doctor",
                  "not found; managed monitoring needs it (scripts/install-deps installs it)",
                  {{"program", program}});
    }
  }
  return kExitOk;
}

}  // namespace

int RulesLint(const std::vector<std::string>& rule_paths, const std::vector<std::string>& metrics,
              const std::string& job) {
  std::vector<firedrill::alerts::RuleFile> files;
  bool invalid = false;
  for (const std::string& path : rule_paths) {
    auto file = firedrill::alerts::LoadRuleFile(path);
    if (!file.ok()) {
      std::cerr << file.status().message() << '\n';
      invalid = true;
      continue;
    }
    files.push_back(std::move(*file));
  }
  if (invalid) return kExitInvalid;
  std::vector<firedrill::alerts::LintSource> sources;
  for (const std::string& location : metrics) sources.push_back({location, job});
  const std::int64_t end_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  firedrill::alerts::SeriesStore store(std::int64_t{2} * 3600 * 1000);
  if (firedrill::Status status = firedrill::alerts::LoadIdleTarget(sources, end_ms, store);
      !status.ok()) {
    std::cerr << "firedrill rules lint: " << status.message() << '\n';
    return status.code() == firedrill::StatusCode::kUnavailable ? kExitHarness : kExitInvalid;
  }
  const auto findings = firedrill::alerts::LintRules(files, store, sources, end_ms);
  std::size_t rules_checked = 0;
  for (const auto& file : files) {
    for (const auto& group : file.groups) rules_checked += group.rules.size();
  }
  for (const auto& finding : findings) std::cout << finding.ToString() << '\n';
  std::cout << findings.size() << " finding(s) in " << rules_checked << " rule(s) against "
            << store.SeriesCount() << " exposed series\n";
  return findings.empty() ? kExitOk : kExitFailed;
}

// Undoes every fault a crashed Firedrill left open in the journal.
int Recover(const std::string& journal_path, bool json, bool wait) {
  auto journal = firedrill::injectors::Journal::Open(journal_path);
  if (!journal.ok()) {
    std::cerr << "firedrill recover: " << journal.status().message() << '\n';
    return kExitHarness;
  }
  firedrill::RealClock clock;
  const auto wall_ms = [&clock] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch()).count();
  };
  std::int64_t now = wall_ms();
  auto report = firedrill::injectors::Recover(**journal, now);
  if (!report.ok()) {
    std::cerr << "firedrill recover: " << report.status().message() << '\n';
    return kExitHarness;
  }
  // --wait: faults a target lapses by itself (pipeline leases) are waited
  // out, up to ten minutes, and their rows closed, so that on return nothing
  // of the fault is left.
  std::int64_t lapse_by = 0;
  for (const auto& record : report->lapsing) lapse_by = std::max(lapse_by, record.lease_until_ms);
  if (wait && lapse_by > now && lapse_by - now <= 10 * 60 * 1000) {
    if (!json) std::cout << "waiting " << (lapse_by - now + 999) / 1000 << " s for pipeline leases to lapse\n";
    clock.SleepFor(std::chrono::milliseconds(lapse_by - now + 100));
    now = wall_ms();
    auto again = firedrill::injectors::Recover(**journal, now);
    if (!again.ok()) {
      std::cerr << "firedrill recover: " << again.status().message() << '\n';
      return kExitHarness;
    }
    again->undone.insert(again->undone.begin(), report->undone.begin(), report->undone.end());
    report = std::move(again);
  }
  const auto describe = [](const firedrill::injectors::FaultRecord& record) {
    return nlohmann::ordered_json{{"id", record.id}, {"kind", record.kind}, {"target", record.target},
                                  {"owner_pid", record.owner_pid}, {"undo", record.undo}};
  };
  if (json) {
    nlohmann::ordered_json out{{"journal", journal_path},
                               {"undone", nlohmann::ordered_json::array()},
                               {"already_over", nlohmann::ordered_json::array()},
                               {"left_to_owner", nlohmann::ordered_json::array()},
                               {"lapsing", nlohmann::ordered_json::array()},
                               {"failures", report->failures}};
    for (const auto& record : report->undone) out["undone"].push_back(describe(record));
    for (const auto& record : report->already_over) out["already_over"].push_back(describe(record));
    for (const auto& record : report->left_to_owner) out["left_to_owner"].push_back(describe(record));
    for (const auto& record : report->lapsing) out["lapsing"].push_back(describe(record));
    std::cout << out.dump(2) << '\n';
  } else {
    for (const auto& record : report->undone) {
      std::cout << "undone: " << record.kind << " on " << record.target << " (" << record.id << ", started by pid "
                << record.owner_pid << ")\n";
    }
    for (const auto& record : report->left_to_owner) {
      std::cout << "left to its owner, pid " << record.owner_pid << ", which still runs: " << record.kind << " on "
                << record.target << " (" << record.id << ")\n";
    }
    for (const auto& record : report->lapsing) {
      std::cout << "lapses by itself within " << (record.lease_until_ms - now + 999) / 1000 << " s: " << record.kind
                << " on " << record.target << " (" << record.id << "); run recover again after that\n";
    }
    if (report->undone.empty() && report->left_to_owner.empty() && report->lapsing.empty() &&
        report->failures.empty()) {
      std::cout << "nothing to undo in " << journal_path;
      if (!report->already_over.empty()) {
        std::cout << " (closed " << report->already_over.size()
                  << " journal row(s) whose faults were already over: undone by their guardians, or ended with "
                     "the Firedrill that ran them)";
      }
      std::cout << '\n';
    }
  }
  for (const std::string& failure : report->failures) std::cerr << "firedrill recover: could not undo " << failure << '\n';
  return report->failures.empty() ? kExitOk : kExitHarness;
}

int main(int argc, char** argv) {
  CLI::App app{
      "Firedrill: chaos and load drills for GPU ML pipelines. A scenario file drives load and "
      "faults\n"
      "against the pipeline, checks that the right alerts fire in time, runs the runbook's "
      "recovery\n"
      "and checks that nothing was lost."};
  app.footer(
      "Examples:\n"
      "  firedrill run scenarios/*.yaml\n"
      "  firedrill validate scenarios/*.yaml runbooks/*.yaml\n"
      "  firedrill plan scenarios/gpu-memory-exhaustion.yaml -p hogShare=97%\n"
      "  firedrill schema > firedrill.schema.json\n"
      "  firedrill doctor\n"
      "  firedrill load http://127.0.0.1:8080/ --rate 1000/s -d 30s\n"
      "  firedrill rules test rules/hsof-alerts_test.yml\n"
      "  firedrill rules lint rules/hsof-alerts.yml --metrics http://127.0.0.1:8080/metrics\n"
      "Exit codes: 0 ok, 1 an expectation failed, 2 bad usage or invalid file, 3 aborted by a "
      "guardrail,\n"
      "4 the harness could not do its job. Docs: README.md, docs/SCENARIOS.md, docs/CLI.md.");
  app.set_version_flag("--version", std::string("firedrill ") + FIREDRILL_VERSION);
  app.require_subcommand(1);
  GlobalOptions global;
  app.add_option("--log-format", global.log_format, "log lines as human text or JSON lines")
      ->check(CLI::IsMember({"human", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", global.log_level, "lowest level logged")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();

  std::vector<std::string> files;
  std::vector<std::string> overrides;
  std::string format = "text";
  bool quiet = false;
  auto* validate = app.add_subcommand(
      "validate",
      "Check scenario and runbook files: structure, types, units, names and references");
  validate->add_option("files", files, "scenario or runbook files")->required();
  validate->add_option("-p,--param", overrides,
                       "override a scenario parameter: name=value (repeatable)");
  validate->add_option("--format", format, "text (one line per problem) or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  validate->add_flag("-q,--quiet", quiet, "print nothing for valid files");
  validate->footer(
      "Every problem is one line: file:line:column: what is wrong, what was expected.\n"
      "Exit 0 when every file is valid, 2 otherwise.\n"
      "Examples:\n"
      "  firedrill validate scenarios/*.yaml runbooks/*.yaml\n"
      "  firedrill validate scenarios/system-down.yaml -p rate=5/s --format json");

  std::string plan_file;
  auto* plan = app.add_subcommand(
      "plan", "Print what a scenario would run: phases, faults, runbook and verdicts");
  plan->add_option("scenario", plan_file, "scenario file")->required();
  plan->add_option("-p,--param", overrides,
                   "override a scenario parameter: name=value (repeatable)");
  plan->footer(
      "Examples:\n"
      "  firedrill plan scenarios/pipeline-stage-timeout.yaml\n"
      "  firedrill plan scenarios/gpu-memory-exhaustion.yaml -p hogShare=97%");

  std::string schema_kind = "all";
  auto* schema = app.add_subcommand(
      "schema", "Print the JSON Schema of scenario and runbook files, for editors");
  schema->add_option("--kind", schema_kind, "all, scenario, runbook or workload")
      ->check(CLI::IsMember({"all", "scenario", "runbook", "workload"}))
      ->capture_default_str();
  schema->footer(
      "Examples:\n"
      "  firedrill schema > firedrill.schema.json\n"
      "  # VS Code (YAML extension): \"yaml.schemas\": {\"firedrill.schema.json\": "
      "\"scenarios/*.yaml\"}");

  auto* reference = app.add_subcommand(
      "reference",
      "Print the Markdown reference of injectors, arrivals, checks, expectations and actions");
  reference->footer(
      "Examples:\n"
      "  firedrill reference > docs/REFERENCE.md");

  std::string device = "auto";
  auto* doctor = app.add_subcommand(
      "doctor", "Check this machine: device backend, GPU self-test, monitoring servers");
  doctor->add_option("--device", device, "auto, cuda, cpu or simulated")->capture_default_str();
  doctor->footer(
      "Exit 0 when the chosen device works, 4 when it does not.\n"
      "Examples:\n"
      "  firedrill doctor\n"
      "  firedrill doctor --device cuda");

  auto* rules = app.add_subcommand("rules", "Work with Prometheus rule files");
  rules->require_subcommand(1);
  std::vector<std::string> rules_test_files;
  firedrill::alerts::RulesTestOptions rules_test_options;
  auto* rules_test = rules->add_subcommand(
      "test",
      "Run promtool rule unit-test files; same format, same verdict as `promtool test rules`");
  rules_test->add_option("files", rules_test_files, "promtool unit-test files")->required();
  rules_test->add_flag("--pending", rules_test_options.pending,
                       "compare pending alerts too; exp_alerts entries may say exp_state: pending");
  rules_test
      ->add_option("--tolerance", rules_test_options.tolerance,
                   "compare expression values within this relative tolerance (default: exactly)")
      ->check(CLI::Range(0.0, 1.0));
  rules_test->add_flag("--timeline", rules_test_options.timeline,
                       "print every alert's state changes for each test group");
  rules_test->footer(
      "Progress goes to stdout and failures to stderr, in promtool's format.\n"
      "Exit 0 when every test passes, 1 when a test fails, 2 when a file cannot be read or "
      "loaded.\n"
      "Examples:\n"
      "  firedrill rules test rules/hsof-alerts_test.yml\n"
      "  firedrill rules lint rules/hsof-alerts.yml --metrics http://127.0.0.1:8080/metrics\n"
      "  firedrill rules test --pending --timeline drills/*_test.yml");

  std::vector<std::string> lint_rule_files;
  std::vector<std::string> lint_metrics;
  std::string lint_job;
  auto* rules_lint = rules->add_subcommand("lint",
                                           "Find alert rules that can never fire, or that fire on "
                                           "an idle target, against what it exposes");
  rules_lint->add_option("rules", lint_rule_files, "Prometheus rule files")->required();
  rules_lint
      ->add_option(
          "--metrics", lint_metrics,
          "a /metrics URL of the target at rest, or a file in the text format (repeatable)")
      ->required();
  rules_lint->add_option(
      "--job", lint_job,
      "the job label Prometheus gives the target; without it, job and instance matchers "
      "are not checked");
  rules_lint->footer(
      "One line per finding: file:line:column: rule: what is wrong [kind]. Kinds: unknown-metric,\n"
      "no-matching-series, no-matching-labels, evaluation-error, fires-when-idle.\n"
      "Exit 0 when nothing is found, 1 when something is, 2 for a bad rule file, 4 when a target "
      "does not answer.\n"
      "Examples:\n"
      "  firedrill rules lint rules/hsof-alerts.yml --metrics http://127.0.0.1:8080/metrics --job "
      "hsof-main\n"
      "  firedrill rules lint rules/*.yml --metrics exposition.txt");

  std::string journal_path = firedrill::injectors::Journal::DefaultPath();
  bool recover_json = false;
  auto* recover = app.add_subcommand(
      "recover", "Undo every fault a Firedrill that crashed or was killed left behind, from the fault journal");
  recover->add_option("--journal", journal_path, "the fault journal ($FIREDRILL_JOURNAL, else under XDG_STATE_HOME)")
      ->capture_default_str();
  recover->add_flag("--json", recover_json, "print what was done as JSON");
  bool recover_wait = false;
  recover->add_flag("--wait", recover_wait,
                    "wait for faults the target lapses by itself (pipeline leases, at most 10 min) and close them");
  recover->footer(
      "Faults whose Firedrill still runs are left to it. Safe to run twice: what is already undone is skipped.\n"
      "Exit 0 when nothing is left to undo, 4 when something could not be undone.\n"
      "Examples:\n"
      "  firedrill recover\n"
      "  firedrill recover --journal /var/lib/firedrill/journal.db --json");

  firedrill::cli::LoadCommandOptions load_options;
  auto* load = firedrill::cli::AddLoadCommand(app, load_options);
  firedrill::cli::InjectCommandOptions inject_options;
  auto* inject = firedrill::cli::AddInjectCommand(app, inject_options);
  firedrill::cli::RunCommandOptions run_options;
  run_options.version = FIREDRILL_VERSION;
  auto* run = firedrill::cli::AddRunCommand(app, run_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitInvalid;
  }

  firedrill::RealClock clock;
  firedrill::LogLevel level = firedrill::LogLevel::kInfo;
  firedrill::ParseLogLevel(global.log_level, &level);
  firedrill::Logger logger(
      std::cerr, clock,
      global.log_format == "json" ? firedrill::LogFormat::kJson : firedrill::LogFormat::kHuman,
      level);
  try {
    if (validate->parsed()) return Validate(files, overrides, format, quiet);
    if (plan->parsed()) return Plan(plan_file, overrides);
    if (schema->parsed()) {
      std::cout << firedrill::engine::JsonSchema(schema_kind).dump(2) << '\n';
      return kExitOk;
    }
    if (reference->parsed()) {
      std::cout << firedrill::engine::ReferenceMarkdown();
      return kExitOk;
    }
    if (doctor->parsed()) return Doctor(logger, device);
    if (load->parsed()) return firedrill::cli::RunLoadCommand(load_options, logger);
    if (recover->parsed()) return Recover(journal_path, recover_json, recover_wait);
    if (inject->parsed()) return firedrill::cli::RunInjectCommand(inject_options);
    if (run->parsed()) return firedrill::cli::RunRunCommand(run_options);
    if (rules_lint->parsed()) return RulesLint(lint_rule_files, lint_metrics, lint_job);
    if (rules_test->parsed()) {
      const auto outcome = firedrill::alerts::RunRulesTests(rules_test_files, rules_test_options,
                                                            std::cout, std::cerr);
      if (outcome.invalid > 0) return kExitInvalid;
      return outcome.failed > 0 ? kExitFailed : kExitOk;
    }
  } catch (const std::exception& e) {
    // Components report through Status; this is a last line of defence so a
    // bug never ends in a stack trace.
    logger.Error("firedrill", "internal error", {{"error", e.what()}});
    return kExitHarness;
  }
  return kExitInvalid;
}
