// A trivial HTTP/1.1 server on loopback for measuring the load generator:
// every request, whatever its method and path, gets "200 ok" on a kept-alive
// connection. One epoll thread per --threads, all accepting on one socket.
// Prints "port N" once listening; dies with its parent.
//
//   tiny-http-server [--port N] [--threads N] [--close-every N]
//
// --close-every N answers every Nth request on a connection with
// "Connection: close" and closes it, to exercise reconnects.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
constexpr std::string_view kClosingResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

struct Client {
  std::string in;
  std::string out;
  long answered = 0;
};

// Size of the request at the start of `data` (headers and any
// Content-Length body), or 0 when it has not all arrived.
std::size_t CompleteRequest(std::string_view data) {
  const std::size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return 0;
  std::size_t body = 0;
  const std::string_view headers = data.substr(0, end);
  for (std::size_t at = headers.find("\r\n"); at != std::string_view::npos;
       at = headers.find("\r\n", at + 2)) {
    const std::string_view line = headers.substr(at + 2, headers.find("\r\n", at + 2) - at - 2);
    if (line.size() > 15 && strncasecmp(line.data(), "content-length:", 15) == 0) {
      body = std::strtoul(std::string(line.substr(15)).c_str(), nullptr, 10);
    }
  }
  const std::size_t total = end + 4 + body;
  return data.size() >= total ? total : 0;
}

void Serve(int listener, long close_every) {
  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLEXCLUSIVE;
  event.data.fd = listener;
  epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
  std::unordered_map<int, Client> clients;
  std::vector<epoll_event> events(256);
  char buffer[65536];
  for (;;) {
    const int ready = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          const int one = 1;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event client_event{};
          client_event.events = EPOLLIN;
          client_event.data.fd = client;
          epoll_ctl(epoll, EPOLL_CTL_ADD, client, &client_event);
          clients[client];
        }
        continue;
      }
      Client& client = clients[fd];
      bool close_now = false;
      for (;;) {
        const ssize_t got = read(fd, buffer, sizeof buffer);
        if (got > 0) {
          client.in.append(buffer, static_cast<std::size_t>(got));
          continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) close_now = true;
        if (got < 0 && errno == EINTR) continue;
        break;
      }
      std::size_t consumed = 0;
      while (!close_now) {
        const std::size_t size = CompleteRequest(std::string_view(client.in).substr(consumed));
        if (size == 0) break;
        consumed += size;
        ++client.answered;
        const bool closing = close_every > 0 && client.answered % close_every == 0;
        client.out.append(closing ? kClosingResponse : kResponse);
        if (closing) close_now = true;
      }
      client.in.erase(0, consumed);
      // Loopback sockets take a response whole; a short write is a client
      // that stopped reading, and is dropped.
      if (!client.out.empty()) {
        const ssize_t wrote = write(fd, client.out.data(), client.out.size());
        if (wrote != static_cast<ssize_t>(client.out.size())) close_now = true;
        client.out.clear();
      }
      if (close_now) {
        epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        clients.erase(fd);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  int port = 0;
  int threads = 1;
  long close_every = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") port = std::atoi(argv[i + 1]);
    else if (flag == "--threads") threads = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--close-every") close_every = std::atol(argv[i + 1]);
    else {
      std::fprintf(stderr, "tiny-http-server: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 4096) != 0) {
    std::perror("tiny-http-server: bind/listen");
    return 4;
  }
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("port %d\n", ntohs(address.sin_port));
  std::fflush(stdout);
  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) workers.emplace_back(Serve, listener, close_every);
  Serve(listener, close_every);
}
