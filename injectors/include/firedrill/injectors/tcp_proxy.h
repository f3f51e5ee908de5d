// A TCP proxy in front of a loopback service, through which network faults
// are real: added latency and jitter, a bandwidth cap, connection resets and
// blackholes, each for a share of the connections. Without a fault it passes
// bytes through unchanged. A fault is a lease on the drill's clock: one that
// is not renewed in time ends by itself, and all of it ends with the process
// that holds the proxy (its connections close with it).
//
// Bytes move in real time (one epoll thread, a timerfd for delivery), since
// the delay they carry is what a client measures.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill::injectors {

struct NetworkFault {
  Duration latency{0};          // added to every chunk, each way
  Duration jitter{0};           // uniform random extra, up to this (order is kept)
  std::uint64_t bandwidth = 0;  // bytes per second each way, per connection; 0: no cap
  double reset = 0;             // share of affected connections reset (RST)
  double blackhole = 0;         // share of affected connections held: no bytes pass (delivered, in order, if the fault ends first)
  double share = 1;             // share of connections the fault touches at all
};
// InvalidArgument naming the field when a share is outside [0, 1], reset +
// blackhole exceeds 1, or a duration is negative.
Status CheckNetworkFault(const NetworkFault& fault);

struct TcpProxyStats {
  std::int64_t accepted = 0;
  std::int64_t open = 0;
  std::int64_t affected = 0;     // connections a fault touched (counted once each)
  std::int64_t reset = 0;
  std::int64_t blackholed = 0;
  std::int64_t upstream_failures = 0;  // connects to the service that failed
  std::int64_t bytes_to_service = 0;
  std::int64_t bytes_to_client = 0;
  bool fault_active = false;
};

class TcpProxy {
 public:
  // Listens on listen_host:0 and forwards each connection to `upstream`
  // (host:port). `seed` draws which connections a fault touches; `clock`
  // times the fault's lease.
  static Result<std::unique_ptr<TcpProxy>> Start(const std::string& upstream, std::uint64_t seed, Clock& clock,
                                                 const std::string& listen_host = "127.0.0.1");
  ~TcpProxy();  // closes every connection
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  std::string address() const;  // host:port clients use instead of the upstream
  const std::string& upstream() const { return upstream_; }

  // Applies `fault` to open connections (each drawn anew) and to new ones
  // until `lease` passes on the clock. A reset takes effect at once. Returns
  // the fault's id, which renewing and clearing name, so that one fault's
  // owner never renews or clears another's; FailedPrecondition while
  // another fault is active.
  Result<std::uint64_t> SetFault(const NetworkFault& fault, Duration lease);
  Status Renew(std::uint64_t fault_id, Duration lease);  // FailedPrecondition once it is not active
  void ClearFault(std::uint64_t fault_id);               // nothing when it is not the active one
  bool FaultActive(std::uint64_t fault_id) const;
  TcpProxyStats Stats() const;

 private:
  struct Loop;
  TcpProxy(std::unique_ptr<Loop> loop, int port, std::string host, std::string upstream);
  std::unique_ptr<Loop> loop_;
  int port_;
  std::string host_;
  std::string upstream_;
};

}  // namespace firedrill::injectors
