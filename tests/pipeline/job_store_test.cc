#include "firedrill/pipeline/job_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

namespace firedrill::pipeline {
namespace {

// A fresh directory per test, removed afterwards.
class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/firedrill-jobs-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
    path_ = directory_ + "/jobs.db";
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::unique_ptr<JobStore> Open() {
    auto store = JobStore::Open(path_, clock_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  static JobRequest Request(std::string key, std::uint64_t seed = 1) {
    JobRequest request;
    request.idempotency_key = std::move(key);
    request.dataset.seed = seed;
    return request;
  }

  SimulatedClock clock_;
  std::string directory_;
  std::string path_;
};

TEST_F(JobStoreTest, JobsRunInOrderAndCompleteOnce) {
  auto store = Open();
  auto first = store->Submit(Request(""));
  auto second = store->Submit(Request("", 2));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_TRUE(first->created);
  EXPECT_LT(first->job.id, second->job.id);
  EXPECT_EQ(first->job.state, JobState::kQueued);

  auto claimed = store->Claim("w1");
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  EXPECT_EQ((*claimed)->id, first->job.id);
  EXPECT_EQ((*claimed)->state, JobState::kRunning);
  EXPECT_EQ((*claimed)->attempts, 1);
  // Only the worker holding the job can finish it, and only once.
  EXPECT_EQ(store->Complete(first->job.id, "w2", "{}").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->Complete(first->job.id, "w1", R"({"quality":0.9})").ok());
  EXPECT_EQ(store->Complete(first->job.id, "w1", "{}").code(), StatusCode::kFailedPrecondition);
  auto done = store->Get(first->job.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, JobState::kCompleted);
  EXPECT_EQ(done->completions, 1);
  EXPECT_EQ(done->result_json, R"({"quality":0.9})");

  auto next = store->Claim("w1");
  ASSERT_TRUE(next.ok() && next->has_value());
  ASSERT_TRUE(store->Fail((*next)->id, "w1", "device out of memory").ok());
  EXPECT_EQ(store->Get((*next)->id)->error, "device out of memory");
  auto none = store->Claim("w1");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->completed, 1);
  EXPECT_EQ(counts->failed, 1);
  EXPECT_EQ(store->Get(999).status().code(), StatusCode::kNotFound);
}

TEST_F(JobStoreTest, AnIdempotencyKeyReturnsTheOriginalJob) {
  auto store = Open();
  auto original = store->Submit(Request("order-7"));
  auto retry = store->Submit(Request("order-7"));
  ASSERT_TRUE(original.ok() && retry.ok());
  EXPECT_TRUE(original->created);
  EXPECT_FALSE(retry->created);
  EXPECT_EQ(retry->job.id, original->job.id);
  // The same key for a different request is a conflict, not a silent reuse.
  auto conflict = store->Submit(Request("order-7", 2));
  EXPECT_EQ(conflict.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store->Counts()->queued, 1);
}

TEST_F(JobStoreTest, ReopeningRequeuesRunningJobsAndKeepsEverything) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Submit(Request("a")).ok());
    ASSERT_TRUE(store->Claim("gone").ok());
  }
  auto store = Open();
  auto job = store->Get(1);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->attempts, 1);
  auto again = store->Claim("w");
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->attempts, 2);
}

TEST_F(JobStoreTest, BackupIsAConsistentCopy) {
  auto store = Open();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(store->Submit(Request("k" + std::to_string(i))).ok());
  ASSERT_TRUE(store->Backup(directory_ + "/backup.db").ok());
  auto copy = JobStore::Open(directory_ + "/backup.db", clock_);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ((*copy)->Counts()->queued, 50);
  EXPECT_EQ(store->Backup("/nonexistent-dir/backup.db").code(), StatusCode::kUnavailable);
}

TEST_F(JobStoreTest, OpeningSomethingThatIsNotADatabaseIsAStatus) {
  std::FILE* file = std::fopen(path_.c_str(), "w");
  std::fputs(
      "this is not a database, just text long enough to have a header.........................",
      file);
  std::fclose(file);
  auto store = JobStore::Open(path_, clock_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a database"), std::string::npos) << store.status();
}

// A child process submits and runs jobs in a loop, telling the parent over a
// pipe each time a submission is accepted; the parent kills it with SIGKILL
// at random moments, 25 times, restarting it each time. Afterwards every
// accepted job completes, and exactly once.
TEST_F(JobStoreTest, EveryAcceptedJobCompletesExactlyOnceAcrossKills) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 random(seed);
  std::map<std::string, int> accepted;
  int next_key = 0;
  for (int round = 0; round < 25; ++round) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const int start_key = next_key;
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      RealClock clock;
      auto store = JobStore::Open(path_, clock);
      if (!store.ok()) _exit(3);
      const std::string worker = "child-" + std::to_string(getpid());
      for (int key = start_key;; ++key) {
        auto submitted = (*store)->Submit(Request("job-" + std::to_string(key)));
        if (!submitted.ok()) _exit(4);
        const int acknowledged = key;
        if (write(pipe_fds[1], &acknowledged, sizeof(acknowledged)) != sizeof(acknowledged))
          _exit(5);
        auto claimed = (*store)->Claim(worker);
        if (!claimed.ok()) _exit(6);
        // The job's work: long next to the commits, so most kills land
        // while a job is running.
        volatile double work = 0;
        for (int i = 0; i < 2'000'000; ++i) work = work * 0.5 + i;
        if (claimed->has_value() &&
            !(*store)->Complete((**claimed).id, worker, R"({"ok":true})").ok())
          _exit(7);
      }
    }
    close(pipe_fds[1]);
    // Let it accept a random number of jobs, then kill it mid-flight.
    const int wanted = std::uniform_int_distribution<int>(1, 12)(random);
    int got = 0, key = 0;
    while (got < wanted && read(pipe_fds[0], &key, sizeof(key)) == sizeof(key)) {
      accepted["job-" + std::to_string(key)]++;
      next_key = key + 1;
      ++got;
    }
    kill(child, SIGKILL);
    // Acknowledgements written before the kill still count as accepted.
    while (read(pipe_fds[0], &key, sizeof(key)) == sizeof(key)) {
      accepted["job-" + std::to_string(key)]++;
      next_key = key + 1;
    }
    close(pipe_fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "child exited with " << status;
  }
  // Restart once more (which requeues what was running) and drain what the kills left queued or
  // running.
  auto store = Open();
  for (;;) {
    auto claimed = store->Claim("drain");
    ASSERT_TRUE(claimed.ok());
    if (!claimed->has_value()) break;
    ASSERT_TRUE(store->Complete((**claimed).id, "drain", R"({"ok":true})").ok());
  }
  std::size_t found = 0;
  for (std::int64_t id = 1;; ++id) {
    auto job = store->Get(id);
    if (!job.ok()) break;
    ++found;
    EXPECT_EQ(job->state, JobState::kCompleted) << "job " << id;
    EXPECT_EQ(job->completions, 1) << "job " << id;
    accepted.erase(job->idempotency_key);
  }
  EXPECT_TRUE(accepted.empty()) << accepted.size() << " accepted jobs are missing, e.g. "
                                << accepted.begin()->first;
  std::printf("%zu jobs in the database after 25 kills\n", found);
  EXPECT_GE(found, 25u);
}

}  // namespace
}  // namespace firedrill::pipeline
