#include "firedrill/workload/grpc_client.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/log.h"
#include "firedrill/pipeline/grpc_server.h"
#include "firedrill/pipeline/service.h"
#include "../net/loopback.h"
#include "hsof/v1/pipeline.grpc.pb.h"

namespace firedrill::workload {
namespace {

namespace pb = ::hsof::v1;
using testing::ClosedPort;
using namespace std::chrono_literals;

// ---- tiny-grpc-server in a child process ----

class TinyServer {
 public:
  // Starts the server and reads the "port N" line it prints once serving.
  void Start(int threads = 1) {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    const std::string thread_count = std::to_string(threads);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      execl(TINY_GRPC_SERVER, TINY_GRPC_SERVER, "--threads", thread_count.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    std::string line;
    char c = 0;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    ASSERT_EQ(line.rfind("port ", 0), 0u) << "tiny-grpc-server said: '" << line << "'";
    port_ = std::stoi(line.substr(5));
  }
  // SIGTERM, and the server must exit cleanly.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
    pid_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }
  ~TinyServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};


void ExpectCorrectedAtLeastUncorrected(const LoadReport& report) {
  EXPECT_EQ(report.corrected.count(), static_cast<std::uint64_t>(report.answered));
  EXPECT_EQ(report.uncorrected.count(), static_cast<std::uint64_t>(report.answered));
  // Each call's corrected latency is at least its uncorrected one, so every
  // quantile is too.
  for (double q : {0.0, 0.5, 0.9, 0.99, 1.0}) {
    EXPECT_GE(report.corrected.ValueAtQuantile(q), report.uncorrected.ValueAtQuantile(q))
        << "q=" << q;
  }
}

TEST(TinyGrpcServer, EchoesAnyMethod) {
  TinyServer server;
  ASSERT_NO_FATAL_FAILURE(server.Start());
  {
    // GetJobRequest.id and Job.id are both field 1, int64: the echo reads back as a Job.
    auto stub = pb::Pipeline::NewStub(
        grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    pb::GetJobRequest request;
    request.set_id(42);
    pb::Job job;
    const grpc::Status status = stub->GetJob(&context, request, &job);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(job.id(), 42);
  }  // the connection closes, so the server stops without waiting for it
  server.Stop();
}

TEST(GrpcUnaryLoad, ClosedLoopKeepsCallsOutstandingAndCountsAddUp) {
  TinyServer server;
  ASSERT_NO_FATAL_FAILURE(server.Start());
  GrpcUnaryLoadOptions options;
  options.target = server.address();
  pb::GetJobRequest request;
  request.set_id(7);
  options.payload = request.SerializeAsString();
  options.concurrency = 16;
  options.duration = 300ms;
  const Result<LoadReport> report = RunGrpcUnaryLoad(options, nullptr);
  ASSERT_TRUE(report.ok()) << report.status();
  std::cout << report->Summary() << "\n";
  EXPECT_EQ(report->transport, "grpc");
  EXPECT_EQ(report->target, server.address());
  EXPECT_GT(report->answered, 100);
  EXPECT_EQ(report->scheduled, report->sent);
  EXPECT_EQ(report->answered + report->errors, report->sent);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->failed, 0);
  EXPECT_EQ(report->unsent, 0);
  EXPECT_EQ(report->statuses, (std::map<std::string, std::int64_t>{{"OK", report->answered}}));
  EXPECT_GE(report->elapsed, 300ms);
  EXPECT_GT(report->cpu_seconds, 0);
  ExpectCorrectedAtLeastUncorrected(*report);
  server.Stop();
}

TEST(GrpcUnaryLoad, OpenLoopSendsOnScheduleAndMeasuresFromIntendedTimes) {
  TinyServer server;
  ASSERT_NO_FATAL_FAILURE(server.Start());
  GrpcUnaryLoadOptions options;
  options.target = server.address();
  options.method = "/any.Service/Echo";
  options.payload = "hello";
  options.concurrency = 64;
  options.duration = 400ms;
  options.arrival_description = "constant 2000/s";
  options.offered_rate = 2000;
  auto schedule = ConstantArrivals(Rate{2000}, options.duration);
  const Result<LoadReport> report = RunGrpcUnaryLoad(options, schedule.get());
  ASSERT_TRUE(report.ok()) << report.status();
  std::cout << report->Summary() << "\n";
  EXPECT_EQ(report->arrival, "constant 2000/s");
  EXPECT_EQ(report->offered_rate, 2000);
  EXPECT_EQ(report->scheduled, 800);
  EXPECT_EQ(report->sent + report->unsent, report->scheduled);
  EXPECT_EQ(report->answered + report->errors, report->sent);
  EXPECT_EQ(report->errors, 0);
  EXPECT_GT(report->answered, 0);
  EXPECT_EQ(report->statuses.at("OK"), report->answered);
  EXPECT_EQ(report->schedule_lag.count(), static_cast<std::uint64_t>(report->scheduled));
  ExpectCorrectedAtLeastUncorrected(*report);
  server.Stop();
}

TEST(GrpcUnaryLoad, NoServerMeansErrorsNotAnswers) {
  GrpcUnaryLoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(ClosedPort());
  options.concurrency = 8;
  options.duration = 200ms;
  options.timeout = 2s;
  auto schedule = ConstantArrivals(Rate{500}, options.duration);
  const Result<LoadReport> report = RunGrpcUnaryLoad(options, schedule.get());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->scheduled, 100);
  EXPECT_GT(report->sent, 0);
  EXPECT_EQ(report->answered, 0);
  EXPECT_EQ(report->errors, report->sent);
  EXPECT_TRUE(report->statuses.empty());
  EXPECT_EQ(report->error_kinds.at("UNAVAILABLE"), report->errors);
  EXPECT_EQ(report->corrected.count(), 0u);
}

TEST(GrpcUnaryLoad, RefusesBadOptions) {
  GrpcUnaryLoadOptions options;
  options.target = "10.1.2.3:50051";
  EXPECT_EQ(RunGrpcUnaryLoad(options, nullptr).status().code(), StatusCode::kInvalidArgument);
  options.target = "127.0.0.1:1";
  options.method = "GetJob";
  EXPECT_EQ(RunGrpcUnaryLoad(options, nullptr).status().code(), StatusCode::kInvalidArgument);
  options.method = "/a.B/C";
  options.concurrency = 0;
  EXPECT_EQ(RunGrpcUnaryLoad(options, nullptr).status().code(), StatusCode::kInvalidArgument);
}

TEST(GrpcCodeName, NamesCodesAsGrpcDoes) {
  EXPECT_EQ(GrpcCodeName(0), "OK");
  EXPECT_EQ(GrpcCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(99), "CODE_99");
}

// ---- the real pipeline in process ----

// The test's own calls to the pipeline (Admin, Faults, a second client) carry
// this metadata; every other call an in-process server runs is the job
// client's.
constexpr char kTestCallKey[] = "x-grpc-client-test";
constexpr char kFaultsToken[] = "grpc-client-test-faults-token";

// Counts the job client's calls as the real server runs them, through
// gRPC's process-wide hooks around every synchronous call: a test waits for
// the server to have answered (or to be holding) the client's calls instead
// of sleeping. Installed before any server of this process is built, once.
class ServerCalls final : public grpc::Server::GlobalCallbacks {
 public:
  static ServerCalls& Get() {
    static ServerCalls* const calls = [] {
      auto* installed = new ServerCalls();  // lives as long as the process, as gRPC asks
      grpc::Server::SetGlobalCallbacks(installed);
      return installed;
    }();
    return *calls;
  }

  void PreSynchronousRequest(grpc::ServerContext* context) override {
    if (OursNotTheClients(*context)) return;
    {
      std::lock_guard lock(mutex_);
      ++started_;
    }
    changed_.notify_all();
  }
  void PostSynchronousRequest(grpc::ServerContext* context) override {
    if (OursNotTheClients(*context)) return;
    {
      std::lock_guard lock(mutex_);
      ++finished_;
    }
    changed_.notify_all();
  }

  void Reset() {
    std::lock_guard lock(mutex_);
    started_ = finished_ = 0;
  }
  int started() {
    std::lock_guard lock(mutex_);
    return started_;
  }
  int finished() {
    std::lock_guard lock(mutex_);
    return finished_;
  }
  // Waits (a safety bound, not a sleep) until the server has begun `count`
  // of the client's calls.
  bool WaitForStarted(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 20s, [&] { return started_ >= count; });
  }
  // ... or answered `count` of them.
  bool WaitForFinished(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 20s, [&] { return finished_ >= count; });
  }
  // ... or answered every call it began (a stream's end comes a moment
  // after the client has read its last message).
  bool WaitForAllFinished() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 20s, [&] { return finished_ >= started_; });
  }

 private:
  ServerCalls() = default;
  static bool OursNotTheClients(const grpc::ServerContext& context) {
    return context.client_metadata().count(kTestCallKey) > 0;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  int started_ = 0;
  int finished_ = 0;
};
// Before main, so before any server: gRPC takes the hooks only then.
[[maybe_unused]] ServerCalls& installed_server_calls = ServerCalls::Get();

// Every event each job's callback got, and a way to wait for them.
class Events {
 public:
  JobCallback For(const std::string& name) {
    return [this, name](const JobEvent& event) {
      {
        std::lock_guard lock(mutex_);
        events_[name].push_back(event);
        if (std::this_thread::get_id() == test_thread_) on_test_thread_ = true;
      }
      changed_.notify_all();
    };
  }
  // Waits for `count` events for `name` (a safety bound, not a sleep).
  std::vector<JobEvent> Wait(const std::string& name, std::size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 20s, [&] { return events_[name].size() >= count; });
    return events_[name];
  }
  bool any_on_test_thread() {
    std::lock_guard lock(mutex_);
    return on_test_thread_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<JobEvent>> events_;
  std::thread::id test_thread_ = std::this_thread::get_id();
  bool on_test_thread_ = false;
};

// The real hsof-pipeline service (PipelineService on the CPU backend, a
// SQLite job store in a fresh data directory, a real clock) behind its real
// gRPC server on a free loopback port, as tests/pipeline/grpc_test.cc starts
// it. It starts with no workers: jobs wait in the queue, and their watches
// stay open, until a test scales the workers up with the Admin service.
class GrpcJobClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerCalls::Get().Reset();
    char pattern[] = "/tmp/firedrill-grpc-client-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    options_.data_dir = pattern;
    options_.backend = gpu::BackendChoice::kCpu;
    options_.workers = 0;
    options_.host_device_memory = std::uint64_t{1} << 30;
    ASSERT_NO_FATAL_FAILURE(StartPipeline(0));
  }
  void TearDown() override {
    client_.reset();  // cancels its watches, so the server stops at once
    StopPipeline();
    std::filesystem::remove_all(options_.data_dir);
    if (HasFailure()) std::cout << "---- pipeline log ----\n" << log_.str();
  }

  // The service on options_.data_dir (the jobs of an earlier run included)
  // and its gRPC server on `port`, 0 for a free one.
  void StartPipeline(int port) {
    auto service = pipeline::PipelineService::Start(options_, clock_, logger_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = std::move(service).value();
    auto server = pipeline::GrpcServer::Start(*service_, "127.0.0.1", port, kFaultsToken);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    port_ = server_->port();
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    pipeline_ = pb::Pipeline::NewStub(channel);
    admin_ = pb::Admin::NewStub(channel);
    faults_ = pb::Faults::NewStub(channel);
  }
  // The transport first, then the service it calls into: as the binary stops.
  void StopPipeline() {
    server_.reset();
    service_.reset();
  }

  // A context for the test's own calls: marked, so ServerCalls skips them.
  static std::unique_ptr<grpc::ClientContext> OurContext() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata(kTestCallKey, "1");
    context->AddMetadata("x-firedrill-faults-token", kFaultsToken);
    context->set_deadline(std::chrono::system_clock::now() + 20s);
    return context;
  }
  // ScaleWorkers(n): n = 0 holds every job in the queue.
  void ScaleWorkers(int workers) {
    pb::ScaleWorkersRequest request;
    request.set_workers(workers);
    pb::ActionResult result;
    const grpc::Status status = admin_->ScaleWorkers(OurContext().get(), request, &result);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  void Drain(bool drain) {
    pb::ActionResult result;
    const grpc::Status status =
        drain ? admin_->Drain(OurContext().get(), pb::DrainRequest(), &result)
              : admin_->Resume(OurContext().get(), pb::ResumeRequest(), &result);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(result.changed()) << result.message();
  }
  void SetConfig(const std::string& key, const std::string& value) {
    pb::SetConfigRequest request;
    request.set_key(key);
    request.set_value(value);
    pb::ActionResult result;
    const grpc::Status status = admin_->SetConfig(OurContext().get(), request, &result);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  // A fault through the Faults service, as a drill starts one.
  void StartFault(const std::string& kind, const std::map<std::string, std::string>& params,
                  std::string* id) {
    pb::FaultRequest request;
    request.set_kind(kind);
    for (const auto& [key, value] : params) (*request.mutable_params())[key] = value;
    request.set_ttl_seconds(600);
    pb::FaultLease lease;
    const grpc::Status status = faults_->StartFault(OurContext().get(), request, &lease);
    ASSERT_TRUE(status.ok()) << status.error_message();
    *id = lease.id();
  }
  void StopFault(const std::string& id) {
    pb::StopFaultRequest request;
    request.set_id(id);
    pb::FaultLease lease;
    const grpc::Status status = faults_->StopFault(OurContext().get(), request, &lease);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  // The job as the pipeline has it, read by another client.
  grpc::Status GetJob(const std::string& id, pb::Job* job) {
    pb::GetJobRequest request;
    request.set_id(std::stoll(id));
    return pipeline_->GetJob(OurContext().get(), request, job);
  }
  // A job submitted by another client, not the one under test.
  void SubmitElsewhere(const std::string& key, std::string* id) {
    pb::SubmitJobRequest request;
    request.set_idempotency_key(key);
    request.set_mode(pb::MODE_FAST);
    request.mutable_dataset()->set_samples(200);
    request.mutable_dataset()->set_features(40);
    request.mutable_dataset()->set_informative(4);
    pb::SubmitJobResponse response;
    const grpc::Status status = pipeline_->SubmitJob(OurContext().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    *id = std::to_string(response.job().id());
  }

  void MakeClient(GrpcJobClientOptions options = {}) {
    if (options.target.empty()) options.target = "127.0.0.1:" + std::to_string(port_);
    auto client = MakeGrpcJobClient(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(client).value();
  }

  // Small enough to run in well under a second on a CPU; decoys stay at the
  // pipeline's default of 20, so informative + 20 <= features.
  static JobSubmission SmallJob(const std::string& key) {
    JobSubmission job;
    job.idempotency_key = key;
    job.shape.samples = 200;
    job.shape.features = 40;
    job.shape.informative = 4;
    job.shape.mode = JobMode::kFast;
    job.dataset_seed = 11;
    return job;
  }

  RealClock clock_;  // outlives the service, which schedules its ticks on it
  std::ostringstream log_;
  Logger logger_{log_, clock_};
  pipeline::ServiceOptions options_;
  std::unique_ptr<pipeline::PipelineService> service_;
  std::unique_ptr<pipeline::GrpcServer> server_;
  int port_ = 0;
  std::unique_ptr<pb::Pipeline::Stub> pipeline_;
  std::unique_ptr<pb::Admin::Stub> admin_;
  std::unique_ptr<pb::Faults::Stub> faults_;
  Events events_;
  std::unique_ptr<JobClient> client_;
};

TEST_F(GrpcJobClientTest, SubmittedJobsAreAcceptedThenCompleted) {
  ASSERT_NO_FATAL_FAILURE(ScaleWorkers(2));
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  for (const std::string key : {"j-1", "j-2", "j-3"})
    client_->Submit(SmallJob(key), events_.For(key));
  std::set<std::string> ids;
  for (const std::string key : {"j-1", "j-2", "j-3"}) {
    const std::vector<JobEvent> events = events_.Wait(key, 2);
    ASSERT_EQ(events.size(), 2u) << key;
    EXPECT_EQ(events[0].kind, JobEvent::Kind::kAccepted);
    EXPECT_FALSE(events[0].job_id.empty());
    EXPECT_EQ(events[0].attempts, 1);
    ids.insert(events[0].job_id);
    EXPECT_EQ(events[1].kind, JobEvent::Kind::kCompleted) << events[1].reason;
    EXPECT_EQ(events[1].job_id, events[0].job_id);
    EXPECT_GE(events[1].at, events[0].at);

    // The stage timings and quality are the pipeline's own, as it stored them.
    pb::Job stored;
    ASSERT_TRUE(GetJob(events[0].job_id, &stored).ok());
    EXPECT_EQ(stored.state(), pb::JOB_STATE_COMPLETED);
    EXPECT_EQ(stored.idempotency_key(), key);
    const auto result = nlohmann::json::parse(stored.result_json());
    const std::vector<double> seconds = result.at("stage_seconds");
    ASSERT_EQ(seconds.size(), 3u);
    EXPECT_EQ(events[1].stage_seconds,
              (std::map<std::string, double>{
                  {"stage1", seconds[0]}, {"stage2", seconds[1]}, {"stage3", seconds[2]}}));
    EXPECT_GT(seconds[0] + seconds[1] + seconds[2], 0);
    EXPECT_EQ(events[1].quality, result.at("quality").get<double>());
    EXPECT_GT(events[1].quality, 0);
    EXPECT_LE(events[1].quality, 1);
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(client_->in_flight(), 0);
  EXPECT_FALSE(events_.any_on_test_thread());
}

// The pipeline's error-injection fault fails every job at stage 2.
TEST_F(GrpcJobClientTest, FailedJobsSayWhy) {
  std::string fault;
  ASSERT_NO_FATAL_FAILURE(StartFault("error-injection", {{"share", "1"}, {"stage", "2"}}, &fault));
  ASSERT_NO_FATAL_FAILURE(ScaleWorkers(2));
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  client_->Submit(SmallJob("f-1"), events_.For("f-1"));
  const std::vector<JobEvent> events = events_.Wait("f-1", 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, JobEvent::Kind::kAccepted);
  EXPECT_EQ(events[1].kind, JobEvent::Kind::kFailed);
  EXPECT_NE(events[1].reason.find("stage 2 failed (fault injected)"), std::string::npos)
      << events[1].reason;
  pb::Job stored;
  ASSERT_TRUE(GetJob(events[0].job_id, &stored).ok());
  EXPECT_EQ(stored.state(), pb::JOB_STATE_FAILED);
  EXPECT_EQ(events[1].reason, stored.error());
  StopFault(fault);
}

TEST_F(GrpcJobClientTest, TheSameKeyTwiceIsTheSameJob) {
  ASSERT_NO_FATAL_FAILURE(ScaleWorkers(2));
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  client_->Submit(SmallJob("same"), events_.For("first"));
  const std::vector<JobEvent> first = events_.Wait("first", 2);
  client_->Submit(SmallJob("same"), events_.For("second"));
  const std::vector<JobEvent> second = events_.Wait("second", 2);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(first[1].kind, JobEvent::Kind::kCompleted) << first[1].reason;
  EXPECT_EQ(second[0].kind, JobEvent::Kind::kAccepted);
  EXPECT_EQ(second[0].job_id, first[0].job_id);
  // The job was over already: its outcome comes with the answer.
  EXPECT_EQ(second[1].kind, JobEvent::Kind::kCompleted);
  EXPECT_EQ(second[1].quality, first[1].quality);

  // The same key for a different job is refused, not retried.
  JobSubmission other = SmallJob("same");
  other.shape.samples = 300;
  client_->Submit(other, events_.For("other"));
  const std::vector<JobEvent> refused = events_.Wait("other", 1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].kind, JobEvent::Kind::kRejected);
  EXPECT_EQ(refused[0].reason.rfind(
                "ALREADY_EXISTS: idempotency key 'same' was used for a different request", 0),
            0u)
      << refused[0].reason;
  EXPECT_EQ(refused[0].attempts, 1);
}

TEST_F(GrpcJobClientTest, AnInvalidShapeIsRejectedNamingTheField) {
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  JobSubmission job = SmallJob("bad");
  job.shape.samples = 5;
  client_->Submit(job, events_.For("bad"));
  const std::vector<JobEvent> events = events_.Wait("bad", 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, JobEvent::Kind::kRejected);
  EXPECT_EQ(
      events[0].reason,
      "INVALID_ARGUMENT: field 'dataset.samples': expected an integer in [16, 1000000], got 5");
  EXPECT_EQ(events[0].attempts, 1);

  // A CSV dataset the pipeline does not have: refused, naming the field.
  JobSubmission csv = SmallJob("csv");
  csv.shape.dataset = "no-such.csv";
  client_->Submit(csv, events_.For("csv"));
  const std::vector<JobEvent> refused = events_.Wait("csv", 1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].kind, JobEvent::Kind::kRejected);
  EXPECT_EQ(refused[0].reason.rfind("INVALID_ARGUMENT: field 'dataset.csv': no file 'no-such.csv'", 0), 0u)
      << refused[0].reason;
  EXPECT_EQ(refused[0].attempts, 1);
  EXPECT_EQ(client_->in_flight(), 0);
  // Neither became a job.
  pb::Job none;
  EXPECT_EQ(GetJob("1", &none).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A CSV dataset from the pipeline's dataset folder goes over gRPC as over
// HTTP, and its job completes.
TEST_F(GrpcJobClientTest, ACsvDatasetRunsOverGrpc) {
  ASSERT_NO_FATAL_FAILURE(ScaleWorkers(1));
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  std::filesystem::create_directories(options_.data_dir + "/datasets");
  std::string text = "a,b,c,y\n";
  for (int row = 0; row < 200; ++row) {
    const int a = row % 7, b = row % 5, c = row % 3;
    text += std::to_string(a) + "," + std::to_string(b) + "," + std::to_string(c) + "," + std::to_string(2 * a - b) + "\n";
  }
  std::ofstream(options_.data_dir + "/datasets/grpc.csv") << text;
  JobSubmission job = SmallJob("csv-job");
  job.shape.dataset = "grpc.csv";
  client_->Submit(job, events_.For("csv-job"));
  const std::vector<JobEvent> events = events_.Wait("csv-job", 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, JobEvent::Kind::kAccepted) << events[0].reason;
  EXPECT_EQ(events[1].kind, JobEvent::Kind::kCompleted) << events[1].reason;
}

// The real pipeline answers UNAVAILABLE while drained (Admin Drain), and
// RESOURCE_EXHAUSTED over its ADMISSION_RATE.
TEST_F(GrpcJobClientTest, UnavailableIsRetriedWithTheSameKey) {
  ASSERT_NO_FATAL_FAILURE(ScaleWorkers(2));
  ASSERT_NO_FATAL_FAILURE(Drain(true));
  GrpcJobClientOptions options;
  options.initial_backoff = 50ms;
  options.max_backoff = 200ms;
  options.max_attempts = 10;
  ASSERT_NO_FATAL_FAILURE(MakeClient(options));
  client_->Submit(SmallJob("retry"), events_.For("retry"));
  // Two attempts refused by the drained pipeline; then it takes jobs again.
  ASSERT_TRUE(ServerCalls::Get().WaitForFinished(2));
  ASSERT_NO_FATAL_FAILURE(Drain(false));
  const std::vector<JobEvent> events = events_.Wait("retry", 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, JobEvent::Kind::kAccepted) << events[0].reason;
  EXPECT_GE(events[0].attempts, 3);
  EXPECT_LE(events[0].attempts, options.max_attempts);
  EXPECT_EQ(events[1].kind, JobEvent::Kind::kCompleted) << events[1].reason;
  // One job, under the key every attempt carried.
  pb::Job stored;
  ASSERT_TRUE(GetJob(events[0].job_id, &stored).ok());
  EXPECT_EQ(stored.idempotency_key(), "retry");
  EXPECT_EQ(events[0].job_id, "1");
  pb::Job none;
  EXPECT_EQ(GetJob("2", &none).error_code(), grpc::StatusCode::NOT_FOUND);

  // Out of attempts: rejected with the last answer. One admission a
  // thousand seconds, and another client takes it.
  options.initial_backoff = 5ms;
  options.max_backoff = 20ms;
  options.max_attempts = 5;
  ASSERT_NO_FATAL_FAILURE(MakeClient(options));
  ASSERT_NO_FATAL_FAILURE(SetConfig("ADMISSION_RATE", "0.001"));
  std::string taken;
  ASSERT_NO_FATAL_FAILURE(SubmitElsewhere("takes-the-token", &taken));
  ASSERT_TRUE(ServerCalls::Get().WaitForAllFinished());
  const int before = ServerCalls::Get().finished();
  client_->Submit(SmallJob("busy"), events_.For("busy"));
  const std::vector<JobEvent> busy = events_.Wait("busy", 1);
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].kind, JobEvent::Kind::kRejected);
  EXPECT_EQ(busy[0].reason.rfind("RESOURCE_EXHAUSTED: admission rate of ", 0), 0u)
      << busy[0].reason;
  EXPECT_EQ(busy[0].attempts, 5);
  ASSERT_TRUE(ServerCalls::Get().WaitForFinished(before + 5));
  EXPECT_EQ(ServerCalls::Get().finished(), before + 5) << "each attempt reached the pipeline";
}

TEST_F(GrpcJobClientTest, AClosedPortIsRejectedAfterTheRetries) {
  GrpcJobClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(ClosedPort());
  options.max_attempts = 3;
  options.initial_backoff = 5ms;
  options.max_backoff = 20ms;
  ASSERT_NO_FATAL_FAILURE(MakeClient(options));
  client_->Submit(SmallJob("nobody"), events_.For("nobody"));
  const std::vector<JobEvent> events = events_.Wait("nobody", 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, JobEvent::Kind::kRejected);
  EXPECT_EQ(events[0].reason.rfind("UNAVAILABLE", 0), 0u) << events[0].reason;
  EXPECT_EQ(events[0].attempts, 3);
}

TEST_F(GrpcJobClientTest, FollowSettlesAJobAcceptedEarlier) {
  ASSERT_NO_FATAL_FAILURE(ScaleWorkers(2));
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  std::string id;
  ASSERT_NO_FATAL_FAILURE(SubmitElsewhere("earlier", &id));
  client_->Follow(id, "earlier", events_.For("earlier"));
  client_->Follow(id, "someone-else", events_.For("taken"));
  client_->Follow("12345", "", events_.For("unknown"));
  client_->Follow("not-a-number", "", events_.For("garbage"));

  const std::vector<JobEvent> events = events_.Wait("earlier", 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, JobEvent::Kind::kCompleted) << events[0].reason;
  EXPECT_EQ(events[0].job_id, id);
  EXPECT_EQ(events[0].stage_seconds.size(), 3u);

  // The id answers with another key (as after a restore): not this job.
  const std::vector<JobEvent> taken = events_.Wait("taken", 1);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(taken[0].reason, AnotherJob(id, "earlier"));

  const std::vector<JobEvent> unknown = events_.Wait("unknown", 1);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(unknown[0].reason, "NOT_FOUND: no job 12345");
  const std::vector<JobEvent> garbage = events_.Wait("garbage", 1);
  ASSERT_EQ(garbage.size(), 1u);
  EXPECT_EQ(garbage[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(garbage[0].reason, "not a job id: 'not-a-number'");
}

// The whole pipeline stops mid-watch and starts again on the same data
// directory and port; the job, still queued in its database, then runs.
TEST_F(GrpcJobClientTest, FollowWatchesAgainAfterTheServerComesBack) {
  GrpcJobClientOptions options;
  options.initial_backoff = 20ms;
  options.max_backoff = 100ms;
  ASSERT_NO_FATAL_FAILURE(MakeClient(options));
  client_->Submit(SmallJob("restart"), events_.For("restart"));
  const std::vector<JobEvent> accepted = events_.Wait("restart", 1);
  ASSERT_EQ(accepted.size(), 1u);
  ASSERT_EQ(accepted[0].kind, JobEvent::Kind::kAccepted) << accepted[0].reason;
  ASSERT_TRUE(ServerCalls::Get().WaitForStarted(2)) << "the submission, then the watch";

  const int port = port_;
  StopPipeline();
  const int calls_before_restart = ServerCalls::Get().started();
  options_.workers = 2;
  ASSERT_NO_FATAL_FAILURE(StartPipeline(port));
  ASSERT_EQ(port_, port);
  const std::vector<JobEvent> events = events_.Wait("restart", 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, JobEvent::Kind::kCompleted) << events[1].reason;
  EXPECT_EQ(events[1].job_id, accepted[0].job_id);
  EXPECT_GT(ServerCalls::Get().started(), calls_before_restart) << "watched again";
  EXPECT_EQ(client_->in_flight(), 0);
}

TEST_F(GrpcJobClientTest, FollowGivesUpAfterTheGrace) {
  GrpcJobClientOptions options;
  options.initial_backoff = 20ms;
  options.max_backoff = 50ms;
  options.follow_grace = 300ms;
  ASSERT_NO_FATAL_FAILURE(MakeClient(options));
  client_->Submit(SmallJob("gone"), events_.For("gone"));
  ASSERT_EQ(events_.Wait("gone", 1).size(), 1u);
  ASSERT_TRUE(ServerCalls::Get().WaitForStarted(2)) << "the submission, then the watch";
  const auto stopped = std::chrono::steady_clock::now();
  StopPipeline();
  const std::vector<JobEvent> events = events_.Wait("gone", 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(events[1].reason.rfind("could not follow the job: ", 0), 0u) << events[1].reason;
  EXPECT_GE(events[1].at - stopped, options.follow_grace);
  EXPECT_EQ(client_->in_flight(), 0);
}

TEST_F(GrpcJobClientTest, ShutdownLosesWhatIsInFlightAndReturnsPromptly) {
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  for (const std::string key : {"s-1", "s-2", "s-3"})
    client_->Submit(SmallJob(key), events_.For(key));
  for (const std::string key : {"s-1", "s-2", "s-3"}) ASSERT_EQ(events_.Wait(key, 1).size(), 1u);
  ASSERT_TRUE(ServerCalls::Get().WaitForStarted(6)) << "three submissions, then three watches";
  EXPECT_EQ(client_->in_flight(), 3);

  const auto before = std::chrono::steady_clock::now();
  client_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  for (const std::string key : {"s-1", "s-2", "s-3"}) {
    const std::vector<JobEvent> events = events_.Wait(key, 2);
    ASSERT_EQ(events.size(), 2u) << key;
    EXPECT_EQ(events[1].kind, JobEvent::Kind::kLost);
    EXPECT_EQ(events[1].reason, "client shut down");
    EXPECT_EQ(events[1].job_id, events[0].job_id);
  }
  EXPECT_EQ(client_->in_flight(), 0);
  client_->Shutdown();  // idempotent

  // After shutdown the caller hears at once.
  client_->Submit(SmallJob("late"), events_.For("late"));
  const std::vector<JobEvent> late = events_.Wait("late", 1);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].kind, JobEvent::Kind::kLost);
}

TEST_F(GrpcJobClientTest, ShutdownLosesASubmissionWaitingToRetry) {
  GrpcJobClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(ClosedPort());
  options.max_attempts = 1000;
  options.initial_backoff = 1s;
  ASSERT_NO_FATAL_FAILURE(MakeClient(options));
  client_->Submit(SmallJob("waiting"), events_.For("waiting"));
  const auto before = std::chrono::steady_clock::now();
  client_.reset();  // the destructor shuts down
  EXPECT_LT(std::chrono::steady_clock::now() - before, 900ms);
  const std::vector<JobEvent> events = events_.Wait("waiting", 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, JobEvent::Kind::kLost);
  EXPECT_EQ(events[0].reason, "client shut down");
}

// Shutdown racing many jobs at every step: each still hears exactly one
// last word, and nothing is left behind. Two rounds, each with a client of
// its own: cut when the first job has run (some finished, the rest under
// way), then when the first is accepted (some under way, some not yet
// accepted). The real pipeline keeps running what the first round left.
TEST_F(GrpcJobClientTest, ShutdownAmidManyJobsSettlesEachOnce) {
  ASSERT_NO_FATAL_FAILURE(ScaleWorkers(2));
  constexpr int kJobs = 100;
  for (const auto& [round, cut_after_events] :
       {std::pair<std::string, std::size_t>{"first outcome", 2}, {"first acceptance", 1}}) {
    SCOPED_TRACE("cut at the " + round);
    ASSERT_NO_FATAL_FAILURE(MakeClient());
    const std::string prefix = "m" + std::to_string(cut_after_events) + "-";
    for (int i = 0; i < kJobs; ++i) {
      const std::string key = prefix + std::to_string(i);
      client_->Submit(SmallJob(key), events_.For(key));
    }
    ASSERT_EQ(events_.Wait(prefix + "0", cut_after_events).size(), cut_after_events);
    client_->Shutdown();
    EXPECT_EQ(client_->in_flight(), 0);
    std::map<std::string, int> outcomes;
    for (int i = 0; i < kJobs; ++i) {
      const std::string key = prefix + std::to_string(i);
      const std::vector<JobEvent> events = events_.Wait(key, 1);
      ASSERT_FALSE(events.empty()) << key;
      const JobEvent::Kind last = events.back().kind;
      EXPECT_TRUE(last == JobEvent::Kind::kCompleted || last == JobEvent::Kind::kLost) << key;
      // kAccepted then the outcome, or kLost alone when shut down first.
      EXPECT_EQ(events.size(), events.front().kind == JobEvent::Kind::kAccepted ? 2u : 1u) << key;
      if (last == JobEvent::Kind::kCompleted) {
        pb::Job stored;
        ASSERT_TRUE(GetJob(events.back().job_id, &stored).ok()) << key;
        EXPECT_EQ(stored.state(), pb::JOB_STATE_COMPLETED) << key;
      }
      ++outcomes[(events.size() == 2 ? "accepted, then " : "") +
                 std::string(last == JobEvent::Kind::kCompleted ? "completed" : "lost")];
    }
    std::cout << "cut at the " << round << ":";
    for (const auto& [outcome, count] : outcomes)
      std::cout << " " << count << " " << outcome << ";";
    std::cout << "\n";
  }
}

TEST_F(GrpcJobClientTest, LoadAgainstThePipelineCountsServerErrorsAsFailed) {
  GrpcUnaryLoadOptions options;
  options.target = "127.0.0.1:" + std::to_string(port_);
  options.method = "/hsof.v1.Pipeline/GetJob";
  pb::GetJobRequest request;
  request.set_id(999);  // no such job: NOT_FOUND from the server
  options.payload = request.SerializeAsString();
  options.concurrency = 2;
  options.duration = 100ms;
  auto schedule = ConstantArrivals(Rate{200}, options.duration);
  const Result<LoadReport> report = RunGrpcUnaryLoad(options, schedule.get());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->scheduled, 20);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->answered, report->sent);
  EXPECT_EQ(report->failed, report->answered);
  EXPECT_EQ(report->statuses,
            (std::map<std::string, std::int64_t>{{"NOT_FOUND", report->answered}}));
  EXPECT_EQ(report->corrected.count(), static_cast<std::uint64_t>(report->answered));
}

}  // namespace
}  // namespace firedrill::workload
