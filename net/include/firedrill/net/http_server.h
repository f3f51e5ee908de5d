// A small HTTP/1.1 server over civetweb for the pipeline's APIs, metrics
// listeners and test targets. Binds 127.0.0.1 by default; port 0 picks a
// free port, which port() reports. One handler sees every request; bodies
// past the limit get 413 without reaching it.
//
// Thread-safety: the handler runs on the server's threads, several at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "firedrill/core/status.h"

struct mg_context;
struct mg_connection;

namespace firedrill::net {

struct HttpRequest {
  std::string method;
  std::string path;   // decoded, without the query
  std::string query;  // raw, without '?'
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header of that name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": message}, with the status.
HttpResponse JsonError(int status, const std::string& message);

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int threads = 8;
  std::size_t max_body_bytes = 1 << 20;
};

class HttpServer {
 public:
  // kUnavailable when the address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // http://host:port
  // Stops accepting, finishes requests in flight, joins the threads. Idempotent.
  void Stop();

 private:
  HttpServer(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  static int Dispatch(mg_connection* connection, void* self);

  HttpServerOptions options_;
  HttpHandler handler_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace firedrill::net
