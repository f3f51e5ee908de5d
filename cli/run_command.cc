#include "run_command.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "firedrill/core/spawn.h"
#include "firedrill/engine/drill.h"
#include "firedrill/engine/loader.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/reports/formats.h"
#include "signals.h"

namespace firedrill::cli {
namespace {

namespace fs = std::filesystem;

// hsof-pipeline beside this executable (installed), or in the build tree's
// pipeline/ folder next to cli/.
std::string FindPipeline() {
  const fs::path beside = BesideThisProgram("hsof-pipeline");
  if (!beside.empty()) {
    for (const fs::path& candidate : {beside, beside.parent_path().parent_path() / "pipeline" / "hsof-pipeline"}) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return "hsof-pipeline";
}

}  // namespace

CLI::App* AddRunCommand(CLI::App& app, RunCommandOptions& options) {
  CLI::App* run = app.add_subcommand(
      "run", "Run drills: load, faults, alerts, the runbook and the verdicts; write the reports");
  run->add_option("scenarios", options.scenarios, "scenario files, run one after another")->required();
  run->add_option("-p,--param", options.overrides, "override a scenario parameter: name=value (repeatable)");
  run->add_option("-o,--out", options.out_dir, "reports go to OUT/<scenario name>/")->capture_default_str();
  run->add_option("--time-scale", options.time_scale,
                  "compress every duration by this factor instead of the scenario's (1 = real time)")
      ->check(CLI::Range(0.001, 10000.0));
  run->add_option("--monitoring", options.monitoring,
                  "embedded (Firedrill evaluates the rules) or managed (a real Prometheus and Alertmanager)")
      ->check(CLI::IsMember({"embedded", "managed"}));
  run->add_option("--report", options.reports, "a report format instead of the scenario's (repeatable)")
      ->check(CLI::IsMember(reports::FormatNames()));
  run->add_option("--journal", options.journal, "the fault journal (default as for recover)");
  run->add_option("--pipeline", options.pipeline, "the hsof-pipeline binary for an embedded target");
  run->add_option("--progress", options.progress,
                  "auto (a status line on a terminal, JSON lines otherwise), tty, json or none")
      ->check(CLI::IsMember({"auto", "tty", "json", "none"}))
      ->capture_default_str();
  run->footer(
      "Each drill writes result.json, summary.md, junit.xml (and report.html when asked) to OUT/<name>/.\n"
      "Ctrl-C or SIGTERM aborts a drill: every fault is undone, the reports are written, and the exit code is 3.\n"
      "If Firedrill is killed outright, `firedrill recover` undoes what it left (faults, the embedded pipeline).\n"
      "Exit: 0 every expectation held, 1 one failed, 2 invalid scenario, 3 aborted, 4 the harness could not run.\n"
      "Examples:\n"
      "  firedrill run scenarios/*.yaml\n"
      "  firedrill run scenarios/system-down.yaml --time-scale 10 -o out/ci\n"
      "  firedrill run scenarios/gpu-memory-exhaustion.yaml -p hogShare=99% --monitoring managed");
  return run;
}

int RunRunCommand(const RunCommandOptions& options) {
  // Ctrl-C and SIGTERM become a flag the drill checks, never a death
  // mid-fault: blocked before any thread starts, taken by this waiter.
  const sigset_t ending = BlockEndingSignals();
  static std::atomic<bool> interrupted{false};
  std::thread([ending] {
    int signal = 0;
    while (sigwait(&ending, &signal) == 0) {
      if (!interrupted.exchange(true)) continue;
      // A second Ctrl-C while the first is being honoured: leave at once.
      // Helpers die with this process, pipeline faults lapse with their
      // leases, guardians undo the rest; recover clears the journal.
      static const char kMessage[] =
          "\nfiredrill run: second interrupt, leaving now; run `firedrill recover --wait` to clear what is left\n";
      (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      _exit(engine::kDrillAborted);
    }
  }).detach();

  engine::LoadOptions load;
  for (const std::string& item : options.overrides) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "firedrill run: -p " << item << ": expected name=value\n";
      return engine::kDrillInvalid;
    }
    load.parameter_overrides.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  // Every file is checked before the first drill starts.
  std::vector<engine::LoadResult> loaded;
  bool invalid = false;
  for (const std::string& file : options.scenarios) {
    engine::LoadResult result = engine::LoadFile(file, load);
    for (const auto& diagnostic : result.diagnostics) std::cerr << diagnostic << '\n';
    if (result.ok() && result.scenario() == nullptr) {
      std::cerr << file << ": is not a Scenario; run takes scenarios (runbooks run from them)\n";
      invalid = true;
    }
    invalid = invalid || !result.ok();
    loaded.push_back(std::move(result));
  }
  if (invalid) return engine::kDrillInvalid;

  const bool tty = options.progress == "tty" || (options.progress == "auto" && isatty(STDERR_FILENO));
  int worst = engine::kDrillHeld;
  for (const engine::LoadResult& result : loaded) {
    if (interrupted) break;  // Ctrl-C ends the whole run, not only the drill it came in
    const engine::Scenario& scenario = *result.scenario();
    engine::DrillOptions drill;
    drill.out_dir = (fs::path(options.out_dir) / scenario.metadata.name).string();
    if (options.time_scale > 0) drill.time_scale = options.time_scale;
    if (!options.monitoring.empty()) drill.monitoring = options.monitoring;
    drill.reports = options.reports;
    drill.pipeline_binary = options.pipeline.empty() ? FindPipeline() : options.pipeline;
    drill.journal_path = options.journal.empty() ? injectors::Journal::DefaultPath() : options.journal;
    drill.version = options.version;
    drill.progress = options.progress == "none" ? nullptr : &std::cerr;
    drill.terminal = tty;
    drill.interrupt = &interrupted;
    std::cerr << "== " << scenario.metadata.name << " (" << scenario.path << ")\n";
    const engine::DrillOutcome outcome = engine::RunDrill(scenario, drill);
    std::string verdict = outcome.verdict;
    std::transform(verdict.begin(), verdict.end(), verdict.begin(), ::toupper);
    std::cout << scenario.metadata.name << ": " << verdict << " (exit " << outcome.exit_code << ") in "
              << outcome.result.value("wallSeconds", 0.0) << " s";
    if (!outcome.reason.empty()) std::cout << "\n  why: " << outcome.reason;
    std::cout << '\n';
    for (const auto& [format, path] : outcome.reports) std::cout << "  " << format << ": " << path << '\n';
    std::cout << std::flush;
    worst = std::max(worst, outcome.exit_code);
  }
  // Interrupted, the run is not a pass even if the drill it came in held.
  if (interrupted) worst = std::max<int>(worst, engine::kDrillAborted);
  return worst;
}

}  // namespace firedrill::cli
