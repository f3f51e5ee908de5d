#include "firedrill/workload/curl_load.h"

#include <curl/curl.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <vector>

#include "curl_global.h"

namespace firedrill::workload {
namespace {

using Clock = std::chrono::steady_clock;

// One request slot: an easy handle reused for every request it carries.
struct Slot {
  CURL* easy = nullptr;
  Clock::time_point intended{};
  Clock::time_point sent{};
  char error[CURL_ERROR_SIZE] = {};
};

std::size_t DiscardBody(char*, std::size_t size, std::size_t count, void*) { return size * count; }


Result<std::string> HostOf(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), curl_url_cleanup);
  if (curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return FD_STATUS(StatusCode::kInvalidArgument, "url " + url + ": not a URL libcurl can read");
  }
  char* scheme = nullptr;
  char* host = nullptr;
  curl_url_get(parsed.get(), CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(parsed.get(), CURLUPART_HOST, &host, 0);
  const std::string scheme_text = scheme != nullptr ? scheme : "";
  std::string host_text = host != nullptr ? host : "";
  curl_free(scheme);
  curl_free(host);
  if (scheme_text != "http" && scheme_text != "https") {
    return FD_STATUS(StatusCode::kInvalidArgument, "url " + url + ": expected http:// or https://");
  }
  if (host_text.size() > 2 && host_text.front() == '[') host_text = host_text.substr(1, host_text.size() - 2);
  return host_text;
}

class CurlRun {
 public:
  CurlRun(const HttpLoadOptions& options, CurlHttpVersion version, std::unique_ptr<ArrivalSchedule> schedule)
      : options_(options), version_(version), schedule_(std::move(schedule)) {}

  ~CurlRun() {
    for (Slot& slot : slots_) {
      if (slot.easy != nullptr) {
        curl_multi_remove_handle(multi_, slot.easy);
        curl_easy_cleanup(slot.easy);
      }
    }
    if (headers_ != nullptr) curl_slist_free_all(headers_);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
  }

  Result<LoadReport> Run() {
    FD_RETURN_IF_ERROR(Setup());
    const double cpu_start = ThreadCpuSeconds();
    start_ = Clock::now();
    const Clock::time_point deadline = start_ + options_.duration;
    if (schedule_) next_due_ = schedule_->Next();
    bool sending = true;
    Clock::time_point last_progress = start_;
    std::int64_t last_answered = 0;
    for (;;) {
      Clock::time_point now = Clock::now();
      const bool stopped = options_.stop != nullptr && options_.stop->load();
      if (sending && !stopped) SendDue(now);
      if (sending && (now >= deadline || stopped)) sending = false;
      int running = 0;
      curl_multi_perform(multi_, &running);
      now = Clock::now();
      Collect(now, sending);
      if (options_.progress && now - last_progress >= options_.progress_interval) {
        Progress(now, last_progress, last_answered);
        last_progress = now;
        last_answered = report_.answered;
      }
      if (!sending && ((in_flight_ == 0 && waiting_.empty()) || stopped || now >= deadline + options_.timeout)) break;
      Clock::time_point wake = now + std::chrono::milliseconds(10);
      if (sending && next_due_) wake = std::min(wake, start_ + *next_due_);
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
      curl_multi_poll(multi_, nullptr, 0, static_cast<int>(std::max<std::int64_t>(wait, 0)), nullptr);
    }
    report_.errors += in_flight_;
    if (in_flight_ > 0) report_.error_kinds["unanswered when the run ended"] += in_flight_;
    report_.unsent += static_cast<std::int64_t>(waiting_.size());
    report_.cpu_seconds = ThreadCpuSeconds() - cpu_start;
    const Clock::time_point end = std::max(last_answer_, std::min(Clock::now(), start_ + options_.duration));
    report_.elapsed = std::chrono::duration_cast<Duration>(end - start_);
    report_.Judge();
    return std::move(report_);
  }

 private:
  Status Setup() {
    internal::InitCurl();
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return FD_STATUS(StatusCode::kInternal, "curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options_.connections));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.connections));
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
    for (const std::string& header : options_.headers) headers_ = curl_slist_append(headers_, header.c_str());
    slots_.resize(static_cast<std::size_t>(options_.connections));
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      slot.easy = curl_easy_init();
      if (slot.easy == nullptr) return FD_STATUS(StatusCode::kInternal, "curl_easy_init failed");
      CURL* easy = slot.easy;
      curl_easy_setopt(easy, CURLOPT_URL, options_.url.c_str());
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, options_.method.c_str());
      if (!options_.body.empty()) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, options_.body.data());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(options_.body.size()));
      } else if (options_.method == "HEAD") {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
      }
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_);
      curl_easy_setopt(easy, CURLOPT_USERAGENT, "firedrill");
      curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, DiscardBody);
      curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, slot.error);
      curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout).count()));
      curl_easy_setopt(easy, CURLOPT_PRIVATE, &slot);
      if (!options_.tls_ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.tls_ca_file.c_str());
      if (version_ == CurlHttpVersion::kHttp2) {
        const bool tls = options_.url.rfind("https://", 0) == 0;
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                         tls ? static_cast<long>(CURL_HTTP_VERSION_2TLS)
                             : static_cast<long>(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE));
        curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);  // share a connection as streams
      } else {
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
      }
      idle_.push_back(i);
    }
    return Status();
  }

  void SendDue(Clock::time_point now) {
    if (!schedule_) {
      while (!idle_.empty()) Send(now, now);
      return;
    }
    while (next_due_ && start_ + *next_due_ <= now) {
      const Clock::time_point intended = start_ + *next_due_;
      report_.schedule_lag.Record(std::chrono::duration_cast<Duration>(now - intended));
      ++report_.scheduled;
      if (!idle_.empty()) {
        Send(intended, now);
      } else {
        waiting_.push_back(intended);
        ++report_.waited_for_connection;
      }
      next_due_ = schedule_->Next();
    }
  }

  void Send(Clock::time_point intended, Clock::time_point now) {
    Slot& slot = slots_[idle_.back()];
    idle_.pop_back();
    slot.intended = intended;
    slot.sent = now;
    slot.error[0] = '\0';
    ++report_.sent;
    if (!schedule_) ++report_.scheduled;
    ++in_flight_;
    curl_multi_add_handle(multi_, slot.easy);
  }

  void Collect(Clock::time_point now, bool sending) {
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      CURL* easy = message->easy_handle;
      Slot* slot = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&slot));
      curl_multi_remove_handle(multi_, easy);
      --in_flight_;
      if (message->data.result == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        const auto corrected = std::chrono::duration_cast<Duration>(now - slot->intended);
        report_.corrected.Record(corrected);
        report_.uncorrected.Record(std::chrono::duration_cast<Duration>(now - slot->sent));
        interval_.Record(corrected);
        ++report_.answered;
        ++report_.statuses[std::to_string(code)];
        long version = 0;
        curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
        ++report_.protocols[version == CURL_HTTP_VERSION_2_0   ? "HTTP/2"
                            : version == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1"
                            : version == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
                                                               : "other"];
        if (code >= 400) ++report_.failed;
        last_answer_ = now;
      } else {
        ++report_.errors;
        ++report_.error_kinds[slot->error[0] != '\0' ? slot->error : curl_easy_strerror(message->data.result)];
      }
      idle_.push_back(static_cast<std::size_t>(slot - slots_.data()));
      if (!waiting_.empty()) {
        const Clock::time_point intended = waiting_.front();
        waiting_.pop_front();
        Send(intended, now);
      } else if (!schedule_ && sending) {
        Send(now, now);
      }
    }
  }

  void Progress(Clock::time_point now, Clock::time_point last, std::int64_t last_answered) {
    LoadProgress progress;
    progress.elapsed = std::chrono::duration_cast<Duration>(now - start_);
    progress.sent = report_.sent;
    progress.answered = report_.answered;
    progress.errors = report_.failed + report_.errors;
    progress.in_flight = in_flight_;
    progress.waiting = static_cast<std::int64_t>(waiting_.size());
    const double seconds = std::chrono::duration<double>(now - last).count();
    progress.rate = seconds > 0 ? static_cast<double>(report_.answered - last_answered) / seconds : 0;
    progress.p50_ns = interval_.ValueAtQuantile(0.5);
    progress.p99_ns = interval_.ValueAtQuantile(0.99);
    interval_.Reset();
    options_.progress(progress);
  }

  const HttpLoadOptions& options_;
  CurlHttpVersion version_;
  std::unique_ptr<ArrivalSchedule> schedule_;
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::vector<Slot> slots_;
  std::vector<std::size_t> idle_;
  std::deque<Clock::time_point> waiting_;
  std::optional<Duration> next_due_;
  std::int64_t in_flight_ = 0;
  Clock::time_point start_{};
  Clock::time_point last_answer_{};
  LatencyHistogram interval_;
  LoadReport report_;
};

}  // namespace

Result<LoadReport> RunCurlLoad(const HttpLoadOptions& options, CurlHttpVersion version) {
  FD_ASSIGN_OR_RETURN(const std::string host, HostOf(options.url));
  FD_RETURN_IF_ERROR(CheckLoadTarget(options.url, host, options.allow_remote));
  if (options.connections < 1) return FD_STATUS(StatusCode::kInvalidArgument, "need at least one connection");
  if (options.duration <= Duration::zero()) return FD_STATUS(StatusCode::kInvalidArgument, "duration must be positive");
  std::unique_ptr<ArrivalSchedule> schedule;
  if (options.schedule) {
    FD_ASSIGN_OR_RETURN(schedule, options.schedule(0, 1));
  }
  CurlRun run(options, version, std::move(schedule));
  FD_ASSIGN_OR_RETURN(LoadReport report, run.Run());
  report.target = options.url;
  report.transport = version == CurlHttpVersion::kHttp2 ? "curl-h2" : "curl-http1.1";
  report.arrival = options.schedule ? options.arrival_description
                                    : "closed loop, " + std::to_string(options.connections) + " in flight";
  report.threads = 1;
  report.connections = options.connections;
  report.offered_rate = options.schedule ? options.offered_rate : 0;
  return report;
}

}  // namespace firedrill::workload
