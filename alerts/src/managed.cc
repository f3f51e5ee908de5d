#include "firedrill/alerts/managed.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "firedrill/alerts/api_clients.h"

namespace firedrill::alerts {
namespace {

namespace fs = std::filesystem;

constexpr int kPortAttempts = 5;
// Every server pid Start may make: two servers, each tried on up to kPortAttempts ports.
constexpr int kMaxServerPids = 2 * kPortAttempts;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// A port that was free a moment ago: bind port 0, read the port, close. The
// server may still lose it to someone else, so starting retries.
Result<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FD_STATUS(StatusCode::kUnavailable, Errno("socket"));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const Status status = FD_STATUS(StatusCode::kUnavailable, Errno("binding 127.0.0.1:0"));
    close(fd);
    return status;
  }
  close(fd);
  return static_cast<int>(ntohs(address.sin_port));
}

// Prometheus's duration syntax ("1s", "1500ms").
std::string PromDuration(Duration duration) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

// A YAML double-quoted scalar: JSON's string syntax is valid YAML.
std::string Quote(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return FD_STATUS(StatusCode::kUnavailable, "cannot write " + path);
  return Status::Ok();
}

// What a server's log says about a failure: its error lines when it wrote
// any (the cause is often well before the last line), else its last lines.
std::string ReadLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string LogExcerpt(const std::string& path) {
  std::string all = ReadLog(path);
  if (all.size() > 65536) all.erase(0, all.size() - 65536);
  std::vector<std::string> lines, errors;
  std::istringstream split(all);
  for (std::string line; std::getline(split, line);) {
    if (line.empty()) continue;
    if (line.find("level=error") != std::string::npos ||
        line.find("level=fatal") != std::string::npos) {
      errors.push_back(line);
    }
    lines.push_back(std::move(line));
  }
  const std::vector<std::string>& shown = errors.empty() ? lines : errors;
  const std::size_t keep = std::min<std::size_t>(shown.size(), errors.empty() ? 10 : 5);
  std::string out;
  for (std::size_t i = shown.size() - keep; i < shown.size(); ++i) out += "\n  " + shown[i];
  return out.empty() ? " (empty)" : out;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// ---- Code run between fork and exec: async-signal-safe calls only, since
// the parent may have other threads (holding malloc's lock, say). ----

void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    if (signal_number != SIGKILL && signal_number != SIGSTOP) {
      sigaction(signal_number, &action, nullptr);
    }
  }
}

void CloseFrom(int first) {
  if (close_range(static_cast<unsigned>(first), ~0U, 0) != 0) {
    for (int fd = first; fd < 4096; ++fd) close(fd);
  }
}

void WriteText(int fd, const char* text) {
  const ssize_t ignored = write(fd, text, std::strlen(text));
  (void)ignored;
}

[[noreturn]] void RunServer(pid_t parent, int null_fd, int log_fd, const char* workdir,
                            char* const* argv) {
  // Dies with the thread that started it, so killing Firedrill leaves no
  // server behind; a parent already gone before the prctl means nobody would.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  // Its own group: a terminal's Ctrl-C reaches Firedrill, which stops it in
  // order, and a stop signal reaches anything it may start.
  setpgid(0, 0);
  ResetSignals();
  if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) _exit(127);
  CloseFrom(3);
  if (chdir(workdir) != 0) _exit(127);
  execv(argv[0], argv);
  WriteText(2, "firedrill: cannot execute ");
  WriteText(2, argv[0]);
  WriteText(2, "\n");
  _exit(127);
}

// Dead or a zombie (exited, waiting for whoever inherited it to reap it).
bool Gone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  char path[32] = "/proc/";
  char digits[16];
  int count = 0;
  for (pid_t rest = pid; rest > 0 && count < 15; rest /= 10) digits[count++] = '0' + rest % 10;
  std::size_t at = 6;
  while (count > 0) path[at++] = digits[--count];
  std::memcpy(path + at, "/stat", 6);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char stat[512];
  const ssize_t size = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (size <= 0) return true;
  // "pid (comm) S ...": the state follows the last ')'.
  ssize_t paren = size - 1;
  while (paren >= 0 && stat[paren] != ')') --paren;
  return paren >= 0 && paren + 2 < size && (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
}

// The janitor outlives a killed Firedrill: it learns the servers' pids over
// `channel`, and at EOF (Firedrill gone without saying goodbye, a 0 pid)
// waits for them to die of their PDEATHSIG and removes the directory.
[[noreturn]] void RunJanitor(int channel, int null_fd, char* const* remove_argv) {
  setpgid(0, 0);
  ResetSignals();
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) {
    sigaction(signal_number, &ignore, nullptr);
  }
  const int kept = fcntl(channel, F_DUPFD, 10);
  if (kept < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0 ||
      dup2(kept, 3) < 0) {
    _exit(127);
  }
  CloseFrom(4);
  pid_t pids[kMaxServerPids];
  int count = 0;
  for (;;) {
    pid_t pid = 0;
    const ssize_t size = read(3, &pid, sizeof pid);
    if (size == static_cast<ssize_t>(sizeof pid)) {
      if (pid == 0) _exit(0);  // stopped in order; the directory is gone already
      if (count < kMaxServerPids) pids[count++] = pid;
      continue;
    }
    if (size < 0 && errno == EINTR) continue;
    break;
  }
  for (int round = 0; round < 500; ++round) {  // at most 10 s
    bool all_gone = true;
    for (int i = 0; i < count; ++i) all_gone = all_gone && Gone(pids[i]);
    if (all_gone) break;
    const timespec pause{0, 20'000'000};
    nanosleep(&pause, nullptr);
  }
  execv(remove_argv[0], remove_argv);
  _exit(127);
}

// ---- Parent side ----

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return argv;
}

Result<pid_t> Spawn(std::vector<std::string> args, const std::string& log_path,
                    const std::string& workdir) {
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return FD_STATUS(StatusCode::kUnavailable, Errno("opening " + log_path));
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    close(log_fd);
    return FD_STATUS(StatusCode::kUnavailable, Errno("opening /dev/null"));
  }
  std::vector<char*> argv = Argv(args);  // built before fork: the child must not allocate
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) RunServer(parent, null_fd, log_fd, workdir.c_str(), argv.data());
  const int fork_errno = errno;
  close(log_fd);
  close(null_fd);
  if (pid < 0) {
    errno = fork_errno;
    return FD_STATUS(StatusCode::kResourceExhausted, Errno("fork for " + args[0]));
  }
  setpgid(pid, pid);  // as the child does, so kill(-pid) works whichever runs first
  return pid;
}

// SIGTERM to each group, SIGKILL to what is left after `timeout`; reaps all.
void StopAll(std::vector<pid_t*> pids, Duration timeout) {
  std::set<pid_t*> running;
  for (pid_t* pid : pids) {
    if (*pid <= 0) continue;
    if (kill(-*pid, SIGTERM) != 0) kill(*pid, SIGTERM);
    running.insert(pid);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!running.empty()) {
    for (auto it = running.begin(); it != running.end();) {
      const pid_t reaped = waitpid(**it, nullptr, WNOHANG);
      if (reaped == **it || (reaped < 0 && errno == ECHILD)) {
        **it = -1;
        it = running.erase(it);
      } else {
        ++it;
      }
    }
    if (running.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (pid_t* pid : running) {
        if (kill(-*pid, SIGKILL) != 0) kill(*pid, SIGKILL);
        while (waitpid(*pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        *pid = -1;
      }
      break;
    }
    // Real processes on real time: a simulated Clock could not make them stop.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct Exited {
  bool exited = false;
  std::string how;
};

// Polls `ready` until it answers OK, the child exits, or `timeout` passes.
Status WaitReady(pid_t* pid, const std::string& name, const std::string& log_path,
                 const std::function<Status()>& ready, Duration timeout, Exited* exited) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Asked before checking that it still runs, so an answer from whoever
    // took the port first is not mistaken for its own.
    const Status last = ready();
    int wait_status = 0;
    const pid_t reaped = waitpid(*pid, &wait_status, WNOHANG);
    if (reaped == *pid || (reaped < 0 && errno == ECHILD)) {
      *pid = -1;
      exited->exited = true;
      exited->how = reaped > 0 ? DescribeExit(wait_status) : "unknown status";
      return FD_STATUS(StatusCode::kUnavailable,
                       name + " exited (" + exited->how +
                           ") before it was ready; its log:" + LogExcerpt(log_path));
    }
    if (last.ok()) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return FD_STATUS(StatusCode::kDeadlineExceeded,
                       name + " was not ready within " + PromDuration(timeout) + " (last answer: " +
                           last.message() + "); its log:" + LogExcerpt(log_path));
    }
    // Readiness of an external process: it runs on real time, not the drill's Clock.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool PortTaken(const std::string& log_path) {
  return ReadLog(log_path).find("address already in use") != std::string::npos;
}

std::string PrometheusConfig(const ManagedOptions& options,
                             const std::vector<std::string>& rule_paths,
                             const std::string& alertmanager_address) {
  std::string out =
      "# Generated by Firedrill for a managed run; removed when the run ends.\n"
      "global:\n"
      "  evaluation_interval: " +
      PromDuration(options.evaluation_interval) +
      "\nrule_files:" + (rule_paths.empty() ? " []\n" : "\n");
  for (const std::string& path : rule_paths) out += "  - " + Quote(path) + "\n";
  out += "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [" +
         Quote(alertmanager_address) + "]\n";
  out += "scrape_configs:" + std::string(options.targets.empty() ? " []\n" : "\n");
  for (const ManagedScrapeTarget& target : options.targets) {
    out += "  - job_name: " + Quote(target.job) + "\n";
    out += "    scrape_interval: " + PromDuration(target.interval) + "\n";
    out += "    scrape_timeout: " + PromDuration(target.timeout) + "\n";
    out += "    metrics_path: " + Quote(target.metrics_path) + "\n";
    out += "    static_configs:\n      - targets: [" + Quote(target.address) + "]\n";
    if (!target.labels.empty()) {
      out += "        labels:\n";
      for (const auto& [name, value] : target.labels) {
        out += "          " + Quote(name) + ": " + Quote(value) + "\n";
      }
    }
  }
  return out;
}

std::string AlertmanagerConfig(const ManagedOptions& options) {
  // Grouping by every label ("...") gives each alert its own group, so one
  // alert never waits on another's timers.
  return "# Generated by Firedrill for a managed run; removed when the run ends.\n"
         "route:\n"
         "  receiver: \"firedrill\"\n"
         "  group_by: [\"...\"]\n"
         "  group_wait: " +
         PromDuration(options.group_wait) +
         "\n"
         "  group_interval: " +
         PromDuration(options.group_interval) +
         "\n"
         "  repeat_interval: " +
         PromDuration(options.repeat_interval) +
         "\n"
         "receivers:\n"
         "  - name: \"firedrill\"\n";
}

Status CheckOptions(const ManagedOptions& options) {
  for (const auto& [binary, package] :
       {std::pair{options.prometheus_binary, "prometheus"},
        std::pair{options.alertmanager_binary, "prometheus-alertmanager"}}) {
    if (access(binary.c_str(), X_OK) != 0) {
      return FD_STATUS(StatusCode::kNotFound,
                       binary + " is missing or not executable (Debian package " + package + ")");
    }
  }
  std::set<std::string> jobs;
  for (const ManagedScrapeTarget& target : options.targets) {
    if (target.job.empty() || target.address.empty()) {
      return FD_STATUS(StatusCode::kInvalidArgument, "a scrape target needs a job and an address");
    }
    if (!jobs.insert(target.job).second) {
      return FD_STATUS(StatusCode::kInvalidArgument, "scrape job \"" + target.job +
                                                         "\" appears twice; Prometheus needs "
                                                         "unique job names");
    }
    if (target.interval <= Duration::zero() || target.timeout <= Duration::zero() ||
        target.timeout > target.interval) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       "scrape job \"" + target.job +
                           "\": the timeout must be positive and at most the interval");
    }
  }
  if (options.evaluation_interval <= Duration::zero()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "the evaluation interval must be positive");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ManagedMonitoring>> ManagedMonitoring::Start(const ManagedOptions& options) {
  FD_RETURN_IF_ERROR(CheckOptions(options));
  std::unique_ptr<ManagedMonitoring> managed(new ManagedMonitoring());
  managed->stop_timeout_ = options.stop_timeout;

  std::string root = options.temp_root;
  if (root.empty()) root = getenv("TMPDIR") != nullptr ? getenv("TMPDIR") : "/tmp";
  std::string pattern = root + "/firedrill-managed-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return FD_STATUS(StatusCode::kUnavailable, Errno("creating a directory like " + pattern));
  }
  managed->directory_ = pattern;
  const std::string& dir = managed->directory_;

  // The janitor first, so even a Start cut short by a kill leaves nothing.
  int channel[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0) {
    return FD_STATUS(StatusCode::kUnavailable, Errno("socketpair"));
  }
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  std::vector<std::string> remove_args = {"/bin/rm", "-rf", "--", dir};
  std::vector<char*> remove_argv = Argv(remove_args);
  const pid_t janitor = null_fd < 0 ? -1 : fork();
  if (janitor == 0) RunJanitor(channel[0], null_fd, remove_argv.data());
  close(channel[0]);
  if (null_fd >= 0) close(null_fd);
  managed->janitor_fd_ = channel[1];
  if (janitor < 0) return FD_STATUS(StatusCode::kResourceExhausted, Errno("starting the janitor"));
  managed->janitor_pid_ = janitor;
  const auto tell_janitor = [&managed](pid_t pid) {
    send(managed->janitor_fd_, &pid, sizeof pid, MSG_NOSIGNAL);
  };

  std::error_code error;
  for (const char* sub : {"rules", "prometheus-data", "alertmanager-data"}) {
    if (!fs::create_directory(dir + "/" + sub, error)) {
      return FD_STATUS(StatusCode::kUnavailable,
                       "creating " + dir + "/" + sub + ": " + error.message());
    }
  }
  std::vector<std::string> rule_paths;
  for (std::size_t i = 0; i < options.rule_files.size(); ++i) {
    const std::string copy = dir + "/rules/" + std::to_string(i + 1) + "-" +
                             fs::path(options.rule_files[i]).filename().string();
    if (!fs::copy_file(options.rule_files[i], copy, error)) {
      return FD_STATUS(StatusCode::kNotFound,
                       "copying rule file " + options.rule_files[i] + ": " + error.message());
    }
    rule_paths.push_back(copy);
  }
  FD_RETURN_IF_ERROR(WriteFile(dir + "/alertmanager.yml", AlertmanagerConfig(options)));

  // Starts one server on a fresh port, again on another port when the one
  // picked was taken in between.
  const auto start =
      [&](const std::string& name,
          const std::function<std::vector<std::string>(const std::string& address)>& args_for,
          const std::function<Status(const std::string& url)>& ready, pid_t* pid,
          std::string* url) -> Status {
    const std::string log_path = dir + "/" + name + ".log";
    Status status;
    for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
      FD_ASSIGN_OR_RETURN(const int port, FreePort());
      const std::string address = "127.0.0.1:" + std::to_string(port);
      FD_ASSIGN_OR_RETURN(*pid, Spawn(args_for(address), log_path, dir));
      tell_janitor(*pid);
      *url = "http://" + address;
      Exited exited;
      status = WaitReady(
          pid, name, log_path, [&] { return ready(*url); }, options.ready_timeout, &exited);
      if (status.ok() || !exited.exited || !PortTaken(log_path)) return status;
    }
    return status;
  };

  FD_RETURN_IF_ERROR(start(
      "alertmanager",
      [&](const std::string& address) {
        return std::vector<std::string>{
            options.alertmanager_binary, "--config.file=" + dir + "/alertmanager.yml",
            "--storage.path=" + dir + "/alertmanager-data", "--web.listen-address=" + address,
            // Empty: no cluster, so no gossip port and no peers to wait for.
            "--cluster.listen-address="};
      },
      [](const std::string& url) {
        return AlertmanagerClient(url, {std::chrono::seconds(1), std::chrono::seconds(1)}).Ready();
      },
      &managed->alertmanager_pid_, &managed->alertmanager_url_));

  FD_RETURN_IF_ERROR(
      WriteFile(dir + "/prometheus.yml",
                PrometheusConfig(options, rule_paths, managed->alertmanager_url_.substr(7))));
  const Status started = start(
      "prometheus",
      [&](const std::string& address) {
        return std::vector<std::string>{
            options.prometheus_binary, "--config.file=" + dir + "/prometheus.yml",
            "--storage.tsdb.path=" + dir + "/prometheus-data", "--web.listen-address=" + address,
            // Alerts' generator URLs then point at this server, not at the host name.
            "--web.external-url=http://" + address + "/", "--web.enable-lifecycle"};
      },
      [&](const std::string& url) -> Status {
        PrometheusClient client(url, {std::chrono::seconds(1), std::chrono::seconds(1)});
        FD_RETURN_IF_ERROR(client.Ready());
        if (!options.wait_for_discovery) return Status::Ok();
        FD_ASSIGN_OR_RETURN(const std::vector<std::string> alertmanagers, client.Alertmanagers());
        FD_ASSIGN_OR_RETURN(const std::vector<PrometheusTarget> targets, client.Targets());
        if (alertmanagers.empty() || targets.size() < options.targets.size()) {
          return FD_STATUS(StatusCode::kUnavailable,
                           "Prometheus has discovered " + std::to_string(alertmanagers.size()) +
                               " of 1 Alertmanager and " + std::to_string(targets.size()) + " of " +
                               std::to_string(options.targets.size()) + " targets");
        }
        return Status::Ok();
      },
      &managed->prometheus_pid_, &managed->prometheus_url_);
  // Prometheus names the copies of the rule files; the user knows the originals.
  if (!started.ok()) {
    std::string message = started.message();
    for (std::size_t i = 0; i < rule_paths.size(); ++i) {
      for (std::size_t at = message.find(rule_paths[i]); at != std::string::npos;
           at = message.find(rule_paths[i], at + options.rule_files[i].size())) {
        message.replace(at, rule_paths[i].size(), options.rule_files[i]);
      }
    }
    return Status(started.code(), message, started.file(), started.line());
  }
  return managed;
}

ManagedMonitoring::~ManagedMonitoring() {
  // Prometheus first would be kinder to Alertmanager, but neither needs the
  // other to shut down, so both stop at once to bound the wait.
  StopAll({&prometheus_pid_, &alertmanager_pid_}, stop_timeout_);
  if (!directory_.empty()) {
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }
  if (janitor_fd_ >= 0) {
    const pid_t goodbye = 0;
    send(janitor_fd_, &goodbye, sizeof goodbye, MSG_NOSIGNAL);
    close(janitor_fd_);
  }
  if (janitor_pid_ > 0) {
    while (waitpid(janitor_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace firedrill::alerts
