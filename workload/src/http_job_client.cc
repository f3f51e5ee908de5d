#include "firedrill/workload/http_job_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "curl_global.h"

namespace firedrill::workload {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr char kShutDown[] = "client shut down";
// A poll returns at least this often, so a missed wakeup costs no more.
constexpr int kMaxPollMs = 1000;

using internal::InitCurl;

long Millis(Duration duration) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

// The "error" field of a JSON error body, or the body itself, cut short.
std::string ErrorText(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    return parsed["error"].get<std::string>();
  }
  std::string text = body.substr(0, 200);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// One job as the I/O thread carries it: first its submission, then its
// follow, on whichever easy handle is free at the time.
struct Request {
  enum class Stage { kSubmit, kFollow };
  Stage stage = Stage::kSubmit;
  std::string key;
  std::string body;
  std::string job_id;
  JobCallback callback;
  int attempts = 0;
  // Some attempt may have reached the pipeline without an answer coming
  // back: a failed submission's outcome is then unknown, not rejected.
  bool maybe_received = false;
  std::size_t body_offset = 0;  // the upload position of this attempt
  bool body_read = false;       // curl took body bytes during this attempt
  Duration next_backoff{0};
  bool unreachable = false;  // following: the last try got no usable answer
  MonotonicTime unreachable_since{};
  std::string response;
  char error[CURL_ERROR_SIZE] = {};
};

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  static_cast<Request*>(user)->response.append(data, size * count);
  return size * count;
}

size_t ReadBody(char* buffer, size_t size, size_t count, void* user) {
  auto* request = static_cast<Request*>(user);
  const size_t n = std::min(size * count, request->body.size() - request->body_offset);
  std::memcpy(buffer, request->body.data() + request->body_offset, n);
  request->body_offset += n;
  if (n > 0) request->body_read = true;
  return n;
}

// curl rewinds the body when it resends on a fresh connection by itself.
int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* request = static_cast<Request*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > request->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  request->body_offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

class HttpJobClient final : public JobClient {
 public:
  explicit HttpJobClient(const HttpJobClientOptions& options) : options_(options) {
    while (!options_.base_url.empty() && options_.base_url.back() == '/') {
      options_.base_url.pop_back();
    }
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      static_cast<long>(options_.max_connections));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.max_connections));
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
    json_headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    json_headers_ = curl_slist_append(json_headers_, "Expect:");
    thread_ = std::thread([this] { Loop(); });
    io_thread_ = thread_.get_id();
  }

  ~HttpJobClient() override {
    Shutdown();
    curl_multi_cleanup(multi_);
    curl_slist_free_all(json_headers_);
  }

  void Submit(const JobSubmission& job, JobCallback callback) override {
    auto request = std::make_unique<Request>();
    request->stage = Request::Stage::kSubmit;
    request->key = job.idempotency_key;
    request->body = JobRequestBody(job);
    request->callback = std::move(callback);
    Enqueue(std::move(request));
  }

  void Follow(const std::string& job_id, const std::string& key, JobCallback callback) override {
    auto request = std::make_unique<Request>();
    request->stage = Request::Stage::kFollow;
    request->job_id = job_id;
    request->key = key;
    request->callback = std::move(callback);
    Enqueue(std::move(request));
  }

  std::int64_t in_flight() const override { return in_flight_.load(); }

  void Shutdown() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    if (std::this_thread::get_id() == io_thread_) return;  // from a callback: it stops after
    std::lock_guard join_lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Enqueue(std::unique_ptr<Request> request) {
    in_flight_++;
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        incoming_.push_back(std::move(request));
        request = nullptr;
      }
    }
    if (request) {
      // No I/O thread any more: answer on the caller's thread.
      Abandon(*request);
      return;
    }
    curl_multi_wakeup(multi_);
  }

  void Loop() {
    std::vector<std::unique_ptr<Request>> fresh;
    while (true) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
        fresh.swap(incoming_);
      }
      for (auto& request : fresh) Start(std::move(request));
      fresh.clear();
      const MonotonicTime now = SteadyClock::now();
      while (!waiting_.empty() && waiting_.begin()->first <= now) {
        std::unique_ptr<Request> request = std::move(waiting_.begin()->second);
        waiting_.erase(waiting_.begin());
        Start(std::move(request));
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
        if (message->msg == CURLMSG_DONE) Finish(message->easy_handle, message->data.result);
      }
      StartReady();
      int timeout_ms = kMaxPollMs;
      if (!waiting_.empty()) {
        const auto until = waiting_.begin()->first - SteadyClock::now();
        timeout_ms =
            static_cast<int>(std::clamp<long>(Millis(until) + 1, 0, static_cast<long>(kMaxPollMs)));
      }
      curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
    }
    // Shutting down: everything still held gives up, then the handles go.
    for (auto& [easy, request] : active_) {
      curl_multi_remove_handle(multi_, easy);
      curl_easy_cleanup(easy);
      Abandon(*request);
    }
    active_.clear();
    for (auto& [when, request] : waiting_) Abandon(*request);
    waiting_.clear();
    for (auto* ready : {&ready_submits_, &ready_follows_}) {
      for (auto& request : *ready) Abandon(*request);
      ready->clear();
    }
    {
      std::lock_guard lock(mutex_);
      fresh.swap(incoming_);
    }
    for (auto& request : fresh) Abandon(*request);
    for (CURL* easy : idle_) curl_easy_cleanup(easy);
    idle_.clear();
  }

  bool AtConnectionLimit() const {
    return options_.http_version == HttpVersion::kHttp1_1 &&
           active_.size() >= static_cast<std::size_t>(options_.max_connections);
  }

  void StartReady() {
    while (!AtConnectionLimit() && !(ready_submits_.empty() && ready_follows_.empty())) {
      auto& ready = ready_submits_.empty() ? ready_follows_ : ready_submits_;
      std::unique_ptr<Request> request = std::move(ready.front());
      ready.pop_front();
      Start(std::move(request));
    }
  }

  void Start(std::unique_ptr<Request> request) {
    if (AtConnectionLimit()) {
      (request->stage == Request::Stage::kSubmit ? ready_submits_ : ready_follows_).push_back(std::move(request));
      return;
    }
    CURL* easy = nullptr;
    if (idle_.empty()) {
      easy = curl_easy_init();
    } else {
      easy = idle_.back();
      idle_.pop_back();
      curl_easy_reset(easy);  // keeps the handle's caches; connections live in the multi
    }
    Request& r = *request;
    r.response.clear();
    r.error[0] = '\0';
    std::string url;
    if (r.stage == Request::Stage::kSubmit) {
      ++r.attempts;
      r.body_offset = 0;
      r.body_read = false;
      url = options_.base_url + "/v1/jobs";
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      // The body is read through a callback, not POSTFIELDS, so a failed
      // attempt tells whether any of it left (and so whether the pipeline
      // could have taken the job).
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, ReadBody);
      curl_easy_setopt(easy, CURLOPT_READDATA, &r);
      curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, SeekBody);
      curl_easy_setopt(easy, CURLOPT_SEEKDATA, &r);
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, json_headers_);
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, Millis(options_.submit_timeout));
    } else {
      url = options_.base_url + "/v1/jobs/" + r.job_id +
            "?wait=" + std::to_string(Millis(options_.long_poll)) + "ms";
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                       Millis(options_.long_poll + std::chrono::seconds(15)));
    }
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r.error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Millis(options_.connect_timeout));
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &r);
    if (options_.http_version == HttpVersion::kHttp2) {
      const bool tls = options_.base_url.rfind("https://", 0) == 0;
      curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                       tls ? static_cast<long>(CURL_HTTP_VERSION_2TLS)
                           : static_cast<long>(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE));
      curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);  // share one connection, not race new ones
    } else {
      curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    }
    active_.emplace(easy, std::move(request));
    curl_multi_add_handle(multi_, easy);
  }

  void Finish(CURL* easy, CURLcode code) {
    auto found = active_.find(easy);
    if (found == active_.end()) return;
    std::unique_ptr<Request> request = std::move(found->second);
    active_.erase(found);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(multi_, easy);
    idle_.push_back(easy);
    // The code's text, not the error buffer's (which carries timings and
    // addresses), so reasons group in the ledger's counts.
    std::string transport_error;
    if (code != CURLE_OK) transport_error = curl_easy_strerror(code);
    if (request->stage == Request::Stage::kSubmit) {
      Submitted(std::move(request), transport_error, static_cast<int>(status));
    } else {
      Followed(std::move(request), transport_error, static_cast<int>(status));
    }
  }

  void Submitted(std::unique_ptr<Request> request, const std::string& transport_error, int status) {
    Request& r = *request;
    std::string why;
    if (!transport_error.empty()) {
      // Once body bytes have left, the pipeline may have committed the job.
      if (r.body_read) r.maybe_received = true;
      why = transport_error;
    } else if (status == 200 || status == 202) {
      const json body = json::parse(r.response, nullptr, false);
      if (body.is_object() && body.contains("id") && body["id"].is_number_integer()) {
        r.job_id = std::to_string(body["id"].get<std::int64_t>());
        r.stage = Request::Stage::kFollow;
        r.next_backoff = Duration::zero();
        Deliver(r, JobEvent::Kind::kAccepted, "", false);
        Start(std::move(request));
        return;
      }
      // Accepted, but which job is unreadable: the outcome is unknown.
      r.maybe_received = true;
      why = "HTTP " + std::to_string(status) + " without a job id: " + ErrorText(r.response);
    } else if (status == 429 || status == 502 || status == 503 || status == 504) {
      why = "HTTP " + std::to_string(status) + ": " + ErrorText(r.response);
    } else {
      // The pipeline answered and said no: final, whatever came before.
      Deliver(r, JobEvent::Kind::kRejected,
              "HTTP " + std::to_string(status) + ": " + ErrorText(r.response), true);
      return;
    }
    if (r.attempts < options_.max_attempts) {
      Retry(std::move(request));
      return;
    }
    // The attempts travel in the event; the reason stays the same for every
    // job that failed the same way.
    if (r.maybe_received) {
      Deliver(r, JobEvent::Kind::kLost, "outcome unknown: " + why, true);
    } else {
      Deliver(r, JobEvent::Kind::kRejected, why, true);
    }
  }

  void Followed(std::unique_ptr<Request> request, const std::string& transport_error, int status) {
    Request& r = *request;
    std::string why;
    if (!transport_error.empty()) {
      why = transport_error;
    } else if (status == 200) {
      const json body = json::parse(r.response, nullptr, false);
      const std::string state =
          body.is_object() && body.contains("state") && body["state"].is_string()
              ? body["state"].get<std::string>()
              : "";
      const std::string key = body.is_object() && body.contains("idempotency_key") &&
                                      body["idempotency_key"].is_string()
                                  ? body["idempotency_key"].get<std::string>()
                                  : "";
      if (!r.key.empty() && !key.empty() && key != r.key) {
        Deliver(r, JobEvent::Kind::kLost, AnotherJob(r.job_id, key), true);
        return;
      }
      if (state == "completed") {
        Completed(r, body);
        return;
      }
      if (state == "failed") {
        const std::string error = body.contains("error") && body["error"].is_string()
                                      ? body["error"].get<std::string>()
                                      : "failed";
        Deliver(r, JobEvent::Kind::kFailed, error, true);
        return;
      }
      if (!state.empty()) {
        // Queued or running when the wait ran out: ask again at once.
        r.unreachable = false;
        r.next_backoff = Duration::zero();
        Start(std::move(request));
        return;
      }
      why = "unreadable answer: " + r.response.substr(0, 200);
    } else if (status == 404) {
      Deliver(r, JobEvent::Kind::kLost, "job not found", true);
      return;
    } else if (status >= 500 || status == 429) {
      why = "HTTP " + std::to_string(status) + ": " + ErrorText(r.response);
    } else {
      Deliver(r, JobEvent::Kind::kLost,
              "HTTP " + std::to_string(status) + ": " + ErrorText(r.response), true);
      return;
    }
    const MonotonicTime now = SteadyClock::now();
    if (!r.unreachable) {
      r.unreachable = true;
      r.unreachable_since = now;
    }
    if (now - r.unreachable_since >= options_.follow_grace) {
      const auto seconds = std::chrono::duration<double>(now - r.unreachable_since).count();
      Deliver(r, JobEvent::Kind::kLost,
              "no answer for " + json(std::round(seconds * 10) / 10).dump() + "s: " + why, true);
      return;
    }
    Retry(std::move(request));
  }

  void Completed(Request& r, const json& body) {
    JobEvent event = Event(r, JobEvent::Kind::kCompleted, "");
    if (body.contains("result") && body["result"].is_object()) {
      const json& result = body["result"];
      if (result.contains("quality") && result["quality"].is_number()) {
        event.quality = result["quality"].get<double>();
      }
      if (result.contains("stage_seconds") && result["stage_seconds"].is_array()) {
        const json& stages = result["stage_seconds"];
        for (std::size_t i = 0; i < stages.size(); ++i) {
          if (stages[i].is_number()) {
            event.stage_seconds["stage" + std::to_string(i + 1)] = stages[i].get<double>();
          }
        }
      }
    }
    Call(r, event, true);
  }

  // Waits the current backoff (doubling up to the cap) inside the loop.
  void Retry(std::unique_ptr<Request> request) {
    Request& r = *request;
    r.next_backoff = r.next_backoff == Duration::zero()
                         ? options_.backoff
                         : std::min<Duration>(r.next_backoff * 2, options_.max_backoff);
    waiting_.emplace(SteadyClock::now() + r.next_backoff, std::move(request));
  }

  JobEvent Event(const Request& r, JobEvent::Kind kind, const std::string& reason) const {
    JobEvent event;
    event.kind = kind;
    event.job_id = r.job_id;
    event.reason = reason;
    event.attempts = r.attempts;
    event.at = options_.clock != nullptr ? options_.clock->Now() : SteadyClock::now();
    return event;
  }

  void Deliver(Request& r, JobEvent::Kind kind, const std::string& reason, bool last) {
    Call(r, Event(r, kind, reason), last);
  }

  // The count drops before the last callback, so whoever hears it sees it.
  void Call(Request& r, const JobEvent& event, bool last) {
    if (last) in_flight_--;
    if (r.callback) r.callback(event);
  }

  void Abandon(Request& r) { Deliver(r, JobEvent::Kind::kLost, kShutDown, true); }

  HttpJobClientOptions options_;
  CURLM* multi_ = nullptr;
  curl_slist* json_headers_ = nullptr;
  std::atomic<std::int64_t> in_flight_{0};

  std::mutex mutex_;  // guards incoming_ and stopping_
  std::vector<std::unique_ptr<Request>> incoming_;
  bool stopping_ = false;
  std::mutex join_mutex_;  // two threads shutting down at once join once
  std::thread thread_;
  std::thread::id io_thread_;  // read without join_mutex_, unlike thread_

  // The I/O thread's alone.
  std::map<CURL*, std::unique_ptr<Request>> active_;
  std::multimap<MonotonicTime, std::unique_ptr<Request>> waiting_;
  std::vector<CURL*> idle_;
  // HTTP/1.1 requests beyond max_connections wait here, not in libcurl,
  // whose timeouts would count the wait for a connection: submissions first,
  // since follows hold their connection for a whole long poll.
  std::deque<std::unique_ptr<Request>> ready_submits_;
  std::deque<std::unique_ptr<Request>> ready_follows_;
};

}  // namespace

std::string JobRequestBody(const JobSubmission& job) {
  json dataset;
  if (!job.shape.dataset.empty()) {
    dataset = {{"csv", job.shape.dataset}};
  } else {
    dataset = {{"samples", job.shape.samples},
               {"features", job.shape.features},
               {"informative", job.shape.informative},
               {"decoys", job.shape.decoys},
               {"noise", job.shape.noise},
               {"seed", job.dataset_seed}};
  }
  return json{{"idempotency_key", job.idempotency_key},
              {"mode", JobModeName(job.shape.mode)},
              {"dataset", dataset}}
      .dump();
}

Result<std::unique_ptr<JobClient>> MakeHttpJobClient(const HttpJobClientOptions& options) {
  const std::string& url = options.base_url;
  const bool http = url.rfind("http://", 0) == 0;
  const bool https = url.rfind("https://", 0) == 0;
  if ((!http && !https) || url.size() <= (http ? 7u : 8u)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "base_url: expected http://HOST:PORT or https://HOST:PORT, got '" + url + "'");
  }
  if (options.max_attempts < 1) {
    return FD_STATUS(StatusCode::kInvalidArgument, "max_attempts: must be at least 1");
  }
  if (options.backoff <= Duration::zero() || options.max_backoff < options.backoff) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "backoff: must be positive and no more than max_backoff");
  }
  if (options.follow_grace < Duration::zero()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "follow_grace: must not be negative");
  }
  if (options.long_poll < std::chrono::milliseconds(1) ||
      options.long_poll > std::chrono::minutes(1)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "long_poll: must be between 1ms and 1m (the pipeline's limit)");
  }
  if (options.connect_timeout <= Duration::zero() || options.submit_timeout <= Duration::zero()) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "connect_timeout and submit_timeout: must be positive");
  }
  if (options.max_connections < 1) {
    return FD_STATUS(StatusCode::kInvalidArgument, "max_connections: must be at least 1");
  }
  InitCurl();
  if (options.http_version == HttpVersion::kHttp2 &&
      (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) == 0) {
    return FD_STATUS(StatusCode::kUnimplemented, "this libcurl was built without HTTP/2");
  }
  return std::unique_ptr<JobClient>(new HttpJobClient(options));
}

}  // namespace firedrill::workload
