#include "firedrill/workload/http_load.h"

#include "http_response_parser.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace firedrill::workload {
namespace {

using internal::EqualsIgnoringCase;
using internal::ResponseParser;

using Clock = std::chrono::steady_clock;

struct Connection {
  int fd = -1;
  bool connecting = false;
  bool busy = false;
  bool writing = false;  // a request only partly written; waiting for EPOLLOUT
  std::size_t written = 0;
  Clock::time_point intended{};
  Clock::time_point sent{};
  Clock::time_point retry_at{};  // after a failed connect, when to try again
  ResponseParser parser;
};

// What one thread measured; merged into the report at the end.
struct ThreadResult {
  LatencyHistogram corrected;
  LatencyHistogram uncorrected;
  LatencyHistogram schedule_lag;
  std::array<std::int64_t, 600> statuses{};
  std::map<std::string, std::int64_t> error_kinds;
  std::int64_t scheduled = 0;
  std::int64_t sent = 0;
  std::int64_t answered = 0;
  std::int64_t failed = 0;
  std::int64_t errors = 0;
  std::int64_t unsent = 0;
  std::int64_t waited_for_connection = 0;
  Clock::time_point last_answer{};
  double cpu_seconds = 0;
  Status status;
};

// Shared between a worker and the progress reporter.
struct LiveCounters {
  std::atomic<std::int64_t> sent{0};
  std::atomic<std::int64_t> answered{0};
  std::atomic<std::int64_t> errors{0};
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> waiting{0};
  std::mutex interval_mutex;
  LatencyHistogram interval;  // corrected latency since the reporter last looked
};


class Worker {
 public:
  Worker(const HttpLoadOptions& options, const std::string& request, const sockaddr_storage& address,
         socklen_t address_length, int connections, std::unique_ptr<ArrivalSchedule> schedule,
         LiveCounters& live)
      : options_(options),
        request_(request),
        address_(address),
        address_length_(address_length),
        connections_(static_cast<std::size_t>(connections)),
        schedule_(std::move(schedule)),
        live_(live) {}

  ThreadResult Run(Clock::time_point start) {
    const double cpu_start = ThreadCpuSeconds();
    // Sends are due every few microseconds at high rates; the default 50 us
    // timer slack would show up as schedule lag.
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) {
      result_.status = FD_STATUS(StatusCode::kInternal, std::string("epoll_create1: ") + std::strerror(errno));
      return std::move(result_);
    }
    start_ = start;
    deadline_ = start + options_.duration;
    for (std::size_t i = 0; i < connections_.size(); ++i) Connect(i, start);
    if (schedule_) next_due_ = schedule_->Next();
    Loop();
    for (Connection& connection : connections_) {
      if (connection.fd >= 0) close(connection.fd);
    }
    close(epoll_);
    result_.cpu_seconds = ThreadCpuSeconds() - cpu_start;
    return std::move(result_);
  }

 private:
  bool closed_loop() const { return schedule_ == nullptr; }

  void Loop() {
    std::array<epoll_event, 256> events;
    bool sending = true;
    Clock::time_point next_sweep = start_;
    for (;;) {
      Clock::time_point now = Clock::now();
      const bool stopped = options_.stop != nullptr && options_.stop->load();
      // Every scheduled send falls before the deadline, so hand out what is
      // due before deciding the run is over: a late wake-up must not drop them.
      if (sending && !stopped) SendDue(now);
      if (sending && (now >= deadline_ || stopped)) sending = false;
      if (now >= next_sweep) {
        Sweep(now, sending);
        next_sweep = now + std::chrono::milliseconds(5);
      }
      // After the deadline, sends still waiting for a connection go out as
      // connections free up, for up to one timeout; a stop ends at once.
      if (!sending && ((in_flight_ == 0 && waiting_.empty()) || stopped || now >= deadline_ + options_.timeout)) {
        break;
      }
      // Sleep until the next send is due, or the next sweep.
      Clock::time_point wake = next_sweep;
      if (sending && next_due_) wake = std::min(wake, start_ + *next_due_);
      if (sending) wake = std::min(wake, deadline_);
      const auto wait = std::max<Clock::duration>(wake - now, Clock::duration::zero());
      timespec timeout{static_cast<time_t>(wait.count() / 1'000'000'000),
                       static_cast<long>(wait.count() % 1'000'000'000)};
      int ready = -1;
      if (have_pwait2_) {
        ready = epoll_pwait2(epoll_, events.data(), static_cast<int>(events.size()), &timeout, nullptr);
        if (ready < 0 && errno == ENOSYS) have_pwait2_ = false;  // before Linux 5.11
      }
      if (!have_pwait2_) {
        // Whole milliseconds, rounded up so the loop never spins early.
        const auto milliseconds = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
        ready = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), static_cast<int>(milliseconds));
      }
      if (ready <= 0) continue;
      now = Clock::now();
      std::lock_guard lock(live_.interval_mutex);
      for (int i = 0; i < ready; ++i) {
        const std::size_t index = events[static_cast<std::size_t>(i)].data.u64;
        const std::uint32_t flags = events[static_cast<std::size_t>(i)].events;
        Connection& connection = connections_[index];
        if (connection.fd < 0) continue;
        if (connection.connecting) {
          FinishConnect(index, now, sending);
        } else {
          const int fd = connection.fd;
          if ((flags & EPOLLOUT) && connection.writing) WriteRest(index, now, sending);
          // A failed write may have replaced the connection: these flags
          // were the old socket's.
          if (connection.fd == fd && (flags & (EPOLLIN | EPOLLHUP | EPOLLERR))) Read(index, now, sending);
        }
      }
    }
    // Whatever is still out when the run ends was never answered, and sends
    // that never went out count as unsent, not as latency nobody measured.
    for (Connection& connection : connections_) {
      if (connection.busy) Error("unanswered when the run ended");
    }
    result_.unsent += static_cast<std::int64_t>(waiting_.size());
    waiting_.clear();
  }

  // Hands every due send to an idle connection, or queues it.
  void SendDue(Clock::time_point now) {
    if (closed_loop()) {
      while (!idle_.empty()) Send(PopIdle(), now, now);
      return;
    }
    while (next_due_ && start_ + *next_due_ <= now) {
      const Clock::time_point intended = start_ + *next_due_;
      result_.schedule_lag.Record(std::chrono::duration_cast<Duration>(now - intended));
      ++result_.scheduled;
      if (!idle_.empty()) {
        Send(PopIdle(), intended, now);
      } else {
        waiting_.push_back(intended);
        ++result_.waited_for_connection;
        live_.waiting.store(static_cast<std::int64_t>(waiting_.size()), std::memory_order_relaxed);
      }
      next_due_ = schedule_->Next();
    }
  }

  std::size_t PopIdle() {
    const std::size_t index = idle_.back();
    idle_.pop_back();
    return index;
  }

  // A connection is free: give it the oldest waiting send, a new one in
  // closed loop, or park it.
  void Released(std::size_t index, Clock::time_point now, bool sending) {
    if (!waiting_.empty()) {
      const Clock::time_point intended = waiting_.front();
      waiting_.pop_front();
      live_.waiting.store(static_cast<std::int64_t>(waiting_.size()), std::memory_order_relaxed);
      Send(index, intended, now);
    } else if (closed_loop() && sending) {
      Send(index, now, now);
    } else {
      idle_.push_back(index);
    }
  }

  void Send(std::size_t index, Clock::time_point intended, Clock::time_point now) {
    Connection& connection = connections_[index];
    connection.busy = true;
    connection.intended = intended;
    connection.sent = now;
    connection.written = 0;
    ++result_.sent;
    ++in_flight_;
    live_.sent.fetch_add(1, std::memory_order_relaxed);
    live_.in_flight.fetch_add(1, std::memory_order_relaxed);
    WriteRest(index, now, true);
  }

  void WriteRest(std::size_t index, Clock::time_point now, bool sending) {
    Connection& connection = connections_[index];
    while (connection.written < request_.size()) {
      const ssize_t wrote = send(connection.fd, request_.data() + connection.written,
                                 request_.size() - connection.written, MSG_NOSIGNAL);
      if (wrote > 0) {
        connection.written += static_cast<std::size_t>(wrote);
        continue;
      }
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!connection.writing) Watch(index, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        connection.writing = true;
        return;
      }
      Broken(index, now, std::string("send: ") + std::strerror(errno), sending);
      return;
    }
    if (connection.writing) {
      connection.writing = false;
      Watch(index, EPOLLIN, EPOLL_CTL_MOD);
    }
  }

  void Read(std::size_t index, Clock::time_point now, bool sending) {
    Connection& connection = connections_[index];
    for (;;) {
      const ssize_t got = recv(connection.fd, buffer_.data(), buffer_.size(), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (got <= 0) {
        // The server closed: a body that runs to the close is now complete.
        if (connection.busy && connection.parser.FinishAtClose()) {
          Answered(index, now);
          Reconnect(index, now, sending);
        } else {
          Broken(index, now, got == 0 ? "connection closed by the server" : std::string("recv: ") + std::strerror(errno),
                 sending);
        }
        return;
      }
      std::size_t at = 0;
      const auto size = static_cast<std::size_t>(got);
      while (at < size) {
        if (!connection.busy) {
          Broken(index, now, "data from the server with no request out", sending);
          return;
        }
        std::size_t consumed = 0;
        const ResponseParser::Step step = connection.parser.Feed(buffer_.data() + at, size - at, &consumed);
        at += consumed;
        if (step == ResponseParser::Step::kError) {
          Broken(index, now, "bad response: " + connection.parser.error(), sending);
          return;
        }
        if (step == ResponseParser::Step::kNeedMore) break;
        const bool close_after = connection.parser.close_after();
        Answered(index, now);
        if (close_after) {
          Reconnect(index, now, sending);
          return;
        }
        Released(index, now, sending);
      }
      if (size < buffer_.size()) return;
    }
  }

  void Answered(std::size_t index, Clock::time_point now) {
    Connection& connection = connections_[index];
    const int status = connection.parser.status();
    const auto corrected = std::chrono::duration_cast<Duration>(now - connection.intended);
    result_.corrected.Record(corrected);
    result_.uncorrected.Record(std::chrono::duration_cast<Duration>(now - connection.sent));
    live_.interval.Record(corrected);
    ++result_.statuses[static_cast<std::size_t>(status)];
    ++result_.answered;
    if (status >= 400) {
      ++result_.failed;
      live_.errors.fetch_add(1, std::memory_order_relaxed);
    }
    result_.last_answer = now;
    connection.busy = false;
    connection.parser.Reset();
    --in_flight_;
    live_.answered.fetch_add(1, std::memory_order_relaxed);
    live_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  void Error(const std::string& kind) {
    ++result_.errors;
    ++result_.error_kinds[kind];
    live_.errors.fetch_add(1, std::memory_order_relaxed);
  }

  // The connection failed: its request (if any) is an error, and a new
  // connection takes its place.
  void Broken(std::size_t index, Clock::time_point now, const std::string& why, bool sending) {
    Connection& connection = connections_[index];
    if (connection.busy) {
      Error(why);
      connection.busy = false;
      --in_flight_;
      live_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
    Reconnect(index, now, sending);
  }

  void Reconnect(std::size_t index, Clock::time_point now, bool sending) {
    Connection& connection = connections_[index];
    if (connection.fd >= 0) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, connection.fd, nullptr);
      close(connection.fd);
      connection.fd = -1;
    }
    idle_.erase(std::remove(idle_.begin(), idle_.end(), index), idle_.end());
    if (sending || !waiting_.empty()) Connect(index, now);
  }

  void Connect(std::size_t index, Clock::time_point now) {
    Connection& connection = connections_[index];
    connection.parser.Reset();
    connection.busy = false;
    connection.writing = false;
    connection.fd = socket(address_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connection.fd < 0) {
      ConnectFailed(index, now, std::string("socket: ") + std::strerror(errno));
      return;
    }
    const int one = 1;
    setsockopt(connection.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc = connect(connection.fd, reinterpret_cast<const sockaddr*>(&address_), address_length_);
    if (rc != 0 && errno != EINPROGRESS) {
      ConnectFailed(index, now, std::string("connect: ") + std::strerror(errno));
      return;
    }
    connection.connecting = true;
    Watch(index, EPOLLOUT, EPOLL_CTL_ADD);
  }

  void FinishConnect(std::size_t index, Clock::time_point now, bool sending) {
    Connection& connection = connections_[index];
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      ConnectFailed(index, now, std::string("connect: ") + std::strerror(error));
      return;
    }
    connection.connecting = false;
    Watch(index, EPOLLIN, EPOLL_CTL_MOD);
    Released(index, now, sending);
  }

  // Counts the failure against the oldest waiting send (in closed loop, the
  // send the connection would have made), so a dead target shows as errors
  // rather than a silent queue, and retries the connection shortly.
  void ConnectFailed(std::size_t index, Clock::time_point now, const std::string& why) {
    Connection& connection = connections_[index];
    if (connection.fd >= 0) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, connection.fd, nullptr);
      close(connection.fd);
      connection.fd = -1;
    }
    connection.connecting = false;
    if (!waiting_.empty()) {
      waiting_.pop_front();
      live_.waiting.store(static_cast<std::int64_t>(waiting_.size()), std::memory_order_relaxed);
      ++result_.sent;
      Error(why);
    } else if (closed_loop() && now < deadline_) {
      ++result_.sent;
      Error(why);
    }
    connection.retry_at = now + std::chrono::milliseconds(10);
  }

  // Every few milliseconds: time out slow requests and retry failed connects.
  void Sweep(Clock::time_point now, bool sending) {
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      Connection& connection = connections_[i];
      if (connection.fd < 0) {
        if ((sending || !waiting_.empty()) && now >= connection.retry_at) Connect(i, now);
      } else if (connection.busy && now - connection.sent > options_.timeout) {
        Broken(i, now, "timeout", sending);
      }
    }
  }

  void Watch(std::size_t index, std::uint32_t events, int operation) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = index;
    epoll_ctl(epoll_, operation, connections_[index].fd, &event);
  }

  const HttpLoadOptions& options_;
  const std::string& request_;
  const sockaddr_storage& address_;
  socklen_t address_length_;
  std::vector<Connection> connections_;
  std::unique_ptr<ArrivalSchedule> schedule_;
  LiveCounters& live_;
  ThreadResult result_;
  int epoll_ = -1;
  Clock::time_point start_{};
  Clock::time_point deadline_{};
  std::optional<Duration> next_due_;
  std::vector<std::size_t> idle_;
  std::deque<Clock::time_point> waiting_;  // due sends with no free connection
  std::int64_t in_flight_ = 0;
  bool have_pwait2_ = true;
  std::array<char, 64 * 1024> buffer_{};
};

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    if (url.substr(0, 8) == "https://") {
      return FD_STATUS(StatusCode::kInvalidArgument, "url " + std::string(url) + ": https is not supported by the native HTTP/1.1 client");
    }
    return FD_STATUS(StatusCode::kInvalidArgument, "url " + std::string(url) + ": expected http://host[:port][/path]");
  }
  std::string_view rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  HttpUrl parsed;
  parsed.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (parsed.target.front() == '?') parsed.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) {
    return FD_STATUS(StatusCode::kInvalidArgument, "url " + std::string(url) + ": user information is not supported");
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return FD_STATUS(StatusCode::kInvalidArgument, "url " + std::string(url) + ": unclosed [ in host");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return FD_STATUS(StatusCode::kInvalidArgument, "url " + std::string(url) + ": expected :port after ]");
      port = authority.substr(close + 2);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return FD_STATUS(StatusCode::kInvalidArgument, "url " + std::string(url) + ": no host");
  parsed.host = std::string(host);
  if (!port.empty()) {
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), parsed.port);
    if (error != std::errc() || end != port.data() + port.size() || parsed.port < 1 || parsed.port > 65535) {
      return FD_STATUS(StatusCode::kInvalidArgument, "url " + std::string(url) + ": port must be 1 to 65535, got \"" + std::string(port) +
                             "\"");
    }
  }
  return parsed;
}


Result<LoadReport> RunHttpLoad(const HttpLoadOptions& options) {
  FD_ASSIGN_OR_RETURN(const HttpUrl url, ParseHttpUrl(options.url));
  FD_RETURN_IF_ERROR(CheckLoadTarget(options.url, url.host, options.allow_remote));
  if (options.threads < 1 || options.connections < options.threads) {
    return FD_STATUS(StatusCode::kInvalidArgument, "need at least one thread and one connection per thread, got " +
                           std::to_string(options.threads) + " threads and " +
                           std::to_string(options.connections) + " connections");
  }
  if (options.duration <= Duration::zero()) return FD_STATUS(StatusCode::kInvalidArgument, "duration must be positive");

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(url.port);
  if (const int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return FD_STATUS(StatusCode::kInvalidArgument, "url " + options.url + ": cannot resolve " + url.host + ": " + gai_strerror(rc));
  }
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  const auto address_length = static_cast<socklen_t>(found->ai_addrlen);
  freeaddrinfo(found);
  if (!options.allow_remote) {
    // The name resolved; make sure it resolved to loopback ("localhost").
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = address.ss_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&address)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr);
    inet_ntop(address.ss_family, raw, text, sizeof text);
    if (!IsLoopbackHost(text)) {
      return FD_STATUS(StatusCode::kInvalidArgument, "url " + options.url + ": " + url.host + " resolves to " + text +
                             ", not a loopback address (--allow-remote to send there)");
    }
  }

  // The request is the same bytes every time: built once, never copied.
  std::string request = options.method + " " + url.target + " HTTP/1.1\r\nHost: " + url.host;
  if (url.port != 80) request += ":" + port;
  request += "\r\nUser-Agent: firedrill\r\n";
  bool has_length = false;
  for (const std::string& header : options.headers) {
    if (header.find(':') == std::string::npos || header.find_first_of("\r\n") != std::string::npos) {
      return FD_STATUS(StatusCode::kInvalidArgument, "header \"" + header + "\": expected Name: value on one line");
    }
    has_length = has_length || EqualsIgnoringCase(header.substr(0, header.find(':')), "content-length");
    request += header + "\r\n";
  }
  if (!options.body.empty() && !has_length) request += "Content-Length: " + std::to_string(options.body.size()) + "\r\n";
  request += "\r\n" + options.body;

  std::vector<std::unique_ptr<LiveCounters>> live;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options.threads; ++i) {
    std::unique_ptr<ArrivalSchedule> schedule;
    if (options.schedule) {
      FD_ASSIGN_OR_RETURN(schedule, options.schedule(i, options.threads));
    }
    const int connections = options.connections / options.threads + (i < options.connections % options.threads ? 1 : 0);
    live.push_back(std::make_unique<LiveCounters>());
    workers.push_back(std::make_unique<Worker>(options, request, address, address_length, connections,
                                               std::move(schedule), *live.back()));
  }

  // Every thread measures from one start, a moment ahead so all are ready.
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(2);
  std::vector<ThreadResult> results(workers.size());
  std::vector<std::thread> threads;
  std::atomic<int> running{static_cast<int>(workers.size())};
  for (std::size_t i = 0; i < workers.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = workers[i]->Run(start);
      running.fetch_sub(1);
    });
  }
  LatencyHistogram interval;
  Clock::time_point last = start;
  std::int64_t last_answered = 0;
  while (running.load() > 0) {
    // Sleep in short steps so the end of the run is noticed promptly.
    const Clock::time_point next = last + options.progress_interval;
    while (running.load() > 0 && Clock::now() < next) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const Clock::time_point now = Clock::now();
    if (!options.progress || running.load() == 0) {
      last = now;
      continue;
    }
    LoadProgress progress;
    progress.elapsed = std::chrono::duration_cast<Duration>(now - start);
    interval.Reset();
    for (auto& counters : live) {
      progress.sent += counters->sent.load(std::memory_order_relaxed);
      progress.answered += counters->answered.load(std::memory_order_relaxed);
      progress.errors += counters->errors.load(std::memory_order_relaxed);
      progress.in_flight += counters->in_flight.load(std::memory_order_relaxed);
      progress.waiting += counters->waiting.load(std::memory_order_relaxed);
      std::lock_guard lock(counters->interval_mutex);
      (void)interval.Merge(counters->interval);
      counters->interval.Reset();
    }
    const double seconds = std::chrono::duration<double>(now - last).count();
    progress.rate = seconds > 0 ? static_cast<double>(progress.answered - last_answered) / seconds : 0;
    progress.p50_ns = interval.ValueAtQuantile(0.5);
    progress.p99_ns = interval.ValueAtQuantile(0.99);
    last = now;
    last_answered = progress.answered;
    options.progress(progress);
  }
  for (std::thread& thread : threads) thread.join();

  LoadReport report;
  report.target = options.url;
  report.transport = "http1-native";
  report.arrival = options.schedule ? options.arrival_description
                                    : "closed loop, " + std::to_string(options.connections) + " connections";
  report.threads = options.threads;
  report.connections = options.connections;
  report.offered_rate = options.schedule ? options.offered_rate : 0;
  Clock::time_point end = start;
  for (ThreadResult& result : results) {
    if (!result.status.ok()) return result.status;
    (void)report.corrected.Merge(result.corrected);
    (void)report.uncorrected.Merge(result.uncorrected);
    (void)report.schedule_lag.Merge(result.schedule_lag);
    for (std::size_t code = 0; code < result.statuses.size(); ++code) {
      if (result.statuses[code] > 0) report.statuses[std::to_string(code)] += result.statuses[code];
    }
    for (const auto& [kind, count] : result.error_kinds) report.error_kinds[kind] += count;
    report.scheduled += options.schedule ? result.scheduled : result.sent;
    report.sent += result.sent;
    report.answered += result.answered;
    report.failed += result.failed;
    report.errors += result.errors;
    report.unsent += result.unsent;
    report.waited_for_connection += result.waited_for_connection;
    report.cpu_seconds += result.cpu_seconds;
    end = std::max(end, result.last_answer);
  }
  // A run measures from its start to its last answer, but never less than
  // the time it was asked to send for (a dead target answers nothing).
  end = std::max(end, std::min(Clock::now(), start + options.duration));
  report.elapsed = std::chrono::duration_cast<Duration>(end - start);
  report.Judge();
  return report;
}

}  // namespace firedrill::workload
