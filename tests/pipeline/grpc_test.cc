#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "firedrill/pipeline/grpc_server.h"
#include "hsof/v1/pipeline.grpc.pb.h"
#include "service_fixture.h"

namespace firedrill::pipeline {
namespace {

namespace pb = ::hsof::v1;
using namespace std::chrono_literals;

// The service behind its real gRPC server on a free loopback port, called
// through generated stubs.
class GrpcTest : public ServiceFixture {
 protected:
  void SetUp() override {
    ServiceFixture::SetUp();
    StartService();
    ASSERT_NE(service_, nullptr);
    auto server = GrpcServer::Start(*service_, "127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    pipeline_ = pb::Pipeline::NewStub(channel_);
    admin_ = pb::Admin::NewStub(channel_);
  }
  void StopTransport() override { server_.reset(); }

  static pb::SubmitJobRequest SmallJob(const std::string& key) {
    pb::SubmitJobRequest request;
    request.set_idempotency_key(key);
    request.set_mode(pb::MODE_FAST);
    request.mutable_dataset()->set_samples(3000);
    request.mutable_dataset()->set_features(300);
    request.mutable_dataset()->set_informative(6);
    request.mutable_dataset()->set_decoys(3);
    return request;
  }

  pb::ActionResult SetConfig(const std::string& key, const std::string& value,
                             grpc::Status* status) {
    grpc::ClientContext context;
    pb::SetConfigRequest request;
    request.set_key(key);
    request.set_value(value);
    pb::ActionResult result;
    *status = admin_->SetConfig(&context, request, &result);
    return result;
  }

  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Pipeline::Stub> pipeline_;
  std::unique_ptr<pb::Admin::Stub> admin_;
};

TEST_F(GrpcTest, SubmitWatchAndGetAJob) {
  grpc::ClientContext submit_context;
  pb::SubmitJobResponse submitted;
  ASSERT_TRUE(pipeline_->SubmitJob(&submit_context, SmallJob("g-1"), &submitted).ok());
  EXPECT_TRUE(submitted.created());
  EXPECT_EQ(submitted.job().state(), pb::JOB_STATE_QUEUED);

  // Watch streams each change of state and ends when the job is done.
  grpc::ClientContext watch_context;
  pb::WatchJobRequest watch;
  watch.set_id(submitted.job().id());
  auto reader = pipeline_->WatchJob(&watch_context, watch);
  std::vector<pb::JobState> states;
  for (pb::Job update; reader->Read(&update);) states.push_back(update.state());
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), pb::JOB_STATE_COMPLETED);
  for (std::size_t i = 1; i < states.size(); ++i) EXPECT_GT(states[i], states[i - 1]);

  grpc::ClientContext get_context;
  pb::GetJobRequest get;
  get.set_id(submitted.job().id());
  pb::Job job;
  ASSERT_TRUE(pipeline_->GetJob(&get_context, get, &job).ok());
  EXPECT_EQ(job.state(), pb::JOB_STATE_COMPLETED);
  EXPECT_NE(job.result_json().find("\"quality\""), std::string::npos);
  EXPECT_EQ(job.idempotency_key(), "g-1");

  // The same key again is the same job, over gRPC as over HTTP.
  grpc::ClientContext again_context;
  pb::SubmitJobResponse again;
  ASSERT_TRUE(pipeline_->SubmitJob(&again_context, SmallJob("g-1"), &again).ok());
  EXPECT_FALSE(again.created());
  EXPECT_EQ(again.job().id(), submitted.job().id());
}

TEST_F(GrpcTest, BadRequestsAreInvalidArgumentOrNotFound) {
  pb::SubmitJobRequest bad = SmallJob("g-2");
  bad.mutable_dataset()->set_samples(5);
  grpc::ClientContext context;
  pb::SubmitJobResponse response;
  const grpc::Status status = pipeline_->SubmitJob(&context, bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "field 'dataset.samples': expected an integer in [16, 1000000], got 5");

  pb::SubmitJobRequest unknown_mode = SmallJob("g-3");
  unknown_mode.set_mode(static_cast<pb::Mode>(9));
  grpc::ClientContext mode_context;
  EXPECT_EQ(pipeline_->SubmitJob(&mode_context, unknown_mode, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A CSV dataset takes its path and target only, as over HTTP.
  pb::SubmitJobRequest mixed = SmallJob("g-4");
  mixed.mutable_dataset()->set_csv("sales.csv");
  grpc::ClientContext mixed_context;
  const grpc::Status mixed_status = pipeline_->SubmitJob(&mixed_context, mixed, &response);
  EXPECT_EQ(mixed_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(mixed_status.error_message().find("not allowed with csv"), std::string::npos) << mixed_status.error_message();

  grpc::ClientContext get_context;
  pb::GetJobRequest get;
  get.set_id(12345);
  pb::Job job;
  EXPECT_EQ(pipeline_->GetJob(&get_context, get, &job).error_code(), grpc::StatusCode::NOT_FOUND);
}

// Each action answers with what it changed, and a repeat changes nothing.
TEST_F(GrpcTest, AdminActionsAreIdempotentAndSayWhatChanged) {
  grpc::Status status;
  pb::ActionResult result = SetConfig("MAX_CONCURRENT_BATCHES", "1", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(result.changed());
  EXPECT_EQ(result.before().at("MAX_CONCURRENT_BATCHES"), "2");
  EXPECT_EQ(result.after().at("MAX_CONCURRENT_BATCHES"), "1");
  result = SetConfig("MAX_CONCURRENT_BATCHES", "1", &status);
  EXPECT_FALSE(result.changed());
  EXPECT_EQ(result.message(), "MAX_CONCURRENT_BATCHES was already 1");

  result = SetConfig("GPU_MEMORY_FRACTION", "0.5", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(result.after().at("GPU_MEMORY_FRACTION"), "0.5");
  EXPECT_EQ(service_->device().memory_budget(), std::uint64_t{1} << 29);

  SetConfig("GPU_MEMORY_FRACTION", "2", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "GPU_MEMORY_FRACTION: expected a number in [0.01, 1.0], got '2'");
  SetConfig("MAX_BATCHES", "1", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("unknown config key 'MAX_BATCHES'"), std::string::npos);

  grpc::ClientContext scale_context;
  pb::ScaleWorkersRequest scale;
  scale.set_workers(4);
  ASSERT_TRUE(admin_->ScaleWorkers(&scale_context, scale, &result).ok());
  EXPECT_TRUE(result.changed());
  EXPECT_EQ(result.after().at("WORKERS"), "4");

  grpc::ClientContext drain_context, drain_again_context, resume_context;
  ASSERT_TRUE(admin_->Drain(&drain_context, pb::DrainRequest(), &result).ok());
  EXPECT_TRUE(result.changed());
  ASSERT_TRUE(admin_->Drain(&drain_again_context, pb::DrainRequest(), &result).ok());
  EXPECT_FALSE(result.changed());
  grpc::ClientContext refused_context;
  pb::SubmitJobResponse refused;
  EXPECT_EQ(pipeline_->SubmitJob(&refused_context, SmallJob("g-4"), &refused).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(admin_->Resume(&resume_context, pb::ResumeRequest(), &result).ok());
  EXPECT_TRUE(result.changed());

  grpc::ClientContext backup_context;
  ASSERT_TRUE(admin_->TriggerBackup(&backup_context, pb::BackupRequest(), &result).ok());
  EXPECT_TRUE(std::filesystem::exists(result.after().at("backup")));

  grpc::ClientContext reload_context;
  ASSERT_TRUE(admin_->ReloadMetamodel(&reload_context, pb::ReloadMetamodelRequest(), &result).ok());
  EXPECT_FALSE(result.changed()) << "the model in use is the saved one";

  grpc::ClientContext config_context;
  pb::ConfigValues values;
  ASSERT_TRUE(admin_->GetConfig(&config_context, pb::GetConfigRequest(), &values).ok());
  EXPECT_EQ(values.values().at("WORKERS"), "4");
  EXPECT_EQ(values.values().at("ENABLE_THERMAL_PROTECTION"), "true");
}

// ADMISSION_RATE caps submissions per second of the service's clock.
TEST_F(GrpcTest, AdmissionRateRefusesTheExcessUntilTimePasses) {
  grpc::Status status;
  SetConfig("ADMISSION_RATE", "2", &status);
  ASSERT_TRUE(status.ok());
  int accepted = 0, refused = 0;
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    pb::SubmitJobResponse response;
    const grpc::Status submit =
        pipeline_->SubmitJob(&context, SmallJob("a-" + std::to_string(i)), &response);
    submit.ok() ? ++accepted : ++refused;
    if (!submit.ok()) {
      EXPECT_EQ(submit.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    }
  }
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(refused, 3);
  clock_.Advance(1s);
  grpc::ClientContext context;
  pb::SubmitJobResponse response;
  EXPECT_TRUE(pipeline_->SubmitJob(&context, SmallJob("a-later"), &response).ok());
}

TEST_F(GrpcTest, CleanupDeletesOldFinishedJobs) {
  grpc::ClientContext submit_context;
  pb::SubmitJobResponse submitted;
  ASSERT_TRUE(pipeline_->SubmitJob(&submit_context, SmallJob("old"), &submitted).ok());
  ASSERT_EQ(service_->WaitForJob(submitted.job().id(), 10min)->state, JobState::kCompleted);
  clock_.Advance(2h);
  grpc::ClientContext context;
  pb::CleanupRequest request;
  request.set_older_than_seconds(3600);
  pb::ActionResult result;
  ASSERT_TRUE(admin_->CleanupArtifacts(&context, request, &result).ok());
  EXPECT_EQ(result.after().at("jobs_deleted"), "1");
  EXPECT_EQ(service_->GetJob(submitted.job().id()).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace firedrill::pipeline
