// The pipeline's gRPC services (proto/hsof/v1/pipeline.proto): Pipeline
// (submit, get, watch jobs) and Admin (the runbooks' recovery actions), over
// the same PipelineService the HTTP API uses.
#pragma once

#include <memory>
#include <string>

#include "firedrill/core/status.h"
#include "firedrill/pipeline/service.h"

namespace grpc {
class Server;
}

namespace firedrill::pipeline {

class GrpcServer {
 public:
  // Binds host:port (port 0 picks a free one) without TLS: loopback only
  // unless the operator says otherwise. With a `faults_token` the Faults
  // service is served too, and answers only calls that carry the token
  // (metadata "x-firedrill-faults-token"); without one it is absent.
  static Result<std::unique_ptr<GrpcServer>> Start(PipelineService& service,
                                                   const std::string& host, int port,
                                                   const std::string& faults_token = "");
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const { return port_; }
  std::string address() const { return host_ + ":" + std::to_string(port_); }
  void Stop();  // idempotent; cancels streams in flight

 private:
  struct Services;
  GrpcServer() = default;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
  std::string host_;
  int port_ = 0;
};

}  // namespace firedrill::pipeline
