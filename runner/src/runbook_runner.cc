#include "firedrill/runner/runbook_runner.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <condition_variable>
#include <grpcpp/grpcpp.h>
#include <mutex>
#include <stop_token>
#include <thread>

#include "firedrill/core/spawn.h"
#include "firedrill/core/units.h"
#include "hsof/v1/pipeline.grpc.pb.h"

extern char** environ;

namespace firedrill::runner {
namespace {

namespace pb = hsof::v1;
using engine::RunbookStep;

struct Done {
  bool ok;
  std::string detail;
};

constexpr const char* kCancelled = "cancelled: the drill ended";

bool Cancelled(const RunbookContext& context) { return context.cancelled != nullptr && context.cancelled->load(); }

// Calls `cancel` once if the drill aborts while it is alive: a blocking call
// that has no polling hook of its own (a gRPC call) ends with the drill.
class CancelOnAbort {
 public:
  CancelOnAbort(const RunbookContext& context, std::function<void()> cancel) {
    if (context.cancelled == nullptr) return;
    watcher_ = std::jthread([flag = context.cancelled, cancel = std::move(cancel)](std::stop_token stop) {
      std::mutex mutex;
      std::condition_variable_any wake;  // only to sleep in a way the destructor can interrupt
      std::unique_lock lock(mutex);
      while (!stop.stop_requested()) {
        if (flag->load()) {
          cancel();
          return;
        }
        wake.wait_for(lock, stop, std::chrono::milliseconds(20), [] { return false; });
      }
    });
  }

 private:
  std::jthread watcher_;  // joined on destruction, after a stop request
};

// The end of a program's or server's answer, cut where a UTF-8 character
// starts, so the report's JSON stays valid.
std::string Tail(const std::string& text, std::size_t most = 300) {
  if (text.size() <= most) return text;
  std::size_t from = text.size() - most;
  while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) ++from;
  return "..." + text.substr(from);
}

// ---- Admin calls ----

Done Admin(const RunbookStep& step, const RunbookContext& context) {
  if (context.admin_grpc.empty()) return {false, "the target has no Admin service address"};
  auto stub = pb::Admin::NewStub(grpc::CreateChannel(context.admin_grpc, grpc::InsecureChannelCredentials()));
  grpc::ClientContext call;
  call.set_deadline(std::chrono::system_clock::now() + step.timeout);
  pb::ActionResult result;
  grpc::Status status;
  const CancelOnAbort abort(context, [&call] { call.TryCancel(); });
  const engine::Spec& action = step.action;
  const std::string& kind = action.kind;
  if (kind == "admin.scaleWorkers") {
    pb::ScaleWorkersRequest request;
    request.set_workers(static_cast<int>(action.Integer("workers")));
    status = stub->ScaleWorkers(&call, request, &result);
  } else if (kind == "admin.setConfig") {
    pb::SetConfigRequest request;
    request.set_key(action.Text("key"));
    request.set_value(action.Text("value"));
    status = stub->SetConfig(&call, request, &result);
  } else if (kind == "admin.restartStage") {
    pb::RestartStageRequest request;
    request.set_stage(static_cast<int>(action.Integer("stage")));
    status = stub->RestartStage(&call, request, &result);
  } else if (kind == "admin.drain") {
    status = stub->Drain(&call, pb::DrainRequest(), &result);
  } else if (kind == "admin.resume") {
    status = stub->Resume(&call, pb::ResumeRequest(), &result);
  } else if (kind == "admin.triggerBackup") {
    status = stub->TriggerBackup(&call, pb::BackupRequest(), &result);
  } else if (kind == "admin.reloadMetamodel") {
    status = stub->ReloadMetamodel(&call, pb::ReloadMetamodelRequest(), &result);
  } else if (kind == "admin.restore") {
    pb::RestoreBackupRequest request;
    request.set_backup(action.Text("backup", "latest"));
    status = stub->RestoreBackup(&call, request, &result);
  } else if (kind == "admin.cleanup") {
    pb::CleanupRequest request;
    request.set_older_than_seconds(std::chrono::duration<double>(action.DurationOr("olderThan", Duration::zero())).count());
    status = stub->CleanupArtifacts(&call, request, &result);
  } else {
    return {false, "unknown Admin action " + kind};
  }
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::CANCELLED && Cancelled(context)) return {false, kCancelled};
    const bool late = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    return {false, late ? "no answer within " + FormatDuration(step.timeout) : "the pipeline refused: " + status.error_message()};
  }
  return {true, result.message().empty() ? (result.changed() ? "changed" : "nothing to change") : result.message()};
}

// ---- HTTP ----

Done Http(const RunbookStep& step, const RunbookContext& context) {
  const engine::Spec& action = step.action;
  std::string url = action.Text("url");
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    if (context.http.empty()) return {false, "a relative url needs the target's HTTP address"};
    url = context.http + (url.empty() || url.front() != '/' ? "/" : "") + url;
  }
  const std::string method = action.Text("method", "GET");
  const std::string body = action.Text("body");
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return {false, "libcurl did not start"};
  std::string answer;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (action.Has("body")) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(step.timeout).count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  // libcurl calls this at least once a second, even on a silent server.
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &context);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, +[](void* data, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return Cancelled(*static_cast<const RunbookContext*>(data)) ? 1 : 0;
  });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* sink) {
    static_cast<std::string*>(sink)->append(data, size * count);
    return size * count;
  });
  const CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (code == CURLE_ABORTED_BY_CALLBACK) return {false, method + " " + url + ": " + kCancelled};
  if (code != CURLE_OK) return {false, method + " " + url + ": " + curl_easy_strerror(code)};
  const bool wanted = action.Has("expectStatus") ? status == action.Integer("expectStatus") : status / 100 == 2;
  const std::string expected = action.Has("expectStatus") ? action.Text("expectStatus") : "2xx";
  return {wanted, method + " " + url + ": " + std::to_string(status) + (wanted ? "" : " (expected " + expected + ")") +
                      (answer.empty() ? "" : ": " + Tail(answer, 200))};
}

// ---- commands ----

// Runs argv (no shell) in its own process group, so a timeout or the drill's
// end ends all of it.
Done Exec(const RunbookStep& step, const RunbookContext& context) {
  const nlohmann::json& list = step.action.fields.value("argv", nlohmann::json::array());
  std::vector<std::string> arguments;
  for (const nlohmann::json& item : list) arguments.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  if (arguments.empty()) return {false, "argv is empty"};
  char output_path[] = "/tmp/firedrill-step-XXXXXX";
  const int output = mkostemp(output_path, O_CLOEXEC);
  if (output < 0) return {false, std::string("a file for the command's output: ") + std::strerror(errno)};
  unlink(output_path);
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, output, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, output, STDERR_FILENO);
  posix_spawnattr_t attributes;
  InitChildAttributes(&attributes);  // its own group: a timeout ends all of it
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    close(output);
    return {false, arguments[0] + ": " + std::strerror(spawned)};
  }
  // Real time: the command does real work.
  const auto deadline = std::chrono::steady_clock::now() + step.timeout;
  int status = 0;
  bool timed_out = false;
  bool cancelled = false;
  for (;;) {
    const pid_t waited = waitpid(pid, &status, WNOHANG);
    if (waited == pid) break;
    if (waited < 0 && errno != EINTR) {
      close(output);
      return {false, arguments[0] + ": waiting for it: " + std::strerror(errno)};
    }
    cancelled = Cancelled(context);
    timed_out = std::chrono::steady_clock::now() >= deadline;
    if (cancelled || timed_out) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(-pid, SIGKILL);  // whatever it left running in its group ends with the step
  std::string printed(4096, '\0');
  const off_t size = lseek(output, 0, SEEK_END);
  const off_t from = std::max<off_t>(0, size - 4096);
  const ssize_t got = pread(output, printed.data(), printed.size(), from);
  printed.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  close(output);
  const std::string said = printed.empty() ? "" : ": " + Tail(printed);
  if (cancelled) return {false, arguments[0] + " was killed: " + kCancelled + said};
  if (timed_out) return {false, arguments[0] + " ran past its timeout of " + FormatDuration(step.timeout) + " and was killed" + said};
  if (WIFSIGNALED(status)) return {false, arguments[0] + " was killed by signal " + std::to_string(WTERMSIG(status)) + said};
  const int code = WEXITSTATUS(status);
  const std::int64_t expected = step.action.Integer("expectExit", 0);
  if (code == 127 && printed.empty()) return {false, arguments[0] + ": not found"};
  return {code == expected, arguments[0] + " exited " + std::to_string(code) +
                                (code == expected ? "" : " (expected " + std::to_string(expected) + ")") + said};
}

}  // namespace

StepOutcome RunStep(const RunbookStep& step, const RunbookContext& context) {
  StepOutcome outcome;
  outcome.name = step.name;
  outcome.action = step.action.kind;
  const auto started = std::chrono::steady_clock::now();
  outcome.started = std::chrono::system_clock::now();
  Done done{false, ""};
  const std::string& kind = step.action.kind;
  if (kind.rfind("admin.", 0) == 0) {
    done = Admin(step, context);
  } else if (kind == "http") {
    done = Http(step, context);
  } else if (kind == "exec") {
    done = Exec(step, context);
  } else if (kind == "wait") {
    const Duration wanted = step.action.DurationOr("duration", Duration::zero());
    if (context.clock == nullptr) {
      done = {false, "no clock to wait on"};
    } else {
      // A wait is a step like any other: its timeout bounds it. It sleeps
      // in slices so that an aborting drill need not wait it out.
      const MonotonicTime until = context.clock->Now() + std::min(wanted, step.timeout);
      while (context.clock->Now() < until && !Cancelled(context)) {
        context.clock->SleepUntil(std::min(until, context.clock->Now() + std::chrono::seconds(1)));
      }
      if (Cancelled(context)) {
        done = {false, kCancelled};
      } else {
        done = {wanted <= step.timeout,
                wanted <= step.timeout ? "waited " + FormatDuration(wanted)
                                       : "a wait of " + FormatDuration(wanted) + " is longer than the step's timeout of " +
                                             FormatDuration(step.timeout)};
      }
    }
  } else if (kind == "prompt") {
    // Unattended (CI, and every run today): recorded for the report, not waited for.
    done = {true, "unattended: \"" + step.action.Text("message") + "\" recorded, not waited for"};
  } else if (kind == "restartTarget") {
    if (!context.restart_target) {
      done = {false, "only the embedded target can be restarted by Firedrill"};
    } else {
      const bool drained = step.action.Text("drained", "false") == "true";
      const Status restarted = context.restart_target(drained);
      done = {restarted.ok(), !restarted.ok() ? restarted.message()
                              : drained       ? "restarted, draining: no job accepted until admin.resume"
                                              : "restarted"};
    }
  } else {
    done = {false, "unknown action " + kind};
  }
  outcome.ok = done.ok;
  outcome.detail = std::move(done.detail);
  outcome.took = std::chrono::steady_clock::now() - started;
  return outcome;
}

RunbookOutcome RunRunbook(const engine::Runbook& runbook, const RunbookContext& context) {
  RunbookOutcome outcome;
  for (const RunbookStep& step : runbook.steps) {
    if (Cancelled(context)) {
      outcome.ok = false;
      break;
    }
    outcome.steps.push_back(RunStep(step, context));
    if (!outcome.steps.back().ok && !step.continue_on_error) {
      outcome.ok = false;
      break;
    }
  }
  return outcome;
}

}  // namespace firedrill::runner
