#include "firedrill/injectors/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace firedrill::injectors {

Status CheckNetworkFault(const NetworkFault& fault) {
  for (const auto& [name, share] : {std::pair{"share", fault.share}, {"reset", fault.reset}, {"blackhole", fault.blackhole}}) {
    if (!(share >= 0 && share <= 1)) {
      return FD_STATUS(StatusCode::kInvalidArgument, std::string("network: ") + name + " must be between 0 and 1");
    }
  }
  if (fault.reset + fault.blackhole > 1) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "network: reset and blackhole are shares of the same connections and add up to more than 1");
  }
  if (fault.latency < Duration::zero() || fault.jitter < Duration::zero()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "network: latency and jitter must not be negative");
  }
  if (fault.latency + fault.jitter > std::chrono::hours(1)) {
    return FD_STATUS(StatusCode::kInvalidArgument, "network: latency plus jitter over an hour is a blackhole; use blackhole");
  }
  return Status();
}

namespace {

using Steady = std::chrono::steady_clock;

constexpr std::size_t kReadSize = 64 * 1024;
// Bytes a direction may hold (delayed or throttled) before the proxy stops
// reading from its sender, which is how TCP's own back-pressure reaches it.
constexpr std::size_t kMaxQueued = 1 << 20;
constexpr std::uint64_t kListenTag = ~0ULL;
constexpr std::uint64_t kTimerTag = ~0ULL - 1;
constexpr std::uint64_t kWakeTag = ~0ULL - 2;

struct Chunk {
  Steady::time_point release;
  std::string bytes;
  std::size_t sent = 0;
};

// One way of a connection: bytes read from `from`, waiting to go to `to`.
struct Direction {
  std::deque<Chunk> queue;
  std::size_t queued = 0;
  bool read_eof = false;   // `from` finished sending
  bool shut = false;       // and `to` was told (shutdown SHUT_WR)
  bool blocked = false;    // `to` answered EAGAIN: wait for EPOLLOUT
  double tokens = 0;       // bandwidth cap's bucket
  Steady::time_point refilled{};
  Steady::time_point last_release{};
};

struct Connection {
  std::uint64_t id = 0;
  int client = -1;
  int service = -1;
  bool connected = false;  // the connect to the service completed
  Direction up;            // client -> service
  Direction down;          // service -> client
  bool affected = false;
  bool blackholed = false;
  std::uint32_t client_events = 0;
  std::uint32_t service_events = 0;
  bool client_watched = false;  // in the epoll set
  bool service_watched = false;
  std::optional<Steady::time_point> due_at;  // when it next has bytes to release, if it waits for time
};

void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger hard{1, 0};  // close sends RST instead of FIN
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close(fd);
}

Status Errno(const std::string& what) {
  return FD_STATUS(StatusCode::kUnavailable, "tcp proxy: " + what + ": " + std::strerror(errno));
}

Result<sockaddr_storage> Resolve(const std::string& host_port, socklen_t* length) {
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return FD_STATUS(StatusCode::kInvalidArgument, "tcp proxy: \"" + host_port + "\" is not host:port");
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), host_port.substr(colon + 1).c_str(), &hints, &found); rc != 0) {
    return FD_STATUS(StatusCode::kInvalidArgument, "tcp proxy: " + host_port + ": " + gai_strerror(rc));
  }
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  *length = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

}  // namespace

struct TcpProxy::Loop {
  Loop(Clock& drill_clock, std::uint64_t seed) : clock(drill_clock), random(seed) {}
  ~Loop() {
    for (auto& [id, connection] : connections) {
      close(connection->client);
      close(connection->service);
    }
    for (const int fd : {listen_fd, epoll_fd, timer_fd, wake_fd}) {
      if (fd >= 0) close(fd);
    }
  }

  Clock& clock;
  std::mt19937_64 random;  // the loop thread's only
  int listen_fd = -1;
  int epoll_fd = -1;
  int timer_fd = -1;
  int wake_fd = -1;
  sockaddr_storage upstream{};
  socklen_t upstream_length = 0;
  std::thread thread;

  // Set by callers, taken by the loop when woken.
  std::mutex mutex;
  std::optional<NetworkFault> fault;
  MonotonicTime lease_until{};
  std::uint64_t generation = 0;
  std::uint64_t fault_id = 0;  // the generation that set the fault in force
  bool stopping = false;

  // The loop's own copy of what it applies.
  std::optional<NetworkFault> applied;
  std::uint64_t applied_generation = 0;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections;
  // A wake-up pumps only the connections it concerns: those with socket
  // events or a new fault (touched), and those whose delayed bytes fell due,
  // so idle connections cost nothing.
  std::vector<std::uint64_t> touched;
  std::vector<std::uint64_t> pumping;  // this round's touched, its buffer kept
  std::set<std::pair<Steady::time_point, std::uint64_t>> due;
  std::uint64_t next_id = 0;
  std::optional<Steady::time_point> listen_resumes;  // set while out of descriptors

  std::atomic<std::int64_t> accepted{0}, open{0}, affected{0}, reset{0}, blackholed{0}, upstream_failures{0};
  std::atomic<std::int64_t> bytes_to_service{0}, bytes_to_client{0};

  void Wake() {
    const std::uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }

  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(random); }

  void Watch(Connection& connection, bool service_side) {
    // What each socket waits for: input while its direction has room and
    // is not blackholed; output while a send would block (or the connect
    // to the service is in progress); a blackholed socket, its peer giving
    // up.
    const bool hold = connection.blackholed;
    auto wanted = [&](const Direction& reading, const Direction& writing, bool connecting) {
      std::uint32_t events = 0;
      if (!reading.read_eof && reading.queued < kMaxQueued && !hold && !connecting) events |= EPOLLIN;
      if (writing.blocked || connecting) events |= EPOLLOUT;
      if (hold) events |= EPOLLRDHUP;
      return events;
    };
    const int fd = service_side ? connection.service : connection.client;
    const Direction& reading = service_side ? connection.down : connection.up;
    std::uint32_t& current = service_side ? connection.service_events : connection.client_events;
    bool& watched = service_side ? connection.service_watched : connection.client_watched;
    const std::uint32_t events = service_side ? wanted(connection.down, connection.up, !connection.connected)
                                              : wanted(connection.up, connection.down, false);
    // A socket with nothing left to read or wait for leaves the set: a hung-up
    // socket reports EPOLLHUP on every wait, whatever it asked for.
    if (events == 0 && reading.read_eof) {
      if (watched) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      watched = false;
      current = 0;
      return;
    }
    if (watched && events == current) return;
    epoll_event change{};
    change.events = events;
    change.data.u64 = (connection.id << 1) | (service_side ? 1 : 0);
    epoll_ctl(epoll_fd, watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &change);
    watched = true;
    current = events;
  }

  void Drop(std::uint64_t id, bool hard) {
    auto found = connections.find(id);
    if (found == connections.end()) return;
    Connection& connection = *found->second;
    if (hard) {
      CloseWithReset(connection.client);
      CloseWithReset(connection.service);
    } else {
      close(connection.client);
      close(connection.service);
    }
    if (connection.due_at) due.erase({*connection.due_at, id});
    connections.erase(found);
    open.fetch_sub(1);
  }

  // Draws whether the applied fault touches this connection, and how.
  // Returns false when it reset (and so dropped) the connection.
  bool Decide(Connection& connection) {
    connection.affected = false;
    connection.blackholed = false;
    if (!applied || Uniform() >= applied->share) return true;
    connection.affected = true;
    affected.fetch_add(1);
    const double draw = Uniform();
    if (draw < applied->reset) {
      reset.fetch_add(1);
      Drop(connection.id, true);
      return false;
    }
    if (draw < applied->reset + applied->blackhole) {
      connection.blackholed = true;
      blackholed.fetch_add(1);
    }
    return true;
  }

  void Apply(std::optional<NetworkFault> fault_now) {
    applied = std::move(fault_now);
    std::vector<std::uint64_t> ids;
    for (const auto& [id, connection] : connections) ids.push_back(id);
    std::sort(ids.begin(), ids.end());  // a fixed order, so a seed repeats
    for (const std::uint64_t id : ids) {
      Connection& connection = *connections.at(id);
      if (Decide(connection)) {
        Watch(connection, false);
        Watch(connection, true);
        touched.push_back(id);  // blackholed bytes may go now, or a cap apply
      }
    }
  }

  void PauseListening() {
    epoll_event rest{};
    rest.data.u64 = kListenTag;
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &rest);
    listen_resumes = Steady::now() + std::chrono::milliseconds(100);
  }
  // Listens again once the rest is over; otherwise says when to wake for it.
  void ResumeListening(std::optional<Steady::time_point>* next) {
    if (!listen_resumes) return;
    if (Steady::now() < *listen_resumes) {
      if (!*next || *listen_resumes < **next) *next = listen_resumes;
      return;
    }
    epoll_event listen_again{};
    listen_again.events = EPOLLIN;
    listen_again.data.u64 = kListenTag;
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &listen_again);
    listen_resumes.reset();
  }

  // Takes up a fault set, cleared or lapsed since the last look; false when
  // the proxy is stopping.
  bool Refresh() {
    std::unique_lock lock(mutex);
    if (stopping) return false;
    // A lease that passed on the drill's clock ends the fault.
    if (fault && clock.Now() >= lease_until) {
      fault.reset();
      ++generation;
    }
    if (generation != applied_generation) {
      applied_generation = generation;
      std::optional<NetworkFault> now = fault;
      lock.unlock();
      Apply(std::move(now));
    }
    return true;
  }

  void Accept() {
    for (;;) {
      // A connection is drawn under the fault in force when it is taken.
      if (!Refresh()) return;
      const int client = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) {
        // Out of descriptors: the listener would stay readable and spin the
        // loop, so it rests a moment (new connections wait in the backlog).
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) PauseListening();
        return;  // EAGAIN, or a connection that went away
      }
      accepted.fetch_add(1);
      const int service = socket(upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      const int rc = service < 0 ? -1 : connect(service, reinterpret_cast<sockaddr*>(&upstream), upstream_length);
      if (rc != 0 && errno != EINPROGRESS) {
        upstream_failures.fetch_add(1);
        close(service);
        CloseWithReset(client);
        continue;
      }
      const int one = 1;
      setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(service, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto connection = std::make_unique<Connection>();
      connection->id = next_id++;
      connection->client = client;
      connection->service = service;
      connection->connected = rc == 0;
      Connection& added = *connection;
      connections.emplace(added.id, std::move(connection));
      open.fetch_add(1);
      if (Decide(added)) touched.push_back(added.id);  // its pump this round puts it in the epoll set
    }
  }

  // Reads what `fd` has into `direction`, stamped with its release time.
  // False when the connection must be dropped (reset by a peer).
  bool Read(Connection& connection, int fd, Direction& direction) {
    char buffer[kReadSize];
    while (direction.queued < kMaxQueued && !direction.read_eof) {
      const ssize_t got = recv(fd, buffer, sizeof buffer, 0);
      if (got == 0) {
        direction.read_eof = true;
        break;
      }
      if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        return false;
      }
      Steady::time_point release = Steady::now();
      if (connection.affected && applied) {
        Duration delay = applied->latency;
        if (applied->jitter > Duration::zero()) {
          delay += std::chrono::duration_cast<Duration>(applied->jitter * Uniform());
        }
        release += std::chrono::duration_cast<Steady::duration>(delay);
      }
      // TCP keeps order: jitter never lets a later chunk overtake.
      release = std::max(release, direction.last_release);
      direction.last_release = release;
      direction.queue.push_back(Chunk{release, std::string(buffer, static_cast<std::size_t>(got)), 0});
      direction.queued += static_cast<std::size_t>(got);
    }
    return true;
  }

  // Sends what is due from `direction` to `fd`; returns when it next has
  // something to do, or nullopt. False in `*ok` when the connection broke.
  std::optional<Steady::time_point> Deliver(Connection& connection, int fd, Direction& direction,
                                            std::atomic<std::int64_t>& counter, bool* ok) {
    if (connection.blackholed) return std::nullopt;
    const Steady::time_point now = Steady::now();
    const std::uint64_t rate = connection.affected && applied ? applied->bandwidth : 0;
    if (rate > 0) {
      // A bucket of 20 ms worth (at least one segment) lets bursts through
      // at the cap without sending in tiny pieces.
      const double burst = std::max(static_cast<double>(rate) / 50, 1460.0);
      const double seconds = std::chrono::duration<double>(now - direction.refilled).count();
      direction.tokens = std::min(burst, direction.tokens + seconds * static_cast<double>(rate));
      direction.refilled = now;
    }
    while (!direction.queue.empty() && !direction.blocked) {
      Chunk& head = direction.queue.front();
      if (head.release > now) return head.release;
      std::size_t size = head.bytes.size() - head.sent;
      if (rate > 0) {
        const auto allowed = static_cast<std::size_t>(direction.tokens);
        if (allowed == 0) {
          const double wait = (1 - direction.tokens) / static_cast<double>(rate);
          return now + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(wait));
        }
        size = std::min(size, allowed);
      }
      const ssize_t sent = send(fd, head.bytes.data() + head.sent, size, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN) {
          direction.blocked = true;
          break;
        }
        if (errno == EINTR) continue;
        *ok = false;
        return std::nullopt;
      }
      counter.fetch_add(sent);
      if (rate > 0) direction.tokens -= static_cast<double>(sent);
      head.sent += static_cast<std::size_t>(sent);
      direction.queued -= static_cast<std::size_t>(sent);
      if (head.sent == head.bytes.size()) direction.queue.pop_front();
    }
    if (direction.queue.empty() && direction.read_eof && !direction.shut) {
      shutdown(fd, SHUT_WR);
      direction.shut = true;
    }
    return std::nullopt;
  }

  // Moves what can move on one connection and books when it is next due;
  // false when it is finished.
  bool Pump(Connection& connection) {
    bool ok = true;
    std::optional<Steady::time_point> own;
    auto earliest = [&](std::optional<Steady::time_point> at) {
      if (at && (!own || *at < *own)) own = at;
    };
    if (connection.connected) earliest(Deliver(connection, connection.service, connection.up, bytes_to_service, &ok));
    if (ok) earliest(Deliver(connection, connection.client, connection.down, bytes_to_client, &ok));
    if (!ok) {
      Drop(connection.id, true);
      return false;
    }
    if (connection.up.shut && connection.down.shut) {
      Drop(connection.id, false);
      return false;
    }
    Watch(connection, false);
    Watch(connection, true);
    if (own != connection.due_at) {
      if (connection.due_at) due.erase({*connection.due_at, connection.id});
      if (own) due.insert({*own, connection.id});
      connection.due_at = own;
    }
    return true;
  }

  void OnEvent(std::uint64_t tag, std::uint32_t events) {
    const auto found = connections.find(tag >> 1);
    if (found == connections.end()) return;
    Connection& connection = *found->second;
    touched.push_back(connection.id);
    const bool service_side = (tag & 1) != 0;
    if (service_side && !connection.connected) {
      int error = 0;
      socklen_t length = sizeof error;
      getsockopt(connection.service, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        upstream_failures.fetch_add(1);
        Drop(connection.id, true);
        return;
      }
      connection.connected = true;
    }
    // A socket in error, or a blackholed one whose peer gave up, ends the
    // connection.
    if ((events & EPOLLERR) || ((events & (EPOLLHUP | EPOLLRDHUP)) && connection.blackholed)) {
      Drop(connection.id, true);
      return;
    }
    const int fd = service_side ? connection.service : connection.client;
    Direction& reading = service_side ? connection.down : connection.up;
    Direction& writing = service_side ? connection.up : connection.down;
    if (events & EPOLLOUT) writing.blocked = false;
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !connection.blackholed) {
      if (!Read(connection, fd, reading)) Drop(connection.id, true);
    }
  }

  void Run() {
    epoll_event events[64];
    for (;;) {
      const int ready = epoll_wait(epoll_fd, events, 64, -1);
      if (ready < 0 && errno != EINTR) return;
      if (!Refresh()) return;
      std::optional<Steady::time_point> next;
      {
        std::lock_guard lock(mutex);
        if (fault) {
          // Wake when the lease would lapse, as the clock now runs.
          next = Steady::now() + std::chrono::duration_cast<Steady::duration>(lease_until - clock.Now());
        }
      }
      for (int i = 0; i < ready; ++i) {
        const std::uint64_t tag = events[i].data.u64;
        if (tag == kListenTag) {
          Accept();
        } else if (tag == kTimerTag) {
          std::uint64_t expirations = 0;
          (void)!read(timer_fd, &expirations, sizeof expirations);
        } else if (tag == kWakeTag) {
          std::uint64_t count = 0;
          (void)!read(wake_fd, &count, sizeof count);
        } else {
          OnEvent(tag, events[i].events);
        }
      }
      const Steady::time_point now = Steady::now();
      while (!due.empty() && due.begin()->first <= now) {
        const std::uint64_t id = due.begin()->second;
        due.erase(due.begin());
        connections.at(id)->due_at.reset();
        touched.push_back(id);
      }
      std::sort(touched.begin(), touched.end());
      touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
      pumping.swap(touched);
      for (const std::uint64_t id : pumping) {
        const auto found = connections.find(id);
        if (found != connections.end()) Pump(*found->second);
      }
      pumping.clear();
      if (!due.empty() && (!next || due.begin()->first < *next)) next = due.begin()->first;
      ResumeListening(&next);
      itimerspec timer{};
      if (next) {
        const auto at = std::max(*next, Steady::now() + std::chrono::microseconds(1)).time_since_epoch();
        timer.it_value.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(at).count();
        timer.it_value.tv_nsec = (std::chrono::duration_cast<std::chrono::nanoseconds>(at) % std::chrono::seconds(1)).count();
      }
      timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &timer, nullptr);
    }
  }
};

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(const std::string& upstream, std::uint64_t seed, Clock& clock,
                                                  const std::string& listen_host) {
  auto loop = std::make_unique<Loop>(clock, seed);
  FD_ASSIGN_OR_RETURN(loop->upstream, Resolve(upstream, &loop->upstream_length));
  socklen_t listen_length = 0;
  FD_ASSIGN_OR_RETURN(sockaddr_storage listen_address, Resolve(listen_host + ":0", &listen_length));
  loop->listen_fd = socket(listen_address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (loop->listen_fd < 0) return Errno("socket");
  const int one = 1;
  setsockopt(loop->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(loop->listen_fd, reinterpret_cast<sockaddr*>(&listen_address), listen_length) != 0) {
    return Errno("bind " + listen_host);
  }
  if (listen(loop->listen_fd, 1024) != 0) return Errno("listen");
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  getsockname(loop->listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  const int port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                     : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  loop->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->epoll_fd < 0 || loop->timer_fd < 0 || loop->wake_fd < 0) return Errno("epoll");
  for (const auto& [fd, tag] : {std::pair{loop->listen_fd, kListenTag}, {loop->timer_fd, kTimerTag}, {loop->wake_fd, kWakeTag}}) {
    epoll_event add{};
    add.events = EPOLLIN;
    add.data.u64 = tag;
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &add) != 0) return Errno("epoll_ctl");
  }
  Loop* running = loop.get();
  loop->thread = std::thread([running] { running->Run(); });
  return std::unique_ptr<TcpProxy>(new TcpProxy(std::move(loop), port, listen_host, upstream));
}

TcpProxy::TcpProxy(std::unique_ptr<Loop> loop, int port, std::string host, std::string upstream)
    : loop_(std::move(loop)), port_(port), host_(std::move(host)), upstream_(std::move(upstream)) {}

TcpProxy::~TcpProxy() {
  {
    std::lock_guard lock(loop_->mutex);
    loop_->stopping = true;
  }
  loop_->Wake();
  loop_->thread.join();
}

std::string TcpProxy::address() const {
  return (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

Result<std::uint64_t> TcpProxy::SetFault(const NetworkFault& fault, Duration lease) {
  FD_RETURN_IF_ERROR(CheckNetworkFault(fault));
  std::uint64_t id = 0;
  {
    std::lock_guard lock(loop_->mutex);
    if (loop_->fault && loop_->clock.Now() < loop_->lease_until) {
      return FD_STATUS(StatusCode::kFailedPrecondition, "tcp proxy: a network fault is already active on " + upstream_);
    }
    loop_->fault = fault;
    loop_->lease_until = loop_->clock.Now() + lease;
    id = ++loop_->generation;
    loop_->fault_id = id;
  }
  loop_->Wake();
  return id;
}

Status TcpProxy::Renew(std::uint64_t fault_id, Duration lease) {
  {
    std::lock_guard lock(loop_->mutex);
    if (!loop_->fault || loop_->fault_id != fault_id || loop_->clock.Now() >= loop_->lease_until) {
      return FD_STATUS(StatusCode::kFailedPrecondition, "tcp proxy: that network fault is no longer active (its lease lapsed?)");
    }
    loop_->lease_until = loop_->clock.Now() + lease;
  }
  loop_->Wake();
  return Status();
}

void TcpProxy::ClearFault(std::uint64_t fault_id) {
  {
    std::lock_guard lock(loop_->mutex);
    if (!loop_->fault || loop_->fault_id != fault_id) return;  // gone already, or another's
    loop_->fault.reset();
    ++loop_->generation;
  }
  loop_->Wake();
}

bool TcpProxy::FaultActive(std::uint64_t fault_id) const {
  std::lock_guard lock(loop_->mutex);
  return loop_->fault && loop_->fault_id == fault_id && loop_->clock.Now() < loop_->lease_until;
}

TcpProxyStats TcpProxy::Stats() const {
  TcpProxyStats stats;
  stats.accepted = loop_->accepted.load();
  stats.open = loop_->open.load();
  stats.affected = loop_->affected.load();
  stats.reset = loop_->reset.load();
  stats.blackholed = loop_->blackholed.load();
  stats.upstream_failures = loop_->upstream_failures.load();
  stats.bytes_to_service = loop_->bytes_to_service.load();
  stats.bytes_to_client = loop_->bytes_to_client.load();
  std::lock_guard lock(loop_->mutex);
  stats.fault_active = loop_->fault && loop_->clock.Now() < loop_->lease_until;
  return stats;
}

}  // namespace firedrill::injectors
