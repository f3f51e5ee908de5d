#include "firedrill/pipeline/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <nlohmann/json.hpp>

#include "hsof/v1/pipeline.grpc.pb.h"

namespace firedrill::pipeline {
namespace {

namespace pb = ::hsof::v1;

grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case StatusCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case StatusCode::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case StatusCode::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case StatusCode::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case StatusCode::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case StatusCode::kDeadlineExceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case StatusCode::kCancelled:
      code = grpc::StatusCode::CANCELLED;
      break;
    case StatusCode::kUnimplemented:
      code = grpc::StatusCode::UNIMPLEMENTED;
      break;
    default:
      break;
  }
  return grpc::Status(code, std::string(status.message()));
}

void ToProto(const JobRecord& job, pb::Job* out) {
  out->set_id(job.id);
  out->set_idempotency_key(job.idempotency_key);
  out->set_state(static_cast<pb::JobState>(static_cast<int>(job.state) + 1));
  out->set_attempts(job.attempts);
  out->set_submitted_at(job.submitted_at);
  out->set_started_at(job.started_at);
  out->set_finished_at(job.finished_at);
  out->set_request_json(job.request_json);
  out->set_result_json(job.result_json);
  out->set_error(job.error);
}

void ToProto(const ActionOutcome& outcome, pb::ActionResult* out) {
  out->set_changed(outcome.changed);
  out->set_message(outcome.message);
  for (const auto& [key, value] : outcome.before) (*out->mutable_before())[key] = value;
  for (const auto& [key, value] : outcome.after) (*out->mutable_after())[key] = value;
}

grpc::Status Answer(const Result<ActionOutcome>& outcome, pb::ActionResult* out) {
  if (!outcome.ok()) return ToGrpc(outcome.status());
  ToProto(*outcome, out);
  return grpc::Status::OK;
}

bool Finished(JobState state) {
  return state == JobState::kCompleted || state == JobState::kFailed;
}

// The same validation as the HTTP API: the request is rebuilt as JSON and
// parsed by ParseJobRequest, so both transports accept exactly the same jobs.
Result<JobRequest> FromProto(const pb::SubmitJobRequest& request) {
  static constexpr const char* kModes[] = {"balanced", "fast", "balanced", "accurate"};
  const int mode = request.mode();
  if (mode < 0 || mode > 3) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "field 'mode': unknown value " + std::to_string(mode));
  }
  nlohmann::json body = {{"mode", kModes[mode]}, {"dataset", nlohmann::json::object()}};
  if (!request.idempotency_key().empty()) body["idempotency_key"] = request.idempotency_key();
  const pb::Dataset& d = request.dataset();
  nlohmann::json& dataset = body["dataset"];
  if (d.has_samples()) dataset["samples"] = d.samples();
  if (d.has_features()) dataset["features"] = d.features();
  if (d.has_informative()) dataset["informative"] = d.informative();
  if (d.has_decoys()) dataset["decoys"] = d.decoys();
  if (d.has_noise()) dataset["noise"] = d.noise();
  if (d.has_seed()) dataset["seed"] = d.seed();
  if (d.has_csv()) dataset["csv"] = d.csv();
  if (d.has_target()) dataset["target"] = d.target();
  // Text that is not valid UTF-8 cannot become JSON; say so rather than throw.
  std::string text;
  try {
    text = body.dump();
  } catch (const nlohmann::json::exception&) {
    return FD_STATUS(StatusCode::kInvalidArgument, "field 'idempotency_key' or 'dataset': not valid UTF-8");
  }
  return ParseJobRequest(text);
}

class PipelineImpl final : public pb::Pipeline::Service {
 public:
  explicit PipelineImpl(PipelineService& service) : service_(service) {}

  grpc::Status SubmitJob(grpc::ServerContext*, const pb::SubmitJobRequest* request,
                         pb::SubmitJobResponse* response) override {
    Result<JobRequest> parsed = FromProto(*request);
    if (!parsed.ok()) return ToGrpc(parsed.status());
    Result<SubmitOutcome> outcome = service_.Submit(*parsed);
    if (!outcome.ok()) return ToGrpc(outcome.status());
    ToProto(outcome->job, response->mutable_job());
    response->set_created(outcome->created);
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext*, const pb::GetJobRequest* request,
                      pb::Job* response) override {
    Result<JobRecord> job = service_.GetJob(request->id());
    if (!job.ok()) return ToGrpc(job.status());
    ToProto(*job, response);
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext* context, const pb::WatchJobRequest* request,
                        grpc::ServerWriter<pb::Job>* writer) override {
    int last_state = -1;
    for (;;) {
      if (context->IsCancelled())
        return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
      // Wakes when any job finishes, and at least every 200 ms to see other changes.
      Result<JobRecord> job = service_.WaitForJob(request->id(), std::chrono::milliseconds(200));
      if (!job.ok()) return ToGrpc(job.status());
      if (static_cast<int>(job->state) != last_state) {
        last_state = static_cast<int>(job->state);
        pb::Job update;
        ToProto(*job, &update);
        if (!writer->Write(update))
          return grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away");
      }
      if (Finished(job->state)) return grpc::Status::OK;
    }
  }

 private:
  PipelineService& service_;
};

class AdminImpl final : public pb::Admin::Service {
 public:
  explicit AdminImpl(PipelineService& service) : service_(service) {}

  grpc::Status ScaleWorkers(grpc::ServerContext*, const pb::ScaleWorkersRequest* request,
                            pb::ActionResult* response) override {
    return Answer(service_.ScaleWorkers(request->workers()), response);
  }
  grpc::Status SetConfig(grpc::ServerContext*, const pb::SetConfigRequest* request,
                         pb::ActionResult* response) override {
    return Answer(service_.SetConfig(request->key(), request->value()), response);
  }
  grpc::Status GetConfig(grpc::ServerContext*, const pb::GetConfigRequest*,
                         pb::ConfigValues* response) override {
    for (const auto& [key, value] : service_.Config()) (*response->mutable_values())[key] = value;
    return grpc::Status::OK;
  }
  grpc::Status Drain(grpc::ServerContext*, const pb::DrainRequest*,
                     pb::ActionResult* response) override {
    return Answer(service_.DrainAction(), response);
  }
  grpc::Status Resume(grpc::ServerContext*, const pb::ResumeRequest*,
                      pb::ActionResult* response) override {
    return Answer(service_.ResumeAction(), response);
  }
  grpc::Status TriggerBackup(grpc::ServerContext*, const pb::BackupRequest*,
                             pb::ActionResult* response) override {
    return Answer(service_.TriggerBackup(), response);
  }
  grpc::Status ReloadMetamodel(grpc::ServerContext*, const pb::ReloadMetamodelRequest*,
                               pb::ActionResult* response) override {
    return Answer(service_.ReloadMetamodel(), response);
  }
  grpc::Status RestartStage(grpc::ServerContext*, const pb::RestartStageRequest* request,
                            pb::ActionResult* response) override {
    return Answer(service_.RestartStage(request->stage()), response);
  }
  grpc::Status RestoreBackup(grpc::ServerContext*, const pb::RestoreBackupRequest* request,
                             pb::ActionResult* response) override {
    return Answer(service_.RestoreBackup(request->backup()), response);
  }
  grpc::Status CleanupArtifacts(grpc::ServerContext*, const pb::CleanupRequest* request,
                                pb::ActionResult* response) override {
    if (!(request->older_than_seconds() >= 0) || request->older_than_seconds() > 1e9) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "older_than_seconds must be in [0, 1e9]");
    }
    return Answer(service_.CleanupArtifacts(std::chrono::duration_cast<Duration>(
                      std::chrono::duration<double>(request->older_than_seconds()))),
                  response);
  }

 private:
  PipelineService& service_;
};

Duration Ttl(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

void ToProto(const FaultLease& lease, pb::FaultLease* out) {
  out->set_id(lease.id);
  out->set_kind(lease.kind);
  for (const auto& [key, value] : lease.params) (*out->mutable_params())[key] = value;
  out->set_expires_at(lease.expires_at);
  out->set_effect(lease.effect);
  out->set_device(lease.device);
}

grpc::Status Answer(const Result<FaultLease>& lease, pb::FaultLease* out) {
  if (!lease.ok()) return ToGrpc(lease.status());
  ToProto(*lease, out);
  return grpc::Status::OK;
}

class FaultsImpl final : public pb::Faults::Service {
 public:
  FaultsImpl(PipelineService& service, std::string token)
      : service_(service), token_(std::move(token)) {}

  grpc::Status StartFault(grpc::ServerContext* context, const pb::FaultRequest* request,
                          pb::FaultLease* response) override {
    if (grpc::Status denied = Check(context); !denied.ok()) return denied;
    if (!(request->ttl_seconds() > 0 && request->ttl_seconds() <= 86400)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ttl_seconds must be in (0, 86400]");
    }
    const std::map<std::string, std::string> params(request->params().begin(),
                                                    request->params().end());
    return Answer(service_.StartFault(request->kind(), params, Ttl(request->ttl_seconds())),
                  response);
  }
  grpc::Status RenewFault(grpc::ServerContext* context, const pb::RenewFaultRequest* request,
                          pb::FaultLease* response) override {
    if (grpc::Status denied = Check(context); !denied.ok()) return denied;
    if (!(request->ttl_seconds() > 0 && request->ttl_seconds() <= 86400)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ttl_seconds must be in (0, 86400]");
    }
    return Answer(service_.RenewFault(request->id(), Ttl(request->ttl_seconds())), response);
  }
  grpc::Status StopFault(grpc::ServerContext* context, const pb::StopFaultRequest* request,
                         pb::FaultLease* response) override {
    if (grpc::Status denied = Check(context); !denied.ok()) return denied;
    return Answer(service_.StopFault(request->id()), response);
  }
  grpc::Status ListFaults(grpc::ServerContext* context, const pb::ListFaultsRequest*,
                          pb::FaultLeases* response) override {
    if (grpc::Status denied = Check(context); !denied.ok()) return denied;
    for (const FaultLease& lease : service_.Faults()) ToProto(lease, response->add_leases());
    return grpc::Status::OK;
  }

 private:
  grpc::Status Check(grpc::ServerContext* context) const {
    const auto& metadata = context->client_metadata();
    const auto it = metadata.find("x-firedrill-faults-token");
    if (it == metadata.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "the Faults service needs x-firedrill-faults-token");
    }
    const std::string_view given(it->second.data(), it->second.size());
    // Compare every byte, so the time taken says nothing about the token.
    unsigned char difference = given.size() == token_.size() ? 0 : 1;
    for (std::size_t i = 0; i < given.size(); ++i)
      difference |= given[i] ^ token_[i % token_.size()];
    if (difference != 0)
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "wrong faults token");
    return grpc::Status::OK;
  }

  PipelineService& service_;
  const std::string token_;
};

}  // namespace

struct GrpcServer::Services {
  Services(PipelineService& service, const std::string& token)
      : pipeline(service), admin(service), faults(service, token) {}
  PipelineImpl pipeline;
  AdminImpl admin;
  FaultsImpl faults;
};

Result<std::unique_ptr<GrpcServer>> GrpcServer::Start(PipelineService& service,
                                                      const std::string& host, int port,
                                                      const std::string& faults_token) {
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->services_ = std::make_unique<Services>(service, faults_token);
  server->host_ = host;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.RegisterService(&server->services_->pipeline);
  builder.RegisterService(&server->services_->admin);
  if (!faults_token.empty()) builder.RegisterService(&server->services_->faults);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return FD_STATUS(StatusCode::kUnavailable,
                     "cannot listen for gRPC on " + host + ":" + std::to_string(port));
  }
  return server;
}

GrpcServer::~GrpcServer() { Stop(); }

void GrpcServer::Stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
  }
}

}  // namespace firedrill::pipeline
