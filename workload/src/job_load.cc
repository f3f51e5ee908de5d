#include "firedrill/workload/job_load.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace firedrill::workload {
namespace {

using nlohmann::json;

std::int64_t WallMillis(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch())
      .count();
}

// When the client stamped the event; its own clock's now when it did not.
MonotonicTime EventTime(const JobEvent& event, const Clock& clock) {
  return event.at == MonotonicTime{} ? clock.Now() : event.at;
}

json SummaryJson(const LedgerSummary& summary) {
  return {{"submitted", summary.submitted},
          {"accepted", summary.accepted},
          {"rejected", summary.rejected},
          {"completed", summary.completed},
          {"failed", summary.failed},
          {"lost", summary.lost},
          {"unanswered", summary.unanswered},
          {"failed_by_reason", summary.failed_by_reason},
          {"rejected_by_reason", summary.rejected_by_reason},
          {"duplicated_keys", summary.duplicated_keys},
          {"nothing_lost", summary.NothingLost()}};
}

double Seconds(Duration duration) { return std::chrono::duration<double>(duration).count(); }

// A send that is due (or held back): which phase, when it was meant to go.
struct PendingSend {
  std::size_t phase = 0;
  MonotonicTime intended{};
  std::optional<std::int64_t> user;  // closed loop
  std::optional<JobShape> shape;     // a trace's job
};

struct JobRecord {
  std::size_t phase = 0;
  MonotonicTime intended{};
  MonotonicTime sent{};
  std::optional<std::int64_t> user;
  JobSubmission submission;
  int attempts_entered = 0;
  std::string job_id;
};

// Settles a ledger's unfinished jobs through a client: the shared half of
// JobLoad::Resume and ResumeLedger.
class Resumer : public std::enable_shared_from_this<Resumer> {
 public:
  Resumer(JobClient& client, JobLedger& ledger, Clock& clock)
      : client_(client), ledger_(ledger), clock_(clock) {}

  // `resend`: unanswered submissions, by key, that can be sent again.
  void Start(Duration timeout, const std::map<std::string, JobSubmission>& resend) {
    std::vector<std::pair<std::string, std::string>> follow;  // job id, key
    std::vector<JobSubmission> submit;
    {
      std::lock_guard lock(mutex_);
      started_ = clock_.Now();
      for (const LedgerEntry& entry : ledger_.Entries()) {
        if (!entry.job_id.empty() &&
            (entry.outcome == JobOutcome::kAccepted || entry.outcome == JobOutcome::kLost)) {
          follow.emplace_back(entry.job_id, entry.key);
        } else if (entry.outcome == JobOutcome::kSubmitting) {
          const auto found = resend.find(entry.key);
          if (found == resend.end()) continue;
          submit.push_back(found->second);
          if (!ledger_.Attempt(entry.key, WallMillis(clock_)).ok()) result_.ledger_errors++;
          attempts_[entry.key] = 1;  // the client counts this resend's attempts from 1
        }
      }
      result_.followed = static_cast<std::int64_t>(follow.size());
      result_.resubmitted = static_cast<std::int64_t>(submit.size());
      outstanding_ = result_.followed + result_.resubmitted;
      if (outstanding_ == 0) {
        FinishLocked();
        return;
      }
      std::weak_ptr<Resumer> weak = weak_from_this();
      timeout_timer_ = clock_.ScheduleAfter(timeout, [weak] {
        if (auto self = weak.lock()) {
          std::lock_guard self_lock(self->mutex_);
          self->FinishLocked();
        }
      });
    }
    auto self = shared_from_this();
    for (const auto& [job_id, key] : follow) {
      client_.Follow(job_id, key, [self](const JobEvent& event) { self->OnEvent("", event); });
    }
    for (const JobSubmission& job : submit) {
      const std::string key = job.idempotency_key;
      client_.Submit(job, [self, key](const JobEvent& event) { self->OnEvent(key, event); });
    }
  }

  // The driver is going away: settle now, so late callbacks (the client's
  // shutdown reporting kLost) no longer touch the ledger or the clock.
  void Abandon() {
    std::lock_guard lock(mutex_);
    FinishLocked();
  }

  bool done() const {
    std::lock_guard lock(mutex_);
    return finished_;
  }

  JobResumeResult Wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return finished_; });
    return result_;
  }

 private:
  // `key` is set for resubmissions, empty for follows.
  void OnEvent(const std::string& key, const JobEvent& event) {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    const std::int64_t now_ms = WallMillis(clock_);
    auto enter_attempts = [&] {
      for (int& entered = attempts_[key]; entered < event.attempts; ++entered) {
        if (!ledger_.Attempt(key, now_ms).ok()) result_.ledger_errors++;
      }
    };
    auto check = [&](const Status& status) {
      if (!status.ok()) result_.ledger_errors++;
    };
    switch (event.kind) {
      case JobEvent::Kind::kAccepted:
        enter_attempts();
        check(ledger_.Accept(key, event.job_id, now_ms));
        result_.accepted++;
        return;  // its outcome follows
      case JobEvent::Kind::kRejected:
        enter_attempts();
        check(ledger_.Reject(key, event.reason, now_ms));
        result_.rejected++;
        break;
      case JobEvent::Kind::kCompleted:
        check(ledger_.Complete(event.job_id, now_ms));
        result_.completed++;
        break;
      case JobEvent::Kind::kFailed:
        check(ledger_.Fail(event.job_id, event.reason, now_ms));
        result_.failed++;
        break;
      case JobEvent::Kind::kLost:
        if (event.job_id.empty()) {
          if (!key.empty()) enter_attempts();
          result_.unanswered++;
        } else {
          result_.lost++;
        }
        break;
    }
    if (--outstanding_ == 0) FinishLocked();
  }

  void FinishLocked() {
    if (finished_) return;
    finished_ = true;
    clock_.Cancel(timeout_timer_);
    result_.outstanding = outstanding_;
    result_.ledger = ledger_.Close(WallMillis(clock_));
    result_.elapsed = clock_.Now() - started_;
    changed_.notify_all();
  }

  JobClient& client_;
  JobLedger& ledger_;
  Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool finished_ = false;
  MonotonicTime started_{};
  TimerId timeout_timer_ = 0;
  std::int64_t outstanding_ = 0;
  std::map<std::string, int> attempts_;  // entered in the ledger by this resume, by key
  JobResumeResult result_;
};

}  // namespace

// ---- the run ----

struct JobLoad::State : std::enable_shared_from_this<JobLoad::State> {
  State(JobLoadOptions options_in, JobMix mix_in, JobClient& client_in, JobLedger& ledger_in,
        Clock& clock_in)
      : options(std::move(options_in)),
        mix(std::move(mix_in)),
        client(client_in),
        ledger(ledger_in),
        clock(clock_in) {}

  // Sends prepared under the lock go to the client after it is released,
  // so a client that answers at once cannot deadlock the driver.
  struct Send {
    JobSubmission submission;
  };
  using Sends = std::vector<Send>;

  void Start() {
    std::lock_guard lock(mutex);
    if (started) return;
    started = true;
    run_start = clock.Now();
    MonotonicTime phase_at = run_start;
    for (const JobPhase& phase : options.phases) {
      phase_start.push_back(phase_at);
      phase_at += phase.duration;
      JobPhaseCounts counts;
      counts.name = phase.name;
      result.phases.push_back(counts);
      result.phase_corrected.emplace_back();
      result.phase_quality.emplace_back();
    }
    BeginPhase(0);  // every send is a timer, even one due now
  }

  void BeginPhase(std::size_t index) {
    current_phase = index;
    JobPhase& phase = options.phases[index];
    if (phase.schedule) {
      ScheduleNextArrival(index);
    } else {
      for (std::int64_t user = 0; user < phase.closed_loop->users(); ++user) {
        if (std::optional<Duration> first = phase.closed_loop->FirstSend(user)) {
          SchedulePending({index, phase_start[index] + *first, user, std::nullopt});
        }
      }
    }
    Schedule(phase_start[index] + phase.duration,
             [index](State& state, Sends&) { state.EndPhase(index); });
  }

  void ScheduleNextArrival(std::size_t index) {
    ArrivalSchedule& schedule = *options.phases[index].schedule;
    const std::optional<Duration> offset = schedule.Next();
    if (!offset) return;
    PendingSend pending{index, phase_start[index] + *offset, std::nullopt, std::nullopt};
    if (const JobShape* shape = schedule.shape()) pending.shape = *shape;
    SchedulePending(std::move(pending));
  }

  void SchedulePending(PendingSend pending) {
    const MonotonicTime at = pending.intended;
    Schedule(at,
             [pending = std::move(pending)](State& state, Sends& out) { state.Due(pending, out); });
  }

  // A clock timer that runs `action` under the lock, unless the run is over.
  void Schedule(MonotonicTime at, std::function<void(State&, Sends&)> action) {
    std::weak_ptr<State> weak = weak_from_this();
    auto id = std::make_shared<TimerId>(0);
    *id = clock.ScheduleAt(at, [weak, id, action = std::move(action)] {
      auto self = weak.lock();
      if (!self) return;
      Sends sends;
      {
        std::lock_guard lock(self->mutex);
        self->timers.erase(*id);
        if (self->finished) return;
        action(*self, sends);
      }
      self->Dispatch(sends);
    });
    timers.insert(*id);
  }

  void Due(const PendingSend& pending, Sends& sends) {
    if (pending.phase != current_phase || phase_over[pending.phase]) {
      result.phases[pending.phase].unsent++;
      return;
    }
    if (options.phases[pending.phase].schedule) ScheduleNextArrival(pending.phase);
    const std::optional<std::int64_t>& cap = options.phases[pending.phase].max_in_flight;
    if (cap && in_flight >= *cap) {
      held.push_back(pending);  // keeps its intended time
      return;
    }
    Prepare(pending, sends);
  }

  void Prepare(const PendingSend& pending, Sends& sends) {
    JobRecord record;
    record.phase = pending.phase;
    record.intended = pending.intended;
    record.user = pending.user;
    record.submission.idempotency_key = options.run_id + "-" + std::to_string(next_seq);
    record.submission.shape = pending.shape ? *pending.shape : mix.Next();
    record.submission.dataset_seed = static_cast<std::uint64_t>(next_seq) + 1;
    ++next_seq;
    const std::string& key = record.submission.idempotency_key;
    const std::int64_t now_ms = WallMillis(clock);
    if (!ledger.Submit(key, now_ms).ok() || !ledger.Attempt(key, now_ms).ok()) {
      result.ledger_errors++;
      return;
    }
    record.attempts_entered = 1;
    record.sent = clock.Now();
    in_flight++;
    result.phases[pending.phase].sent++;
    sends.push_back({record.submission});
    jobs.emplace(key, std::move(record));
  }

  void Dispatch(const Sends& sends) {
    if (sends.empty()) return;
    auto self = shared_from_this();
    for (const Send& send : sends) {
      const std::string key = send.submission.idempotency_key;
      client.Submit(send.submission,
                    [self, key](const JobEvent& event) { self->OnEvent(key, event); });
    }
  }

  void OnEvent(const std::string& key, const JobEvent& event) {
    Sends sends;
    {
      std::lock_guard lock(mutex);
      if (finished) return;
      auto found = jobs.find(key);
      if (found == jobs.end()) return;
      JobRecord& record = found->second;
      JobPhaseCounts& counts = result.phases[record.phase];
      const std::int64_t now_ms = WallMillis(clock);
      auto enter_attempts = [&] {
        for (; record.attempts_entered < event.attempts; ++record.attempts_entered) {
          if (!ledger.Attempt(key, now_ms).ok()) result.ledger_errors++;
        }
      };
      auto check = [&](const Status& status) {
        if (!status.ok()) result.ledger_errors++;
      };
      const MonotonicTime at = EventTime(event, clock);
      switch (event.kind) {
        case JobEvent::Kind::kAccepted:
          enter_attempts();
          record.job_id = event.job_id;
          check(ledger.Accept(key, event.job_id, now_ms));
          counts.accepted++;
          return;  // its outcome follows
        case JobEvent::Kind::kRejected:
          enter_attempts();
          check(ledger.Reject(key, event.reason, now_ms));
          counts.rejected++;
          recent.push_back({at, Duration::zero(), false});
          TrimRecent(at);
          break;
        case JobEvent::Kind::kCompleted:
          check(ledger.Complete(event.job_id, now_ms));
          counts.completed++;
          result.corrected.Record(at - record.intended);
          result.uncorrected.Record(at - record.sent);
          result.phase_corrected[record.phase].Record(at - record.intended);
          result.quality.Record(event.quality);
          result.phase_quality[record.phase].Record(event.quality);
          recent.push_back({at, at - record.intended, true});
          TrimRecent(at);
          for (const auto& [stage, seconds] : event.stage_seconds) {
            result.stage_seconds[stage].Record(static_cast<std::int64_t>(seconds * 1e9));
          }
          break;
        case JobEvent::Kind::kFailed:
          check(ledger.Fail(event.job_id, event.reason, now_ms));
          counts.failed++;
          recent.push_back({at, Duration::zero(), false});
          TrimRecent(at);
          break;
        case JobEvent::Kind::kLost:
          if (record.job_id.empty()) {
            // Never answered: the ledger keeps the key unanswered, and
            // Resume can send it again under the same key.
            enter_attempts();
            counts.unanswered++;
          } else {
            counts.lost++;
          }
          recent.push_back({at, Duration::zero(), false});
          TrimRecent(at);
          break;
      }
      Settled(record, at, sends);
    }
    Dispatch(sends);
  }

  void Settled(const JobRecord& record, MonotonicTime at, Sends& sends) {
    in_flight--;
    // A closed-loop user sends again after thinking, within its own phase.
    if (record.user && record.phase == current_phase && !phase_over[record.phase]) {
      const ClosedLoop& loop = *options.phases[record.phase].closed_loop;
      if (std::optional<Duration> next =
              loop.NextSend(*record.user, at - phase_start[record.phase])) {
        SchedulePending(
            {record.phase, phase_start[record.phase] + *next, record.user, std::nullopt});
      }
    }
    ReleaseHeld(sends);
    if (draining && in_flight == 0) Finish();
  }

  void ReleaseHeld(Sends& sends) {
    const std::optional<std::int64_t>& cap = options.phases[current_phase].max_in_flight;
    while (!held.empty() && (!cap || in_flight < *cap)) {
      const PendingSend pending = held.front();
      held.pop_front();
      Prepare(pending, sends);
    }
  }

  void EndPhase(std::size_t index) {
    phase_over[index] = true;
    result.phases[index].unsent += static_cast<std::int64_t>(held.size());
    held.clear();
    if (index + 1 < options.phases.size()) {
      BeginPhase(index + 1);
      return;
    }
    draining = true;
    if (in_flight == 0) {
      Finish();
      return;
    }
    Schedule(clock.Now() + options.drain_timeout, [](State& state, Sends&) { state.Finish(); });
  }

  // Completions older than this are no use to Progress's windows.
  void TrimRecent(MonotonicTime now) {
    while (!recent.empty() && (recent.size() > 100'000 || recent.front().at < now - std::chrono::hours(1))) {
      recent.pop_front();
    }
  }

  void Abort(Duration drain) {
    if (!started || finished) return;
    for (TimerId id : timers) clock.Cancel(id);
    timers.clear();
    for (std::size_t index = 0; index < options.phases.size(); ++index) phase_over[index] = true;
    result.phases[current_phase].unsent += static_cast<std::int64_t>(held.size());
    held.clear();
    draining = true;
    if (in_flight == 0) {
      Finish();
      return;
    }
    Schedule(clock.Now() + drain, [](State& state, Sends&) { state.Finish(); });
  }

  void Finish() {
    if (finished) return;
    finished = true;
    for (TimerId id : timers) clock.Cancel(id);
    timers.clear();
    result.phases[current_phase].unsent += static_cast<std::int64_t>(held.size());
    held.clear();
    result.outstanding = in_flight;
    result.ledger = ledger.Close(WallMillis(clock));
    result.elapsed = clock.Now() - run_start;
    changed.notify_all();
  }

  JobLoadOptions options;
  JobMix mix;
  JobClient& client;
  JobLedger& ledger;
  Clock& clock;

  mutable std::mutex mutex;
  std::condition_variable changed;
  bool started = false;
  bool draining = false;  // the last phase ended
  bool finished = false;
  MonotonicTime run_start{};
  std::vector<MonotonicTime> phase_start;
  std::map<std::size_t, bool> phase_over;
  std::size_t current_phase = 0;
  std::int64_t next_seq = 0;
  std::int64_t in_flight = 0;  // sent, last callback not yet heard
  std::deque<PendingSend> held;
  std::map<std::string, JobRecord> jobs;  // by key
  std::set<TimerId> timers;
  JobLoadResult result;
  struct Settlement {
    MonotonicTime at;
    Duration latency;  // corrected; completed jobs only
    bool completed;
  };
  std::deque<Settlement> recent;  // completions and failures, oldest first

  std::shared_ptr<Resumer> resumer;
};

// ---- JobLoad ----

Result<JobPhase> MakeJobPhase(std::string name, Duration duration, std::optional<std::int64_t> max_in_flight,
                              std::string_view arrival_kind, const nlohmann::json& arrival_fields, std::uint64_t seed,
                              const std::filesystem::path& base_dir) {
  JobPhase phase;
  phase.duration = duration;
  phase.max_in_flight = max_in_flight;
  if (arrival_kind == "closed") {
    Result<ClosedLoop> closed = MakeClosedLoop(arrival_fields, duration);
    if (!closed.ok()) return FD_STATUS(closed.status().code(), "phase " + name + ": " + closed.status().message());
    phase.closed_loop = *closed;
  } else {
    Result<std::unique_ptr<ArrivalSchedule>> schedule =
        MakeArrivalSchedule(arrival_kind, arrival_fields, duration, seed, base_dir);
    if (!schedule.ok()) return FD_STATUS(schedule.status().code(), "phase " + name + ": " + schedule.status().message());
    phase.schedule = std::move(*schedule);
  }
  phase.name = std::move(name);
  return phase;
}

Result<std::unique_ptr<JobLoad>> JobLoad::Make(JobLoadOptions options, JobMix mix,
                                               JobClient& client, JobLedger& ledger, Clock& clock) {
  if (options.run_id.empty()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "run id: must not be empty");
  }
  if (options.phases.empty()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "phases: a run needs at least one");
  }
  for (std::size_t i = 0; i < options.phases.size(); ++i) {
    const JobPhase& phase = options.phases[i];
    const std::string where =
        "phase " + std::to_string(i) + (phase.name.empty() ? "" : " (" + phase.name + ")") + ": ";
    if (static_cast<bool>(phase.schedule) == phase.closed_loop.has_value()) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       where + "needs exactly one of an arrival schedule and a closed loop");
    }
    if (phase.duration <= Duration::zero()) {
      return FD_STATUS(StatusCode::kInvalidArgument, where + "duration must be positive");
    }
    if (phase.max_in_flight && *phase.max_in_flight < 1) {
      return FD_STATUS(StatusCode::kInvalidArgument, where + "max_in_flight must be at least 1");
    }
  }
  if (options.drain_timeout < Duration::zero()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "drain timeout: must not be negative");
  }
  auto state = std::make_shared<State>(std::move(options), std::move(mix), client, ledger, clock);
  return std::unique_ptr<JobLoad>(new JobLoad(std::move(state)));
}

JobLoad::JobLoad(std::shared_ptr<State> state) : state_(std::move(state)) {}

JobLoad::~JobLoad() {
  // Timers and callbacks hold the state, not the driver; stop new sends.
  std::shared_ptr<Resumer> resumer;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->started && !state_->finished) state_->Finish();
    resumer = state_->resumer;
  }
  if (resumer) resumer->Abandon();
}

void JobLoad::Start() { state_->Start(); }

bool JobLoad::done() const {
  if (std::shared_ptr<Resumer> resumer = [&] {
        std::lock_guard lock(state_->mutex);
        return state_->resumer;
      }()) {
    return resumer->done();
  }
  std::lock_guard lock(state_->mutex);
  return state_->finished;
}

JobLoadResult JobLoad::Wait() {
  std::unique_lock lock(state_->mutex);
  state_->changed.wait(lock, [&] { return state_->finished; });
  return state_->result;
}

JobLoadResult JobLoad::Run() {
  Start();
  return Wait();
}

void JobLoad::Abort(Duration drain) {
  std::lock_guard lock(state_->mutex);
  state_->Abort(drain);
}

JobProgress JobLoad::Progress(Duration window, double quantile) const {
  std::lock_guard lock(state_->mutex);
  JobProgress progress;
  progress.phase = state_->current_phase;
  progress.total = state_->result.Total();
  progress.in_flight = state_->in_flight;
  progress.done = state_->finished;
  const MonotonicTime since = state_->clock.Now() - window;
  std::vector<Duration> latencies;
  for (auto it = state_->recent.rbegin(); it != state_->recent.rend() && it->at >= since; ++it) {
    if (it->completed) {
      progress.recent_completed++;
      latencies.push_back(it->latency);
    } else {
      progress.recent_failed++;
    }
  }
  if (!latencies.empty()) {
    // The nearest rank, as the histograms count it.
    const double wanted = std::ceil(std::clamp(quantile, 0.0, 1.0) * static_cast<double>(latencies.size()));
    const std::size_t rank = std::min(latencies.size() - 1, static_cast<std::size_t>(std::max(1.0, wanted)) - 1);
    std::nth_element(latencies.begin(), latencies.begin() + static_cast<std::ptrdiff_t>(rank), latencies.end());
    progress.recent_latency = latencies[rank];
  }
  return progress;
}

void JobLoad::StartResume(JobClient& client, Duration timeout) {
  std::map<std::string, JobSubmission> resend;
  std::shared_ptr<Resumer> resumer;
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& [key, record] : state_->jobs) resend.emplace(key, record.submission);
    resumer = std::make_shared<Resumer>(client, state_->ledger, state_->clock);
    state_->resumer = resumer;
  }
  resumer->Start(timeout, resend);
}

JobResumeResult JobLoad::WaitResume() {
  std::shared_ptr<Resumer> resumer;
  {
    std::lock_guard lock(state_->mutex);
    resumer = state_->resumer;
  }
  if (!resumer) return JobResumeResult{};
  return resumer->Wait();
}

JobResumeResult JobLoad::Resume(JobClient& client, Duration timeout) {
  StartResume(client, timeout);
  return WaitResume();
}

JobResumeResult ResumeLedger(JobClient& client, JobLedger& ledger, Clock& clock, Duration timeout) {
  auto resumer = std::make_shared<Resumer>(client, ledger, clock);
  resumer->Start(timeout, {});
  return resumer->Wait();
}

// ---- results ----

void QualityStats::Record(double quality) {
  min = count == 0 ? quality : std::min(min, quality);
  max = count == 0 ? quality : std::max(max, quality);
  sum += quality;
  count++;
}

JobPhaseCounts JobLoadResult::Total() const {
  JobPhaseCounts total;
  total.name = "total";
  for (const JobPhaseCounts& phase : phases) {
    total.sent += phase.sent;
    total.accepted += phase.accepted;
    total.rejected += phase.rejected;
    total.completed += phase.completed;
    total.failed += phase.failed;
    total.lost += phase.lost;
    total.unanswered += phase.unanswered;
    total.unsent += phase.unsent;
  }
  return total;
}

json JobLoadResult::ToJson() const {
  auto counts_json = [](const JobPhaseCounts& counts) {
    return json{{"name", counts.name},           {"sent", counts.sent},
                {"accepted", counts.accepted},   {"rejected", counts.rejected},
                {"completed", counts.completed}, {"failed", counts.failed},
                {"lost", counts.lost},           {"unanswered", counts.unanswered},
                {"unsent", counts.unsent}};
  };
  json phases_json = json::array();
  for (const JobPhaseCounts& phase : phases) phases_json.push_back(counts_json(phase));
  json stages = json::object();
  for (const auto& [stage, histogram] : stage_seconds) stages[stage] = histogram.ToJson();
  json phase_latency = json::object();
  for (std::size_t i = 0; i < phases.size() && i < phase_corrected.size(); ++i) {
    phase_latency[phases[i].name] = phase_corrected[i].ToJson();
  }
  return {{"phases", phases_json},
          {"total", counts_json(Total())},
          {"latency", {{"corrected", corrected.ToJson()}, {"uncorrected", uncorrected.ToJson()}}},
          {"phase_latency", phase_latency},
          {"quality", {{"count", quality.count}, {"mean", quality.mean()}, {"min", quality.min}, {"max", quality.max}}},
          {"stage_seconds", stages},
          {"outstanding", outstanding},
          {"ledger_errors", ledger_errors},
          {"elapsed_seconds", Seconds(elapsed)},
          {"ledger", SummaryJson(ledger)}};
}

json JobResumeResult::ToJson() const {
  return {{"followed", followed},
          {"resubmitted", resubmitted},
          {"accepted", accepted},
          {"rejected", rejected},
          {"completed", completed},
          {"failed", failed},
          {"lost", lost},
          {"unanswered", unanswered},
          {"outstanding", outstanding},
          {"ledger_errors", ledger_errors},
          {"elapsed_seconds", Seconds(elapsed)},
          {"ledger", SummaryJson(ledger)}};
}

}  // namespace firedrill::workload
