#include "firedrill/workload/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace firedrill::workload {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Five submissions, one of each fate.
void RunFiveJobs(JobLedger& ledger) {
  for (const char* key : {"k1", "k2", "k3", "k4", "k5"}) ASSERT_TRUE(ledger.Submit(key, 0).ok());
  ASSERT_TRUE(ledger.Attempt("k1", 1).ok());
  ASSERT_TRUE(ledger.Accept("k1", "job-1", 2).ok());
  ASSERT_TRUE(ledger.Complete("job-1", 10).ok());
  ASSERT_TRUE(ledger.Accept("k2", "job-2", 2).ok());
  ASSERT_TRUE(ledger.Fail("job-2", "stage 2 timed out", 11).ok());
  ASSERT_TRUE(ledger.Attempt("k3", 1).ok());
  ASSERT_TRUE(ledger.Attempt("k3", 3).ok());
  ASSERT_TRUE(ledger.Reject("k3", "HTTP 429", 4).ok());
  ASSERT_TRUE(ledger.Accept("k4", "job-4", 2).ok());  // never finishes
  // k5: sent, never answered
}

TEST(JobLedger, AccountsForEveryJobWhenItCloses) {
  JobLedger ledger;
  RunFiveJobs(ledger);
  EXPECT_THAT(ledger.Unfinished(), ElementsAre("job-4"));
  const LedgerSummary summary = ledger.Close(20);
  EXPECT_EQ(summary.submitted, 5);
  EXPECT_EQ(summary.accepted, 3);
  EXPECT_EQ(summary.completed, 1);
  EXPECT_EQ(summary.failed, 1);
  EXPECT_EQ(summary.rejected, 1);
  EXPECT_EQ(summary.lost, 1);
  EXPECT_EQ(summary.unanswered, 1);
  EXPECT_EQ(summary.failed_by_reason.at("stage 2 timed out"), 1);
  EXPECT_EQ(summary.rejected_by_reason.at("HTTP 429"), 1);
  EXPECT_FALSE(summary.NothingLost());
  EXPECT_EQ(summary.ToString(),
            "5 submitted, 3 accepted, 1 completed, 1 failed, 1 lost, 1 rejected, 1 never answered");
  EXPECT_EQ(ledger.Entries()[2].attempts, 2);
  // A lost job that turns up after the close still counts, once.
  ASSERT_TRUE(ledger.Complete("job-4", 30).ok());
  EXPECT_EQ(ledger.Summary().lost, 0);
  EXPECT_EQ(ledger.Summary().completed, 2);
}

TEST(JobLedger, IdempotentRetriesCountOnceAndASecondJobForAKeyIsFlagged) {
  JobLedger ledger;
  ASSERT_TRUE(ledger.Submit("k", 0).ok());
  ASSERT_TRUE(ledger.Accept("k", "job-1", 1).ok());
  ASSERT_TRUE(ledger.Accept("k", "job-1", 2).ok());  // the retry after a restart
  ASSERT_TRUE(ledger.Complete("job-1", 3).ok());
  LedgerSummary summary = ledger.Close(4);
  EXPECT_EQ(summary.accepted, 1);
  EXPECT_EQ(summary.completed, 1);
  EXPECT_TRUE(summary.NothingLost());
  ASSERT_TRUE(ledger.Submit("d", 5).ok());
  ASSERT_TRUE(ledger.Accept("d", "job-2", 6).ok());
  ASSERT_TRUE(ledger.Accept("d", "job-3", 7).ok());
  summary = ledger.Summary();
  EXPECT_THAT(summary.duplicated_keys, ElementsAre("d"));
  EXPECT_FALSE(summary.NothingLost());
}

TEST(JobLedger, MisuseIsAStatus) {
  JobLedger ledger;
  ASSERT_TRUE(ledger.Submit("k", 0).ok());
  EXPECT_EQ(ledger.Submit("k", 1).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ledger.Accept("nope", "job", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger.Complete("job-unknown", 1).code(), StatusCode::kNotFound);
}

class LedgerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("firedrill-ledger-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".jsonl"))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_;
};

TEST_F(LedgerFileTest, ACrashedRunsLedgerReadsBackAndCloses) {
  {
    auto ledger = JobLedger::OpenFile(path_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    RunFiveJobs(**ledger);
    // No Close: the run crashed here.
  }
  // The crash cut the last line short.
  std::ofstream(path_, std::ios::app) << R"({"t":12,"event":"comp)";
  auto replayed = JobLedger::ReadFile(path_);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  const LedgerSummary summary = (*replayed)->Close(20);
  EXPECT_EQ(summary.ToString(),
            "5 submitted, 3 accepted, 1 completed, 1 failed, 1 lost, 1 rejected, 1 never answered");
}

TEST_F(LedgerFileTest, DamageInsideTheFileNamesTheLine) {
  std::ofstream(path_) << R"({"t":0,"event":"submit","key":"a","value":""})"
                       << "\n"
                       << "garbage\n"
                       << R"({"t":1,"event":"submit","key":"b","value":""})"
                       << "\n";
  auto replayed = JobLedger::ReadFile(path_);
  ASSERT_FALSE(replayed.ok());
  EXPECT_THAT(replayed.status().message(), HasSubstr(path_ + ":2: not a ledger event"));
  std::ofstream(path_) << R"({"t":0,"event":"complete","key":"job-9","value":""})"
                       << "\n"
                       << R"({"t":1,"event":"submit","key":"b","value":""})"
                       << "\n";
  replayed = JobLedger::ReadFile(path_);
  ASSERT_FALSE(replayed.ok());
  EXPECT_THAT(replayed.status().message(), HasSubstr(path_ + ":1: job job-9 was never accepted"));
}

TEST(JobLedger, ThreadsShareOneLedger) {
  JobLedger ledger;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&ledger, t] {
      for (int i = 0; i < 1000; ++i) {
        const std::string key = std::to_string(t) + "-" + std::to_string(i);
        ASSERT_TRUE(ledger.Submit(key, i).ok());
        ASSERT_TRUE(ledger.Accept(key, "job-" + key, i).ok());
        if (i % 10 != 0) {
          ASSERT_TRUE(ledger.Complete("job-" + key, i + 1).ok());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const LedgerSummary summary = ledger.Close(5000);
  EXPECT_EQ(summary.submitted, 4000);
  EXPECT_EQ(summary.completed, 3600);
  EXPECT_EQ(summary.lost, 400);
}

}  // namespace
}  // namespace firedrill::workload
