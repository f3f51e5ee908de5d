// The real hsof-pipeline binary on loopback, CPU backend: jobs over HTTP and
// gRPC complete with sensible quality, and the Faults service exists only
// with --enable-faults and answers only with its token.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../net/http_client.h"
#include "hsof/v1/pipeline.grpc.pb.h"
#include "spawn.h"

namespace {

namespace pb = ::hsof::v1;
using firedrill::testing::HttpCall;
using nlohmann::json;

using Pipeline = firedrill::testing::SpawnedPipeline;

Pipeline Spawn(const std::string& directory, const std::vector<std::string>& flags,
               const char* token = nullptr, std::map<std::string, std::string> environment = {}) {
  if (token) environment["HSOF_FAULTS_TOKEN"] = token;
  return firedrill::testing::SpawnPipeline(directory, flags, environment);
}

int Terminate(const Pipeline& pipeline) { return firedrill::testing::TerminatePipeline(pipeline); }

class BinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/firedrill-binary-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::string directory_;
};

TEST_F(BinaryTest, JobsOverHttpAndGrpcCompleteOnTheCpuBackend) {
  const Pipeline pipeline = Spawn(directory_, {"--backend", "cpu", "--workers", "2"});
  ASSERT_FALSE(pipeline.ports.is_discarded());

  auto http = HttpCall("POST", pipeline.http() + "/v1/jobs",
                       R"({"idempotency_key": "over-http", "mode": "fast",
                           "dataset": {"samples": 4000, "features": 400, "informative": 8, "decoys": 4}})");
  ASSERT_EQ(http.status, 202) << http.body;

  auto stub = pb::Pipeline::NewStub(
      grpc::CreateChannel(pipeline.grpc(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  pb::SubmitJobRequest request;
  request.set_idempotency_key("over-grpc");
  request.set_mode(pb::MODE_BALANCED);
  request.mutable_dataset()->set_samples(4000);
  request.mutable_dataset()->set_features(400);
  request.mutable_dataset()->set_informative(8);
  request.mutable_dataset()->set_decoys(4);
  pb::SubmitJobResponse submitted;
  ASSERT_TRUE(stub->SubmitJob(&context, request, &submitted).ok());

  for (std::int64_t id : {json::parse(http.body)["id"].get<std::int64_t>(), submitted.job().id()}) {
    auto job = HttpCall("GET", pipeline.http() + "/v1/jobs/" + std::to_string(id) + "?wait=60s");
    ASSERT_EQ(job.status, 200);
    const json body = json::parse(job.body);
    ASSERT_EQ(body["state"], "completed") << job.body;
    EXPECT_EQ(body["result"]["backend"], "cpu");
    EXPECT_GT(body["result"]["quality"].get<double>(), 0.8) << job.body;
    EXPECT_GE(body["result"]["planted_recovered"].get<int>(), 7);
  }
  EXPECT_EQ(json::parse(HttpCall("GET", pipeline.http() + "/health")
                            .body)["components"]["gpu"]["details"]["backend"],
            "cpu");
  EXPECT_EQ(Terminate(pipeline), 0);
}

TEST_F(BinaryTest, TheFaultsServiceNeedsTheFlagAndTheToken) {
  auto start = [](const Pipeline& pipeline, const char* token) {
    auto faults = pb::Faults::NewStub(
        grpc::CreateChannel(pipeline.grpc(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    if (token) context.AddMetadata("x-firedrill-faults-token", token);
    pb::FaultRequest request;
    request.set_kind("exporter-down");
    request.set_ttl_seconds(30);
    pb::FaultLease lease;
    return faults->StartFault(&context, request, &lease).error_code();
  };
  const char* token = "a-token-of-enough-length-42";
  {
    const Pipeline plain = Spawn(directory_, {"--backend", "cpu"}, token);
    EXPECT_EQ(start(plain, token), grpc::StatusCode::UNIMPLEMENTED) << "no flag, no Faults service";
    EXPECT_EQ(Terminate(plain), 0);
  }
  const Pipeline armed = Spawn(directory_, {"--backend", "cpu", "--enable-faults"}, token);
  EXPECT_EQ(start(armed, nullptr), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(start(armed, "a-wrong-token-of-enough-length"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(start(armed, token), grpc::StatusCode::OK);
  auto scrape =
      HttpCall("GET", "http://127.0.0.1:" + std::to_string(armed.ports["gpu_exporter"].get<int>()) +
                          "/metrics");
  EXPECT_EQ(scrape.status, 503);
  EXPECT_EQ(Terminate(armed), 0);
}

// The runbooks set MAX_CONCURRENT_BATCHES and friends in the environment;
// a config file sets them too, and the environment wins.
TEST_F(BinaryTest, ConfigComesFromAFileAndTheEnvironment) {
  const std::string config = directory_ + "/pipeline.yaml";
  std::ofstream(config) << "MAX_CONCURRENT_BATCHES: 3\nGPU_MEMORY_FRACTION: 0.25\n";
  const Pipeline pipeline =
      Spawn(directory_, {"--backend", "cpu", "--config", config}, nullptr,
            {{"GPU_MEMORY_FRACTION", "0.5"}, {"ENABLE_THERMAL_PROTECTION", "false"}});
  ASSERT_FALSE(pipeline.ports.is_discarded());
  auto admin =
      pb::Admin::NewStub(grpc::CreateChannel(pipeline.grpc(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  pb::ConfigValues values;
  ASSERT_TRUE(admin->GetConfig(&context, pb::GetConfigRequest(), &values).ok());
  EXPECT_EQ(values.values().at("MAX_CONCURRENT_BATCHES"), "3");
  EXPECT_EQ(values.values().at("GPU_MEMORY_FRACTION"), "0.5");
  EXPECT_EQ(values.values().at("ENABLE_THERMAL_PROTECTION"), "false");
  EXPECT_EQ(Terminate(pipeline), 0);

  // A bad value stops start-up with exit 2 and names where it came from.
  std::ofstream(config) << "MAX_CONCURRENT_BATCHES: 3\nWORKERS: many\n";
  const pid_t pid = fork();
  if (pid == 0) {
    freopen((directory_ + "/bad.log").c_str(), "w", stderr);
    execl(HSOF_PIPELINE_BINARY, "hsof-pipeline", "--data-dir", directory_.c_str(), "--config",
          config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::ifstream log(directory_ + "/bad.log");
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find(config + ":2:10: WORKERS: expected an integer in [0, 64], got 'many'"),
            std::string::npos)
      << text.str();
}

TEST_F(BinaryTest, FaultsWithoutATokenRefuseToStart) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    freopen((directory_ + "/pipeline.log").c_str(), "a", stderr);
    unsetenv("HSOF_FAULTS_TOKEN");
    execl(HSOF_PIPELINE_BINARY, "hsof-pipeline", "--data-dir", directory_.c_str(),
          "--enable-faults", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
