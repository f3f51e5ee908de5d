#include "firedrill/pipeline/service.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "../net/http_client.h"
#include "firedrill/pipeline/contract.h"
#include "service_fixture.h"

namespace firedrill::pipeline {
namespace {

using firedrill::testing::HttpCall;
using nlohmann::json;
using namespace std::chrono_literals;

// The service in process, on a simulated clock (ticks run when the test
// advances it), behind a real HTTP server on a free loopback port.
class ServiceTest : public ServiceFixture {
 protected:
  void SetUp() override {
    ServiceFixture::SetUp();
    options_.backup_interval = 10s;
    options_.backup_retention = 2;
  }
  void StopTransport() override { http_.reset(); }

  void Start() {
    StartService();
    ASSERT_NE(service_, nullptr);
    net::HttpServerOptions http_options;
    http_options.max_body_bytes = kMaxJobRequestBytes;  // as hsof-pipeline sets it
    auto http = net::HttpServer::Start(http_options, [this](const net::HttpRequest& request) {
      return service_->HandleHttp(request);
    });
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = std::move(http).value();
  }

  std::string Url(const std::string& path) const { return http_->url() + path; }

  static std::string SmallJob(const std::string& key = "", std::uint64_t seed = 3) {
    json body = {{"mode", "fast"},
                 {"dataset",
                  {{"samples", 3000},
                   {"features", 300},
                   {"informative", 6},
                   {"decoys", 3},
                   {"seed", seed}}}};
    if (!key.empty()) body["idempotency_key"] = key;
    return body.dump();
  }

  std::unique_ptr<net::HttpServer> http_;
};

TEST_F(ServiceTest, AJobSubmittedOverHttpRunsAndReportsItsResult) {
  Start();
  auto submitted = HttpCall("POST", Url("/v1/jobs"), SmallJob("first"));
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  const json accepted = json::parse(submitted.body);
  const std::int64_t id = accepted["id"];
  EXPECT_EQ(accepted["idempotency_key"], "first");
  EXPECT_EQ(accepted["request"]["mode"], "fast");

  auto done = service_->WaitForJob(id, 10min);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state, JobState::kCompleted) << done->error;
  auto read = HttpCall("GET", Url("/v1/jobs/" + std::to_string(id)));
  ASSERT_EQ(read.status, 200);
  const json job = json::parse(read.body);
  EXPECT_EQ(job["state"], "completed");
  EXPECT_EQ(job["attempts"], 1);
  EXPECT_EQ(job["result"]["backend"], "simulated");
  EXPECT_GE(job["result"]["planted_recovered"].get<int>(), 5);
  EXPECT_GT(job["result"]["quality"].get<double>(), 0.7);
  EXPECT_EQ(job["result"]["stage_features"][0], 300);

  // A retry with the same key is the same job; a different body under it is a conflict.
  auto retry = HttpCall("POST", Url("/v1/jobs"), SmallJob("first"));
  EXPECT_EQ(retry.status, 200);
  EXPECT_EQ(json::parse(retry.body)["id"], id);
  auto conflict = HttpCall("POST", Url("/v1/jobs"), SmallJob("first", 4));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_NE(conflict.body.find("used for a different request"), std::string::npos) << conflict.body;
}

// Bad input gets a 4xx that says what is wrong, and the service carries on.
TEST_F(ServiceTest, MalformedAndHostileRequestsGetClearClientErrors) {
  Start();
  const std::map<std::string, std::pair<int, std::string>> posts = {
      {"{not json", {400, "request body is not JSON: at line 1, column 3"}},
      {R"({"dataset": {"samples": -1}})", {400, "field 'dataset.samples'"}},
      {R"({"dataset": {"samples": 1000000, "features": 10000, "informative": 1}, "x": 1})",
       {400, "field 'x'"}},
      {R"({"dataset": {"features": "lots"}})", {400, "field 'dataset.features'"}},
      {R"({"dataset": {"samples": 1e12}})", {400, "field 'dataset.samples'"}},
      {"[]", {400, "expected a JSON object"}},
      {"", {400, "request body is not JSON"}},
      {std::string(100'000, '{'), {413, "over the limit"}},
  };
  for (const auto& [body, expected] : posts) {
    auto response = HttpCall("POST", Url("/v1/jobs"), body);
    EXPECT_EQ(response.status, expected.first) << body.substr(0, 60);
    EXPECT_NE(response.body.find(expected.second), std::string::npos) << response.body;
  }
  EXPECT_EQ(HttpCall("GET", Url("/v1/jobs")).status, 405);
  EXPECT_EQ(HttpCall("DELETE", Url("/v1/jobs/1")).status, 405);
  EXPECT_EQ(HttpCall("GET", Url("/v1/jobs/abc")).status, 400);
  EXPECT_EQ(HttpCall("GET", Url("/v1/jobs/-4")).status, 400);
  EXPECT_EQ(HttpCall("GET", Url("/v1/jobs/99999999999999999999")).status, 400);
  EXPECT_EQ(HttpCall("GET", Url("/v1/jobs/42")).status, 404);
  EXPECT_EQ(HttpCall("GET", Url("/health/nope")).status, 404);
  EXPECT_EQ(HttpCall("GET", Url("/nowhere")).status, 404);
  EXPECT_EQ(HttpCall("GET", Url("/health")).status, 200);
}

// Every metric HSOF's rules read is there with its type and label names, and
// promtool (from Debian's prometheus package) accepts the exposition.
TEST_F(ServiceTest, MetricsCarryTheContractAndPromtoolAcceptsThem) {
  Start();
  ASSERT_TRUE(
      service_
          ->WaitForJob(json::parse(HttpCall("POST", Url("/v1/jobs"), SmallJob()).body)["id"], 10min)
          .ok());
  clock_.Advance(1s);  // one telemetry tick
  auto scrape = HttpCall("GET", Url("/metrics"));
  ASSERT_EQ(scrape.status, 200);
  EXPECT_EQ(scrape.content_type, "text/plain; version=0.0.4; charset=utf-8");

  std::map<std::string, std::string> types;
  std::map<std::string, std::set<std::string>> labels;
  std::istringstream lines(scrape.body);
  const std::regex type_line(R"(# TYPE (\w+) (\w+))"), sample(R"((\w+)(\{([^}]*)\})? .+)"),
      label(R"((\w+)=")");
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (std::regex_match(line, match, type_line)) {
      types[match[1]] = match[2];
    } else if (std::regex_match(line, match, sample)) {
      const std::string text = match[3];
      for (std::sregex_iterator it(text.begin(), text.end(), label), end; it != end; ++it) {
        if ((*it)[1] != "le") labels[match[1]].insert((*it)[1]);
      }
      labels[match[1]];  // seen, perhaps without labels
    }
  }
  const char* type_names[] = {"counter", "gauge", "histogram"};
  for (const MetricInfo& metric : Metrics()) {
    // Its series are per fault kind and appear with the first fault lease.
    if (metric.name == "hsof_faults_active") continue;
    ASSERT_TRUE(types.count(metric.name)) << metric.name << " is not exposed";
    EXPECT_EQ(types[metric.name], type_names[static_cast<int>(metric.type)]) << metric.name;
    if (metric.labels.empty() || metric.name == "hsof_faults_active" ||
        metric.name == "hsof_http_responses_total") {
      continue;  // labelled series of these appear once something happens
    }
    const std::string series =
        metric.type == MetricType::kHistogram ? metric.name + "_bucket" : metric.name;
    EXPECT_EQ(labels[series], std::set<std::string>(metric.labels.begin(), metric.labels.end()))
        << metric.name;
  }

  const std::string path = options_.data_dir + "/metrics.txt";
  std::FILE* file = std::fopen(path.c_str(), "w");
  std::fputs(scrape.body.c_str(), file);
  std::fclose(file);
  const int promtool =
      std::system(("promtool check metrics < " + path + " > " + path + ".out 2>&1").c_str());
  std::ifstream out(path + ".out");
  std::stringstream findings;
  findings << out.rdbuf();
  EXPECT_EQ(promtool, 0) << findings.str();

  // The GPU exporter listener serves the GPU metrics and nothing else.
  const std::string gpu = service_->HandleGpuExporter({"GET", "/metrics", "", "", {}}).body;
  EXPECT_NE(gpu.find("hsof_gpu_temperature_celsius{gpu_id=\"0\"}"), std::string::npos);
  EXPECT_EQ(gpu.find("hsof_requests_total"), std::string::npos);
}

TEST_F(ServiceTest, HealthFollowsDrainingAndWorkers) {
  Start();
  auto health = HttpCall("GET", Url("/health"));
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "HEALTHY");
  for (const std::string& component : HealthComponents()) {
    auto one = HttpCall("GET", Url("/health/" + component));
    EXPECT_EQ(one.status, 200) << component;
    EXPECT_EQ(json::parse(one.body)["component"], component);
  }

  ASSERT_TRUE(service_->Drain().ok());
  health = HttpCall("GET", Url("/health"));
  EXPECT_EQ(json::parse(health.body)["status"], "WARNING");
  EXPECT_EQ(json::parse(health.body)["components"]["pipeline"]["message"],
            "draining: not accepting jobs");
  EXPECT_EQ(HttpCall("POST", Url("/v1/jobs"), SmallJob()).status, 503);
  ASSERT_TRUE(service_->Resume().ok());
  EXPECT_EQ(HttpCall("POST", Url("/v1/jobs"), SmallJob()).status, 202);

  ASSERT_TRUE(service_->SetWorkers(0).ok());
  health = HttpCall("GET", Url("/health/pipeline"));
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(json::parse(health.body)["status"], "CRITICAL");
  clock_.Advance(1s);
  EXPECT_NE(
      service_->metrics().Serialize().find("hsof_health_check_status{component=\"pipeline\"} 0"),
      std::string::npos);
  EXPECT_EQ(service_->SetWorkers(65).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(service_->SetWorkers(1).ok());
  EXPECT_EQ(HttpCall("GET", Url("/health/pipeline")).status, 200);
}

// Backups every 10 s of the clock, two kept, and the backup metrics follow.
TEST_F(ServiceTest, BackupsRunOnScheduleAndKeepTheRetention) {
  Start();
  ASSERT_EQ(HttpCall("POST", Url("/v1/jobs"), SmallJob()).status, 202);
  for (int second = 0; second < 35; ++second) clock_.Advance(1s);
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(options_.data_dir + "/backups")) {
    files += entry.path().extension() == ".db";
  }
  EXPECT_EQ(files, 2u);
  const std::string metrics = service_->metrics().Serialize();
  EXPECT_NE(metrics.find("hsof_last_successful_backup_timestamp 1767225630"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("hsof_backup_storage_used_bytes 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("hsof_backup_failed_total 0"), std::string::npos);
  // A backup that cannot be written is counted and shows in health.
  std::filesystem::remove_all(options_.data_dir + "/backups");
  std::string path;
  EXPECT_FALSE(service_->BackupNow(&path).ok());
  EXPECT_NE(service_->metrics().Serialize().find("hsof_backup_failed_total 1"), std::string::npos);
  EXPECT_EQ(json::parse(HttpCall("GET", Url("/health/backup")).body)["status"], "WARNING");
}

// A job over a CSV file from the dataset directory: the selection names the
// columns the target depends on.
TEST_F(ServiceTest, ACsvDatasetRunsAndNamesTheColumnsItKept) {
  Start();
  std::mt19937 random(11);
  std::normal_distribution<double> normal;
  std::string text;
  for (int f = 0; f < 40; ++f) text += "f" + std::to_string(f) + ",";
  text += "y\n";
  for (int row = 0; row < 3000; ++row) {
    std::vector<double> x(40);
    for (double& value : x) value = normal(random);
    for (double value : x) text += std::to_string(value) + ",";
    text += std::to_string(2 * x[3] - 1.5 * x[17] + x[29] * x[29] + 0.1 * normal(random)) + "\n";
  }
  std::ofstream(options_.data_dir + "/datasets/trial.csv") << text;

  auto submitted = HttpCall("POST", Url("/v1/jobs"),
                            R"({"mode": "fast", "dataset": {"csv": "trial.csv", "target": "y"}})");
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  auto job = service_->WaitForJob(json::parse(submitted.body)["id"], 10min);
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->state, JobState::kCompleted) << job->error;
  const json result = json::parse(job->result_json);
  const auto names = result["selected_names"].get<std::vector<std::string>>();
  for (const char* wanted : {"f3", "f17", "f29"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), wanted), names.end())
        << wanted << " not in " << result["selected_names"];
  }
  EXPECT_GT(result["cv_r2"].get<double>(), 0.9);
  EXPECT_EQ(result["stage_features"][0], 40);

  auto missing = HttpCall("POST", Url("/v1/jobs"), R"({"dataset": {"csv": "nope.csv"}})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("no file 'nope.csv'"), std::string::npos) << missing.body;
  std::filesystem::create_symlink("/etc/hostname", options_.data_dir + "/datasets/escape.csv");
  EXPECT_EQ(HttpCall("POST", Url("/v1/jobs"), R"({"dataset": {"csv": "escape.csv"}})").status, 400);
}

// A dataset past the arena's budget runs on the CPU instead, and says so in
// the job, the metrics and health.
TEST_F(ServiceTest, AJobTooBigForTheDeviceFallsBackToTheCpu) {
  options_.host_device_memory = 1 << 20;  // 0.9 MiB of arena; the job needs 2.4 MB
  Start();
  auto submitted = HttpCall("POST", Url("/v1/jobs"), SmallJob());
  ASSERT_EQ(submitted.status, 202);
  auto job = service_->WaitForJob(json::parse(submitted.body)["id"], 10min);
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->state, JobState::kCompleted) << job->error;
  const json result = json::parse(job->result_json);
  EXPECT_EQ(result["fallback"], "out_of_memory");
  EXPECT_EQ(result["backend"], "cpu");
  EXPECT_GE(result["planted_recovered"].get<int>(), 5) << "the CPU computes the same selection";
  EXPECT_NE(
      service_->metrics().Serialize().find("hsof_cpu_fallbacks_total{reason=\"out_of_memory\"} 1"),
      std::string::npos);
  const json health = json::parse(HttpCall("GET", Url("/health/pipeline")).body);
  EXPECT_EQ(health["status"], "WARNING");
  EXPECT_EQ(health["message"], "the last job ran on the CPU fallback (out_of_memory)");
}

// A bad STAGE3_CV_FOLDS fails the jobs too small for it before they start,
// and only those, naming the key and both numbers; putting each mode's own
// back lets them run again.
TEST_F(ServiceTest, TooManyCrossValidationFoldsFailSmallJobsUntilRolledBack) {
  Start();
  auto run = [&](int samples) {
    const json body = {{"mode", "fast"},
                       {"dataset", {{"samples", samples}, {"features", 200}, {"informative", 4}, {"seed", 5}}}};
    const auto submitted = HttpCall("POST", Url("/v1/jobs"), body.dump());
    EXPECT_EQ(submitted.status, 202) << submitted.body;
    auto job = service_->WaitForJob(json::parse(submitted.body)["id"], 10min);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : JobRecord{};
  };
  ASSERT_TRUE(service_->SetConfig("STAGE3_CV_FOLDS", "50").ok());
  const JobRecord small = run(400);
  EXPECT_EQ(small.state, JobState::kFailed);
  EXPECT_NE(small.error.find("STAGE3_CV_FOLDS 50 needs at least 500 samples (10 a fold) for stage 3; the dataset has 400"),
            std::string::npos)
      << small.error;
  const JobRecord large = run(600);
  EXPECT_EQ(large.state, JobState::kCompleted) << large.error;
  EXPECT_NE(service_->metrics().Serialize().find("\nhsof_errors_total 1\n"), std::string::npos);

  const auto refused = service_->SetConfig("STAGE3_CV_FOLDS", "1");
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("0 (each mode's own) or 2 to 100"), std::string::npos)
      << refused.status();
  ASSERT_TRUE(service_->SetConfig("STAGE3_CV_FOLDS", "0").ok());
  const JobRecord again = run(400);
  EXPECT_EQ(again.state, JobState::kCompleted) << again.error;
}

}  // namespace
}  // namespace firedrill::pipeline
