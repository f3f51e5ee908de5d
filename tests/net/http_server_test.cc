#include "firedrill/net/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http_client.h"

namespace firedrill::net {
namespace {

using firedrill::testing::HttpCall;

std::unique_ptr<HttpServer> Echo(HttpServerOptions options = {}) {
  auto server = HttpServer::Start(options, [](const HttpRequest& request) {
    if (request.path == "/boom") throw std::runtime_error("handler bug");
    HttpResponse response;
    response.content_type = "text/plain";
    response.body = request.method + " " + request.path + " ?" + request.query + " [" +
                    request.body + "] " + request.Header("x-test");
    response.status = request.path == "/missing" ? 404 : 200;
    return response;
  });
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

TEST(HttpServerTest, BindsAFreeLoopbackPortAndServesRequests) {
  auto server = Echo();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->url(), "http://127.0.0.1:" + std::to_string(server->port()));
  auto get = HttpCall("GET", server->url() + "/a/b?x=1");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "GET /a/b ?x=1 [] ");
  EXPECT_EQ(get.content_type, "text/plain");
  auto post = HttpCall("POST", server->url() + "/jobs", "{\"k\":1}");
  EXPECT_EQ(post.body, "POST /jobs ? [{\"k\":1}] ");
  EXPECT_EQ(HttpCall("GET", server->url() + "/missing").status, 404);
}

TEST(HttpServerTest, OversizedBodiesGet413AndHandlerBugsGet500) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  auto server = Echo(options);
  ASSERT_NE(server, nullptr);
  auto big = HttpCall("POST", server->url() + "/jobs", std::string(5000, 'x'));
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("over the limit of 1000"), std::string::npos) << big.body;
  auto boom = HttpCall("GET", server->url() + "/boom");
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.body, "{\"error\":\"internal error: handler bug\"}\n");
  // The server is still there.
  EXPECT_EQ(HttpCall("GET", server->url() + "/ok").status, 200);
}

TEST(HttpServerTest, ManyClientsAtOnce) {
  auto server = Echo();
  ASSERT_NE(server, nullptr);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ok += HttpCall("GET", server->url() + "/x").status == 200;
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST(HttpServerTest, ABusyPortIsAStatusAndStopIsFinal) {
  auto first = Echo();
  ASSERT_NE(first, nullptr);
  HttpServerOptions options;
  options.port = first->port();
  auto second = HttpServer::Start(options, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(first->port())),
            std::string::npos);
  const std::string url = first->url();
  first->Stop();
  first->Stop();
  EXPECT_EQ(HttpCall("GET", url + "/x").status, 0);
}

}  // namespace
}  // namespace firedrill::net
