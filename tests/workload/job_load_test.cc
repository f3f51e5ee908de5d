// The job driver and the HTTP job client. JobLoad's own logic runs on a
// SimulatedClock against a fake client written here; HttpJobClient runs
// against the real hsof-pipeline binary; and the kill test runs JobLoad over
// HttpJobClient, SIGKILLs the pipeline mid-run, checks the ledger against
// what the restarted pipeline really holds, and resumes the run.
#include "firedrill/workload/job_load.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../net/http_client.h"
#include "../net/loopback.h"
#include "../pipeline/spawn.h"
#include "firedrill/net/http_server.h"
#include "firedrill/workload/http_job_client.h"

namespace firedrill::workload {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::BlackHole;
using testing::ClosedPort;
using testing::HttpCall;
using testing::SpawnedPipeline;
using testing::SpawnPipeline;

// ---------------------------------------------------------------------------
// JobLoad on a SimulatedClock, against a fake client.

// What the fake does with one submission.
struct FakePlan {
  Duration accept_after = 5ms;
  Duration run_for = 100ms;                             // after acceptance
  JobEvent::Kind outcome = JobEvent::Kind::kCompleted;  // or kRejected, kFailed, kLost
  bool unanswered = false;                              // kLost with no job id instead of an answer
  bool never_finish = false;                            // accepted, then silence
  int attempts = 1;
};

// Answers on clock timers, so a test's AdvanceToNextTimer runs everything on
// its own thread, in a defined order.
class FakeJobClient final : public JobClient {
 public:
  using Planner = std::function<FakePlan(const JobSubmission&)>;
  FakeJobClient(SimulatedClock& clock, Planner planner, std::string prefix = "job")
      : clock_(clock), planner_(std::move(planner)), prefix_(std::move(prefix)) {}

  void Submit(const JobSubmission& job, JobCallback callback) override {
    const FakePlan plan = planner_(job);
    const std::string job_id = prefix_ + "-" + std::to_string(next_id_++);
    submissions.push_back(job);
    submitted_at.push_back(clock_.Now());
    ++in_flight_;
    clock_.ScheduleAfter(plan.accept_after, [this, plan, job_id, callback] {
      if (plan.unanswered) {
        Finish(callback, Event(JobEvent::Kind::kLost, "", "outcome unknown", plan));
        return;
      }
      if (plan.outcome == JobEvent::Kind::kRejected) {
        Finish(callback, Event(JobEvent::Kind::kRejected, "", "HTTP 400: no", plan));
        return;
      }
      callback(Event(JobEvent::Kind::kAccepted, job_id, "", plan));
      if (plan.never_finish) return;
      clock_.ScheduleAfter(plan.run_for, [this, plan, job_id, callback] {
        JobEvent done =
            Event(plan.outcome, job_id,
                  plan.outcome == JobEvent::Kind::kFailed ? "stage 2: injected" : "", plan);
        if (plan.outcome == JobEvent::Kind::kCompleted) {
          done.stage_seconds = {{"stage1", 0.01}, {"stage2", 0.05}, {"stage3", 0.002}};
          done.quality = 0.9;
        }
        Finish(callback, done);
      });
    });
  }

  void Follow(const std::string& job_id, const std::string&, JobCallback callback) override {
    followed.push_back(job_id);
    ++in_flight_;
    clock_.ScheduleAfter(10ms, [this, job_id, callback] {
      Finish(callback, Event(JobEvent::Kind::kCompleted, job_id, "", FakePlan{}));
    });
    if (on_follow) on_follow();
  }

  std::int64_t in_flight() const override { return in_flight_; }
  void Shutdown() override {}

  std::vector<JobSubmission> submissions;
  std::vector<MonotonicTime> submitted_at;
  std::vector<std::string> followed;
  std::function<void()> on_follow;  // runs once a follow is on the clock

 private:
  JobEvent Event(JobEvent::Kind kind, const std::string& job_id, const std::string& reason,
                 const FakePlan& plan) const {
    JobEvent event;
    event.kind = kind;
    event.job_id = job_id;
    event.reason = reason;
    event.attempts = plan.attempts;
    event.at = clock_.Now();
    return event;
  }
  void Finish(const JobCallback& callback, const JobEvent& event) {
    callback(event);
    --in_flight_;
  }

  SimulatedClock& clock_;
  Planner planner_;
  std::string prefix_;
  int next_id_ = 1;
  std::int64_t in_flight_ = 0;
};

std::uint64_t Seq(const JobSubmission& job) {
  return std::stoull(job.idempotency_key.substr(job.idempotency_key.rfind('-') + 1));
}

JobMix SmallJobs(std::uint64_t seed = 1) {
  JobKind kind;
  kind.shape.samples = 200;
  kind.shape.features = 40;
  kind.shape.informative = 4;
  kind.shape.mode = JobMode::kFast;
  return JobMix::Make({kind}, seed).value();
}

JobPhase ConstantPhase(std::string name, double per_second, Duration length,
                       std::optional<std::int64_t> cap = std::nullopt) {
  JobPhase phase;
  phase.name = std::move(name);
  phase.schedule = ConstantArrivals(Rate{per_second}, length);
  phase.duration = length;
  phase.max_in_flight = cap;
  return phase;
}

std::unique_ptr<JobLoad> MakeLoad(std::vector<JobPhase> phases, JobClient& client,
                                  JobLedger& ledger, Clock& clock, Duration drain_timeout = 10s) {
  JobLoadOptions options;
  options.phases = std::move(phases);
  options.run_id = "run";
  options.drain_timeout = drain_timeout;
  auto load = JobLoad::Make(std::move(options), SmallJobs(), client, ledger, clock);
  EXPECT_TRUE(load.ok()) << load.status();
  return std::move(load).value();
}

// Advances simulated time until the run (or resume) is done.
void DriveToEnd(SimulatedClock& clock, JobLoad& load) {
  for (int step = 0; step < 1'000'000 && !load.done(); ++step) {
    ASSERT_TRUE(clock.AdvanceToNextTimer()) << "no timer pending, yet not done";
  }
  ASSERT_TRUE(load.done());
}

void ExpectSameSummary(const LedgerSummary& a, const LedgerSummary& b) {
  EXPECT_EQ(a.submitted, b.submitted);
  EXPECT_EQ(a.accepted, b.accepted);
  EXPECT_EQ(a.rejected, b.rejected);
  EXPECT_EQ(a.completed, b.completed);
  EXPECT_EQ(a.failed, b.failed);
  EXPECT_EQ(a.lost, b.lost);
  EXPECT_EQ(a.unanswered, b.unanswered);
  EXPECT_EQ(a.failed_by_reason, b.failed_by_reason);
  EXPECT_EQ(a.rejected_by_reason, b.rejected_by_reason);
  EXPECT_EQ(a.duplicated_keys, b.duplicated_keys);
}

TEST(JobLoad, SendsAtIntendedTimesAndMeasuresFromThem) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission&) { return FakePlan{}; });
  JobLedger ledger;
  std::vector<JobPhase> phases;
  phases.push_back(ConstantPhase("steady", 10, 2s));
  auto load = MakeLoad(std::move(phases), client, ledger, clock);
  const MonotonicTime start = clock.Now();
  load->Start();
  DriveToEnd(clock, *load);
  const JobLoadResult result = load->Wait();

  ASSERT_EQ(client.submissions.size(), 20u);
  for (std::size_t k = 0; k < 20; ++k) {
    EXPECT_EQ(client.submissions[k].idempotency_key, "run-" + std::to_string(k));
    EXPECT_EQ(client.submitted_at[k] - start, 50ms + k * 100ms) << k;
    EXPECT_EQ(client.submissions[k].shape.samples, 200);
    EXPECT_EQ(client.submissions[k].dataset_seed, k + 1);
  }
  ASSERT_EQ(result.phases.size(), 1u);
  EXPECT_EQ(result.phases[0].name, "steady");
  EXPECT_EQ(result.phases[0].sent, 20);
  EXPECT_EQ(result.phases[0].accepted, 20);
  EXPECT_EQ(result.phases[0].completed, 20);
  EXPECT_EQ(result.outstanding, 0);
  EXPECT_EQ(result.ledger_errors, 0);
  EXPECT_EQ(result.corrected.count(), 20u);
  EXPECT_EQ(result.corrected.min(), std::chrono::nanoseconds(105ms).count());
  EXPECT_EQ(result.corrected.max(), std::chrono::nanoseconds(105ms).count());
  EXPECT_EQ(result.uncorrected.max(), std::chrono::nanoseconds(105ms).count());
  ASSERT_EQ(result.stage_seconds.size(), 3u);
  EXPECT_EQ(result.stage_seconds.at("stage2").count(), 20u);
  // The run ends as the last job completes: 1.95 s + 105 ms.
  EXPECT_EQ(result.elapsed, 2055ms);
  EXPECT_EQ(result.ledger.completed, 20);
  EXPECT_TRUE(result.ledger.NothingLost());
  ExpectSameSummary(result.ledger, ledger.Summary());
  for (const LedgerEntry& entry : ledger.Entries()) EXPECT_EQ(entry.attempts, 1);

  const json out = result.ToJson();
  EXPECT_EQ(out["phases"][0]["completed"], 20);
  EXPECT_EQ(out["total"]["sent"], 20);
  EXPECT_EQ(out["ledger"]["nothing_lost"], true);
  EXPECT_EQ(out["latency"]["corrected"]["total"], 20);
}

TEST(JobLoad, HeldBackSendsKeepTheirIntendedTime) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission&) {
    FakePlan plan;
    plan.run_for = 250ms;
    return plan;
  });
  JobLedger ledger;
  std::vector<JobPhase> phases;
  phases.push_back(ConstantPhase("capped", 10, 1s, 1));
  auto load = MakeLoad(std::move(phases), client, ledger, clock);
  const MonotonicTime start = clock.Now();
  load->Start();
  DriveToEnd(clock, *load);
  const JobLoadResult result = load->Wait();

  // One at a time, 255 ms each: sends at 50, 305, 560 and 815 ms; the six
  // still held when the phase ends at 1 s are not sent.
  ASSERT_EQ(client.submitted_at.size(), 4u);
  EXPECT_EQ(client.submitted_at[1] - start, 305ms);
  EXPECT_EQ(client.submitted_at[3] - start, 815ms);
  EXPECT_EQ(result.phases[0].sent, 4);
  EXPECT_EQ(result.phases[0].unsent, 6);
  EXPECT_EQ(result.uncorrected.max(), std::chrono::nanoseconds(255ms).count());
  // The fourth send was meant for 350 ms and completed at 1070 ms.
  EXPECT_EQ(result.corrected.max(), std::chrono::nanoseconds(720ms).count());
  EXPECT_EQ(result.ledger.submitted, 4);
  EXPECT_TRUE(result.ledger.NothingLost());
}

TEST(JobLoad, PhasesRunBackToBackAndCountEveryFate) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission& job) {
    FakePlan plan;
    const std::uint64_t seq = Seq(job);
    if (seq % 7 == 3) plan.outcome = JobEvent::Kind::kRejected;
    if (seq % 5 == 1) plan.outcome = JobEvent::Kind::kFailed;
    if (seq == 4) plan.attempts = 3;
    return plan;
  });
  JobLedger ledger;
  std::vector<JobPhase> phases;
  phases.push_back(ConstantPhase("warm", 10, 1s));
  phases.push_back(ConstantPhase("peak", 20, 1s));
  auto load = MakeLoad(std::move(phases), client, ledger, clock);
  const MonotonicTime start = clock.Now();
  load->Start();
  DriveToEnd(clock, *load);
  const JobLoadResult result = load->Wait();

  ASSERT_EQ(client.submissions.size(), 30u);
  EXPECT_EQ(client.submitted_at[10] - start, 1025ms);  // phase two's first send
  EXPECT_EQ(client.submissions[10].idempotency_key, "run-10");
  std::int64_t rejected[2] = {0, 0};
  std::int64_t failed[2] = {0, 0};
  for (std::uint64_t seq = 0; seq < 30; ++seq) {
    const int phase = seq < 10 ? 0 : 1;
    if (seq % 5 == 1) {
      failed[phase]++;
    } else if (seq % 7 == 3) {
      rejected[phase]++;
    }
  }
  for (int phase = 0; phase < 2; ++phase) {
    const JobPhaseCounts& counts = result.phases[phase];
    const std::int64_t sent = phase == 0 ? 10 : 20;
    EXPECT_EQ(counts.sent, sent);
    EXPECT_EQ(counts.rejected, rejected[phase]);
    EXPECT_EQ(counts.failed, failed[phase]);
    EXPECT_EQ(counts.accepted, sent - rejected[phase]);
    EXPECT_EQ(counts.completed, sent - rejected[phase] - failed[phase]);
  }
  const JobPhaseCounts total = result.Total();
  EXPECT_EQ(result.ledger.submitted, 30);
  EXPECT_EQ(result.ledger.accepted, total.accepted);
  EXPECT_EQ(result.ledger.rejected, total.rejected);
  EXPECT_EQ(result.ledger.failed, total.failed);
  EXPECT_EQ(result.ledger.completed, total.completed);
  EXPECT_EQ(result.ledger.failed_by_reason.at("stage 2: injected"), total.failed);
  EXPECT_EQ(ledger.Entries()[4].attempts, 3);
}

TEST(JobLoad, EachPhaseHasItsOwnLatencyAndProgressSeesTheRecentWindow) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission& job) {
    FakePlan plan;
    plan.run_for = Seq(job) < 10 ? 100ms : 400ms;  // the second phase is slower
    if (Seq(job) == 12) plan.outcome = JobEvent::Kind::kFailed;
    return plan;
  });
  JobLedger ledger;
  std::vector<JobPhase> phases;
  phases.push_back(ConstantPhase("fast", 10, 1s));
  phases.push_back(ConstantPhase("slow", 10, 1s));
  auto load = MakeLoad(std::move(phases), client, ledger, clock);
  load->Start();
  clock.Advance(1900ms);
  const JobProgress midway = load->Progress(500ms);
  EXPECT_EQ(midway.phase, 1u);
  EXPECT_FALSE(midway.done);
  EXPECT_EQ(midway.total.sent, 19);
  // Completions in (1.4 s, 1.9 s]: jobs 10..14 of the slow phase, one failed.
  EXPECT_EQ(midway.recent_completed, 4);
  EXPECT_EQ(midway.recent_failed, 1);
  EXPECT_EQ(midway.recent_latency, 405ms);
  EXPECT_EQ(load->Progress(500ms, 0.5).recent_latency, 405ms);
  DriveToEnd(clock, *load);
  const JobLoadResult result = load->Wait();
  ASSERT_EQ(result.phase_corrected.size(), 2u);
  EXPECT_EQ(result.phase_corrected[0].count(), 10u);
  EXPECT_EQ(result.phase_corrected[1].count(), 9u);
  EXPECT_NEAR(result.phase_corrected[0].ValueAtQuantile(0.99), 105e6, 105e3);
  EXPECT_NEAR(result.phase_corrected[1].ValueAtQuantile(0.99), 405e6, 405e3);
  EXPECT_EQ(result.quality.count, 19);
  EXPECT_DOUBLE_EQ(result.quality.mean(), 0.9);
  EXPECT_TRUE(result.ToJson()["phase_latency"].contains("slow"));
}

TEST(JobLoad, AbortStopsSendingAndClosesTheLedgerAfterTheDrain) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission& job) {
    FakePlan plan;
    plan.never_finish = Seq(job) == 4;  // one job that will not settle by itself
    return plan;
  });
  JobLedger ledger;
  std::vector<JobPhase> phases;
  phases.push_back(ConstantPhase("only", 10, 10s));
  auto load = MakeLoad(std::move(phases), client, ledger, clock);
  load->Start();
  clock.Advance(550ms);
  load->Abort(2s);
  clock.Advance(1s);
  EXPECT_FALSE(load->done()) << "job 4 is still in flight within the drain";
  clock.Advance(1500ms);
  ASSERT_TRUE(load->done());
  const JobLoadResult result = load->Wait();
  EXPECT_EQ(client.submissions.size(), 6u) << "no sends after the abort";
  EXPECT_EQ(result.phases[0].sent, 6);
  EXPECT_EQ(result.ledger.lost, 1);
  EXPECT_EQ(result.ledger.completed, 5);
}

TEST(JobLoad, ClosedLoopUsersSendAgainAfterThinking) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission&) {
    FakePlan plan;
    plan.run_for = 50ms;
    return plan;
  });
  JobLedger ledger;
  std::vector<JobPhase> phases;
  JobPhase phase;
  phase.name = "users";
  phase.closed_loop.emplace(2, 100ms, 1s);
  phase.duration = 1s;
  phases.push_back(std::move(phase));
  auto load = MakeLoad(std::move(phases), client, ledger, clock);
  load->Start();
  DriveToEnd(clock, *load);
  const JobLoadResult result = load->Wait();

  // Each user's cycle: 55 ms for the job, then 100 ms of thought.
  const ClosedLoop loop(2, 100ms, 1s);
  std::int64_t expected = 0;
  for (std::int64_t user = 0; user < 2; ++user) {
    for (std::optional<Duration> at = loop.FirstSend(user); at;
         at = loop.NextSend(user, *at + 55ms)) {
      ++expected;
    }
  }
  EXPECT_GT(expected, 10);
  EXPECT_EQ(result.phases[0].sent, expected);
  EXPECT_EQ(result.phases[0].completed, expected);
  EXPECT_EQ(result.uncorrected.max(), std::chrono::nanoseconds(55ms).count());
}

TEST(JobLoad, DrainTimeoutLeavesJobsLostAndResumeSettlesThem) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission& job) {
    FakePlan plan;
    if (Seq(job) == 1) plan.never_finish = true;
    if (Seq(job) == 2) plan.unanswered = true;
    return plan;
  });
  JobLedger ledger;
  std::vector<JobPhase> phases;
  phases.push_back(ConstantPhase("steady", 10, 500ms));
  auto load = MakeLoad(std::move(phases), client, ledger, clock, 3s);
  const MonotonicTime start = clock.Now();
  load->Start();
  DriveToEnd(clock, *load);
  const JobLoadResult result = load->Wait();

  EXPECT_EQ(result.elapsed, clock.Now() - start);
  EXPECT_EQ(result.elapsed, 3500ms);  // the phase, then the whole drain timeout
  EXPECT_EQ(result.outstanding, 1);
  EXPECT_EQ(result.phases[0].unanswered, 1);
  EXPECT_EQ(result.ledger.submitted, 5);
  EXPECT_EQ(result.ledger.accepted, 4);
  EXPECT_EQ(result.ledger.completed, 3);
  EXPECT_EQ(result.ledger.lost, 1);
  EXPECT_EQ(result.ledger.unanswered, 1);
  EXPECT_FALSE(result.ledger.NothingLost());

  // The pipeline came back (a new client): the lost job is followed, the
  // unanswered one is sent again under its key.
  FakeJobClient after(
      clock, [](const JobSubmission&) { return FakePlan{}; }, "again");
  load->StartResume(after, 10s);
  DriveToEnd(clock, *load);
  const JobResumeResult resumed = load->WaitResume();
  EXPECT_EQ(after.followed, std::vector<std::string>{"job-2"});
  ASSERT_EQ(after.submissions.size(), 1u);
  EXPECT_EQ(after.submissions[0].idempotency_key, "run-2");
  EXPECT_EQ(after.submissions[0].dataset_seed, 3u);
  EXPECT_EQ(resumed.followed, 1);
  EXPECT_EQ(resumed.resubmitted, 1);
  EXPECT_EQ(resumed.accepted, 1);
  EXPECT_EQ(resumed.completed, 2);
  EXPECT_EQ(resumed.outstanding, 0);
  EXPECT_EQ(resumed.ledger.completed, 5);
  EXPECT_EQ(resumed.ledger.accepted, 5);
  EXPECT_TRUE(resumed.ledger.NothingLost()) << resumed.ledger.ToString();
  EXPECT_EQ(resumed.ToJson()["ledger"]["nothing_lost"], true);
  EXPECT_EQ(ledger.Entries()[2].attempts, 2);  // the first send and the resend
}

TEST(JobLoad, ResumeLedgerFollowsAReadBackLedger) {
  JobLedger ledger;
  ASSERT_TRUE(ledger.Submit("a", 1).ok());
  ASSERT_TRUE(ledger.Accept("a", "7", 2).ok());
  ASSERT_TRUE(ledger.Submit("b", 1).ok());
  ledger.Close(3);
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission&) { return FakePlan{}; });
  std::promise<void> following;
  client.on_follow = [&] { following.set_value(); };
  JobResumeResult resumed;
  std::thread resume([&] { resumed = ResumeLedger(client, ledger, clock, 5s); });
  // ResumeLedger blocks: advance time once its follow is on the clock.
  ASSERT_EQ(following.get_future().wait_for(10s), std::future_status::ready);
  while (clock.PendingTimers() > 0) clock.AdvanceToNextTimer();
  resume.join();
  EXPECT_EQ(resumed.followed, 1);
  EXPECT_EQ(resumed.resubmitted, 0);  // the ledger does not keep requests
  EXPECT_EQ(resumed.ledger.completed, 1);
  EXPECT_EQ(resumed.ledger.unanswered, 1);
}

TEST(JobLoad, MakeNamesWhatIsWrong) {
  SimulatedClock clock;
  FakeJobClient client(clock, [](const JobSubmission&) { return FakePlan{}; });
  JobLedger ledger;
  JobLoadOptions options;
  options.run_id = "r";
  JobPhase empty;
  empty.name = "nothing";
  empty.duration = 1s;
  options.phases.push_back(std::move(empty));
  auto load = JobLoad::Make(std::move(options), SmallJobs(), client, ledger, clock);
  ASSERT_FALSE(load.ok());
  EXPECT_EQ(load.status().message(),
            "phase 0 (nothing): needs exactly one of an arrival schedule and a closed loop");

  JobLoadOptions capped;
  capped.run_id = "r";
  capped.phases.push_back(ConstantPhase("zero", 1, 1s, 0));
  load = JobLoad::Make(std::move(capped), SmallJobs(), client, ledger, clock);
  ASSERT_FALSE(load.ok());
  EXPECT_EQ(load.status().message(), "phase 0 (zero): max_in_flight must be at least 1");
}

// ---------------------------------------------------------------------------
// HttpJobClient against the real pipeline.

// Collects a client's callbacks; waits for them with a bounded timeout.
class Events {
 public:
  JobCallback Callback() {
    return [this](const JobEvent& event) {
      std::lock_guard lock(mutex_);
      events_.push_back(event);
      changed_.notify_all();
    };
  }
  // True once `count` events arrived.
  bool WaitFor(std::size_t count, Duration timeout = 30s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return events_.size() >= count; });
  }
  std::vector<JobEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<JobEvent> events_;
};

std::string TempDirectory(const char* name) {
  std::string pattern = std::string("/tmp/firedrill-") + name + "-XXXXXX";
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

SpawnedPipeline Spawn(const std::string& directory, int workers, std::vector<std::string> more = {},
                      const std::map<std::string, std::string>& environment = {}) {
  std::vector<std::string> flags = {"--backend",       "cpu", "--workers", std::to_string(workers),
                                    "--device-memory", "1GiB"};
  flags.insert(flags.end(), more.begin(), more.end());
  return SpawnPipeline(directory, flags, environment);
}

void KillPipeline(const SpawnedPipeline& pipeline) {
  kill(pipeline.pid, SIGKILL);
  int status = 0;
  waitpid(pipeline.pid, &status, 0);
}

std::unique_ptr<JobClient> Client(HttpJobClientOptions options) {
  auto client = MakeHttpJobClient(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(client).value();
}

JobSubmission SmallJob(const std::string& key, std::uint64_t seed = 1) {
  JobSubmission job;
  job.idempotency_key = key;
  job.shape.samples = 200;
  job.shape.features = 40;
  job.shape.informative = 4;
  job.shape.mode = JobMode::kFast;
  job.dataset_seed = seed;
  return job;
}

class HttpJobClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new std::string(TempDirectory("httpjobs"));
    pipeline_ = new SpawnedPipeline(Spawn(*directory_, 2));
  }
  static void TearDownTestSuite() {
    testing::TerminatePipeline(*pipeline_);
    std::filesystem::remove_all(*directory_);
    delete pipeline_;
    delete directory_;
  }
  void SetUp() override { ASSERT_FALSE(pipeline_->ports.is_discarded()); }

  static HttpJobClientOptions Options() {
    HttpJobClientOptions options;
    options.base_url = pipeline_->http();
    return options;
  }

  static std::string* directory_;
  static SpawnedPipeline* pipeline_;
};
std::string* HttpJobClientTest::directory_ = nullptr;
SpawnedPipeline* HttpJobClientTest::pipeline_ = nullptr;

TEST_F(HttpJobClientTest, AcceptedThenCompletedWithStageSeconds) {
  auto client = Client(Options());
  Events events;
  client->Submit(SmallJob("complete-1"), events.Callback());
  ASSERT_TRUE(events.WaitFor(2));
  const std::vector<JobEvent> seen = events.events();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].kind, JobEvent::Kind::kAccepted);
  EXPECT_FALSE(seen[0].job_id.empty());
  EXPECT_EQ(seen[0].attempts, 1);
  EXPECT_EQ(seen[1].kind, JobEvent::Kind::kCompleted) << seen[1].reason;
  EXPECT_EQ(seen[1].job_id, seen[0].job_id);
  ASSERT_EQ(seen[1].stage_seconds.size(), 3u);
  for (const auto& [stage, seconds] : seen[1].stage_seconds) EXPECT_GT(seconds, 0) << stage;
  EXPECT_GT(seen[1].quality, 0);
  EXPECT_LE(seen[0].at, seen[1].at);
  EXPECT_EQ(client->in_flight(), 0);

  // The pipeline holds the request the client sent.
  const auto job = HttpCall("GET", pipeline_->http() + "/v1/jobs/" + seen[0].job_id);
  ASSERT_EQ(job.status, 200);
  const json body = json::parse(job.body);
  EXPECT_EQ(body["idempotency_key"], "complete-1");
  EXPECT_EQ(body["request"]["mode"], "fast");
  EXPECT_EQ(body["request"]["dataset"]["samples"], 200);
  EXPECT_EQ(body["request"]["dataset"]["informative"], 4);
}

TEST_F(HttpJobClientTest, TheSameKeyTwiceIsTheSameJob) {
  auto client = Client(Options());
  Events first;
  Events second;
  client->Submit(SmallJob("twice-1", 5), first.Callback());
  ASSERT_TRUE(first.WaitFor(1));
  client->Submit(SmallJob("twice-1", 5), second.Callback());
  ASSERT_TRUE(first.WaitFor(2));
  ASSERT_TRUE(second.WaitFor(2));
  EXPECT_EQ(first.events()[0].kind, JobEvent::Kind::kAccepted);
  EXPECT_EQ(second.events()[0].kind, JobEvent::Kind::kAccepted);
  EXPECT_EQ(first.events()[0].job_id, second.events()[0].job_id);
  EXPECT_EQ(second.events()[1].kind, JobEvent::Kind::kCompleted);
}

TEST_F(HttpJobClientTest, AnInvalidShapeIsRejectedNamingTheField) {
  auto client = Client(Options());
  Events events;
  JobSubmission job = SmallJob("invalid-1");
  job.shape.samples = 5;
  client->Submit(job, events.Callback());
  ASSERT_TRUE(events.WaitFor(1));
  const JobEvent event = events.events()[0];
  EXPECT_EQ(event.kind, JobEvent::Kind::kRejected);
  EXPECT_EQ(event.reason,
            "HTTP 400: field 'dataset.samples': expected an integer in [16, 1000000], got 5");
  EXPECT_EQ(event.attempts, 1);  // a 400 is not retried

  // The key now names another request: 409, not retried either.
  Events conflict;
  client->Submit(SmallJob("twice-conflict", 1), events.Callback());
  ASSERT_TRUE(events.WaitFor(3));
  client->Submit(SmallJob("twice-conflict", 2), conflict.Callback());
  ASSERT_TRUE(conflict.WaitFor(1));
  EXPECT_EQ(conflict.events()[0].kind, JobEvent::Kind::kRejected);
  EXPECT_EQ(conflict.events()[0].reason.rfind("HTTP 409: ", 0), 0u) << conflict.events()[0].reason;
}

TEST_F(HttpJobClientTest, FollowingAnUnknownJobIsLost) {
  auto client = Client(Options());
  Events events;
  client->Follow("999999", "", events.Callback());
  ASSERT_TRUE(events.WaitFor(1));
  EXPECT_EQ(events.events()[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(events.events()[0].reason, "job not found");
  EXPECT_EQ(events.events()[0].job_id, "999999");

  // A real job followed under a key it was not accepted under is not ours.
  Events mine;
  client->Submit(SmallJob("follow-key-1"), mine.Callback());
  ASSERT_TRUE(mine.WaitFor(2));
  const std::string id = mine.events()[0].job_id;
  Events followed;
  client->Follow(id, "follow-key-1", followed.Callback());
  Events other;
  client->Follow(id, "someone-else", other.Callback());
  ASSERT_TRUE(followed.WaitFor(1));
  ASSERT_TRUE(other.WaitFor(1));
  EXPECT_EQ(followed.events()[0].kind, JobEvent::Kind::kCompleted) << followed.events()[0].reason;
  EXPECT_EQ(other.events()[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(other.events()[0].reason, AnotherJob(id, "follow-key-1"));
}

// After a restore from an older backup, the pipeline hands a lost job's id
// to a new job: following it must not credit the other job's completion.
// A loopback server answers as such a pipeline would, at the exact moment.
TEST(HttpJobClient, AJobWhoseIdNowHoldsAnotherKeyIsLostNotCompleted) {
  auto server = net::HttpServer::Start({}, [](const net::HttpRequest& request) {
    net::HttpResponse response;
    if (request.method == "POST") {
      response.status = 202;
      response.body = R"({"id": 7, "idempotency_key": "mine", "state": "queued"})";
    } else {
      response.body = R"({"id": 7, "idempotency_key": "someone-else", "state": "completed", "result": {"quality": 0.9}})";
    }
    return response;
  });
  ASSERT_TRUE(server.ok()) << server.status();
  HttpJobClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string((*server)->port());
  auto client = Client(options);
  Events events;
  client->Submit(SmallJob("mine"), events.Callback());
  ASSERT_TRUE(events.WaitFor(2));
  const std::vector<JobEvent> seen = events.events();
  EXPECT_EQ(seen[0].kind, JobEvent::Kind::kAccepted);
  EXPECT_EQ(seen[1].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(seen[1].reason, AnotherJob("7", "someone-else"));
  EXPECT_EQ(seen[1].reason.rfind("job 7 now holds another job (key someone-else)", 0), 0u) << seen[1].reason;
}

TEST_F(HttpJobClientTest, ManyJobsShareAFewConnections) {
  HttpJobClientOptions options = Options();
  options.max_connections = 3;
  // Long polls hold the connections for seconds. A submission waiting for a
  // free one must not spend its own timeout waiting (libcurl's queue would):
  // one attempt of 250 ms each is enough for every job.
  options.submit_timeout = std::chrono::milliseconds(250);
  options.max_attempts = 1;
  auto client = Client(options);
  constexpr int kJobs = 24;
  std::vector<Events> events(kJobs);
  for (int i = 0; i < kJobs; ++i) {
    client->Submit(SmallJob("many-" + std::to_string(i), i + 1), events[i].Callback());
  }
  std::set<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(events[i].WaitFor(2)) << i;
    EXPECT_EQ(events[i].events()[0].kind, JobEvent::Kind::kAccepted) << i << ": " << events[i].events()[0].reason;
    EXPECT_EQ(events[i].events()[1].kind, JobEvent::Kind::kCompleted) << i;
    ids.insert(events[i].events()[0].job_id);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(client->in_flight(), 0);
}

TEST(HttpJobClient, AClosedPortIsRejectedAfterTheLastAttempt) {
  HttpJobClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  options.max_attempts = 3;
  options.backoff = 20ms;
  auto client = Client(options);
  Events events;
  const auto start = std::chrono::steady_clock::now();
  client->Submit(SmallJob("refused-1"), events.Callback());
  ASSERT_TRUE(events.WaitFor(1));
  const JobEvent event = events.events()[0];
  EXPECT_EQ(event.kind, JobEvent::Kind::kRejected) << event.reason;
  EXPECT_EQ(event.attempts, 3);
  EXPECT_EQ(event.reason, "Couldn't connect to server");
  // Two backoffs: 20 ms, then 40 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 60ms);
}

TEST(HttpJobClient, ShutdownGivesUpOnWhatIsInFlightPromptly) {
  BlackHole hole;
  HttpJobClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(hole.port);
  auto client = Client(options);
  Events submitted;
  Events followed;
  client->Submit(SmallJob("hole-1"), submitted.Callback());
  client->Follow("12", "", followed.Callback());
  EXPECT_EQ(client->in_flight(), 2);
  // Shut down once the client has connected: its requests are out there.
  ASSERT_TRUE(hole.Connected(10'000));
  const auto start = std::chrono::steady_clock::now();
  client->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_TRUE(submitted.WaitFor(1, 0s));
  ASSERT_TRUE(followed.WaitFor(1, 0s));
  EXPECT_EQ(submitted.events()[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(submitted.events()[0].reason, "client shut down");
  EXPECT_TRUE(submitted.events()[0].job_id.empty());
  EXPECT_EQ(followed.events()[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(followed.events()[0].job_id, "12");
  EXPECT_EQ(client->in_flight(), 0);
  // After shutdown: answered at once, on this thread.
  Events late;
  client->Submit(SmallJob("hole-2"), late.Callback());
  ASSERT_TRUE(late.WaitFor(1, 0s));
  EXPECT_EQ(late.events()[0].reason, "client shut down");
  client->Shutdown();  // idempotent
}

TEST(HttpJobClient, MakeRejectsBadOptions) {
  HttpJobClientOptions options;
  options.base_url = "ftp://x";
  EXPECT_EQ(MakeHttpJobClient(options).status().code(), StatusCode::kInvalidArgument);
  options.base_url = "http://127.0.0.1:1";
  options.max_attempts = 0;
  EXPECT_EQ(MakeHttpJobClient(options).status().message(), "max_attempts: must be at least 1");
}

TEST(HttpJobClient, JobRequestBodyFollowsTheApi) {
  JobSubmission job = SmallJob("body-1", 9);
  EXPECT_EQ(json::parse(JobRequestBody(job)),
            json::parse(R"({"idempotency_key":"body-1","mode":"fast","dataset":
              {"samples":200,"features":40,"informative":4,"decoys":20,"noise":0.1,"seed":9}})"));
  job.shape.dataset = "sales/2026-11.csv";
  EXPECT_EQ(json::parse(JobRequestBody(job))["dataset"],
            json::parse(R"({"csv":"sales/2026-11.csv"})"));
}

// 429 is retried with the same key after a doubling backoff; a client that
// runs out of attempts rejects with the pipeline's reason.
TEST(HttpJobClient, AdmissionLimitsAreRetriedThenRejected) {
  const std::string directory = TempDirectory("admission");
  // A bucket of 4 admissions, refilled at 4 a second.
  const SpawnedPipeline pipeline = Spawn(directory, 2, {}, {{"ADMISSION_RATE", "4"}});
  ASSERT_FALSE(pipeline.ports.is_discarded());
  HttpJobClientOptions options;
  options.base_url = pipeline.http();
  options.max_attempts = 2;
  auto impatient = Client(options);
  std::vector<Events> first(8);
  for (int i = 0; i < 8; ++i) {
    impatient->Submit(SmallJob("admit-a" + std::to_string(i), i + 1), first[i].Callback());
  }
  int accepted = 0;
  int rejected = 0;
  for (Events& events : first) {
    ASSERT_TRUE(events.WaitFor(1));
    const JobEvent event = events.events()[0];
    if (event.kind == JobEvent::Kind::kAccepted) {
      ++accepted;
      continue;
    }
    ASSERT_EQ(event.kind, JobEvent::Kind::kRejected);
    ++rejected;
    EXPECT_EQ(event.attempts, 2);
    EXPECT_EQ(event.reason,
              "HTTP 429: admission rate of 4.0 jobs/s exceeded; retry later");
  }
  EXPECT_GE(accepted, 4);
  EXPECT_GE(rejected, 1);

  // Five attempts span 1.5 s of backoff: enough for the bucket to refill.
  options.max_attempts = 5;
  auto patient = Client(options);
  std::vector<Events> second(6);
  for (int i = 0; i < 6; ++i) {
    patient->Submit(SmallJob("admit-b" + std::to_string(i), i + 1), second[i].Callback());
  }
  int retried = 0;
  for (Events& events : second) {
    ASSERT_TRUE(events.WaitFor(2));
    EXPECT_EQ(events.events()[0].kind, JobEvent::Kind::kAccepted) << events.events()[0].reason;
    EXPECT_EQ(events.events()[1].kind, JobEvent::Kind::kCompleted);
    if (events.events()[0].attempts > 1) ++retried;
  }
  EXPECT_GE(retried, 1);
  EXPECT_EQ(testing::TerminatePipeline(pipeline), 0);
  std::filesystem::remove_all(directory);
}

// A follow outlives a SIGKILL: the pipeline restarted on the same port within
// the grace is picked up, and the job it requeued completes.
TEST(HttpJobClient, FollowPicksUpAPipelineRestartedWithinTheGrace) {
  const std::string directory = TempDirectory("follow-restart");
  SpawnedPipeline pipeline = Spawn(directory, 0);  // no workers: the job stays queued
  ASSERT_FALSE(pipeline.ports.is_discarded());
  const int port = pipeline.ports["http"].get<int>();
  HttpJobClientOptions options;
  options.base_url = pipeline.http();
  options.follow_grace = 20s;
  options.backoff = 20ms;
  options.max_backoff = 200ms;
  auto client = Client(options);
  Events events;
  client->Submit(SmallJob("restart-1"), events.Callback());
  ASSERT_TRUE(events.WaitFor(1));
  ASSERT_EQ(events.events()[0].kind, JobEvent::Kind::kAccepted);
  KillPipeline(pipeline);
  pipeline = Spawn(directory, 1, {"--http-port", std::to_string(port)});
  ASSERT_FALSE(pipeline.ports.is_discarded());
  ASSERT_TRUE(events.WaitFor(2));
  EXPECT_EQ(events.events()[1].kind, JobEvent::Kind::kCompleted) << events.events()[1].reason;
  EXPECT_EQ(events.events()[1].job_id, events.events()[0].job_id);
  client->Shutdown();
  EXPECT_EQ(testing::TerminatePipeline(pipeline), 0);
  std::filesystem::remove_all(directory);
}

// ---------------------------------------------------------------------------
// The kill test.

// Passes calls through and keeps what the client really reported, per key:
// the truth the ledger is checked against.
class TruthClient final : public JobClient {
 public:
  explicit TruthClient(JobClient& inner) : inner_(inner) {}

  struct Fate {
    std::string job_id;
    std::optional<JobEvent::Kind> last;
  };

  void Submit(const JobSubmission& job, JobCallback callback) override {
    const std::string key = job.idempotency_key;
    {
      std::lock_guard lock(mutex_);
      fates_[key];
    }
    inner_.Submit(job, [this, key, callback](const JobEvent& event) {
      {
        std::lock_guard lock(mutex_);
        Fate& fate = fates_[key];
        if (event.kind == JobEvent::Kind::kAccepted) {
          fate.job_id = event.job_id;
        } else {
          fate.last = event.kind;
        }
        changed_.notify_all();
      }
      callback(event);
    });
  }
  void Follow(const std::string& job_id, const std::string& key, JobCallback callback) override {
    inner_.Follow(job_id, key, std::move(callback));
  }
  std::int64_t in_flight() const override { return inner_.in_flight(); }
  void Shutdown() override { inner_.Shutdown(); }

  // Waits (bounded) until `ready` holds for the fates so far.
  bool WaitUntil(const std::function<bool(const std::map<std::string, Fate>&)>& ready,
                 Duration timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return ready(fates_); });
  }
  std::map<std::string, Fate> fates() const {
    std::lock_guard lock(mutex_);
    return fates_;
  }

 private:
  JobClient& inner_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Fate> fates_;
};

// What the pipeline holds: job id -> idempotency key and state, for ids 1
// up to a few past `highest` (ids are handed out in order).
std::map<std::string, std::pair<std::string, std::string>> PipelineJobs(
    const SpawnedPipeline& pipeline, std::int64_t highest) {
  std::map<std::string, std::pair<std::string, std::string>> jobs;
  for (std::int64_t id = 1; id <= highest + 5; ++id) {
    const auto response = HttpCall("GET", pipeline.http() + "/v1/jobs/" + std::to_string(id));
    if (response.status == 404) continue;
    EXPECT_EQ(response.status, 200) << response.body;
    const json body = json::parse(response.body);
    jobs[std::to_string(id)] = {body["idempotency_key"], body["state"]};
  }
  return jobs;
}

TEST(JobLoadKillTest, TheLedgerAccountsForEveryJobAcrossAKillAndTheResumeFinishesThem) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  const std::string directory = TempDirectory("jobload-kill");
  const std::string ledger_path = directory + "/ledger.jsonl";
  // One worker and jobs well over 33 ms (16000 x 400; 4000 x 400 kept up with
  // 15 sends a second here) against 30 sends a second, at most 6 open: the
  // pipeline falls behind, so jobs are queued and running when it dies. Only
  // three need to finish first, so a slow build (ASan beside other tests took
  // over 2 s a job in CI) gets there too.
  SpawnedPipeline pipeline = Spawn(directory, 1);
  ASSERT_FALSE(pipeline.ports.is_discarded());

  HttpJobClientOptions options;
  options.base_url = pipeline.http();
  options.max_attempts = 3;
  options.backoff = 50ms;
  options.max_backoff = 200ms;
  options.follow_grace = 1500ms;
  options.long_poll = 5s;
  options.max_connections = 8;  // within the pipeline's 8 HTTP threads
  auto http = Client(options);
  TruthClient client(*http);
  auto opened = JobLedger::OpenFile(ledger_path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  JobLedger& ledger = **opened;
  RealClock clock;

  JobKind kind;
  kind.shape.samples = 16000;
  kind.shape.features = 400;
  kind.shape.informative = 5;
  kind.shape.mode = JobMode::kFast;
  JobLoadOptions load_options;
  load_options.phases.push_back(ConstantPhase("steady", 30, 3s, 6));
  load_options.run_id = "kill" + std::to_string(seed);
  // The drain must outlast the wait for the kill below (the kill ends it).
  load_options.drain_timeout = 90s;
  auto made = JobLoad::Make(std::move(load_options), JobMix::Make({kind}, seed).value(), client,
                            ledger, clock);
  ASSERT_TRUE(made.ok()) << made.status();
  JobLoad& load = **made;
  const auto started = std::chrono::steady_clock::now();
  load.Start();

  // Kill mid-run, once three jobs have completed and at least three are
  // accepted without an outcome (queued or running in the pipeline). With
  // six open at most, open stays at three or more until the fourth completion
  // after the sends end, whatever the machine's speed.
  const bool ready = client.WaitUntil(
      [](const std::map<std::string, TruthClient::Fate>& fates) {
        int completed = 0;
        int open = 0;
        for (const auto& [key, fate] : fates) {
          if (fate.last == JobEvent::Kind::kCompleted) ++completed;
          if (!fate.job_id.empty() && !fate.last) ++open;
        }
        return completed >= 3 && open >= 3;
      },
      60s);
  ASSERT_TRUE(ready) << "the pipeline never had three jobs done and three open at once";
  KillPipeline(pipeline);
  const auto killed = std::chrono::steady_clock::now();
  const JobLoadResult result = load.Wait();
  const auto run_over = std::chrono::steady_clock::now();

  // The truth, from the client's own callbacks.
  std::int64_t accepted = 0, completed = 0, failed = 0, lost = 0, rejected = 0, unanswered = 0;
  std::int64_t highest_id = 0;
  for (const auto& [key, fate] : client.fates()) {
    if (!fate.job_id.empty()) {
      ++accepted;
      highest_id = std::max<std::int64_t>(highest_id, std::stoll(fate.job_id));
      if (fate.last == JobEvent::Kind::kCompleted)
        ++completed;
      else if (fate.last == JobEvent::Kind::kFailed)
        ++failed;
      else
        ++lost;  // kLost, or no outcome when the ledger closed
    } else if (fate.last == JobEvent::Kind::kRejected) {
      ++rejected;
    } else {
      ++unanswered;
    }
  }
  const LedgerSummary closed = ledger.Summary();
  std::printf("run: %s\nledger: %s; killed %.1f s in, ledger closed %.1f s later\n",
              result.ToJson()["total"].dump().c_str(), closed.ToString().c_str(),
              std::chrono::duration<double>(killed - started).count(),
              std::chrono::duration<double>(run_over - killed).count());
  ExpectSameSummary(result.ledger, closed);
  EXPECT_EQ(result.ledger_errors, 0);
  EXPECT_EQ(result.outstanding, 0);
  EXPECT_EQ(closed.submitted, result.Total().sent);
  EXPECT_EQ(closed.submitted, static_cast<std::int64_t>(client.fates().size()));
  EXPECT_EQ(closed.accepted, accepted);
  EXPECT_EQ(closed.completed, completed);
  EXPECT_EQ(closed.failed, failed);
  EXPECT_EQ(closed.lost, lost);
  EXPECT_EQ(closed.rejected, rejected);
  EXPECT_EQ(closed.unanswered, unanswered);
  EXPECT_EQ(result.Total().accepted, accepted);
  EXPECT_EQ(result.Total().completed, completed);
  EXPECT_EQ(result.Total().lost + result.Total().unanswered, lost + unanswered);
  EXPECT_EQ(closed.failed, 0);
  EXPECT_GE(closed.lost + closed.unanswered, 1) << "the kill cut no job short";
  EXPECT_TRUE(closed.duplicated_keys.empty());
  EXPECT_EQ(result.corrected.count(), static_cast<std::uint64_t>(completed));

  // The restarted pipeline holds every job the ledger says it accepted,
  // under its key, and no job the ledger does not know (a submission cut off
  // mid-request may be there: the ledger keeps its key unanswered).
  pipeline = Spawn(directory, 2);
  ASSERT_FALSE(pipeline.ports.is_discarded());
  std::map<std::string, LedgerEntry> by_key;
  for (const LedgerEntry& entry : ledger.Entries()) by_key[entry.key] = entry;
  auto held = PipelineJobs(pipeline, highest_id + static_cast<std::int64_t>(unanswered));
  std::int64_t cut_off_but_committed = 0;
  for (const auto& [id, job] : held) {
    const auto& [key, state] = job;
    ASSERT_EQ(by_key.count(key), 1u) << "job " << id << " has a key the ledger never sent";
    const LedgerEntry& entry = by_key[key];
    if (entry.outcome == JobOutcome::kSubmitting) {
      ++cut_off_but_committed;
      continue;
    }
    EXPECT_EQ(entry.job_id, id) << key;
    if (entry.outcome == JobOutcome::kCompleted) {
      EXPECT_EQ(state, "completed") << key;
    }
  }
  for (const auto& [key, entry] : by_key) {
    if (!entry.job_id.empty()) {
      EXPECT_EQ(held.count(entry.job_id), 1u) << key;
    }
  }
  EXPECT_EQ(static_cast<std::int64_t>(held.size()), closed.accepted + cut_off_but_committed);
  std::printf(
      "restarted pipeline holds %zu jobs: %lld accepted in the ledger, %lld cut off "
      "mid-request yet committed\n",
      held.size(), static_cast<long long>(closed.accepted),
      static_cast<long long>(cut_off_but_committed));

  // Resume through a client for the restarted pipeline: every accepted job
  // completes, and the unanswered ones are settled under their keys.
  options.base_url = pipeline.http();
  auto again = Client(options);
  const JobResumeResult resumed = load.Resume(*again, 30s);
  const LedgerSummary after = ledger.Summary();
  std::printf("resume: followed %lld, resubmitted %lld, completed %lld; %s\n",
              static_cast<long long>(resumed.followed), static_cast<long long>(resumed.resubmitted),
              static_cast<long long>(resumed.completed), after.ToString().c_str());
  EXPECT_EQ(resumed.followed, closed.lost);
  EXPECT_EQ(resumed.resubmitted, closed.unanswered);
  EXPECT_EQ(resumed.outstanding, 0);
  EXPECT_EQ(resumed.ledger_errors, 0);
  EXPECT_EQ(after.lost, 0);
  EXPECT_EQ(after.unanswered, 0);
  EXPECT_EQ(after.failed, 0);
  EXPECT_TRUE(after.duplicated_keys.empty());
  EXPECT_EQ(after.accepted, closed.accepted + closed.unanswered);
  EXPECT_EQ(after.completed, after.accepted);
  EXPECT_EQ(after.rejected, closed.rejected);
  EXPECT_TRUE(after.NothingLost()) << after.ToString();
  ExpectSameSummary(resumed.ledger, after);

  // Now the pipeline and the ledger agree job for job.
  held = PipelineJobs(pipeline, highest_id + static_cast<std::int64_t>(unanswered));
  std::set<std::string> ledger_ids;
  for (const LedgerEntry& entry : ledger.Entries()) {
    if (entry.job_id.empty()) continue;
    ledger_ids.insert(entry.job_id);
    ASSERT_EQ(held.count(entry.job_id), 1u) << entry.key;
    EXPECT_EQ(held[entry.job_id].first, entry.key);
    EXPECT_EQ(held[entry.job_id].second, "completed") << entry.key;
  }
  EXPECT_EQ(ledger_ids.size(), held.size());

  // The file says the same.
  auto reread = JobLedger::ReadFile(ledger_path);
  ASSERT_TRUE(reread.ok()) << reread.status();
  ExpectSameSummary((*reread)->Summary(), after);
  EXPECT_EQ((*reread)->Entries().size(), ledger.Entries().size());

  again->Shutdown();
  http->Shutdown();
  EXPECT_EQ(testing::TerminatePipeline(pipeline), 0);
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace firedrill::workload
