#include "firedrill/workload/http_load.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "http_response_parser.h"
#include "../net/loopback.h"
#include "tiny_server.h"

namespace firedrill::workload {
namespace {

using internal::ResponseParser;
using testing::TinyServer;

// Feeds `text` to a parser in pieces of `piece` bytes; returns the status of
// each complete response, or -1 for a parse error.
std::vector<int> ParseInPieces(const std::string& text, std::size_t piece) {
  ResponseParser parser;
  std::vector<int> statuses;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t size = std::min(piece, text.size() - at);
    std::size_t offset = 0;
    while (offset < size) {
      std::size_t consumed = 0;
      const auto step = parser.Feed(text.data() + at + offset, size - offset, &consumed);
      offset += consumed;
      if (step == ResponseParser::Step::kError) return {-1};
      if (step == ResponseParser::Step::kComplete) {
        statuses.push_back(parser.status());
        parser.Reset();
      }
      if (step == ResponseParser::Step::kNeedMore) break;
    }
    at += size;
  }
  return statuses;
}

TEST(ResponseParser, ReadsEveryFramingSplitAnywhere) {
  const std::string responses =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 201 Created\r\ncontent-length:0\r\n\r\n"
      "HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\n"
      "X-Trailer: yes\r\n\r\n"
      "HTTP/1.1 204 No Content\r\n\r\n"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!";
  const std::vector<int> expected = {200, 201, 503, 204, 404};
  for (std::size_t piece = 1; piece <= responses.size(); ++piece) {
    EXPECT_EQ(ParseInPieces(responses, piece), expected) << "pieces of " << piece << " bytes";
  }
}

TEST(ResponseParser, RejectsWhatIsNotHttp) {
  EXPECT_EQ(ParseInPieces("SSH-2.0-OpenSSH\r\n\r\n", 100), std::vector<int>{-1});
  EXPECT_EQ(ParseInPieces("HTTP/1.1 20x OK\r\n\r\n", 100), std::vector<int>{-1});
  EXPECT_EQ(ParseInPieces("HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n", 100), std::vector<int>{-1});
  EXPECT_EQ(ParseInPieces("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100), std::vector<int>{-1});
  EXPECT_EQ(ParseInPieces("HTTP/1.1 200 OK\r\nX: " + std::string(70'000, 'a'), 4096), std::vector<int>{-1});
}

TEST(ResponseParser, BodyUntilCloseEndsAtClose) {
  ResponseParser parser;
  const std::string text = "HTTP/1.0 200 OK\r\n\r\nall of it";
  std::size_t consumed = 0;
  EXPECT_EQ(parser.Feed(text.data(), text.size(), &consumed), ResponseParser::Step::kNeedMore);
  EXPECT_TRUE(parser.FinishAtClose());
  EXPECT_TRUE(parser.close_after());
  EXPECT_EQ(parser.status(), 200);
}

TEST(HttpUrl, ParsesHostPortAndTarget) {
  auto url = ParseHttpUrl("http://127.0.0.1:8080/v1/jobs?wait=1s");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->target, "/v1/jobs?wait=1s");
  url = ParseHttpUrl("http://[::1]:9/");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  url = ParseHttpUrl("http://localhost");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/");
  EXPECT_NE(ParseHttpUrl("https://127.0.0.1/").status().message().find("https"), std::string::npos);
  EXPECT_NE(ParseHttpUrl("http://127.0.0.1:99999/").status().message().find("port must be"), std::string::npos);
  EXPECT_FALSE(ParseHttpUrl("ftp://x/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://:80/").ok());
}

TEST(HttpUrl, KnowsLoopback) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.3.2.1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("example.com"));
}

TEST(HttpLoad, ClosedLoopKeepsEveryConnectionBusy) {
  TinyServer server;
  HttpLoadOptions options;
  options.url = server.url();
  options.connections = 8;
  options.duration = std::chrono::milliseconds(300);
  auto report = RunHttpLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->answered, 100);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->statuses.at("200"), report->answered);
  EXPECT_EQ(report->sent, report->answered);
  EXPECT_EQ(report->corrected.count(), report->uncorrected.count());
  EXPECT_EQ(report->schedule_lag.count(), 0u);  // nothing is scheduled in closed loop
  EXPECT_GT(report->cpu_seconds, 0);
}

TEST(HttpLoad, OpenLoopSendsExactlyWhatTheScheduleSays) {
  TinyServer server;
  HttpLoadOptions options;
  options.url = server.url();
  options.method = "POST";
  options.body = R"({"x":1})";
  options.threads = 2;
  options.connections = 8;
  options.duration = std::chrono::milliseconds(500);
  options.offered_rate = 2000;
  options.schedule = [&](int, int threads) -> Result<std::unique_ptr<ArrivalSchedule>> {
    return ConstantArrivals(Rate{2000.0 / threads}, options.duration);
  };
  auto report = RunHttpLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  // A constant schedule paces sends exactly: 500 a thread in 0.5 s.
  EXPECT_EQ(report->scheduled, 1000);
  EXPECT_EQ(report->sent, 1000);
  EXPECT_EQ(report->answered, 1000);
  EXPECT_EQ(report->unsent, 0);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->schedule_lag.count(), 1000u);
  // Measured from the intended time, latency can only be longer.
  EXPECT_GE(report->corrected.ValueAtQuantile(0.5), report->uncorrected.ValueAtQuantile(0.5));
  const nlohmann::json json = report->ToJson();
  EXPECT_EQ(json["counts"]["answered"], 1000);
  EXPECT_EQ(json["histograms"]["corrected"]["total"], 1000);
}

TEST(HttpLoad, ReconnectsWhenTheServerClosesConnections) {
  TinyServer server({"--close-every", "3"});
  HttpLoadOptions options;
  options.url = server.url();
  options.connections = 4;
  options.duration = std::chrono::milliseconds(200);
  auto report = RunHttpLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->answered, 30);
  EXPECT_EQ(report->errors, 0) << report->Summary();
}

TEST(HttpLoad, CountsErrorsWhenNothingListens) {
  HttpLoadOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(firedrill::testing::ClosedPort()) + "/";
  options.connections = 2;
  options.duration = std::chrono::milliseconds(100);
  options.offered_rate = 200;
  options.schedule = [&](int, int) -> Result<std::unique_ptr<ArrivalSchedule>> {
    return ConstantArrivals(Rate{200}, options.duration);
  };
  auto report = RunHttpLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->answered, 0);
  EXPECT_GT(report->errors, 0);
  EXPECT_EQ(report->errors + report->unsent, report->scheduled) << report->Summary();
  EXPECT_EQ(report->error_kinds.count("connect: Connection refused"), 1u) << report->Summary();
}

TEST(HttpLoad, RefusesTargetsOffLoopbackUnlessAllowed) {
  HttpLoadOptions options;
  options.url = "http://192.0.2.1:80/";
  auto report = RunHttpLoad(options);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("not a loopback address"), std::string::npos);
  options.url = "http://127.0.0.1:1/";
  options.connections = 0;
  EXPECT_FALSE(RunHttpLoad(options).ok());
}

TEST(HttpLoad, ReportsProgressAndStopsOnRequest) {
  TinyServer server;
  std::atomic<bool> stop{false};
  int reports = 0;
  HttpLoadOptions options;
  options.url = server.url();
  options.connections = 2;
  options.duration = std::chrono::seconds(60);
  options.progress_interval = std::chrono::milliseconds(50);
  options.stop = &stop;
  options.progress = [&](const LoadProgress& progress) {
    EXPECT_GE(progress.sent, progress.answered);
    if (++reports == 3) stop = true;
  };
  auto report = RunHttpLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GE(reports, 3);
  EXPECT_LT(report->elapsed, std::chrono::seconds(30));
  EXPECT_GT(report->answered, 0);
}

}  // namespace
}  // namespace firedrill::workload
