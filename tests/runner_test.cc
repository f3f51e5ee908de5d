// Runbook steps against the real pipeline: Admin calls change what the
// pipeline reports, HTTP steps check statuses, commands run from argument
// lists with their timeouts, and a failing step stops the runbook unless it
// may fail.
#include "firedrill/runner/runbook_runner.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "hsof/v1/pipeline.grpc.pb.h"
#include "net/loopback.h"
#include "pipeline/spawn.h"

namespace firedrill::runner {
namespace {

using namespace std::chrono_literals;

engine::RunbookStep Step(std::string name, std::string action, nlohmann::json fields, Duration timeout = 10s) {
  engine::RunbookStep step;
  step.name = std::move(name);
  step.timeout = timeout;
  step.action.kind = std::move(action);
  step.action.fields = std::move(fields);
  return step;
}

class RunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new firedrill::testing::SuitePipeline("firedrill-runner", {"--backend", "cpu", "--workers", "1"});
    pipeline_ = &suite_->pipeline();
  }
  static void TearDownTestSuite() {
    delete suite_;
    pipeline_ = nullptr;
  }
  void SetUp() override {
    ASSERT_FALSE(pipeline_->ports.is_discarded());
    context_.http = pipeline_->http();
    context_.admin_grpc = pipeline_->grpc();
    context_.clock = &clock_;
  }
  std::string Config(const std::string& key) const {
    auto stub = hsof::v1::Admin::NewStub(grpc::CreateChannel(pipeline_->grpc(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext call;
    hsof::v1::ConfigValues values;
    EXPECT_TRUE(stub->GetConfig(&call, hsof::v1::GetConfigRequest(), &values).ok());
    return values.values().count(key) ? values.values().at(key) : "";
  }

  static firedrill::testing::SuitePipeline* suite_;
  static const firedrill::testing::SpawnedPipeline* pipeline_;
  RealClock clock_;
  RunbookContext context_;
};
firedrill::testing::SuitePipeline* RunnerTest::suite_ = nullptr;
const firedrill::testing::SpawnedPipeline* RunnerTest::pipeline_ = nullptr;

TEST_F(RunnerTest, AdminStepsChangeThePipeline) {
  const StepOutcome set = RunStep(Step("lower", "admin.setConfig", {{"key", "MAX_CONCURRENT_BATCHES"}, {"value", "2"}}), context_);
  EXPECT_TRUE(set.ok) << set.detail;
  EXPECT_EQ(Config("MAX_CONCURRENT_BATCHES"), "2");
  const StepOutcome restart = RunStep(Step("restart", "admin.restartStage", {{"stage", "2"}}), context_);
  EXPECT_TRUE(restart.ok) << restart.detail;
  const StepOutcome bad = RunStep(Step("bad", "admin.setConfig", {{"key", "MAX_CONCURRENT_BATCHES"}, {"value", "lots"}}), context_);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.detail.find("the pipeline refused"), std::string::npos) << bad.detail;
  context_.admin_grpc = "127.0.0.1:1";
  const StepOutcome unreachable = RunStep(Step("gone", "admin.drain", nlohmann::json::object(), 300ms), context_);
  EXPECT_FALSE(unreachable.ok);
}

TEST_F(RunnerTest, HttpStepsCheckTheStatus) {
  const StepOutcome health = RunStep(Step("health", "http", {{"url", "/health"}}), context_);
  EXPECT_TRUE(health.ok) << health.detail;
  EXPECT_NE(health.detail.find("GET " + pipeline_->http() + "/health: 200"), std::string::npos) << health.detail;
  const StepOutcome missing = RunStep(Step("missing", "http", {{"url", "/no-such-page"}}), context_);
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(missing.detail.find("404 (expected 2xx)"), std::string::npos) << missing.detail;
  const StepOutcome expected = RunStep(Step("expected", "http", {{"url", "/no-such-page"}, {"expectStatus", "404"}}), context_);
  EXPECT_TRUE(expected.ok) << expected.detail;
}

TEST_F(RunnerTest, CommandsRunFromArgumentListsWithTimeouts) {
  EXPECT_TRUE(RunStep(Step("true", "exec", {{"argv", {"true"}}}), context_).ok);
  const StepOutcome failed = RunStep(Step("false", "exec", {{"argv", {"sh", "-c", "echo broken >&2; exit 3"}}}), context_);
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.detail.find("sh exited 3 (expected 0): broken"), std::string::npos) << failed.detail;
  // No shell: the argument is one word, not a command line.
  const StepOutcome literal = RunStep(Step("literal", "exec", {{"argv", {"echo", "$HOME; echo injected"}}}), context_);
  EXPECT_NE(literal.detail.find("$HOME; echo injected"), std::string::npos) << literal.detail;
  const auto start = std::chrono::steady_clock::now();
  const StepOutcome slow = RunStep(Step("slow", "exec", {{"argv", {"sleep", "30"}}}, 200ms), context_);
  EXPECT_FALSE(slow.ok);
  EXPECT_NE(slow.detail.find("ran past its timeout of 200ms and was killed"), std::string::npos) << slow.detail;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  const StepOutcome missing = RunStep(Step("missing", "exec", {{"argv", {"/no/such/program"}}}), context_);
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(missing.detail.find("/no/such/program"), std::string::npos) << missing.detail;
}

TEST_F(RunnerTest, AFailedStepStopsTheRunbookUnlessItMayFail) {
  engine::Runbook runbook;
  runbook.steps.push_back(Step("may-fail", "exec", {{"argv", {"false"}}}));
  runbook.steps.back().continue_on_error = true;
  runbook.steps.push_back(Step("must-pass", "exec", {{"argv", {"false"}}}));
  runbook.steps.push_back(Step("never-runs", "exec", {{"argv", {"true"}}}));
  const RunbookOutcome outcome = RunRunbook(runbook, context_);
  EXPECT_FALSE(outcome.ok);
  ASSERT_EQ(outcome.steps.size(), 2u);
  EXPECT_EQ(outcome.steps[1].name, "must-pass");
  const StepOutcome restart = RunStep(Step("restart", "restartTarget", nlohmann::json::object()), context_);
  EXPECT_FALSE(restart.ok) << "no restart hook: a remote target";
  // A wait on drill time: a drill minute is a real second at scale 60.
  SimulatedClock real;
  ScaledClock drill(real, 60);
  context_.clock = &drill;
  const MonotonicTime start = drill.Now();
  std::thread advance([&] {
    real.WaitForSleepers(1);
    real.Advance(1s);
  });
  const StepOutcome wait = RunStep(Step("wait", "wait", {{"duration", "1m"}}, 5min), context_);
  advance.join();
  EXPECT_TRUE(wait.ok) << wait.detail;
  EXPECT_GE(drill.Now() - start, 1min);
  const StepOutcome too_long = RunStep(Step("too-long", "wait", {{"duration", "1h"}}, 0s), context_);
  EXPECT_FALSE(too_long.ok);
  EXPECT_NE(too_long.detail.find("longer than the step's timeout"), std::string::npos) << too_long.detail;
}

// Ctrl-C during a runbook must not wait out the step in progress: a command
// is killed with its group, and HTTP and Admin calls to a server that never
// answers are abandoned, each well inside its 60 s timeout.
TEST_F(RunnerTest, AnAbortEndsTheStepInProgress) {
  std::atomic<bool> cancelled{false};
  context_.cancelled = &cancelled;
  const auto abort_once = [&](const engine::RunbookStep& step, const std::function<bool()>& started) {
    cancelled = false;
    auto running = std::async(std::launch::async, [&] { return RunStep(step, context_); });
    EXPECT_TRUE(started()) << step.name << " never got going";
    cancelled = true;
    EXPECT_EQ(running.wait_for(30s), std::future_status::ready) << step.name << " did not end when the drill did";
    return running.get();
  };

  // The command says it has started down a FIFO the test polls.
  const std::string fifo = ::testing::TempDir() + "firedrill-runner-started-" + std::to_string(getpid());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << fifo;
  const int started = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(started, 0);
  const StepOutcome command = abort_once(Step("slow", "exec", {{"argv", {"sh", "-c", "echo > " + fifo + "; sleep 60"}}}, 60s), [&] {
    pollfd said{started, POLLIN, 0};
    return poll(&said, 1, 10'000) == 1;
  });
  close(started);
  std::filesystem::remove(fifo);
  EXPECT_FALSE(command.ok);
  EXPECT_NE(command.detail.find("sh was killed: cancelled"), std::string::npos) << command.detail;

  firedrill::testing::BlackHole silent_http;
  const StepOutcome http = abort_once(Step("silent", "http", {{"url", "http://127.0.0.1:" + std::to_string(silent_http.port) + "/health"}}, 60s),
                                      [&] { return silent_http.Connected(10'000); });
  EXPECT_FALSE(http.ok);
  EXPECT_NE(http.detail.find("cancelled: the drill ended"), std::string::npos) << http.detail;

  firedrill::testing::BlackHole silent_admin;
  context_.admin_grpc = "127.0.0.1:" + std::to_string(silent_admin.port);
  const StepOutcome admin = abort_once(Step("silent", "admin.drain", nlohmann::json::object(), 60s),
                                       [&] { return silent_admin.Connected(10'000); });
  EXPECT_FALSE(admin.ok);
  EXPECT_EQ(admin.detail, "cancelled: the drill ended");
  for (const StepOutcome* outcome : {&command, &http, &admin}) EXPECT_LT(outcome->took, 10s) << outcome->detail;
}

}  // namespace
}  // namespace firedrill::runner
