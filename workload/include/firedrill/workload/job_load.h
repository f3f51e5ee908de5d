// JobLoad: the job driver. It sends jobs through a JobClient at the times
// the phases' arrival schedules intend (phases back to back), keeps the
// JobLedger as it goes — each key entered before it is sent, then attempts,
// acceptance and outcome — and measures each completed job from its intended
// send time (corrected: no coordinated omission) and from when it really
// went out (uncorrected), with per-stage times and per-phase counts.
//
// Everything runs on the Clock seam: sends are clock timers and waiting is
// for events or clock deadlines, so with a SimulatedClock a test drives a
// whole run by advancing time, and no thread sleeps through a schedule.
//
// A send held back by the phase's max_in_flight keeps its intended time (its
// wait shows in the corrected latency); sends still held when their phase
// ends are not sent and are counted as unsent. After the last phase the
// driver waits up to the drain timeout for jobs in flight, then closes the
// ledger: accepted jobs without an outcome become lost.
//
// Resume settles a run after the pipeline came back: it follows every job
// the ledger holds as accepted or lost, and resubmits, under the same key,
// each submission whose outcome was never learned (the pipeline may hold it;
// the key makes sure it is one job either way).
//
// Thread-safety: Start, Wait, Run, StartResume and Resume are called from one
// thread, one run at a time; done() from any. Client callbacks and clock
// timers may arrive on any thread; the driver's state is locked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/workload/arrivals.h"
#include "firedrill/workload/histogram.h"
#include "firedrill/workload/job_client.h"
#include "firedrill/workload/job_mix.h"
#include "firedrill/workload/ledger.h"

namespace firedrill::workload {

// One phase: an open-loop schedule or a closed loop, for `duration`.
struct JobPhase {
  std::string name;
  std::unique_ptr<ArrivalSchedule> schedule;  // set this, or
  std::optional<ClosedLoop> closed_loop;      // this
  Duration duration{0};
  std::optional<std::int64_t> max_in_flight;  // jobs in flight at most while it runs
};

// A phase from its arrival as a scenario gives it (`arrival_kind` and its
// fields, as MakeArrivalSchedule takes them): closed-loop users for kind
// closed, an arrival schedule otherwise. Errors name the phase.
Result<JobPhase> MakeJobPhase(std::string name, Duration duration, std::optional<std::int64_t> max_in_flight,
                              std::string_view arrival_kind, const nlohmann::json& arrival_fields, std::uint64_t seed,
                              const std::filesystem::path& base_dir);

struct JobLoadOptions {
  std::vector<JobPhase> phases;
  std::string run_id;  // keys are "<run_id>-<seq>", seq from 0 across the run
  Duration drain_timeout = std::chrono::seconds(60);
};

struct JobPhaseCounts {
  std::string name;
  std::int64_t sent = 0;
  std::int64_t accepted = 0;
  std::int64_t rejected = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t lost = 0;        // accepted, then the client could not learn the outcome
  std::int64_t unanswered = 0;  // submissions whose outcome the client never learned
  std::int64_t unsent = 0;      // held back by max_in_flight until the phase ended
};

// The selection quality the pipeline reported for completed jobs.
struct QualityStats {
  std::int64_t count = 0;
  double sum = 0;
  double min = 0;  // meaningful when count > 0
  double max = 0;
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0; }
  void Record(double quality);
};

struct JobLoadResult {
  std::vector<JobPhaseCounts> phases;
  // Completed jobs: completion - intended send time, and - actual send time (ns).
  LatencyHistogram corrected;
  LatencyHistogram uncorrected;
  // Corrected latency of the jobs each phase sent, parallel to `phases`.
  std::vector<LatencyHistogram> phase_corrected;
  QualityStats quality;
  // Quality of the jobs each phase sent, parallel to `phases`.
  std::vector<QualityStats> phase_quality;
  // Each stage's seconds as the pipeline reported them, recorded in ns;
  // keyed "stage1", "stage2", "stage3".
  std::map<std::string, LatencyHistogram> stage_seconds;
  std::int64_t outstanding = 0;  // still in flight when the drain timeout ran out
  // Ledger calls that failed (a key entered twice, an unknown job id): a bug
  // somewhere, and the ledger cannot be trusted when this is not 0.
  std::int64_t ledger_errors = 0;
  Duration elapsed{0};   // start to ledger close
  LedgerSummary ledger;  // as closed at the end

  JobPhaseCounts Total() const;
  nlohmann::json ToJson() const;  // histograms in LatencyHistogram's JSON form
};

// The run as it stands, for a live status line and for guardrails.
struct JobProgress {
  std::size_t phase = 0;  // index of the phase sending now (the last one once draining)
  JobPhaseCounts total;   // so far, over every phase
  std::int64_t in_flight = 0;
  // Settlements in the window asked for: completions and their corrected
  // latency at the quantile asked for; failures, rejections and losses.
  std::int64_t recent_completed = 0;
  std::int64_t recent_failed = 0;
  Duration recent_latency{0};
  bool done = false;
};

struct JobResumeResult {
  std::int64_t followed = 0;     // accepted or lost jobs followed again
  std::int64_t resubmitted = 0;  // submissions never answered, sent again under their key
  std::int64_t accepted = 0;     // of the resubmitted
  std::int64_t rejected = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t lost = 0;
  std::int64_t unanswered = 0;
  std::int64_t outstanding = 0;  // still unsettled when the timeout ran out
  std::int64_t ledger_errors = 0;
  Duration elapsed{0};
  LedgerSummary ledger;  // as closed at the end

  nlohmann::json ToJson() const;
};

class JobLoad {
 public:
  // InvalidArgument naming the phase when it has neither or both of a
  // schedule and a closed loop, a duration that is not positive, or a
  // max_in_flight below 1; also for an empty run id or no phases.
  static Result<std::unique_ptr<JobLoad>> Make(JobLoadOptions options, JobMix mix,
                                               JobClient& client, JobLedger& ledger, Clock& clock);
  ~JobLoad();
  JobLoad(const JobLoad&) = delete;
  JobLoad& operator=(const JobLoad&) = delete;

  // Starts the run; the first phase begins now. Once per JobLoad.
  void Start();
  // True once the run (or resume) in progress has closed the ledger.
  bool done() const;
  // Blocks until the run or resume in progress is done; its result.
  JobLoadResult Wait();
  JobLoadResult Run();  // Start, then Wait
  // Ends the run early (a drill that aborts): no more sends; jobs in flight
  // get up to `drain` to settle, then the ledger closes. Wait still returns.
  void Abort(Duration drain);
  // Counts so far, and what settled in the last `window` of the clock.
  JobProgress Progress(Duration window, double quantile = 0.95) const;

  // After the run: follows the unsettled jobs through `client` (the
  // pipeline may have a new address) and resubmits the unanswered ones,
  // until each settles or `timeout` runs out; then closes the ledger again.
  void StartResume(JobClient& client, Duration timeout);
  JobResumeResult WaitResume();
  JobResumeResult Resume(JobClient& client, Duration timeout);  // StartResume, then WaitResume

 private:
  struct State;
  explicit JobLoad(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// Resume for a ledger alone (read back with JobLedger::ReadFile after the
// driver itself died): follows its accepted and lost jobs until each
// settles or `timeout` runs out, then closes the ledger. Submissions never
// answered cannot be resent (the ledger does not keep requests); they stay
// unanswered. Blocks; with a SimulatedClock call it from another thread.
JobResumeResult ResumeLedger(JobClient& client, JobLedger& ledger, Clock& clock, Duration timeout);

}  // namespace firedrill::workload
