// Kills `firedrill inject` with SIGKILL at random moments — while it opens
// the journal, forks a guardian, starts the fault, renews its lease — for
// every kind of fault it can run here, and checks after each kill what must
// hold: no helper process survives, no process stays stopped, no fill file
// stays on disk, no fault in the pipeline outlives its lease by more than
// twice its time to live, and `firedrill recover` finds nothing to undo.
//
// Real processes and real time: the moment of each kill is the point.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "../net/http_client.h"
#include "../pipeline/spawn.h"
#include "firedrill/injectors/undo.h"

extern char** environ;

namespace firedrill::injectors {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr char kToken[] = "sigkill-test-token";
constexpr auto kTtl = 2s;

pid_t Spawn(const std::vector<std::string>& arguments, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const std::string& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, arguments[0].c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// This test's children, other than the ones it keeps: as a subreaper it
// inherits every orphan (guardians whose Firedrill was killed).
std::vector<pid_t> Children(const std::vector<pid_t>& keep) {
  std::vector<pid_t> children;
  DIR* proc = opendir("/proc");
  while (dirent* entry = readdir(proc)) {
    const pid_t pid = std::atoi(entry->d_name);
    if (pid <= 0 || std::find(keep.begin(), keep.end(), pid) != keep.end()) continue;
    std::ifstream stat("/proc/" + std::string(entry->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int parent = 0;
    if (std::sscanf(line.c_str() + close + 2, "%c %d", &state, &parent) == 2 && parent == getpid()) {
      children.push_back(pid);
    }
  }
  closedir(proc);
  return children;
}

// Reaps helpers as they end; those still running after `wait` survived.
std::vector<pid_t> SurvivingHelpers(const std::vector<pid_t>& keep, std::chrono::milliseconds wait) {
  const auto deadline = Steady::now() + wait;
  for (;;) {
    std::vector<pid_t> alive;
    for (const pid_t child : Children(keep)) {
      if (waitpid(child, nullptr, WNOHANG) == 0) alive.push_back(child);
    }
    if (alive.empty() || Steady::now() > deadline) return alive;
    std::this_thread::sleep_for(5ms);
  }
}

struct Drill {
  std::string kind;
  std::vector<std::string> arguments;
};

TEST(SigkillSoak, NothingOutlivesAKilledFiredrill) {
  const char* seed_text = std::getenv("FIREDRILL_SEED");
  const std::uint64_t seed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10)
                                                  : static_cast<std::uint64_t>(std::random_device{}());
  const int kills = std::getenv("FIREDRILL_SOAK_KILLS") != nullptr ? std::atoi(std::getenv("FIREDRILL_SOAK_KILLS")) : 100;
  std::printf("seed %llu (FIREDRILL_SEED to repeat), %d kills\n", static_cast<unsigned long long>(seed), kills);
  std::mt19937_64 random(seed);
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);

  const fs::path dir = fs::temp_directory_path() / ("firedrill-sigkill-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  fs::create_directories(dir / "area");
  std::ofstream(dir / "token") << kToken << '\n';
  const std::string journal = (dir / "journal.db").string();
  const std::string log = (dir / "inject.log").string();
  const auto pipeline = firedrill::testing::SpawnPipeline((dir / "data").string(),
                                                          {"--backend", "cpu", "--workers", "1", "--enable-faults",
                                                           "--device-memory", "1GiB", "--shared-device-memory",
                                                           (dir / "device").string()},
                                                          {{"HSOF_FAULTS_TOKEN", kToken}});
  ASSERT_FALSE(pipeline.ports.is_discarded());
  const std::string exporter = "http://127.0.0.1:" + std::to_string(pipeline.ports["gpu_exporter"].get<int>()) + "/metrics";
  const pid_t sleeper = fork();
  if (sleeper == 0) {
    for (;;) pause();
  }
  const std::vector<pid_t> keep = {pipeline.pid, sleeper};
  const std::string ttl = std::to_string(std::chrono::milliseconds(kTtl).count()) + "ms";
  const std::vector<Drill> drills = {
      {"process-pause", {"process=target", "--process", "target=" + std::to_string(sleeper)}},
      {"disk-fill", {"share=50%", "areaSize=4MiB", "--drill-dir", (dir / "area").string()}},
      {"exporter-down", {"--pipeline-grpc", pipeline.grpc(), "--faults-token-file", (dir / "token").string()}},
      {"cpu-hog", {"threads=1", "duty=50%"}},
      {"host-memory-hog", {"share=50%", "--max-memory", "32MiB"}},
      {"gpu-memory-hog", {"share=50%", "--device", "cpu", "--device-memory", "1GiB", "--shared-device-memory",
                          (dir / "device").string()}},
      {"network", {"endpoint=http", "latency=100ms",
                   "--proxy", "http=127.0.0.1:" + std::to_string(pipeline.ports["http"].get<int>())}},
  };

  double longest_lapse = 0;
  int killed_with_open_rows = 0;
  int killed_before_the_journal = 0;
  for (int kill_number = 0; kill_number < kills; ++kill_number) {
    const Drill& drill = drills[static_cast<std::size_t>(kill_number) % drills.size()];
    std::vector<std::string> arguments = {FIREDRILL_BINARY, "inject", drill.kind};
    arguments.insert(arguments.end(), drill.arguments.begin(), drill.arguments.end());
    arguments.insert(arguments.end(), {"--journal", journal, "--ttl", ttl});
    // Start-up takes a few milliseconds: half the moments fall in the first
    // 20 ms (opening the journal, forking the guardian, starting the fault),
    // half while the fault runs and its lease is renewed.
    const int most_us = std::bernoulli_distribution(0.5)(random) ? 20'000 : 400'000;
    const auto moment = std::chrono::microseconds(std::uniform_int_distribution<int>(0, most_us)(random));
    std::size_t rows_before = 0;
    if (auto before = Journal::Open(journal); before.ok()) rows_before = (*before)->All()->size();
    const pid_t firedrill = Spawn(arguments, log);
    std::this_thread::sleep_for(moment);
    ASSERT_EQ(kill(firedrill, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(firedrill, &status, 0), firedrill);
    const auto killed_at = Steady::now();
    const std::string where = "kill " + std::to_string(kill_number) + " (" + drill.kind + " after " +
                              std::to_string(moment.count() / 1000) + " ms)";
    if (WIFEXITED(status)) {
      ADD_FAILURE() << where << ": firedrill exited by itself with " << WEXITSTATUS(status) << "; see " << log;
    }

    const std::vector<pid_t> survivors = SurvivingHelpers(keep, 5s);
    EXPECT_TRUE(survivors.empty()) << where << ": " << survivors.size() << " helper(s) outlived it, first pid "
                                   << (survivors.empty() ? 0 : survivors[0]);
    for (const pid_t survivor : survivors) kill(survivor, SIGKILL);

    EXPECT_NE(ProcessState(sleeper), 'T') << where << ": the paused process stays stopped";
    for (const auto& entry : fs::directory_iterator(dir / "device")) {
      // The pipeline's own record stays; a hog's would be a second one.
      EXPECT_FALSE(entry.path().extension() == ".held" && entry.path().filename().string().rfind(
                                                               std::to_string(pipeline.pid) + "-", 0) != 0)
          << where << ": " << entry.path() << " still holds device memory";
    }
    for (const auto& entry : fs::recursive_directory_iterator(dir / "area")) {
      EXPECT_NE(entry.path().extension(), ".fill") << where << ": " << entry.path() << " stayed on disk";
    }

    // A fault inside the pipeline ends with its lease: the exporter answers
    // again within twice the time to live of the kill.
    while (firedrill::testing::HttpCall("GET", exporter).status != 200 && Steady::now() - killed_at < 2 * kTtl) {
      std::this_thread::sleep_for(20ms);
    }
    const double lapse = std::chrono::duration<double>(Steady::now() - killed_at).count();
    longest_lapse = std::max(longest_lapse, lapse);
    EXPECT_EQ(firedrill::testing::HttpCall("GET", exporter).status, 200)
        << where << ": exporter-down outlived its lease by more than 2x its ttl";

    // What the journal still has open is over (its guardian acted, or it
    // ended with the process) or, for a fault the pipeline runs, over once
    // its lease is: recover then has nothing left to undo.
    auto open_journal = Journal::Open(journal);
    ASSERT_TRUE(open_journal.ok());
    auto open = (*open_journal)->OpenFaults();
    ASSERT_TRUE(open.ok());
    if (!open->empty()) ++killed_with_open_rows;
    if ((*open_journal)->All()->size() == rows_before) ++killed_before_the_journal;
    std::int64_t last_lease_ms = 0;
    for (const FaultRecord& record : *open) {
      if (record.undo.contains("lapses")) last_lease_ms = std::max(last_lease_ms, record.lease_until_ms);
    }
    const auto wall_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    EXPECT_LE(last_lease_ms - wall_ms(), std::chrono::milliseconds(kTtl).count()) << where << ": a lease past its ttl";
    while (wall_ms() <= last_lease_ms) std::this_thread::sleep_for(20ms);
    const std::string recover_log = (dir / "recover.json").string();
    fs::remove(recover_log);
    const pid_t recover = Spawn({FIREDRILL_BINARY, "recover", "--journal", journal, "--json"}, recover_log);
    ASSERT_EQ(waitpid(recover, &status, 0), recover);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << where << ": recover failed";
    std::ifstream recover_output(recover_log);
    const nlohmann::json report = nlohmann::json::parse(recover_output, nullptr, false);
    ASSERT_FALSE(report.is_discarded()) << where << ": recover --json did not print JSON";
    EXPECT_TRUE(report["undone"].empty()) << where << ": recover found something left to undo: " << report.dump();
    EXPECT_TRUE(report["lapsing"].empty() && report["failures"].empty() && report["left_to_owner"].empty())
        << where << ": " << report.dump();
    EXPECT_TRUE((*open_journal)->OpenFaults()->empty()) << where;
    if (::testing::Test::HasFailure()) break;  // one clear failure, not a hundred echoes
  }
  std::printf("%d kills: %d before the fault was journalled, %d with a fault open; longest wait for the exporter "
              "%.2f s (limit %.0f s)\n",
              kills, killed_before_the_journal, killed_with_open_rows, longest_lapse,
              std::chrono::duration<double>(2 * kTtl).count());
  if (kills >= 20) {
    EXPECT_GT(killed_with_open_rows, 0) << "no kill landed while a fault ran: the moments are too early";
    EXPECT_GT(killed_before_the_journal, 0) << "no kill landed during start-up: the moments are too late";
  }

  kill(sleeper, SIGKILL);
  waitpid(sleeper, nullptr, 0);
  firedrill::testing::TerminatePipeline(pipeline);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace firedrill::injectors
