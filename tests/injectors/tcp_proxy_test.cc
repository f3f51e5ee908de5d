#include "firedrill/injectors/tcp_proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace firedrill::injectors {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

// A loopback echo service to put the proxy in front of: a thread per
// connection sends back what it reads until end of file.
class EchoServer {
 public:
  EchoServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(listen_fd_, 256), 0);
    socklen_t length = sizeof address;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] {
      for (;;) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;  // shut down
        std::lock_guard lock(mutex_);
        fds_.push_back(fd);
        workers_.emplace_back([fd] {
          char buffer[65536];
          for (;;) {
            const ssize_t got = recv(fd, buffer, sizeof buffer, 0);
            if (got <= 0) break;
            for (ssize_t sent = 0; sent < got;) {
              const ssize_t rc = send(fd, buffer + sent, static_cast<std::size_t>(got - sent), MSG_NOSIGNAL);
              if (rc <= 0) return;
              sent += rc;
            }
          }
          shutdown(fd, SHUT_WR);
        });
      }
    });
  }
  ~EchoServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    close(listen_fd_);
    std::lock_guard lock(mutex_);
    for (const int fd : fds_) shutdown(fd, SHUT_RDWR);
    for (std::thread& worker : workers_) worker.join();
    for (const int fd : fds_) close(fd);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
};

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
  return fd;
}

// Closes with RST rather than FIN, as a client that gives up hard does.
void CloseWithReset(int fd) {
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close(fd);
}

bool SendAll(int fd, const std::string& bytes) {
  for (std::size_t sent = 0; sent < bytes.size();) {
    const ssize_t rc = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (rc <= 0) return false;
    sent += static_cast<std::size_t>(rc);
  }
  return true;
}

// What a read within `wait` gave: bytes, end of file, a reset, or nothing.
struct Received {
  std::string bytes;
  bool eof = false;
  bool reset = false;
  bool timed_out = false;
};

Received ReceiveExactly(int fd, std::size_t size, std::chrono::milliseconds wait) {
  Received out;
  const auto deadline = Steady::now() + wait;
  char buffer[65536];
  while (out.bytes.size() < size) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()).count();
    pollfd ready{fd, POLLIN, 0};
    if (left <= 0 || poll(&ready, 1, static_cast<int>(left)) == 0) {
      out.timed_out = true;
      return out;
    }
    const ssize_t got = recv(fd, buffer, std::min(sizeof buffer, size - out.bytes.size()), 0);
    if (got == 0) {
      out.eof = true;
      return out;
    }
    if (got < 0) {
      out.reset = errno == ECONNRESET;
      return out;
    }
    out.bytes.append(buffer, static_cast<std::size_t>(got));
  }
  return out;
}

double RoundTripSeconds(int fd, const std::string& message) {
  const auto start = Steady::now();
  EXPECT_TRUE(SendAll(fd, message));
  const Received back = ReceiveExactly(fd, message.size(), 10s);
  EXPECT_EQ(back.bytes, message);
  return std::chrono::duration<double>(Steady::now() - start).count();
}

class TcpProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::printf("seed %llu\n", static_cast<unsigned long long>(kSeed));
    auto proxy = TcpProxy::Start(echo_.address(), kSeed, clock_);
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
  }
  static constexpr std::uint64_t kSeed = 20261203;
  EchoServer echo_;
  RealClock clock_;
  std::unique_ptr<TcpProxy> proxy_;
};

TEST_F(TcpProxyTest, PassesBytesThroughUnchangedBothWays) {
  std::mt19937_64 random(kSeed);
  std::string payload(4 << 20, '\0');
  for (char& byte : payload) byte = static_cast<char>(random());
  const int fd = Connect(proxy_->port());
  std::thread sender([&] { EXPECT_TRUE(SendAll(fd, payload)); });
  const Received back = ReceiveExactly(fd, payload.size(), 30s);
  sender.join();
  EXPECT_TRUE(back.bytes == payload) << "got " << back.bytes.size() << " of " << payload.size() << " bytes back";
  // Ending the client's side ends the service's, and the proxy closes both.
  shutdown(fd, SHUT_WR);
  EXPECT_TRUE(ReceiveExactly(fd, 1, 10s).eof);
  close(fd);
  const TcpProxyStats stats = proxy_->Stats();
  EXPECT_EQ(stats.accepted, 1);
  EXPECT_EQ(stats.bytes_to_service, static_cast<std::int64_t>(payload.size()));
  EXPECT_EQ(stats.bytes_to_client, static_cast<std::int64_t>(payload.size()));
  EXPECT_EQ(stats.affected, 0);
}

TEST_F(TcpProxyTest, LatencyDelaysEachWayUntilTheFaultIsCleared) {
  const int fd = Connect(proxy_->port());
  RoundTripSeconds(fd, "warm");
  auto fault = proxy_->SetFault({.latency = 150ms, .jitter = 20ms}, 60s);
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_EQ(proxy_->SetFault({.reset = 1}, 60s).status().code(), StatusCode::kFailedPrecondition)
      << "one fault at a time";
  EXPECT_TRUE(proxy_->Stats().fault_active);
  // The open connection is drawn too: a round trip carries the delay twice.
  EXPECT_GE(RoundTripSeconds(fd, "slow"), 0.300);
  const int fresh = Connect(proxy_->port());
  EXPECT_GE(RoundTripSeconds(fresh, "slow too"), 0.300);
  proxy_->ClearFault(*fault + 1);
  EXPECT_TRUE(proxy_->FaultActive(*fault)) << "clearing another fault's id leaves this one";
  proxy_->ClearFault(*fault);
  EXPECT_FALSE(proxy_->Stats().fault_active);
  EXPECT_LT(RoundTripSeconds(fd, "quick again"), 0.150);
  EXPECT_EQ(proxy_->Stats().affected, 2);
  close(fd);
  close(fresh);
}

// A wake-up pumps only the connections it concerns: delayed bytes on a
// quiet connection still go out on time while another keeps the proxy busy.
TEST_F(TcpProxyTest, DelayedBytesGoOutOnTimeBesideABusyConnection) {
  ASSERT_TRUE(proxy_->SetFault({.latency = 200ms}, 60s).ok());
  const int quiet = Connect(proxy_->port());
  const int busy = Connect(proxy_->port());
  std::atomic<bool> done{false};
  std::thread chatter([&] {
    while (!done) {
      if (!SendAll(busy, "b")) break;
      std::this_thread::sleep_for(5ms);  // a steady stream of events on the other connection
    }
  });
  const double seconds = RoundTripSeconds(quiet, "quiet");
  done = true;
  chatter.join();
  EXPECT_GE(seconds, 0.400) << "the delay is each way";
  EXPECT_LT(seconds, 2.0) << "the quiet connection's bytes waited on the busy one";
  close(quiet);
  close(busy);
}

// A connection reset while its bytes wait out a delay leaves the proxy's
// schedule clean: the proxy carries on serving after that delay is past.
TEST_F(TcpProxyTest, AConnectionResetWhileItsBytesWaitLeavesTheProxyWorking) {
  ASSERT_TRUE(proxy_->SetFault({.latency = 300ms}, 60s).ok());
  const int doomed = Connect(proxy_->port());
  RoundTripSeconds(doomed, "connected through");  // so its next bytes wait on the delay alone
  ASSERT_TRUE(SendAll(doomed, "never delivered"));
  // Once the proxy has accepted a connection made after those bytes, it has
  // read them (epoll hands it both in one wake-up, or the bytes first).
  const int next = Connect(proxy_->port());
  for (int i = 0; i < 5000 && proxy_->Stats().accepted < 2; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(proxy_->Stats().accepted, 2);
  CloseWithReset(doomed);
  EXPECT_GE(RoundTripSeconds(next, "still here"), 0.600) << "past the doomed bytes' release time";
  EXPECT_GE(RoundTripSeconds(next, "and again"), 0.600);
  close(next);
  EXPECT_EQ(proxy_->Stats().accepted, 2);
}

TEST_F(TcpProxyTest, BandwidthCapHoldsEachWay) {
  constexpr std::uint64_t kRate = 1 << 20;  // 1 MiB/s
  ASSERT_TRUE(proxy_->SetFault({.bandwidth = kRate}, 60s).ok());
  std::string payload(512 << 10, 'b');
  const int fd = Connect(proxy_->port());
  const auto start = Steady::now();
  std::thread sender([&] { EXPECT_TRUE(SendAll(fd, payload)); });
  const Received back = ReceiveExactly(fd, payload.size(), 30s);
  sender.join();
  const double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  EXPECT_EQ(back.bytes.size(), payload.size());
  // Each way may burst one bucket (20 ms of the rate) ahead of the cap.
  const double burst = static_cast<double>(kRate) / 50;
  EXPECT_GE(seconds, (static_cast<double>(payload.size()) - 2 * burst) / static_cast<double>(kRate));
  close(fd);
}

TEST_F(TcpProxyTest, ResetCutsOpenAndNewConnections) {
  const int open = Connect(proxy_->port());
  RoundTripSeconds(open, "before");
  auto fault = proxy_->SetFault({.reset = 1}, 60s);
  ASSERT_TRUE(fault.ok());
  const Received cut = ReceiveExactly(open, 1, 10s);
  EXPECT_TRUE(cut.reset) << "eof " << cut.eof << " timed out " << cut.timed_out;
  const int fresh = Connect(proxy_->port());
  const bool sent = SendAll(fresh, "anyone?");
  const Received refused = ReceiveExactly(fresh, 7, 10s);
  EXPECT_TRUE(!sent || refused.reset || refused.eof) << "a new connection is reset too";
  EXPECT_TRUE(refused.bytes.empty());
  EXPECT_EQ(proxy_->Stats().reset, 2);
  proxy_->ClearFault(*fault);
  const int after = Connect(proxy_->port());
  RoundTripSeconds(after, "back");
  for (const int fd : {open, fresh, after}) close(fd);
}

TEST_F(TcpProxyTest, BlackholeHoldsBytesAndReleasesThemWhenCleared) {
  const int fd = Connect(proxy_->port());
  RoundTripSeconds(fd, "before");
  auto fault = proxy_->SetFault({.blackhole = 1}, 60s);
  ASSERT_TRUE(fault.ok());
  ASSERT_TRUE(SendAll(fd, "into the void"));
  EXPECT_TRUE(ReceiveExactly(fd, 13, 300ms).timed_out);
  EXPECT_EQ(proxy_->Stats().blackholed, 1);
  // A healed partition: TCP delivers what was held, in order.
  proxy_->ClearFault(*fault);
  EXPECT_EQ(ReceiveExactly(fd, 13, 10s).bytes, "into the void");
  close(fd);
}

// A client that gives up on a blackholed connection takes it down: the
// proxy does not keep it, or the service's end, open until the fault ends.
TEST_F(TcpProxyTest, AClientGivingUpOnABlackholeClosesItsConnection) {
  auto fault = proxy_->SetFault({.blackhole = 1}, 60s);
  ASSERT_TRUE(fault.ok());
  const int fd = Connect(proxy_->port());
  ASSERT_TRUE(SendAll(fd, "hello?"));
  EXPECT_TRUE(ReceiveExactly(fd, 6, 100ms).timed_out);
  close(fd);
  const auto deadline = Steady::now() + 10s;
  while (proxy_->Stats().open > 0 && Steady::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(proxy_->Stats().open, 0);
}

// A half-close (the client sends, then shuts its side) with a delayed
// answer: the answer still arrives in full, then end of file.
TEST_F(TcpProxyTest, HalfCloseWithLatencyDeliversTheAnswerThenEnds) {
  auto fault = proxy_->SetFault({.latency = 50ms}, 60s);
  ASSERT_TRUE(fault.ok());
  const int fd = Connect(proxy_->port());
  ASSERT_TRUE(SendAll(fd, "request"));
  shutdown(fd, SHUT_WR);
  EXPECT_EQ(ReceiveExactly(fd, 7, 10s).bytes, "request");
  EXPECT_TRUE(ReceiveExactly(fd, 1, 10s).eof);
  close(fd);
}

TEST_F(TcpProxyTest, ShareTouchesAboutThatShareOfConnections) {
  ASSERT_TRUE(proxy_->SetFault({.reset = 1, .share = 0.3}, 60s).ok());
  constexpr int kConnections = 200;
  int reset = 0;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = Connect(proxy_->port());
    // A reset shows as a failed send, a reset read, or an end of file
    // (when the send already took the error); a connection left alone echoes.
    const bool sent = SendAll(fd, "x");
    const Received back = ReceiveExactly(fd, 1, 10s);
    EXPECT_FALSE(back.timed_out);
    if (!sent || back.reset || back.eof) ++reset;
    else EXPECT_EQ(back.bytes, "x");
    close(fd);
  }
  // Binomial(200, 0.3): mean 60, standard deviation 6.5.
  EXPECT_GE(reset, 40);
  EXPECT_LE(reset, 80);
  EXPECT_EQ(proxy_->Stats().reset, reset);
}

TEST_F(TcpProxyTest, ServiceThatIsDownResetsTheClient) {
  EchoServer* gone = new EchoServer;
  const std::string address = gone->address();
  delete gone;  // nothing listens there now
  auto proxy = TcpProxy::Start(address, kSeed, clock_);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  const int fd = Connect((*proxy)->port());
  SendAll(fd, "hello");
  const Received back = ReceiveExactly(fd, 5, 10s);
  EXPECT_TRUE(back.reset || back.eof);
  EXPECT_EQ((*proxy)->Stats().upstream_failures, 1);
  close(fd);
}

TEST(TcpProxyLease, LapsesOnTheDrillClock) {
  EchoServer echo;
  SimulatedClock clock;
  auto proxy = TcpProxy::Start(echo.address(), 7, clock);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  auto fault = (*proxy)->SetFault({.reset = 1}, 30s);
  ASSERT_TRUE(fault.ok());
  clock.Advance(20s);
  EXPECT_TRUE((*proxy)->Renew(*fault, 30s).ok());
  EXPECT_EQ((*proxy)->Renew(*fault + 1, 30s).code(), StatusCode::kFailedPrecondition) << "not that fault's owner";
  clock.Advance(29s);
  EXPECT_TRUE((*proxy)->Stats().fault_active);
  clock.Advance(2s);
  EXPECT_FALSE((*proxy)->Stats().fault_active);
  EXPECT_EQ((*proxy)->Renew(*fault, 30s).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*proxy)->SetFault({.latency = 1ms}, 30s).ok()) << "a lapsed fault leaves the proxy free";
  // A connection after the lapse is not drawn under the old fault.
  const int fd = Connect((*proxy)->port());
  RoundTripSeconds(fd, "fine");
  EXPECT_EQ((*proxy)->Stats().reset, 0);
  close(fd);
}

TEST(TcpProxyFault, RefusesSharesOutOfRange) {
  EXPECT_EQ(CheckNetworkFault({.share = 1.5}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckNetworkFault({.reset = 0.7, .blackhole = 0.5}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckNetworkFault({.latency = -1ms}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckNetworkFault({.latency = 2h}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckNetworkFault({.latency = 5ms, .reset = 0.5, .blackhole = 0.5}).ok());
}

}  // namespace
}  // namespace firedrill::injectors
