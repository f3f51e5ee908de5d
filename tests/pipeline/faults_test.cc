#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include "firedrill/pipeline/grpc_server.h"
#include "hsof/v1/pipeline.grpc.pb.h"
#include "service_fixture.h"

namespace firedrill::pipeline {
namespace {

namespace pb = ::hsof::v1;
using namespace std::chrono_literals;

constexpr char kToken[] = "test-token-0123456789abcdef";

// Faults through the real gRPC service, on a simulated clock.
class FaultsTest : public ServiceFixture {
 protected:
  void SetUp() override {
    ServiceFixture::SetUp();
    options_.workers = 1;
    StartService();
    ASSERT_NE(service_, nullptr);
    Serve(kToken);
  }
  void StopTransport() override { server_.reset(); }
  void Serve(const std::string& token) {
    server_.reset();
    auto server = GrpcServer::Start(*service_, "127.0.0.1", 0, token);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    faults_ = pb::Faults::NewStub(channel);
    pipeline_ = pb::Pipeline::NewStub(channel);
  }

  grpc::Status Start(const std::string& kind, const std::map<std::string, std::string>& params,
                     double ttl, pb::FaultLease* lease, const char* token = kToken) {
    grpc::ClientContext context;
    if (token) context.AddMetadata("x-firedrill-faults-token", token);
    pb::FaultRequest request;
    request.set_kind(kind);
    for (const auto& [key, value] : params) (*request.mutable_params())[key] = value;
    request.set_ttl_seconds(ttl);
    return faults_->StartFault(&context, request, lease);
  }
  grpc::Status Stop(const std::string& id) {
    grpc::ClientContext context;
    context.AddMetadata("x-firedrill-faults-token", kToken);
    pb::StopFaultRequest request;
    request.set_id(id);
    pb::FaultLease lease;
    return faults_->StopFault(&context, request, &lease);
  }
  std::int64_t Submit(const std::string& key) {
    grpc::ClientContext context;
    pb::SubmitJobRequest request;
    request.set_idempotency_key(key);
    request.set_mode(pb::MODE_FAST);
    request.mutable_dataset()->set_samples(2000);
    request.mutable_dataset()->set_features(200);
    request.mutable_dataset()->set_informative(5);
    request.mutable_dataset()->set_decoys(2);
    pb::SubmitJobResponse response;
    EXPECT_TRUE(pipeline_->SubmitJob(&context, request, &response).ok());
    return response.job().id();
  }
  std::string Metrics() { return service_->metrics().Serialize(); }
  bool Has(const std::string& line) { return Metrics().find(line + "\n") != std::string::npos; }

  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<pb::Faults::Stub> faults_;
  std::unique_ptr<pb::Pipeline::Stub> pipeline_;
};

TEST_F(FaultsTest, AbsentWithoutTheFlagAndRefusedWithoutTheToken) {
  pb::FaultLease lease;
  EXPECT_EQ(Start("exporter-down", {}, 10, &lease, nullptr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Start("exporter-down", {}, 10, &lease, "wrong-token-0123456789abcdef").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Start("exporter-down", {}, 10, &lease, "short").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(service_->Faults().empty());
  Serve("");  // no token: no Faults service at all
  EXPECT_EQ(Start("exporter-down", {}, 10, &lease).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

// Not renewed, a lease lapses within twice its time to live, and its effect
// is undone; renewing keeps it.
TEST_F(FaultsTest, LeasesLapseWithinTwiceTheirTimeToLiveUnlessRenewed) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("exporter-down", {}, 5, &lease).ok());
  EXPECT_EQ(lease.effect(), "the GPU exporter answers 503 to every scrape");
  EXPECT_EQ(service_->HandleGpuExporter({"GET", "/metrics", "", "", {}}).status, 503);
  EXPECT_TRUE(Has("hsof_faults_active{kind=\"exporter-down\"} 1"));
  // Renewed at 4 s for another 5 s: still there at 8 s.
  for (int s = 0; s < 4; ++s) clock_.Advance(1s);
  grpc::ClientContext context;
  context.AddMetadata("x-firedrill-faults-token", kToken);
  pb::RenewFaultRequest renew;
  renew.set_id(lease.id());
  renew.set_ttl_seconds(5);
  ASSERT_TRUE(faults_->RenewFault(&context, renew, &lease).ok());
  for (int s = 0; s < 4; ++s) clock_.Advance(1s);
  EXPECT_EQ(service_->Faults().size(), 1u);
  int lapsed_after = 0;
  for (int s = 1; s <= 10 && !service_->Faults().empty(); ++s) {
    clock_.Advance(1s);
    lapsed_after = s;
  }
  std::printf("lease of 5 s renewed at 4 s; lapsed %d s after the last check at 8 s\n",
              lapsed_after);
  EXPECT_TRUE(service_->Faults().empty());
  const int lapsed_at = 8 + lapsed_after;  // renewed at 4 s for 5 s: due at 9 s
  EXPECT_GE(lapsed_at, 9);
  EXPECT_LE(lapsed_at, 4 + 2 * 5);
  EXPECT_EQ(service_->HandleGpuExporter({"GET", "/metrics", "", "", {}}).status, 200);
  EXPECT_TRUE(Has("hsof_faults_active{kind=\"exporter-down\"} 0"));
}

// A hung stage holds its job and its duration gauge grows; stopping the
// fault lets the job finish.
TEST_F(FaultsTest, AStageStallHoldsTheJobAndTheDurationGrows) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("stage-stall", {{"stage", "2"}}, 600, &lease).ok());
  const std::int64_t id = Submit("stalled");
  while (service_->StageRunning(2) == 0) std::this_thread::yield();
  for (int s = 0; s < 30; ++s) clock_.Advance(1s);
  EXPECT_TRUE(Has("hsof_stage_duration_seconds{stage=\"2\"} 30")) << Metrics();
  EXPECT_EQ(service_->GetJob(id)->state, JobState::kRunning);
  ASSERT_TRUE(Stop(lease.id()).ok());
  EXPECT_EQ(service_->WaitForJob(id, 10min)->state, JobState::kCompleted);
  clock_.Advance(1s);
  EXPECT_TRUE(Has("hsof_stage_duration_seconds{stage=\"2\"} 0"));
}

TEST_F(FaultsTest, ErrorInjectionFailsJobsAndCountsErrors) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("error-injection", {{"share", "100%"}, {"stage", "3"}}, 600, &lease).ok());
  const std::int64_t id = Submit("doomed");
  auto job = service_->WaitForJob(id, 10min);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kFailed);
  EXPECT_NE(job->error.find("stage 3 failed (fault injected)"), std::string::npos) << job->error;
  EXPECT_TRUE(Has("hsof_errors_total 1"));
  ASSERT_TRUE(Stop(lease.id()).ok());
  EXPECT_EQ(service_->WaitForJob(Submit("fine"), 10min)->state, JobState::kCompleted);
}

TEST_F(FaultsTest, MetamodelCorruptionIsUndoneByReloadOrByTheLeaseEnding) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("metamodel-corruption", {{"noise", "3"}}, 600, &lease).ok());
  auto reloaded = service_->ReloadMetamodel();
  ASSERT_TRUE(reloaded.ok());
  EXPECT_TRUE(reloaded->changed) << "the corrupted model differs from the saved one";
  ASSERT_TRUE(Stop(lease.id()).ok());
  auto again = service_->ReloadMetamodel();
  EXPECT_FALSE(again->changed) << "stopping after a reload must not bring the corruption back";
  ASSERT_TRUE(Start("metamodel-corruption", {{"noise", "3"}}, 600, &lease).ok());
  ASSERT_TRUE(Stop(lease.id()).ok());
  EXPECT_FALSE(service_->ReloadMetamodel()->changed) << "the lease ending restored the original";
  ASSERT_TRUE(Start("metamodel-corruption", {{"invert", "true"}}, 600, &lease).ok());
  EXPECT_EQ(lease.effect(), "the metamodel's output is negated: it ranks subsets backwards");
  EXPECT_TRUE(service_->ReloadMetamodel()->changed) << "the inverted model differs from the saved one";
  ASSERT_TRUE(Stop(lease.id()).ok());
  for (const std::map<std::string, std::string>& params :
       std::vector<std::map<std::string, std::string>>{{}, {{"noise", "3"}, {"invert", "true"}}, {{"invert", "false"}}}) {
    const grpc::Status status = Start("metamodel-corruption", params, 600, &lease);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "metamodel-corruption: parameter 'noise': give exactly one of noise (a number) and invert: true");
  }
  EXPECT_EQ(Start("metamodel-corruption", {{"invert", "yes"}}, 600, &lease).error_message(),
            "metamodel-corruption: parameter 'invert': expected true or false, got 'yes'");
  ASSERT_TRUE(Start("metamodel-corruption", {{"noise", "3"}, {"invert", "false"}}, 600, &lease).ok());
  ASSERT_TRUE(Stop(lease.id()).ok());
}

TEST_F(FaultsTest, MemoryHogAndConfigFaultsComeBackWhenStopped) {
  pb::FaultLease hog, config;
  ASSERT_TRUE(Start("gpu-memory-hog", {{"share", "0.5"}}, 600, &hog).ok());
  EXPECT_EQ(service_->device().memory_used(), service_->device().memory_budget() / 2);
  ASSERT_TRUE(
      Start("config-fault", {{"key", "MAX_CONCURRENT_BATCHES"}, {"value", "1"}}, 600, &config)
          .ok());
  EXPECT_EQ(config.effect(), "MAX_CONCURRENT_BATCHES set to 1 (was 2)");
  EXPECT_EQ(Start("gpu-memory-hog", {{"share", "0.1"}}, 600, &hog).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Stop(hog.id()).ok());
  ASSERT_TRUE(Stop(config.id()).ok());
  EXPECT_EQ(service_->device().memory_used(), 0u);
  EXPECT_EQ(service_->Config().at("MAX_CONCURRENT_BATCHES"), "2");
  EXPECT_EQ(Stop(hog.id()).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A cooling failure heats the simulated die past the 85 C alert; thermal
// protection cuts concurrency; when the fault ends it cools and recovers.
TEST_F(FaultsTest, ACoolingFailureHeatsTheSimulatedDeviceAndProtectionCutsConcurrency) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("thermal", {{"temperature", "95"}}, 3600, &lease).ok());
  EXPECT_EQ(lease.kind(), "thermal");
  EXPECT_EQ(lease.device(), "simulated") << "the lease says which device it acts on";
  for (int s = 0; s < 300; ++s) clock_.Advance(1s);
  const double hot = service_->device().simulated()->Temperature();
  EXPECT_GT(hot, 85);
  EXPECT_EQ(service_->Health().components[0].message,
            "thermal protection: concurrency cut to 1 batch until the device cools");
  ASSERT_TRUE(Stop(lease.id()).ok());
  for (int s = 0; s < 600; ++s) clock_.Advance(1s);
  const double cool = service_->device().simulated()->Temperature();
  std::printf("die %.1f C after 300 s of the fault, %.1f C 600 s after it ended\n", hot, cool);
  EXPECT_LT(cool, 80);
  EXPECT_EQ(service_->Health().components[0].status, HealthStatus::kHealthy);
}

// What the monitoring sees, on any backend: a temperature ramp, throttle
// reasons and a clock factor, with the slowdown through the device throttle.
TEST_F(FaultsTest, ATelemetryOverlayRampsTheReadingsAndSlowsTheDevice) {
  clock_.Advance(1s);
  pb::FaultLease lease;
  ASSERT_TRUE(Start("telemetry-overlay",
                    {{"temperature", "90"},
                     {"rampTime", "60s"},
                     {"throttleReasons", "sw_thermal,hw_thermal"},
                     {"clockFactor", "0.5"},
                     {"slowdown", "30%"}},
                    600, &lease)
                  .ok());
  EXPECT_DOUBLE_EQ(service_->device().throttle(), 0.7);
  for (int s = 0; s < 30; ++s) clock_.Advance(1s);
  const std::string halfway = Metrics();
  EXPECT_NE(halfway.find("hsof_gpu_clock_event_reasons{gpu_id=\"0\"} 96"), std::string::npos)
      << halfway;
  EXPECT_NE(halfway.find("hsof_gpu_sm_clock_mhz{gpu_id=\"0\"} 990"), std::string::npos);
  for (int s = 0; s < 40; ++s) clock_.Advance(1s);
  EXPECT_TRUE(Has("hsof_gpu_temperature_celsius{gpu_id=\"0\"} 90"));
  // Thermal protection reacts to what the telemetry says.
  EXPECT_EQ(service_->Health().components[0].message,
            "thermal protection: concurrency cut to 1 batch until the device cools");
  ASSERT_TRUE(Stop(lease.id()).ok());
  EXPECT_DOUBLE_EQ(service_->device().throttle(), 1.0);
  clock_.Advance(1s);
  EXPECT_FALSE(Has("hsof_gpu_temperature_celsius{gpu_id=\"0\"} 90"));
  EXPECT_TRUE(Has("hsof_gpu_clock_event_reasons{gpu_id=\"0\"} 0"));
}

TEST_F(FaultsTest, AMemoryLeakAtARateGrowsUntilTheFaultEnds) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("gpu-memory-leak", {{"rate", "1MiB"}}, 600, &lease).ok());
  for (int s = 0; s < 10; ++s) clock_.Advance(1s);
  EXPECT_EQ(service_->device().memory_used(), 10u << 20);
  ASSERT_TRUE(Stop(lease.id()).ok());
  EXPECT_EQ(service_->device().memory_used(), 0u);
  EXPECT_EQ(
      Start("gpu-memory-leak", {{"rate", "1MiB"}, {"perJob", "1MiB"}}, 600, &lease).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

// Each metamodel batch waits the delay on the service's clock, inside the
// batch's timing, so the latency histogram shows it.
TEST_F(FaultsTest, InferenceDelayShowsInTheLatencyHistogram) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("inference-delay", {{"delay", "20ms"}}, 600, &lease).ok());
  const std::int64_t id = Submit("slow-inference");
  // Stage 2 of a fast job scores 16 batches; each sleeps 20 ms on the clock,
  // which moves only when the worker is asleep on it.
  while (service_->GetJob(id)->state != JobState::kCompleted) {
    if (clock_.Sleepers() > 0) {
      clock_.Advance(20ms);
    } else {
      std::this_thread::yield();
    }
  }
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("hsof_metamodel_inference_latency_seconds_bucket{le=\"0.01\"} 0"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("hsof_metamodel_inference_latency_seconds_count 16"), std::string::npos);
}

// Scheduled backups stop, and the last success can be made to look old:
// what BackupOverdue (time() - last success > 1 day) reads.
TEST_F(FaultsTest, TheBackupSchedulerStopsAndTheLastSuccessAges) {
  ASSERT_TRUE(service_->TriggerBackup().ok());
  pb::FaultLease lease;
  ASSERT_TRUE(Start("backup-scheduler-stop", {{"lastSuccessAge", "26h"}}, 7200, &lease).ok());
  for (int minute = 0; minute < 90; ++minute) clock_.Advance(std::chrono::minutes(1));
  std::ptrdiff_t files =
      std::distance(std::filesystem::directory_iterator(options_.data_dir + "/backups"),
                    std::filesystem::directory_iterator());
  EXPECT_EQ(files, 1) << "no scheduled backup while the fault holds";
  const double now = std::chrono::duration<double>(clock_.WallNow().time_since_epoch()).count();
  char expected[96];
  std::snprintf(expected, sizeof(expected), "hsof_last_successful_backup_timestamp %.0f",
                now - 26 * 3600);
  EXPECT_NE(Metrics().find(expected), std::string::npos) << expected << "\n" << Metrics();
  ASSERT_TRUE(Stop(lease.id()).ok());
  // The overdue backup runs at the first tick after the scheduler resumes.
  for (int minute = 0; minute < 30; ++minute) clock_.Advance(std::chrono::minutes(1));
  files = std::distance(std::filesystem::directory_iterator(options_.data_dir + "/backups"),
                        std::filesystem::directory_iterator());
  EXPECT_EQ(files, 2) << "the scheduler runs again";
}

// BackupOverdue's runbook triggers a backup by hand: the new success is
// reported fresh at once, though the scheduler stays stopped.
TEST_F(FaultsTest, ABackupByHandEndsTheStaleLastSuccessButNotTheStop) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("backup-scheduler-stop", {{"lastSuccessAge", "26h"}}, 7200, &lease).ok());
  clock_.Advance(std::chrono::minutes(1));
  ASSERT_TRUE(service_->TriggerBackup().ok());
  clock_.Advance(std::chrono::minutes(1));
  const double now = std::chrono::duration<double>(clock_.WallNow().time_since_epoch()).count();
  char expected[96];
  std::snprintf(expected, sizeof(expected), "hsof_last_successful_backup_timestamp %.0f", now - 60);
  EXPECT_NE(Metrics().find(expected), std::string::npos) << expected << "\n" << Metrics();
  for (int minute = 0; minute < 90; ++minute) clock_.Advance(std::chrono::minutes(1));
  const std::ptrdiff_t files =
      std::distance(std::filesystem::directory_iterator(options_.data_dir + "/backups"),
                    std::filesystem::directory_iterator());
  EXPECT_EQ(files, 1) << "only the backup taken by hand";
  ASSERT_TRUE(Stop(lease.id()).ok());
}

TEST_F(FaultsTest, BadFaultsAreInvalidArgumentsThatSayWhy) {
  pb::FaultLease lease;
  grpc::Status status = Start("meteor-strike", {}, 10, &lease);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("unknown fault kind 'meteor-strike'"), std::string::npos);
  status = Start("stage-stall", {{"stage", "7"}}, 10, &lease);
  EXPECT_EQ(status.error_message(),
            "stage-stall: parameter 'stage': expected a number in [1, 3], got '7'");
  status = Start("inference-delay", {{"delay", "soon"}}, 10, &lease);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  status = Start("exporter-down", {{"loud", "yes"}}, 10, &lease);
  EXPECT_EQ(status.error_message(), "exporter-down: parameter 'loud': unknown (known: none)");
  EXPECT_EQ(Start("exporter-down", {}, 0, &lease).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(service_->Faults().empty());
}

TEST_F(FaultsTest, DatabaseAndBackupFaultsFailWhatTheyTouch) {
  pb::FaultLease database, backup;
  ASSERT_TRUE(Start("database-unavailable", {}, 600, &database).ok());
  grpc::ClientContext context;
  pb::SubmitJobRequest request;
  request.mutable_dataset()->set_samples(2000);
  pb::SubmitJobResponse response;
  const grpc::Status refused = pipeline_->SubmitJob(&context, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(refused.error_message(), "job database unavailable (fault injected)");
  ASSERT_TRUE(Stop(database.id()).ok());

  ASSERT_TRUE(Start("backup-target-failure", {}, 600, &backup).ok());
  auto failed = service_->TriggerBackup();
  EXPECT_FALSE(failed.ok());
  EXPECT_TRUE(Has("hsof_backup_failed_total 1"));
  ASSERT_TRUE(Stop(backup.id()).ok());
  EXPECT_TRUE(service_->TriggerBackup().ok());
}

// The runbook's answer to a stage timeout: restart the stage. The held job
// goes back to the queue (attempt 2), its stage's clock starts over, and the
// hang is over: a restart is what cures a hung stage.
TEST_F(FaultsTest, RestartingAStageRequeuesTheJobItHoldsAndEndsTheHang) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("stage-stall", {{"stage", "3"}}, 600, &lease).ok());
  const std::int64_t id = Submit("held-then-restarted");
  while (service_->StageRunning(3) == 0) std::this_thread::yield();
  for (int s = 0; s < 20; ++s) clock_.Advance(1s);
  EXPECT_TRUE(Has("hsof_stage_duration_seconds{stage=\"3\"} 20"));
  auto restarted = service_->RestartStage(3);
  ASSERT_TRUE(restarted.ok());
  EXPECT_TRUE(restarted->changed);
  EXPECT_EQ(restarted->before.at("jobs_in_stage"), "1");
  EXPECT_TRUE(Has("hsof_faults_active{kind=\"stage-stall\"} 0")) << Metrics();
  // Requeued and claimed again, it runs through: no Stop needed.
  auto job = service_->WaitForJob(id, 10min);
  EXPECT_EQ(job->state, JobState::kCompleted);
  EXPECT_EQ(job->attempts, 2);
  EXPECT_EQ(Stop(lease.id()).error_code(), grpc::StatusCode::NOT_FOUND) << "the restart ended it";
  EXPECT_EQ(service_->RestartStage(4).status().code(), StatusCode::kInvalidArgument);
}

// Restore only when drained; afterwards the database is the backup's.
TEST_F(FaultsTest, RestoreBringsBackTheBackupWhileDrained) {
  EXPECT_EQ(service_->WaitForJob(Submit("before-backup"), 10min)->state, JobState::kCompleted);
  auto backup = service_->TriggerBackup();
  ASSERT_TRUE(backup.ok());
  const std::string name = std::filesystem::path(backup->after.at("backup")).filename();
  EXPECT_EQ(service_->WaitForJob(Submit("after-backup"), 10min)->state, JobState::kCompleted);
  for (int s = 0; s < 90; ++s) clock_.Advance(1s);
  EXPECT_EQ(service_->RestoreBackup(name).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(service_->DrainAction().ok());
  EXPECT_EQ(service_->RestoreBackup("../jobs.db").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->RestoreBackup("nope.db").status().code(), StatusCode::kNotFound);
  auto restored = service_->RestoreBackup("latest");
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->before.at("jobs"), "2");
  EXPECT_EQ(restored->after.at("jobs"), "1");
  EXPECT_EQ(restored->message, "restored 1 jobs from " + backup->after.at("backup") + ", a backup taken 1m30s ago")
      << "the backup's age is the recovery point";
  EXPECT_EQ(restored->after.at("backup_age_seconds"), "90");
  EXPECT_EQ(service_->GetJob(2).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->GetJob(1)->idempotency_key, "before-backup");
  ASSERT_TRUE(service_->ResumeAction().ok());
}

// Stopping the service undoes faults, releasing a job a stall holds.
TEST_F(FaultsTest, StoppingTheServiceEndsEveryFault) {
  pb::FaultLease lease;
  ASSERT_TRUE(Start("stage-stall", {{"stage", "1"}}, 600, &lease).ok());
  Submit("held");
  while (service_->StageRunning(1) == 0) std::this_thread::yield();
  server_.reset();
  service_->Stop();
  EXPECT_TRUE(service_->Faults().empty());
}

}  // namespace
}  // namespace firedrill::pipeline
