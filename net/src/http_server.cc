#include "firedrill/net/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace firedrill::net {
namespace {

const char* Reason(int status) {
  const char* text = mg_get_response_code_text(nullptr, status);
  return text ? text : "";
}

void Send(mg_connection* connection, const HttpResponse& response) {
  std::string head =
      "HTTP/1.1 " + std::to_string(response.status) + " " + Reason(response.status) + "\r\n";
  head += "Content-Type: " + response.content_type + "\r\n";
  head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
  head += "\r\n";
  // One write: headers and body in separate small writes meet Nagle's
  // algorithm and the client's delayed ACK, and each answer waits 40 ms.
  head += response.body;
  mg_write(connection, head.data(), head.size());
}

// civetweb initialises its library state once per process.
void InitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

}  // namespace

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0)
      return value;
  }
  return "";
}

HttpResponse JsonError(int status, const std::string& message) {
  return HttpResponse{
      status, "application/json", nlohmann::json{{"error", message}}.dump() + "\n", {}};
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandler handler) {
  InitOnce();
  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(handler)));
  const std::string ports = options.host + ":" + std::to_string(options.port);
  const std::string threads = std::to_string(options.threads);
  const char* settings[] = {"listening_ports",
                            ports.c_str(),
                            "num_threads",
                            threads.c_str(),
                            "request_timeout_ms",
                            "30000",
                            "enable_keep_alive",
                            "yes",
                            "tcp_nodelay",
                            "1",
                            nullptr};
  mg_callbacks callbacks{};
  // civetweb logs bind failures itself; the status carries them instead.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  char error_text[256] = {};
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = server.get();
  init.configuration_options = settings;
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  server->context_ = mg_start2(&init, &error);
  if (server->context_ == nullptr) {
    return FD_STATUS(StatusCode::kUnavailable, "cannot listen on " + ports + ": " + error_text);
  }
  mg_set_request_handler(server->context_, "/", &HttpServer::Dispatch, server.get());
  mg_server_port bound[4] = {};
  if (mg_get_server_ports(server->context_, 4, bound) < 1 || bound[0].port <= 0) {
    return FD_STATUS(StatusCode::kInternal,
                     "civetweb did not report the port it bound for " + ports);
  }
  server->port_ = bound[0].port;
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (context_ == nullptr) return;
  // civetweb's listener thread polls in 2-second quanta and mg_stop waits for
  // it; a connection wakes it to see the stop flag, so knock until it has.
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    mg_stop(context_);
    stopped = true;
  });
  while (!stopped) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port_));
    inet_pton(AF_INET, options_.host == "localhost" ? "127.0.0.1" : options_.host.c_str(),
              &address.sin_addr);
    (void)connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stopper.join();
  context_ = nullptr;
}

std::string HttpServer::url() const {
  return "http://" + options_.host + ":" + std::to_string(port_);
}

int HttpServer::Dispatch(mg_connection* connection, void* self) {
  auto* server = static_cast<HttpServer*>(self);
  const mg_request_info* info = mg_get_request_info(connection);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "";
  request.query = info->query_string ? info->query_string : "";
  for (int i = 0; i < info->num_headers; ++i) {
    request.headers.emplace_back(info->http_headers[i].name, info->http_headers[i].value);
  }
  const long long declared = info->content_length;
  if (declared > static_cast<long long>(server->options_.max_body_bytes)) {
    Send(connection, JsonError(413, "request body of " + std::to_string(declared) +
                                        " bytes is over the limit of " +
                                        std::to_string(server->options_.max_body_bytes)));
    return 413;
  }
  char buffer[16384];
  for (;;) {
    const int read = mg_read(connection, buffer, sizeof(buffer));
    if (read <= 0) break;
    request.body.append(buffer, static_cast<std::size_t>(read));
    if (request.body.size() > server->options_.max_body_bytes) {
      Send(connection,
           JsonError(413, "request body is over the limit of " +
                              std::to_string(server->options_.max_body_bytes) + " bytes"));
      return 413;
    }
  }
  HttpResponse response;
  try {
    response = server->handler_(request);
  } catch (const std::exception& error) {
    // A bug in a handler must not take the server down; it is a 500 that says what happened.
    response = JsonError(500, std::string("internal error: ") + error.what());
  }
  Send(connection, response);
  return response.status;
}

}  // namespace firedrill::net
