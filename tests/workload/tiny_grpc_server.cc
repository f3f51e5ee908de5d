// tiny-grpc-server: the trivial gRPC target the load generator is measured
// against. It answers any unary method by echoing the request bytes with
// status OK, through the async generic API, so a benchmark measures the
// client and the transport rather than a service.
//
//   tiny-grpc-server [--threads N] [--port N]
//
// Binds 127.0.0.1 (port 0 by default: a free one), prints "port N" on stdout
// once serving, and exits 0 on SIGTERM or SIGINT. It dies with its parent, so
// a crashed test or benchmark leaves no server behind.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

// One call from request to answer; deletes itself when done.
class EchoCall {
 public:
  EchoCall(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* queue)
      : service_(service), queue_(queue), stream_(&context_) {
    service_->RequestCall(&context_, &stream_, queue_, queue_, this);
  }

  void Proceed(bool ok) {
    switch (step_) {
      case Step::kRequested:
        if (!ok) {  // the server is shutting down
          delete this;
          return;
        }
        new EchoCall(service_, queue_);  // keep the next call requested
        step_ = Step::kReading;
        stream_.Read(&request_, this);
        return;
      case Step::kReading:
        step_ = Step::kFinishing;
        if (ok) {
          stream_.WriteAndFinish(request_, grpc::WriteOptions(), grpc::Status::OK, this);
        } else {  // the client half-closed without a message, or went away
          stream_.Finish(grpc::Status::OK, this);
        }
        return;
      case Step::kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum class Step { kRequested, kReading, kFinishing };

  grpc::AsyncGenericService* service_;
  grpc::ServerCompletionQueue* queue_;
  grpc::GenericServerContext context_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ByteBuffer request_;
  Step step_ = Step::kRequested;
};

// Calls requested ahead on each queue, so a burst of new calls does not wait
// for the thread to ask for them one at a time.
constexpr int kRequestedAhead = 64;

void Serve(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* queue) {
  for (int i = 0; i < kRequestedAhead; ++i) new EchoCall(service, queue);
  void* tag = nullptr;
  bool ok = false;
  while (queue->Next(&tag, &ok)) static_cast<EchoCall*>(tag)->Proceed(ok);
}

bool ParseCount(const char* text, int low, int high, int* out) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < low || value > high) return false;
  *out = static_cast<int>(value);
  return true;
}

int Usage() {
  std::fprintf(stderr, "usage: tiny-grpc-server [--threads N (1-64)] [--port N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Die with the parent; if it went away before the request took hold, go now.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 1;

  int threads = 1;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Usage();
    if (flag == "--threads") {
      if (!ParseCount(argv[++i], 1, 64, &threads)) return Usage();
    } else if (flag == "--port") {
      if (!ParseCount(argv[++i], 0, 65535, &port)) return Usage();
    } else {
      return Usage();
    }
  }

  // Block the stop signals before gRPC starts its threads, so they inherit
  // the mask and the main thread alone takes them, in sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  grpc::AsyncGenericService service;
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.RegisterAsyncGenericService(&service);
  builder.SetMaxReceiveMessageSize(-1);
  // Only the filters a call needs: the server should cost less than the client.
  builder.AddChannelArgument(GRPC_ARG_MINIMAL_STACK, 1);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (int i = 0; i < threads; ++i) queues.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    std::fprintf(stderr, "tiny-grpc-server: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::vector<std::thread> workers;
  for (auto& queue : queues) workers.emplace_back(Serve, &service, queue.get());

  std::printf("port %d\n", bound_port);
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);

  // Calls in flight get a moment to finish, then are cancelled.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  for (auto& queue : queues) queue->Shutdown();
  for (std::thread& worker : workers) worker.join();
  return 0;
}
