// The embedded target: a real hsof-pipeline in a fresh directory, reached
// through Firedrill's proxies, with its Faults service behind the token;
// stopped, nothing of it is left. The remote target: the same pipeline by
// its addresses.
#include "firedrill/targets/target.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "firedrill/injectors/injection.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/injectors/undo.h"
#include "net/http_client.h"  // tests/net

namespace firedrill::targets {
namespace {

namespace fs = std::filesystem;
using firedrill::testing::HttpCall;

EmbeddedTargetOptions Options() {
  EmbeddedTargetOptions options;
  options.binary = HSOF_PIPELINE_BINARY;
  options.device = "cpu";
  options.workers = 1;
  options.device_memory = std::uint64_t{1} << 30;
  return options;
}

TEST(EmbeddedTarget, StartsOnFreePortsBehindProxiesAndLeavesNothing) {
  RealClock clock;
  auto target = StartEmbeddedTarget(Options(), clock);
  ASSERT_TRUE(target.ok()) << target.status();
  const TargetEndpoints endpoints = (*target)->endpoints();
  EXPECT_NE(injectors::ProcessState(endpoints.pid), '?');
  EXPECT_EQ(HttpCall("GET", endpoints.http + "/health").status, 200) << "through the proxy";
  EXPECT_EQ(HttpCall("GET", endpoints.direct_http + "/health").status, 200);
  EXPECT_EQ(HttpCall("GET", endpoints.gpu_exporter).status, 200);
  EXPECT_NE(endpoints.http, endpoints.direct_http);
  ASSERT_EQ((*target)->proxies().count("grpc"), 1u);
  EXPECT_EQ(endpoints.faults_token.size(), 32u);

  // The Faults service answers the random token, and the pipeline's device
  // counts the shared device memory folder.
  const fs::path scratch = fs::temp_directory_path() / ("firedrill-targets-test-" + std::to_string(getpid()));
  auto journal = injectors::Journal::Open((scratch / "journal.db").string());
  ASSERT_TRUE(journal.ok());
  injectors::InjectionContext context;
  context.journal = journal->get();
  context.clock = &clock;
  context.pipeline_grpc = endpoints.faults_grpc;
  context.faults_token = endpoints.faults_token;
  auto fault = injectors::StartInjection("exporter-down", nlohmann::json::object(), context);
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_EQ(HttpCall("GET", endpoints.gpu_exporter).status, 503);
  ASSERT_TRUE((*fault)->Stop().ok());
  EXPECT_TRUE(fs::is_directory(endpoints.shared_device_memory));

  ASSERT_TRUE((*target)->Stop().ok());
  EXPECT_EQ(injectors::ProcessState(endpoints.pid), '?') << "the pipeline was stopped and reaped";
  EXPECT_FALSE(fs::exists(fs::path(endpoints.shared_device_memory).parent_path())) << "its directory is gone";
  EXPECT_TRUE((*target)->Stop().ok()) << "idempotent";
  fs::remove_all(scratch);
}

// A restart (the runbook's restartTarget) brings the pipeline back on the
// same ports and data, so the proxies, scrapes and accepted jobs carry on;
// while it runs, the pipeline is a journal row recover could stop.
TEST(EmbeddedTarget, RestartKeepsPortsAndDataAndTheJournalFollowsThePid) {
  RealClock clock;
  const fs::path scratch = fs::temp_directory_path() / ("firedrill-targets-restart-" + std::to_string(getpid()));
  auto journal = injectors::Journal::Open((scratch / "journal.db").string());
  ASSERT_TRUE(journal.ok());
  EmbeddedTargetOptions options = Options();
  options.journal = journal->get();
  auto target = StartEmbeddedTarget(options, clock);
  ASSERT_TRUE(target.ok()) << target.status();
  const TargetEndpoints before = (*target)->endpoints();
  auto open = (*journal)->OpenFaults();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].kind, "embedded-target");
  EXPECT_EQ((*open)[0].undo["pid"], before.pid);

  const auto created = HttpCall("POST", before.http + "/v1/jobs",
                                R"({"idempotency_key": "restart-1", "dataset": {"samples": 200, "features": 40}})");
  ASSERT_EQ(created.status / 100, 2) << created.body;
  kill(before.pid, SIGKILL);  // what system-down does
  ASSERT_TRUE((*target)->Restart(false).ok());
  const TargetEndpoints after = (*target)->endpoints();
  EXPECT_NE(after.pid, before.pid);
  EXPECT_EQ(after.direct_http, before.direct_http);
  EXPECT_EQ(HttpCall("GET", after.http + "/health").status, 200) << "the proxy reaches the new process";
  EXPECT_EQ(HttpCall("GET", after.http + "/v1/jobs/1").status, 200) << "the job survived the restart";
  open = (*journal)->OpenFaults();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u) << "the old row closed, the new one open";
  EXPECT_EQ((*open)[0].undo["pid"], after.pid);

  // Restarted drained (a restore comes first): it answers, and takes no job.
  ASSERT_TRUE((*target)->Restart(true).ok());
  const auto refused = HttpCall("POST", after.http + "/v1/jobs",
                                R"({"idempotency_key": "restart-2", "dataset": {"samples": 200, "features": 40}})");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("draining"), std::string::npos) << refused.body;
  EXPECT_EQ(HttpCall("GET", after.http + "/v1/jobs/1").status, 200);

  ASSERT_TRUE((*target)->Stop().ok());
  open = (*journal)->OpenFaults();
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->empty());
  fs::remove_all(scratch);
}

// At a time scale of 60 the pipeline runs on drill time: a stalled stage's
// duration gauge passes a drill minute within about a real second, as a
// compressed drill needs for PipelineStageTimeout (> 300 s) to fire.
TEST(EmbeddedTarget, ATimeScaleRunsThePipelineOnDrillTime) {
  RealClock real;
  EmbeddedTargetOptions options = Options();
  options.time_scale = 60;
  auto target = StartEmbeddedTarget(options, real);
  ASSERT_TRUE(target.ok()) << target.status();
  const TargetEndpoints& endpoints = (*target)->endpoints();
  ScaledClock drill(real, 60);
  const fs::path scratch = fs::temp_directory_path() / ("firedrill-targets-scale-" + std::to_string(getpid()));
  auto journal = injectors::Journal::Open((scratch / "journal.db").string());
  ASSERT_TRUE(journal.ok());
  injectors::InjectionContext context;
  context.journal = journal->get();
  context.clock = &drill;  // leases in drill time, as the pipeline counts them
  context.ttl = std::chrono::minutes(30);  // half a real minute: no renewal needed here
  context.pipeline_grpc = endpoints.faults_grpc;
  context.faults_token = endpoints.faults_token;
  auto stall = injectors::StartInjection("stage-stall", {{"stage", "2"}, {"mode", "hang"}}, context);
  ASSERT_TRUE(stall.ok()) << stall.status();
  ASSERT_EQ(HttpCall("POST", endpoints.http + "/v1/jobs",
                     R"({"mode": "fast", "dataset": {"samples": 200, "features": 40, "informative": 4}})")
                .status,
            202);
  const auto stage_two_seconds = [&] {
    const std::string metrics = HttpCall("GET", endpoints.http + "/metrics").body;
    const std::string series = "hsof_stage_duration_seconds{stage=\"2\"} ";
    const std::size_t at = metrics.find(series);
    return at == std::string::npos ? 0.0 : std::stod(metrics.substr(at + series.size()));
  };
  const auto start = std::chrono::steady_clock::now();
  while (stage_two_seconds() < 60 && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double real_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(stage_two_seconds(), 60);
  EXPECT_LT(real_seconds, 20) << "a drill minute took " << real_seconds << " real seconds";
  ASSERT_TRUE((*stall)->Stop().ok());
  ASSERT_TRUE((*target)->Stop().ok());
  fs::remove_all(scratch);
}

TEST(EmbeddedTarget, ATimeScaleOutOfRangeIsRefused) {
  RealClock clock;
  EmbeddedTargetOptions options = Options();
  options.time_scale = 0;
  EXPECT_EQ(StartEmbeddedTarget(options, clock).status().code(), StatusCode::kInvalidArgument);
}

TEST(EmbeddedTarget, ABinaryThatIsNotThereIsNamed) {
  RealClock clock;
  EmbeddedTargetOptions options = Options();
  options.binary = "/nonexistent/hsof-pipeline";
  auto target = StartEmbeddedTarget(options, clock);
  EXPECT_EQ(target.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(target.status().message().find("/nonexistent/hsof-pipeline is not there"), std::string::npos);
}

TEST(EmbeddedTarget, APipelineThatFailsToStartIsReportedWithItsLog) {
  RealClock clock;
  EmbeddedTargetOptions options = Options();
  options.gpu_memory_fraction = 7;  // refused by the pipeline's own option check
  auto target = StartEmbeddedTarget(options, clock);
  EXPECT_EQ(target.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(target.status().message().find("did not start listening"), std::string::npos) << target.status();
  EXPECT_NE(target.status().message().find("gpu-memory-fraction"), std::string::npos) << target.status();
}

TEST(RemoteTarget, ConnectsThroughProxiesAndRefusesWhatItCannotReach) {
  RealClock clock;
  auto embedded = StartEmbeddedTarget(Options(), clock);
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  const TargetEndpoints& running = (*embedded)->endpoints();
  auto remote = ConnectRemoteTarget({.http = running.direct_http, .grpc = running.direct_grpc}, clock);
  ASSERT_TRUE(remote.ok()) << remote.status();
  EXPECT_EQ(HttpCall("GET", (*remote)->endpoints().http + "/health").status, 200);
  EXPECT_TRUE((*remote)->endpoints().faults_token.empty());
  ASSERT_TRUE((*remote)->Stop().ok());
  EXPECT_NE(injectors::ProcessState(running.pid), '?') << "a remote pipeline is not Firedrill's to stop";

  EXPECT_EQ(ConnectRemoteTarget({.http = "http://10.1.2.3:8080"}, clock).status().code(), StatusCode::kInvalidArgument)
      << "off loopback without allow_remote";
  EXPECT_EQ(ConnectRemoteTarget({.http = "ftp://127.0.0.1:1"}, clock).status().code(), StatusCode::kInvalidArgument);
  auto unreachable = ConnectRemoteTarget({.http = "http://127.0.0.1:1"}, clock);
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(unreachable.status().message().find("GET http://127.0.0.1:1/health"), std::string::npos)
      << unreachable.status();
}

}  // namespace
}  // namespace firedrill::targets
