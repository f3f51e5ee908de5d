#include "firedrill/injectors/injection.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <prometheus/text_serializer.h>

#include "firedrill/injectors/catalog.h"
#include "firedrill/injectors/fault_metrics.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/injectors/undo.h"

namespace firedrill::injectors {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A process to fault: it waits for signals until killed.
class Sleeper {
 public:
  Sleeper() {
    pid_ = fork();
    if (pid_ == 0) {
      for (;;) pause();
    }
  }
  ~Sleeper() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  // Blocks until the process is stopped (true) or continued (false).
  bool WaitForChange() {
    int status = 0;
    EXPECT_EQ(waitpid(pid_, &status, WUNTRACED | WCONTINUED), pid_);
    return WIFSTOPPED(status);
  }

 private:
  pid_t pid_ = -1;
};

class InjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("firedrill-injection-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "drill");
    auto journal = Journal::Open((dir_ / "journal.db").string());
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    context_.journal = journal_.get();
    context_.clock = &clock_;
    context_.drill_dir = (dir_ / "drill").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.WallNow().time_since_epoch()).count();
  }

  fs::path dir_;
  RealClock clock_;
  std::unique_ptr<Journal> journal_;
  InjectionContext context_;
};

TEST_F(InjectionTest, TheJournalKeepsOpenFaultsAcrossReopening) {
  FaultRecord record;
  record.id = "f1";
  record.kind = "process-pause";
  record.target = "pid 1";
  record.undo = UndoNothing();
  record.owner_pid = 12345;
  record.started_ms = 1000;
  record.lease_until_ms = 2000;
  ASSERT_TRUE(journal_->Begin(record).ok());
  EXPECT_FALSE(journal_->Begin(record).ok()) << "an id is unique";
  ASSERT_TRUE(journal_->Renew("f1", 5000).ok());
  auto reopened = Journal::Open(journal_->path());
  ASSERT_TRUE(reopened.ok());
  auto open = (*reopened)->OpenFaults();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].lease_until_ms, 5000);
  EXPECT_EQ((*open)[0].undo, UndoNothing());
  ASSERT_TRUE(journal_->End("f1", "stopped", 3000).ok());
  ASSERT_TRUE(journal_->End("f1", "again", 4000).ok());
  EXPECT_TRUE((*reopened)->OpenFaults()->empty());
  EXPECT_EQ((*reopened)->All()->at(0).outcome, "stopped");
}

TEST_F(InjectionTest, PauseStopsTheProcessAndStopResumesIt) {
  Sleeper target;
  context_.processes["pipeline"] = target.pid();
  auto pause = StartInjection("process-pause", {{"process", "pipeline"}}, context_);
  ASSERT_TRUE(pause.ok()) << pause.status();
  EXPECT_TRUE(target.WaitForChange());
  EXPECT_EQ(ProcessState(target.pid()), 'T');
  EXPECT_EQ(journal_->OpenFaults()->size(), 1u);
  EXPECT_TRUE((*pause)->State().active());
  ASSERT_TRUE((*pause)->Renew().ok());
  ASSERT_TRUE((*pause)->Stop().ok());
  EXPECT_EQ((*pause)->State().phase, InjectionState::kStopped);
  EXPECT_FALSE(target.WaitForChange());
  EXPECT_NE(ProcessState(target.pid()), 'T');
  EXPECT_TRUE(journal_->OpenFaults()->empty());
  EXPECT_TRUE((*pause)->Stop().ok()) << "idempotent";
}

TEST_F(InjectionTest, APauseNotRenewedLapses) {
  Sleeper target;
  context_.processes["pipeline"] = target.pid();
  context_.ttl = 200ms;
  auto pause = StartInjection("process-pause", {{"process", "pipeline"}}, context_);
  ASSERT_TRUE(pause.ok()) << pause.status();
  EXPECT_TRUE(target.WaitForChange());
  EXPECT_FALSE(target.WaitForChange()) << "the guardian resumed it when the lease lapsed";
  const InjectionState lapsed = (*pause)->State();
  EXPECT_EQ(lapsed.phase, InjectionState::kLapsed) << PhaseName(lapsed.phase) << ": " << lapsed.detail;
  EXPECT_TRUE((*pause)->Stop().ok()) << "a guardian that already undid the fault is not an error";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

TEST_F(InjectionTest, RecoverSurvivesBadRowsAndWaitsOutLapsingLeases) {
  FaultRecord broken;
  broken.id = "broken";
  broken.kind = "disk-fill";
  broken.target = "x";
  broken.undo = "not an object";
  ASSERT_TRUE(journal_->Begin(broken).ok());
  FaultRecord outside = broken;
  outside.id = "outside";
  outside.undo = UndoRemovePath((dir_ / "precious.txt").string());
  std::ofstream(dir_ / "precious.txt") << "keep me";
  ASSERT_TRUE(journal_->Begin(outside).ok());
  FaultRecord lapsing = broken;
  lapsing.id = "lapsing";
  lapsing.kind = "stage-stall";
  lapsing.undo = {{"action", "none"}, {"lapses", "pipeline lease"}};
  lapsing.lease_until_ms = Now() + 60'000;
  ASSERT_TRUE(journal_->Begin(lapsing).ok());
  FaultRecord lapsed = lapsing;
  lapsed.id = "lapsed";
  lapsed.lease_until_ms = Now() - 1;
  ASSERT_TRUE(journal_->Begin(lapsed).ok());

  auto report = Recover(*journal_, Now());
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->failures.size(), 2u);
  EXPECT_NE(report->failures[0].find("broken: undo step is not an object"), std::string::npos) << report->failures[0];
  EXPECT_NE(report->failures[1].find("not a disk-fill file"), std::string::npos) << report->failures[1];
  EXPECT_TRUE(fs::exists(dir_ / "precious.txt")) << "recover removes only what a disk fill wrote";
  ASSERT_EQ(report->lapsing.size(), 1u);
  EXPECT_EQ(report->lapsing[0].id, "lapsing");
  EXPECT_TRUE(report->undone.empty());
  ASSERT_EQ(report->already_over.size(), 1u);
  EXPECT_EQ(report->already_over[0].id, "lapsed");
}

// No guardian acted (it was killed too): recover itself resumes the process.
TEST_F(InjectionTest, RecoverResumesAProcessItsGuardianDidNot) {
  Sleeper target;
  ASSERT_EQ(kill(target.pid(), SIGSTOP), 0);
  EXPECT_TRUE(target.WaitForChange());
  FaultRecord paused;
  paused.id = "paused";
  paused.kind = "process-pause";
  paused.target = "pid " + std::to_string(target.pid());
  paused.undo = UndoSignal(*IdentifyProcess(target.pid()), SIGCONT);
  paused.owner_pid = 0;  // an owner long gone
  ASSERT_TRUE(journal_->Begin(paused).ok());
  auto report = Recover(*journal_, Now());
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->undone.size(), 1u);
  EXPECT_FALSE(target.WaitForChange());
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

// The owner is SIGKILLed mid-fault: its guardian resumes the process, and
// recover finds the journal row with nothing left to undo, and closes it.
TEST_F(InjectionTest, AKilledOwnerLeavesNothingPaused) {
  Sleeper target;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t owner = fork();
  if (owner == 0) {
    close(ready[0]);
    auto journal = Journal::Open(journal_->path());
    InjectionContext context;
    context.journal = journal->get();
    RealClock clock;
    context.clock = &clock;
    context.processes["pipeline"] = target.pid();
    context.ttl = std::chrono::hours(1);
    auto pause = StartInjection("process-pause", {{"process", "pipeline"}}, context);
    const char ok = pause.ok() ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    for (;;) ::pause();
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 'y');
  EXPECT_TRUE(target.WaitForChange());
  kill(owner, SIGKILL);
  waitpid(owner, nullptr, 0);
  EXPECT_FALSE(target.WaitForChange()) << "the guardian resumed it when its owner died";

  auto open = journal_->OpenFaults();
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].owner_pid, owner);
  auto report = Recover(*journal_, Now());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->undone.empty());
  EXPECT_EQ(report->already_over.size(), 1u);
  EXPECT_TRUE(report->failures.empty());
  EXPECT_NE(ProcessState(target.pid()), 'T');
  auto again = Recover(*journal_, Now());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->undone.empty() && again->already_over.empty()) << "recover is safe to run twice";
}

TEST_F(InjectionTest, RecoverLeavesALiveOwnersFaultsAndSkipsReusedPids) {
  FaultRecord live;
  live.id = "live";
  live.kind = "process-pause";
  live.target = "x";
  live.undo = UndoNothing();
  live.owner_pid = 1;  // init: alive, and not us
  live.owner_start_ticks = IdentifyProcess(1)->start_ticks;
  ASSERT_TRUE(journal_->Begin(live).ok());
  FaultRecord reused = live;
  reused.id = "reused";
  reused.owner_start_ticks = live.owner_start_ticks + 1;  // pid 1, but another process: its owner is gone
  ASSERT_TRUE(journal_->Begin(reused).ok());
  FaultRecord stale = live;
  stale.id = "stale";
  stale.owner_pid = 0;
  stale.undo = UndoSignal(ProcessId{getpid(), 1}, SIGKILL);  // our pid, a start time that is not ours
  ASSERT_TRUE(journal_->Begin(stale).ok());
  auto report = Recover(*journal_, Now());
  ASSERT_TRUE(report.ok());
  // Neither had anything left to do: "reused" left nothing behind, and
  // "stale" names a process that is not this one (this test still lives).
  EXPECT_TRUE(report->undone.empty());
  ASSERT_EQ(report->already_over.size(), 2u);
  EXPECT_EQ(report->already_over[0].id, "reused");
  EXPECT_EQ(report->already_over[1].id, "stale");
  ASSERT_EQ(report->left_to_owner.size(), 1u);
}

TEST_F(InjectionTest, DiskFillTakesRealBlocksInTheDrillAreaAndGivesThemBack) {
  auto fill = StartInjection("disk-fill", {{"share", "50%"}, {"areaSize", "8MiB"}}, context_);
  ASSERT_TRUE(fill.ok()) << fill.status();
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir_ / "drill" / "disk-fill")) files.push_back(entry.path());
  ASSERT_EQ(files.size(), 1u);
  struct stat info {};
  ASSERT_EQ(stat(files[0].c_str(), &info), 0);
  EXPECT_EQ(info.st_size, 4 << 20);
  EXPECT_GE(info.st_blocks * 512, 4 << 20) << "allocated, not sparse";
  ASSERT_TRUE((*fill)->Stop().ok());
  EXPECT_FALSE(fs::exists(files[0]));
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

TEST_F(InjectionTest, UnsafeOrWrongSpecsAreRefusedBeforeAnythingStarts) {
  context_.limits.max_disk_bytes = 1 << 20;
  auto fill = StartInjection("disk-fill", {{"share", "50%"}, {"areaSize", "8MiB"}}, context_);
  EXPECT_EQ(fill.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(fill.status().message().find("over the drill's disk cap of 1MiB"), std::string::npos);
  context_.drill_dir.clear();
  fill = StartInjection("disk-fill", {{"share", "50%"}, {"areaSize", "512KiB"}}, context_);
  EXPECT_NE(fill.status().message().find("a folder Firedrill created"), std::string::npos);
  context_.processes["pipeline"] = getpid();
  auto pause = StartInjection("process-pause", {{"process", "database"}}, context_);
  EXPECT_EQ(pause.status().message(),
            "process-pause: process \"database\" is not one this drill started or was given (known: pipeline)");
  auto hog = StartInjection("cpu-hog", {{"threads", "9999"}}, context_);
  EXPECT_EQ(hog.status().code(), StatusCode::kInvalidArgument);
  auto network = StartInjection("network", {{"endpoint", "http"}, {"latency", "1s"}}, context_);
  EXPECT_EQ(network.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(network.status().message().find("no proxy in front of the target's http listener"), std::string::npos)
      << network.status();
  EXPECT_TRUE(journal_->All()->empty()) << "nothing was journalled, since nothing started";
}

TEST_F(InjectionTest, TheBlastRadiusCapsConcurrentFaultsAndNamesAllowedHosts) {
  context_.limits.max_concurrent_faults = 1;
  auto first = StartInjection("disk-fill", {{"share", "10%"}, {"areaSize", "1MiB"}}, context_);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = StartInjection("disk-fill", {{"share", "10%"}, {"areaSize", "1MiB"}}, context_);
  EXPECT_EQ(second.status().message(), "disk-fill: 1 fault(s) already running, the drill's cap is 1");
  ASSERT_TRUE((*first)->Stop().ok());
  auto third = StartInjection("disk-fill", {{"share", "10%"}, {"areaSize", "1MiB"}}, context_);
  EXPECT_TRUE(third.ok()) << "the first one ended: " << third.status();

  context_.limits.dry_run = true;
  context_.pipeline_grpc = "192.0.2.7:50051";
  EXPECT_NE(StartInjection("exporter-down", nlohmann::json::object(), context_).status().message().find(
                "not among the drill's allowed hosts"),
            std::string::npos);
  context_.limits.allowed_hosts = {"192.0.2.7"};
  auto allowed = StartInjection("exporter-down", nlohmann::json::object(), context_);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_NE((*allowed)->Describe().find("dry run: would exporter-down"), std::string::npos);
}

TEST_F(InjectionTest, DryRunSaysWhatAndDoesNothing) {
  Sleeper target;
  context_.processes["pipeline"] = target.pid();
  context_.limits.dry_run = true;
  auto pause = StartInjection("process-pause", {{"process", "pipeline"}}, context_);
  ASSERT_TRUE(pause.ok());
  EXPECT_NE((*pause)->Describe().find("dry run: would process-pause: SIGSTOP pid"), std::string::npos);
  EXPECT_NE(ProcessState(target.pid()), 'T');
  auto fill = StartInjection("disk-fill", {{"share", "10%"}, {"areaSize", "1MiB"}}, context_);
  ASSERT_TRUE(fill.ok());
  EXPECT_FALSE(fs::exists(dir_ / "drill" / "disk-fill"));
  EXPECT_TRUE(journal_->All()->empty());
}

TEST_F(InjectionTest, KillSendsTheSignalAndJournalsIt) {
  Sleeper target;
  context_.processes["pipeline"] = target.pid();
  auto killed = StartInjection("process-kill", {{"process", "pipeline"}, {"signal", "SIGTERM"}}, context_);
  ASSERT_TRUE(killed.ok()) << killed.status();
  int status = 0;
  ASSERT_EQ(waitpid(target.pid(), &status, 0), target.pid());
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  const auto all = journal_->All();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].outcome, "signalled");
}

TEST_F(InjectionTest, KillWithDestroyDataDeletesOnlyADirectoryFiredrillCreated) {
  Sleeper target;
  context_.processes["pipeline"] = target.pid();
  auto refused = StartInjection("process-kill", {{"process", "pipeline"}, {"destroyData", "true"}}, context_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("has no data directory Firedrill created"), std::string::npos)
      << refused.status();
  EXPECT_EQ(kill(target.pid(), 0), 0) << "refused before anything was done";
  EXPECT_TRUE(journal_->All()->empty());

  const fs::path data = dir_ / "data";
  fs::create_directories(data / "backups");
  std::ofstream(data / "jobs.db") << "rows";
  context_.data_directories["pipeline"] = data.string();
  auto killed = StartInjection("process-kill", {{"process", "pipeline"}, {"destroyData", "true"}}, context_);
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_NE((*killed)->Describe().find("then delete its data directory " + data.string()), std::string::npos);
  int status = 0;
  ASSERT_EQ(waitpid(target.pid(), &status, 0), target.pid());
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_FALSE(fs::exists(data));
  EXPECT_TRUE(fs::exists(dir_)) << "only the data directory goes";
  const auto all = journal_->All();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].outcome, "signalled; deleted " + data.string() + " (3 entries)");
}

// Resident memory of this process, from /proc/self/statm.
std::uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

TEST_F(InjectionTest, HostMemoryHogHoldsItsLevelThenGivesItBack) {
  const std::uint64_t before = ResidentBytes();
  auto hog = StartInjection("host-memory-hog", {{"share", "50%"}, {"limit", "128MiB"}}, context_);
  ASSERT_TRUE(hog.ok()) << hog.status();
  const std::uint64_t held = ResidentBytes() - before;
#if defined(__SANITIZE_ADDRESS__)
  const double tolerance = 0.15;  // AddressSanitizer's shadow pages count as resident too
#else
  const double tolerance = 0.01;
#endif
  EXPECT_NEAR(static_cast<double>(held), 64.0 * (1 << 20), tolerance * 64 * (1 << 20)) << "within 1% of the target";
  ASSERT_TRUE((*hog)->Stop().ok());
  EXPECT_LT(ResidentBytes(), before + (8u << 20));
  context_.limits.max_memory_bytes = 64u << 20;
  auto over = StartInjection("host-memory-hog", {{"share", "50%"}, {"limit", "128MiB"}}, context_);
  EXPECT_NE(over.status().message().find("over the memory Firedrill may use (64MiB)"), std::string::npos);
}

TEST_F(InjectionTest, CpuHogBurnsUntilStopped) {
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto hog = StartInjection("cpu-hog", {{"threads", "1"}, {"duty", "100%"}}, context_);
  ASSERT_TRUE(hog.ok()) << hog.status();
  std::this_thread::sleep_for(300ms);  // the fault's length, not a wait for an event
  ASSERT_TRUE((*hog)->Stop().ok());
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  const double cpu = static_cast<double>(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                     static_cast<double>(after.ru_utime.tv_usec - before.ru_utime.tv_usec) * 1e-6;
  EXPECT_GT(cpu, 0.1) << "one thread busy for 0.3 s";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

}  // namespace
}  // namespace firedrill::injectors

namespace firedrill::injectors {
namespace {

// Every catalogued injector has a factory in the registry, and nothing runs
// that the catalogue (and so the scenario validator) does not know.
TEST(InjectorRegistry, EveryCataloguedKindIsRunnable) {
  for (const InjectorInfo& info : Catalog()) EXPECT_TRUE(IsRunnable(info.kind)) << info.kind;
  EXPECT_FALSE(IsRunnable("no-such-fault"));
  InjectionContext context;
  Journal* none = nullptr;
  context.journal = none;
  EXPECT_EQ(StartInjection("cpu-hog", {{"threads", "1"}}, context).status().code(), StatusCode::kInvalidArgument)
      << "a journal and a clock are required";
}

// The journal's listener feeds Firedrill's fault metrics and the event
// timeline: a fault shows as active while it runs, and its end is counted
// by outcome.
TEST_F(InjectionTest, FaultsShowInMetricsAndTheTimelineWhileTheyRun) {
  prometheus::Registry registry;
  FaultMetrics metrics(registry);
  std::vector<FaultRecord> timeline;
  journal_->SetListener([&](const FaultRecord& record) {
    metrics.Record(record);
    timeline.push_back(record);
  });
  const auto exposition = [&] { return prometheus::TextSerializer().Serialize(registry.Collect()); };
  auto hog = StartInjection("cpu-hog", {{"threads", "1"}, {"duty", "10%"}}, context_);
  ASSERT_TRUE(hog.ok()) << hog.status();
  EXPECT_NE(exposition().find("firedrill_fault_active{kind=\"cpu-hog\",target=\"this process\"} 1"), std::string::npos)
      << exposition();
  ASSERT_TRUE((*hog)->Stop().ok());
  ASSERT_TRUE((*hog)->Stop().ok());  // idempotent: one end, heard once
  const std::string after = exposition();
  EXPECT_NE(after.find("firedrill_fault_active{kind=\"cpu-hog\",target=\"this process\"} 0"), std::string::npos) << after;
  EXPECT_NE(after.find("firedrill_faults_started_total{kind=\"cpu-hog\"} 1"), std::string::npos) << after;
  EXPECT_NE(after.find("firedrill_faults_ended_total{kind=\"cpu-hog\",outcome=\"stopped\"} 1"), std::string::npos)
      << after;
  ASSERT_EQ(timeline.size(), 2u);
  EXPECT_EQ(timeline[0].id, timeline[1].id);
  EXPECT_EQ(timeline[0].ended_ms, 0);
  EXPECT_EQ(timeline[1].outcome, "stopped");
  EXPECT_GE(timeline[1].ended_ms, timeline[0].started_ms);
  // A spec refused before anything starts leaves no row, so no event.
  EXPECT_FALSE(StartInjection("cpu-hog", {{"threads", "0"}}, context_).ok());
  EXPECT_EQ(timeline.size(), 2u);
  EXPECT_EQ(OutcomeLabel("failed: SIGSTOP pid 3: No such process"), "failed");
  EXPECT_EQ(OutcomeLabel("stopped by its guardian"), "stopped");
}

}  // namespace
}  // namespace firedrill::injectors

namespace firedrill::injectors {
namespace {

std::size_t ThreadCount() {
  std::size_t threads = 0;
  for ([[maybe_unused]] const auto& task : fs::directory_iterator("/proc/self/task")) ++threads;
  return threads;
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// On the CPU twin the burn takes cores, as on a GPU it takes SMs: the
// process's CPU time climbs while it runs, and its threads are gone after.
TEST_F(InjectionTest, GpuComputeBurnTakesTheCpuTwinsCoresUntilStopped) {
  context_.gpu.backend = "cpu";
  clock_.Cancel(clock_.ScheduleAfter(1h, [] {}));  // the clock's timer thread, which stays, is counted before
  const std::size_t threads_before = ThreadCount();
  const double cpu_before = ProcessCpuSeconds();
  auto burn = StartInjection("gpu-compute-burn", {{"intensity", "50%"}, {"mode", "mixed"}}, context_);
  ASSERT_TRUE(burn.ok()) << burn.status();
  EXPECT_NE((*burn)->Describe().find("mixed burn at 50% of the CPU's cores"), std::string::npos) << (*burn)->Describe();
  EXPECT_GT(ThreadCount(), threads_before);
  // Real work, measured as it happens: wait (bounded) for a tenth of a CPU second.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (ProcessCpuSeconds() - cpu_before < 0.1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(ProcessCpuSeconds() - cpu_before, 0.1);
  ASSERT_TRUE((*burn)->Renew().ok());
  ASSERT_TRUE((*burn)->Stop().ok());
  EXPECT_EQ(ThreadCount(), threads_before) << "the burn's threads ended with it";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

// Its lease is on the drill's clock: a burn whose owner stops renewing ends.
TEST_F(InjectionTest, GpuComputeBurnEndsWhenItsLeaseLapses) {
  SimulatedClock drill_clock;
  context_.clock = &drill_clock;
  context_.gpu.backend = "cpu";
  context_.ttl = 30s;
  const std::size_t threads_before = ThreadCount();
  auto burn = StartInjection("gpu-compute-burn", {{"intensity", "10%"}}, context_);
  ASSERT_TRUE(burn.ok()) << burn.status();
  drill_clock.Advance(20s);
  ASSERT_TRUE((*burn)->Renew().ok());
  EXPECT_TRUE((*burn)->State().active());
  drill_clock.Advance(31s);
  EXPECT_EQ((*burn)->State().phase, InjectionState::kLapsed);
  EXPECT_EQ((*burn)->Renew().code(), StatusCode::kUnavailable) << "renewing a lapsed burn says so";
  ASSERT_TRUE((*burn)->Stop().ok());
  EXPECT_EQ(ThreadCount(), threads_before);
}

}  // namespace
}  // namespace firedrill::injectors
