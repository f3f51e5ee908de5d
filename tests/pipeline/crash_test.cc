// The real hsof-pipeline binary, killed with SIGKILL at random moments under
// load and restarted, 20 times: afterwards every job it accepted has
// completed, and exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "../net/http_client.h"
#include "firedrill/pipeline/job_store.h"
#include "spawn.h"

namespace firedrill::pipeline {
namespace {

using firedrill::testing::HttpCall;
using nlohmann::json;

using firedrill::testing::SpawnedPipeline;

SpawnedPipeline Spawn(const std::string& directory) {
  return firedrill::testing::SpawnPipeline(directory,
                                           {"--workers", "2", "--device-memory", "1GiB"});
}

std::string Job(int key) {
  return json{
      {"idempotency_key", "job-" + std::to_string(key)},
      {"mode", "fast"},
      {"dataset",
       {{"samples", 2000}, {"features", 200}, {"informative", 5}, {"decoys", 2}, {"seed", key}}}}
      .dump();
}

TEST(PipelineCrashTest, EveryAcceptedJobCompletesExactlyOnceAcrossTwentyKills) {
  char pattern[] = "/tmp/firedrill-crash-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string directory = pattern;
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 random(seed);

  std::map<std::string, std::int64_t> accepted;  // key -> job id
  int next_key = 0;
  int unanswered = -1;  // a submission cut off by a kill, retried with its key
  for (int round = 0; round < 20; ++round) {
    const SpawnedPipeline pipeline = Spawn(directory);
    ASSERT_GT(pipeline.pid, 0);
    ASSERT_FALSE(pipeline.ports.is_discarded());
    if (unanswered >= 0) {
      auto retry = HttpCall("POST", pipeline.http() + "/v1/jobs", Job(unanswered));
      ASSERT_TRUE(retry.status == 200 || retry.status == 202) << retry.status << " " << retry.body;
      accepted["job-" + std::to_string(unanswered)] = json::parse(retry.body)["id"];
      unanswered = -1;
    }
    // A random burst of submissions and reads, then the kill lands wherever
    // the workers are.
    const int burst = std::uniform_int_distribution<int>(1, 8)(random);
    for (int i = 0; i < burst; ++i) {
      const int key = next_key++;
      auto response = HttpCall("POST", pipeline.http() + "/v1/jobs", Job(key));
      ASSERT_EQ(response.status, 202) << response.body;
      accepted["job-" + std::to_string(key)] = json::parse(response.body)["id"];
    }
    const int reads = std::uniform_int_distribution<int>(0, 3)(random);
    for (int i = 0; i < reads; ++i) HttpCall("GET", pipeline.http() + "/v1/jobs/1");
    kill(pipeline.pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pipeline.pid, &status, 0), pipeline.pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }

  // One more start: every accepted job finishes (long-polled), then a clean stop.
  const SpawnedPipeline pipeline = Spawn(directory);
  for (const auto& [key, id] : accepted) {
    auto job = HttpCall("GET", pipeline.http() + "/v1/jobs/" + std::to_string(id) + "?wait=60s");
    ASSERT_EQ(job.status, 200) << job.body;
    EXPECT_EQ(json::parse(job.body)["state"], "completed") << key << ": " << job.body;
    EXPECT_EQ(json::parse(job.body)["idempotency_key"], key);
  }
  kill(pipeline.pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pipeline.pid, &status, 0), pipeline.pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  // The database itself: one row per key, each completed exactly once.
  SimulatedClock clock;
  auto store = JobStore::Open(directory + "/jobs.db", clock);
  ASSERT_TRUE(store.ok()) << store.status();
  int restarts = 0;
  for (const auto& [key, id] : accepted) {
    auto job = (*store)->Get(id);
    ASSERT_TRUE(job.ok()) << key;
    EXPECT_EQ(job->idempotency_key, key);
    EXPECT_EQ(job->state, JobState::kCompleted) << key;
    EXPECT_EQ(job->completions, 1) << key;
    restarts += job->attempts - 1;
  }
  auto counts = (*store)->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->completed, static_cast<std::int64_t>(accepted.size()));
  std::printf("%zu jobs accepted across 20 kills; %d runs were cut short by a kill and rerun\n",
              accepted.size(), restarts);
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace firedrill::pipeline
