#include "firedrill/workload/grpc_client.h"

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "firedrill/workload/http_load.h"
#include "hsof/v1/pipeline.grpc.pb.h"

namespace firedrill::workload {
namespace {

namespace pb = ::hsof::v1;
using SteadyClock = std::chrono::steady_clock;

constexpr std::array<const char*, 17> kCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

// A relative deadline: gRPC measures it from when it reads it, on its own clock.
gpr_timespec After(Duration delay) {
  const std::int64_t nanos = std::max<std::int64_t>(delay.count(), 0);
  gpr_timespec span;
  span.tv_sec = nanos / 1'000'000'000;
  span.tv_nsec = static_cast<std::int32_t>(nanos % 1'000'000'000);
  span.clock_type = GPR_TIMESPAN;
  return span;
}

int Millis(Duration duration) {
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  return static_cast<int>(std::clamp<std::int64_t>(millis, 1, 1'000'000'000));
}

std::string Describe(const grpc::Status& status) {
  std::string text = GrpcCodeName(status.error_code());
  if (!status.error_message().empty()) text += ": " + status.error_message();
  return text;
}

// The host part of "host:port", "[v6]:port" or "scheme:///host:port".
std::string_view HostOf(std::string_view target) {
  if (const auto scheme = target.find(":///"); scheme != std::string_view::npos) {
    target.remove_prefix(scheme + 4);
  }
  if (target.starts_with('[')) {
    const auto close = target.find(']');
    return close == std::string_view::npos ? target : target.substr(1, close - 1);
  }
  const auto colon = target.rfind(':');
  return colon == std::string_view::npos ? target : target.substr(0, colon);
}


const Clock& RealTime() {
  static const RealClock clock;
  return clock;
}

// ---- GrpcJobClient ----

pb::Mode ModeOf(JobMode mode) {
  switch (mode) {
    case JobMode::kFast:
      return pb::MODE_FAST;
    case JobMode::kAccurate:
      return pb::MODE_ACCURATE;
    case JobMode::kBalanced:
      break;
  }
  return pb::MODE_BALANCED;
}

bool Finished(pb::JobState state) {
  return state == pb::JOB_STATE_COMPLETED || state == pb::JOB_STATE_FAILED;
}

// Worth another SubmitJob with the same key: the server was away, busy, or
// slow, and the key makes a repeat safe.
bool RetrySubmit(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// A watch that ended this way will not do better when repeated: the job is
// gone, or the server will never let us watch it.
bool WatchIsHopeless(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return true;
    default:
      return false;
  }
}

// kCompleted with the stage timings and quality from result_json, or kFailed.
void FillOutcome(const pb::Job& job, JobEvent* event) {
  if (job.state() == pb::JOB_STATE_FAILED) {
    event->kind = JobEvent::Kind::kFailed;
    event->reason = job.error().empty() ? "failed" : job.error();
    return;
  }
  event->kind = JobEvent::Kind::kCompleted;
  const auto result = nlohmann::json::parse(job.result_json(), nullptr, /*allow_exceptions=*/false);
  if (!result.is_object()) return;
  if (const auto quality = result.find("quality");
      quality != result.end() && quality->is_number()) {
    event->quality = quality->get<double>();
  }
  if (const auto stages = result.find("stage_seconds");
      stages != result.end() && stages->is_array()) {
    for (std::size_t i = 0; i < stages->size(); ++i) {
      if ((*stages)[i].is_number()) {
        event->stage_seconds["stage" + std::to_string(i + 1)] = (*stages)[i].get<double>();
      }
    }
  }
}

class GrpcJobClient final : public JobClient {
 public:
  explicit GrpcJobClient(const GrpcJobClientOptions& options)
      : options_(options), clock_(options.clock != nullptr ? *options.clock : RealTime()) {
    grpc::ChannelArguments args;
    // The channel reconnects on the same schedule as the client's own retries,
    // so a restarted server is found again within one backoff step. (Not
    // the minimum: that is also the connect timeout, 20 s by default.)
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, Millis(options.initial_backoff));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, Millis(options.max_backoff));
    stub_ = pb::Pipeline::NewStub(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args));
    thread_ = std::thread([this] { Run(); });
  }
  ~GrpcJobClient() override { Shutdown(); }
  GrpcJobClient(const GrpcJobClient&) = delete;
  GrpcJobClient& operator=(const GrpcJobClient&) = delete;

  void Submit(const JobSubmission& submission, JobCallback callback) override {
    auto job = std::make_unique<Job>();
    job->callback = std::move(callback);
    job->submitting = true;
    pb::SubmitJobRequest& request = job->request;
    request.set_idempotency_key(submission.idempotency_key);
    request.set_mode(ModeOf(submission.shape.mode));
    pb::Dataset& dataset = *request.mutable_dataset();
    if (!submission.shape.dataset.empty()) {
      dataset.set_csv(submission.shape.dataset);
    } else {
      // Negative sizes go through as huge numbers, so the server names the field.
      dataset.set_samples(static_cast<std::uint64_t>(submission.shape.samples));
      dataset.set_features(static_cast<std::uint64_t>(submission.shape.features));
      dataset.set_informative(static_cast<std::uint64_t>(submission.shape.informative));
      dataset.set_decoys(static_cast<std::uint64_t>(submission.shape.decoys));
      dataset.set_noise(submission.shape.noise);
      dataset.set_seed(submission.dataset_seed);
    }
    Enqueue(std::move(job));
  }

  void Follow(const std::string& job_id, const std::string& key, JobCallback callback) override {
    auto job = std::make_unique<Job>();
    job->callback = std::move(callback);
    job->job_id = job_id;
    job->request.set_idempotency_key(key);  // what the watch's answers must carry
    const char* end = job_id.data() + job_id.size();
    const auto parsed = std::from_chars(job_id.data(), end, job->id);
    if (job_id.empty() || parsed.ec != std::errc() || parsed.ptr != end) {
      job->refusal = "not a job id: '" + job_id + "'";
    }
    Enqueue(std::move(job));
  }

  std::int64_t in_flight() const override { return in_flight_.load(); }

  void Shutdown() override {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        stopping_ = true;
        shutdown_alarm_.Set(&queue_, After(Duration(0)), &shutdown_alarm_);
      }
    }
    // From a callback the thread cannot wait for itself; it ends on its own.
    if (std::this_thread::get_id() == thread_.get_id()) return;
    std::lock_guard lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  // What the job's one pending completion-queue operation is.
  enum class Step { kStart, kBackoff, kSubmit, kWatchStart, kWatchRead, kWatchFinish };

  // One submitted or followed job. Touched only on the queue thread once
  // enqueued. Invariant: until settled it always has exactly one operation
  // pending, whose tag is the Job itself.
  struct Job {
    JobCallback callback;
    bool submitting = false;  // Submit (not yet accepted) rather than Follow
    std::string refusal;      // refused before any call: reported at the start
    pb::SubmitJobRequest request;
    std::int64_t id = 0;
    std::string job_id;
    int attempts = 0;
    Duration backoff{0};
    Step step = Step::kStart;
    Step after_backoff = Step::kSubmit;  // kSubmit or kWatchStart
    bool pending = false;
    bool settled = false;  // its last callback has run
    bool heard = false;    // the current watch delivered a message
    // A submission attempt failed in a way that leaves open whether the
    // server committed the job (a deadline, a broken connection).
    bool maybe_received = false;
    // Real time, like every wait here; options.clock only stamps events.
    std::optional<SteadyClock::time_point> unreachable_since;
    std::optional<grpc::Alarm> alarm;
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientAsyncResponseReader<pb::SubmitJobResponse>> submit_call;
    pb::SubmitJobResponse submitted;
    std::unique_ptr<grpc::ClientAsyncReader<pb::Job>> watch;
    pb::Job update;
    grpc::Status status;
  };

  void Enqueue(std::unique_ptr<Job> job) {
    job->backoff = options_.initial_backoff;
    std::unique_lock lock(mutex_);
    if (stopping_) {
      lock.unlock();
      // No queue thread any more: the caller hears at once.
      JobEvent event;
      event.kind = JobEvent::Kind::kLost;
      event.job_id = job->job_id;
      event.reason = "client shut down";
      event.at = clock_.Now();
      job->callback(event);
      return;
    }
    ++in_flight_;
    Job* raw = job.get();
    // Everything about a job happens on the queue thread: an alarm that is
    // already due hands it over.
    raw->pending = true;
    raw->step = Step::kStart;
    raw->alarm.emplace();
    raw->alarm->Set(&queue_, After(Duration(0)), raw);
    jobs_.emplace(raw, std::move(job));
  }

  void Run() {
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
      if (tag == &shutdown_alarm_) {
        CancelAll();
      } else {
        Job* job = static_cast<Job*>(tag);
        job->pending = false;
        Proceed(job, ok);
        if (!job->pending) Forget(job);
      }
      if (stopping_ && !queue_shut_down_) {
        std::lock_guard lock(mutex_);
        if (jobs_.empty()) {
          queue_shut_down_ = true;
          queue_.Shutdown();
        }
      }
    }
  }

  // Every job's pending operation comes back soon, and each settles as lost.
  void CancelAll() {
    std::lock_guard lock(mutex_);
    for (auto& [raw, job] : jobs_) {
      if (job->step == Step::kStart || job->step == Step::kBackoff) {
        job->alarm->Cancel();
      } else if (job->context) {
        job->context->TryCancel();
      }
    }
  }

  void Forget(Job* job) {
    std::lock_guard lock(mutex_);
    jobs_.erase(job);
  }

  void Proceed(Job* job, bool ok) {
    switch (job->step) {
      case Step::kStart:
        if (stopping_) return Settle(job, JobEvent::Kind::kLost, "client shut down");
        if (!job->refusal.empty()) {
          return Settle(job, job->submitting ? JobEvent::Kind::kRejected : JobEvent::Kind::kLost,
                        job->refusal);
        }
        return job->submitting ? StartSubmit(job) : StartWatch(job);
      case Step::kBackoff:
        if (stopping_ || !ok) return Settle(job, JobEvent::Kind::kLost, "client shut down");
        return job->after_backoff == Step::kSubmit ? StartSubmit(job) : StartWatch(job);
      case Step::kSubmit:
        return Submitted(job);
      case Step::kWatchStart:
        if (ok) return Read(job);
        return FinishWatch(job);
      case Step::kWatchRead:
        if (!ok) return FinishWatch(job);
        Updated(job);
        return Read(job);
      case Step::kWatchFinish:
        return WatchEnded(job);
    }
  }

  // A call's reader lives in the call's arena, which its context owns: the
  // reader goes first.
  static void NewContext(Job* job) {
    job->submit_call.reset();
    job->watch.reset();
    job->context = std::make_unique<grpc::ClientContext>();
  }

  void StartSubmit(Job* job) {
    ++job->attempts;
    NewContext(job);
    job->context->set_deadline(After(options_.call_deadline));
    job->submit_call = stub_->PrepareAsyncSubmitJob(job->context.get(), job->request, &queue_);
    job->submit_call->StartCall();
    job->submit_call->Finish(&job->submitted, &job->status, job);
    Pending(job, Step::kSubmit);
  }

  void Submitted(Job* job) {
    const grpc::Status& status = job->status;
    if (status.ok()) {
      const pb::Job& accepted = job->submitted.job();
      job->id = accepted.id();
      job->job_id = std::to_string(accepted.id());
      job->submitting = false;
      job->backoff = options_.initial_backoff;
      Notify(job, JobEvent::Kind::kAccepted, "");
      if (stopping_) return Settle(job, JobEvent::Kind::kLost, "client shut down");
      // A repeated key can name a job that is already over.
      if (Finished(accepted.state())) return SettleWith(job, accepted);
      return StartWatch(job);
    }
    if (stopping_) return Settle(job, JobEvent::Kind::kLost, "client shut down");
    if (OutcomeUnknown(*job)) job->maybe_received = true;
    if (RetrySubmit(status.error_code()) && job->attempts < options_.max_attempts) {
      return Backoff(job, Step::kSubmit);
    }
    // Per the JobClient contract a submission that may have been taken is
    // lost, not rejected: a resumed run resends it under the same key.
    if (job->maybe_received) return Settle(job, JobEvent::Kind::kLost, "outcome unknown: " + Describe(status));
    Settle(job, JobEvent::Kind::kRejected, Describe(status));
  }

  // The server may have taken the job although the call failed: the
  // deadline ran out, or the connection broke without the server's answer
  // (a refused connection is known not to have delivered anything).
  static bool OutcomeUnknown(const Job& job) {
    const grpc::StatusCode code = job.status.error_code();
    if (code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::UNKNOWN ||
        code == grpc::StatusCode::INTERNAL) {
      return true;
    }
    if (code != grpc::StatusCode::UNAVAILABLE) return false;
    const std::string detail = job.context ? job.context->debug_error_string() : std::string();
    const bool from_server = detail.find("received from peer") != std::string::npos;
    const bool never_connected = detail.find("onnect") != std::string::npos;  // "failed to connect", "Connection refused"
    return !from_server && !never_connected;
  }

  void StartWatch(Job* job) {
    job->heard = false;
    NewContext(job);
    job->context->set_deadline(After(options_.watch_deadline));
    pb::WatchJobRequest request;
    request.set_id(job->id);
    job->watch = stub_->PrepareAsyncWatchJob(job->context.get(), request, &queue_);
    job->watch->StartCall(job);
    Pending(job, Step::kWatchStart);
  }

  void Read(Job* job) {
    job->watch->Read(&job->update, job);
    Pending(job, Step::kWatchRead);
  }

  void FinishWatch(Job* job) {
    job->watch->Finish(&job->status, job);
    Pending(job, Step::kWatchFinish);
  }

  // A message on the watch: the server is there; the job may be over.
  void Updated(Job* job) {
    job->heard = true;
    job->unreachable_since.reset();
    job->backoff = options_.initial_backoff;
    // The stream is read to its end before the job is forgotten, but the
    // outcome is known now.
    if (job->settled) return;
    const std::string& key = job->request.idempotency_key();
    if (!key.empty() && !job->update.idempotency_key().empty() && job->update.idempotency_key() != key) {
      return Settle(job, JobEvent::Kind::kLost, AnotherJob(job->job_id, job->update.idempotency_key()));
    }
    if (Finished(job->update.state())) SettleWith(job, job->update);
  }

  void WatchEnded(Job* job) {
    if (job->settled) return;
    if (stopping_) return Settle(job, JobEvent::Kind::kLost, "client shut down");
    const grpc::Status& status = job->status;
    if (WatchIsHopeless(status.error_code())) {
      return Settle(job, JobEvent::Kind::kLost, Describe(status));
    }
    // A stream that ran its course is renewed at once; one that broke (or
    // ended early) is retried after a wait, until the server has been
    // unreachable for too long.
    if (job->heard && status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return StartWatch(job);
    }
    const SteadyClock::time_point now = SteadyClock::now();
    if (!job->unreachable_since) job->unreachable_since = now;
    if (now - *job->unreachable_since >= options_.follow_grace) {
      return Settle(job, JobEvent::Kind::kLost, "could not follow the job: " + Describe(status));
    }
    Backoff(job, Step::kWatchStart);
  }

  void Backoff(Job* job, Step then) {
    job->after_backoff = then;
    job->alarm.emplace();
    job->alarm->Set(&queue_, After(job->backoff), job);
    job->backoff = std::min(job->backoff * 2, options_.max_backoff);
    Pending(job, Step::kBackoff);
  }

  static void Pending(Job* job, Step step) {
    job->step = step;
    job->pending = true;
  }

  void Notify(Job* job, JobEvent::Kind kind, std::string reason) {
    JobEvent event;
    event.kind = kind;
    event.job_id = job->job_id;
    event.reason = std::move(reason);
    event.attempts = job->attempts;
    event.at = clock_.Now();
    job->callback(event);
  }

  // in_flight drops before the last callback, so a caller woken by it sees
  // the job gone.
  void Settle(Job* job, JobEvent::Kind kind, std::string reason) {
    job->settled = true;
    --in_flight_;
    Notify(job, kind, std::move(reason));
  }

  void SettleWith(Job* job, const pb::Job& final_state) {
    job->settled = true;
    --in_flight_;
    JobEvent event;
    FillOutcome(final_state, &event);
    event.job_id = job->job_id;
    event.attempts = job->attempts;
    event.at = clock_.Now();
    job->callback(event);
  }

  const GrpcJobClientOptions options_;
  const Clock& clock_;
  std::unique_ptr<pb::Pipeline::Stub> stub_;
  grpc::CompletionQueue queue_;
  grpc::Alarm shutdown_alarm_;
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<bool> stopping_{false};
  bool queue_shut_down_ = false;  // queue thread only
  std::mutex mutex_;              // guards jobs_ and the start of Shutdown
  std::unordered_map<Job*, std::unique_ptr<Job>> jobs_;
  std::mutex join_mutex_;
  std::thread thread_;
};

// ---- RunGrpcUnaryLoad ----

// One call slot: a call in flight, or free for the next.
struct CallSlot {
  std::optional<grpc::ClientContext> context;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  grpc::ByteBuffer response;
  grpc::Status status;
  SteadyClock::time_point intended;
  SteadyClock::time_point started;
  grpc::GenericStub* stub = nullptr;
};

// Latency here is read from std::chrono::steady_clock directly rather than
// through a Clock: the completion queue waits in real time, and a virtual
// call per sample would cost throughput.
class UnaryLoad {
 public:
  UnaryLoad(const GrpcUnaryLoadOptions& options, ArrivalSchedule* schedule)
      : options_(options), schedule_(schedule) {}

  LoadReport Run() {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
    for (int i = 0; i < options_.connections; ++i) {
      grpc::ChannelArguments args;
      // A private subchannel pool gives each channel its own connection.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      // A retried call would hide the failure the load is meant to show.
      args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
      args.SetMaxReceiveMessageSize(-1);
      channels.push_back(
          grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), args));
      stubs.push_back(std::make_unique<grpc::GenericStub>(channels.back()));
    }
    Connect(channels);

    grpc::Slice slice(options_.payload);
    request_ = grpc::ByteBuffer(&slice, 1);
    slots_ = std::vector<CallSlot>(static_cast<std::size_t>(options_.concurrency));
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].stub = stubs[i % stubs.size()].get();
      free_.push_back(&slots_[i]);
    }

    const double cpu_start = ThreadCpuSeconds();
    start_ = SteadyClock::now();
    last_answer_ = start_;
    Loop();
    report_.cpu_seconds = ThreadCpuSeconds() - cpu_start;

    report_.target = options_.target;
    report_.transport = "grpc";
    report_.arrival = schedule_ != nullptr
                          ? options_.arrival_description
                          : "closed loop, " + std::to_string(options_.concurrency) + " calls";
    report_.threads = 1;
    report_.connections = options_.connections;
    report_.offered_rate = schedule_ != nullptr ? options_.offered_rate : 0;
    if (schedule_ == nullptr) report_.scheduled = report_.sent;
    for (std::size_t code = 0; code < kCodeNames.size(); ++code) {
      if (statuses_[code] > 0) report_.statuses[kCodeNames[code]] += statuses_[code];
      if (error_kinds_[code] > 0) report_.error_kinds[kCodeNames[code]] += error_kinds_[code];
    }
    // From the start to the last answer, but never less than the time the
    // run was asked to send for (a dead target answers nothing).
    const auto end =
        std::max(last_answer_, std::min(SteadyClock::now(), start_ + options_.duration));
    report_.elapsed = std::chrono::duration_cast<Duration>(end - start_);
    report_.Judge();
    return std::move(report_);
  }

 private:
  // Starts the connections and waits (briefly) until each is up or has
  // failed, so the first calls do not carry the handshake in their latency.
  void Connect(const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
    const auto deadline = std::chrono::system_clock::now() +
                          std::min<Duration>(options_.timeout, std::chrono::seconds(2));
    for (const auto& channel : channels) {
      for (;;) {
        const grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
        if (state == GRPC_CHANNEL_READY || state == GRPC_CHANNEL_TRANSIENT_FAILURE ||
            state == GRPC_CHANNEL_SHUTDOWN || !channel->WaitForStateChange(state, deadline)) {
          break;
        }
      }
    }
  }

  bool closed_loop() const { return schedule_ == nullptr; }

  void Loop() {
    const auto send_end = start_ + options_.duration;
    bool sending = true;
    bool cancelled = false;
    SteadyClock::time_point drain_end{};
    if (!closed_loop()) {
      next_due_ = schedule_->Next();
      if (next_due_ && *next_due_ >= options_.duration) next_due_.reset();
    }
    for (;;) {
      SteadyClock::time_point now = SteadyClock::now();
      if (sending) {
        const bool stopped = options_.stop != nullptr && options_.stop->load();
        // Sends that fell due before the end still go, however late the
        // loop got to them.
        if (!stopped && (now < send_end || !closed_loop())) SendDue(now);
        const bool exhausted = !closed_loop() && !next_due_ && waiting_.empty();
        if (now >= send_end || stopped || exhausted) {
          sending = false;
          // Sends never made count as unsent, not as latency nobody measured.
          report_.unsent += static_cast<std::int64_t>(waiting_.size());
          waiting_.clear();
          drain_end = now + options_.timeout;
        }
      }
      if (!sending) {
        if (in_flight_ == 0) break;
        if (!cancelled && now >= drain_end) {
          // Every call has its own deadline; this only guards against one
          // that gRPC never ends.
          for (CallSlot& slot : slots_) {
            if (slot.context) slot.context->TryCancel();
          }
          cancelled = true;
        }
      }

      SteadyClock::time_point wake = drain_end;
      if (sending) {
        wake = send_end;
        if (next_due_) wake = std::min(wake, start_ + *next_due_);
      } else if (cancelled) {
        wake = now + std::chrono::seconds(1);
      }
      void* tag = nullptr;
      bool ok = false;
      const auto event = queue_.AsyncNext(&tag, &ok, After(wake - now));
      if (event == grpc::CompletionQueue::GOT_EVENT) {
        Answered(static_cast<CallSlot*>(tag), sending);
      } else if (event == grpc::CompletionQueue::SHUTDOWN) {
        break;
      }
    }
    queue_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
    }
  }

  // Starts every send that is due, or holds it until a call slot is free.
  void SendDue(SteadyClock::time_point now) {
    if (closed_loop()) {
      while (!free_.empty()) Start(now, now);
      return;
    }
    while (next_due_ && start_ + *next_due_ <= now) {
      const SteadyClock::time_point intended = start_ + *next_due_;
      report_.schedule_lag.Record(std::chrono::duration_cast<Duration>(now - intended));
      ++report_.scheduled;
      if (!free_.empty()) {
        Start(intended, now);
      } else {
        waiting_.push_back(intended);
        ++report_.waited_for_connection;
      }
      next_due_ = schedule_->Next();
      if (next_due_ && *next_due_ >= options_.duration) next_due_.reset();
    }
  }

  void Start(SteadyClock::time_point intended, SteadyClock::time_point now) {
    CallSlot* slot = free_.back();
    free_.pop_back();
    slot->intended = intended;
    slot->started = now;
    slot->context.emplace();
    slot->context->set_deadline(After(options_.timeout));
    slot->reader =
        slot->stub->PrepareUnaryCall(&*slot->context, options_.method, request_, &queue_);
    slot->reader->StartCall();
    slot->reader->Finish(&slot->response, &slot->status, slot);
    ++report_.sent;
    ++in_flight_;
  }

  void Answered(CallSlot* slot, bool sending) {
    const SteadyClock::time_point now = SteadyClock::now();
    --in_flight_;
    const grpc::Status& status = slot->status;
    const auto code = static_cast<std::size_t>(status.error_code());
    const std::size_t index = code < kCodeNames.size() ? code : 2;  // UNKNOWN
    if (status.ok() || FromServer(*slot)) {
      ++report_.answered;
      if (!status.ok()) ++report_.failed;
      ++statuses_[index];
      report_.corrected.Record(std::chrono::duration_cast<Duration>(now - slot->intended));
      report_.uncorrected.Record(std::chrono::duration_cast<Duration>(now - slot->started));
      last_answer_ = now;
    } else {
      ++report_.errors;
      ++error_kinds_[index];
    }
    slot->reader.reset();
    slot->context.reset();
    slot->response.Clear();
    free_.push_back(slot);
    if (!sending) return;
    // The freed slot goes to the oldest held send first.
    if (!waiting_.empty()) {
      const SteadyClock::time_point intended = waiting_.front();
      waiting_.pop_front();
      Start(intended, now);
    } else if (closed_loop()) {
      Start(now, now);
    }
  }

  // Whether a failed status came from the server rather than from the
  // client (no connection, the deadline, a cancel): gRPC marks statuses it
  // read off the wire as received from the peer.
  static bool FromServer(const CallSlot& slot) {
    return slot.context->debug_error_string().find("received from peer") != std::string::npos;
  }

  const GrpcUnaryLoadOptions& options_;
  ArrivalSchedule* schedule_;
  grpc::CompletionQueue queue_;
  grpc::ByteBuffer request_;
  std::vector<CallSlot> slots_;
  std::vector<CallSlot*> free_;
  std::deque<SteadyClock::time_point> waiting_;  // due sends held back by the cap
  std::optional<Duration> next_due_;
  std::int64_t in_flight_ = 0;
  SteadyClock::time_point start_;
  SteadyClock::time_point last_answer_;
  std::array<std::int64_t, kCodeNames.size()> statuses_{};
  std::array<std::int64_t, kCodeNames.size()> error_kinds_{};
  LoadReport report_;
};

}  // namespace

std::string GrpcCodeName(int code) {
  if (code >= 0 && static_cast<std::size_t>(code) < kCodeNames.size()) {
    return kCodeNames[static_cast<std::size_t>(code)];
  }
  return "CODE_" + std::to_string(code);
}

Result<std::unique_ptr<JobClient>> MakeGrpcJobClient(const GrpcJobClientOptions& options) {
  if (options.target.empty()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "gRPC job client: target is empty");
  }
  if (options.max_attempts < 1) {
    return FD_STATUS(StatusCode::kInvalidArgument, "gRPC job client: max_attempts must be >= 1");
  }
  if (options.initial_backoff <= Duration(0) || options.max_backoff < options.initial_backoff) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "gRPC job client: backoff must be positive, initial <= max");
  }
  if (options.call_deadline <= Duration(0) || options.watch_deadline <= Duration(0) ||
      options.follow_grace < Duration(0)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "gRPC job client: deadlines must be positive, follow_grace >= 0");
  }
  return std::unique_ptr<JobClient>(std::make_unique<GrpcJobClient>(options));
}

Result<LoadReport> RunGrpcUnaryLoad(const GrpcUnaryLoadOptions& options,
                                    ArrivalSchedule* schedule) {
  if (options.target.empty()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "gRPC load: target is empty");
  }
  FD_RETURN_IF_ERROR(CheckLoadTarget(options.target, HostOf(options.target), options.allow_remote));
  if (!options.method.starts_with('/') || options.method.find('/', 1) == std::string::npos) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "gRPC load: method must be a full name like /package.Service/Method, got '" +
                         options.method + "'");
  }
  if (options.concurrency < 1 || options.connections < 1) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "gRPC load: concurrency and connections must be >= 1");
  }
  if (options.duration <= Duration(0) || options.timeout <= Duration(0)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "gRPC load: duration and timeout must be positive");
  }
  UnaryLoad load(options, schedule);
  return load.Run();
}

}  // namespace firedrill::workload
