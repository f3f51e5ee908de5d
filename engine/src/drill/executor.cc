// The drill's conductor: one thread that owns the timeline. Every tick it
// takes the alert changes, samples health and load, checks the steady state
// and the guardrails, starts, renews and ends faults, and starts the
// runbook (on a thread of its own, as its steps block) when its trigger
// comes. Everything it sees goes into the DrillRecord the verdicts are
// judged from.
#include <curl/curl.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "firedrill/alerts/promql.h"
#include "firedrill/alerts/rule_file.h"
#include "firedrill/core/units.h"
#include "firedrill/engine/drill.h"
#include "firedrill/engine/plan.h"
#include "firedrill/gpu/device.h"
#include "firedrill/injectors/catalog.h"
#include "firedrill/injectors/injection.h"
#include "firedrill/injectors/journal.h"
#include "firedrill/runner/runbook_runner.h"
#include "firedrill/reports/writers.h"
#include "firedrill/targets/target.h"
#include "firedrill/workload/arrivals.h"
#include "firedrill/workload/http_job_client.h"
#include "firedrill/workload/job_load.h"
#include "firedrill/workload/job_mix.h"
#include "firedrill/workload/ledger.h"
#include "reports.h"
#include "watcher.h"

namespace firedrill::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

std::int64_t ToMillis(Duration duration) { return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count(); }

std::int64_t WallMillis(WallTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

// GET url; the HTTP status (0 when there was no answer) and the body.
std::pair<long, std::string> HttpGet(const std::string& url, Duration timeout) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return {0, ""};
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(ToMillis(timeout), 50)));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
  });
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  return {status, body};
}

std::string HostPort(const std::string& url) {
  std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  return rest.substr(0, rest.find('/'));
}

// The quantity an alert compares with its threshold: the left side of its
// top-level comparison ("(used / total) * 100" for "... > 90"), as a query
// with one value. Empty when the rule is not such a comparison.
std::string ComparedQuantity(const std::string& expr) {
  Result<std::shared_ptr<const alerts::promql::Expr>> parsed = alerts::promql::Parse(expr);
  if (!parsed.ok()) return "";
  const alerts::promql::Node& root = *(*parsed)->root;
  using Op = alerts::promql::BinaryOp;
  if (root.kind != alerts::promql::Node::Kind::kBinary || root.children.size() != 2 ||
      root.children[1]->kind != alerts::promql::Node::Kind::kNumber) {
    return "";
  }
  const Op op = root.binary_op;
  if (op != Op::kGreater && op != Op::kLess && op != Op::kGreaterEqual && op != Op::kLessEqual && op != Op::kEqual &&
      op != Op::kNotEqual) {
    return "";
  }
  const std::string left = expr.substr(0, static_cast<std::size_t>(root.position));
  return (op == Op::kLess || op == Op::kLessEqual ? "min(" : "max(") + left + ")";
}

json Hardware(const std::string& backend) {
  std::string cpu = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  struct sysinfo info {};
  sysinfo(&info);
  json hardware = {{"cpu", cpu},
                   {"cores", std::thread::hardware_concurrency()},
                   {"memoryBytes", static_cast<std::uint64_t>(info.totalram) * info.mem_unit},
                   {"gpu", nullptr}};
  if (Result<gpu::DeviceInfo> device = gpu::ProbeDevice(gpu::BackendChoice::kAuto); device.ok()) {
    if (device->backend == gpu::Backend::kCuda) {
      hardware["gpu"] = {{"name", device->name},
                         {"memoryBytes", device->total_memory},
                         {"computeCapability", std::to_string(device->compute_major) + "." +
                                                   std::to_string(device->compute_minor)},
                         {"cudaDriver", device->driver_version}};
    } else {
      hardware["gpuAbsent"] = device->fallback_reason;
    }
  }
  hardware["targetDevice"] = backend;
  return hardware;
}

struct RunningFault {
  const Injection* spec = nullptr;
  std::unique_ptr<injectors::Injection> injection;
  std::int64_t started_ms = 0;
  std::int64_t ends_ms = 0;  // the longest it may last
  std::int64_t renewed_ms = 0;
  bool last_renew_ok = true;
  bool ended = false;
};

class Conductor {
 public:
  Conductor(const Scenario& scenario, const DrillOptions& options)
      : scenario_(scenario),
        options_(options),
        scale_(options.time_scale.value_or(scenario.time_scale)),
        drill_(real_, scale_) {}

  DrillOutcome Run();

 private:
  // ---- set-up ----
  Status Prepare();
  Status StartTarget();
  Status StartMonitoring();
  Status StartLoad();

  // ---- the loop ----
  // Drill ms since time zero; the watcher's threads read it too.
  std::int64_t Now() const { return ToMillis(drill_.Now().time_since_epoch()) - t0_ms_.load(); }
  void Emit(const std::string& type, const std::string& name, json detail = json::object());
  void EmitAt(std::int64_t t_ms, const std::string& type, const std::string& name, json detail);
  void EmitLocked(const std::string& type, const std::string& name, json detail, std::optional<std::int64_t> t_ms = {});
  void Tick();
  void TakeAlerts();
  void RecordAlert(const DrillRecord::AlertChange& change);
  void Sample();
  void CheckSteadyState();
  void DriveFaults();
  void MaybeStartRecovery();
  void CheckVerify();
  void CheckGuardrails();
  void ShowStatus();
  bool Finished();
  // One check of a steady-state or verify block: whether it holds, and what was seen.
  std::pair<bool, std::string> Check(const Spec& check, std::int64_t since_ms);
  std::pair<bool, std::string> JobsRetained(Duration recovery_point);
  void Abort(int exit_code, const std::string& reason);
  void EndFault(RunningFault& fault, const std::string& why);

  // ---- the end ----
  void Teardown();
  void BuildRecord();
  DrillOutcome Conclude();

  const Scenario& scenario_;
  const DrillOptions& options_;
  const double scale_;
  RealClock real_;
  ScaledClock drill_;
  std::atomic<std::int64_t> t0_ms_{0};  // time zero on the drill clock
  WallTime wall0_{};       // on the drill clock
  WallTime real_wall0_{};  // on the real clock
  MonotonicTime real0_{};

  std::unique_ptr<injectors::Journal> journal_;
  std::unique_ptr<targets::Target> target_;
  std::unique_ptr<AlertWatcher> watcher_;
  std::unique_ptr<workload::JobClient> client_;
  std::unique_ptr<workload::JobLedger> ledger_;
  std::unique_ptr<workload::JobLoad> load_;
  std::optional<workload::JobLoadResult> load_result_;
  std::optional<workload::JobResumeResult> resume_result_;
  std::string drill_dir_;
  injectors::InjectionContext context_;
  std::mutex context_mutex_;  // context_.processes: the runbook's restart changes the pid

  mutable std::mutex mutex_;  // record_ and the runbook's state
  DrillRecord record_;
  std::vector<RunningFault> faults_;
  std::set<std::string> started_faults_;
  std::vector<std::string> firing_;

  // Steady state.
  bool steady_ = false;
  bool steady_failed_ = false;
  std::string steady_seen_;
  // Recovery.
  enum class Stage { kWaiting, kRunning, kVerifying, kDone } recovery_ = Stage::kWaiting;
  std::thread runbook_thread_;
  std::atomic<bool> runbook_cancelled_{false};
  std::optional<runner::RunbookOutcome> runbook_outcome_;  // set by the runbook thread
  std::int64_t recovery_started_ms_ = -1;
  std::int64_t recovery_ended_ms_ = -1;
  bool verify_held_ = false;
  std::string verify_seen_;
  // Sampling.
  std::int64_t next_sample_ms_ = 0;
  std::int64_t sample_every_ms_ = 1000;
  std::int64_t last_sent_ = 0;
  std::int64_t last_completed_ = 0;
  std::int64_t last_sample_ms_ = 0;
  json samples_ = json::array();
  std::string health_ = "unknown";
  std::map<std::string, std::int64_t> guard_since_;  // a guardrail's condition, held since
  // Alert name -> the quantity its rule compares, sampled to explain its timing.
  std::map<std::string, std::string> explain_;
  std::size_t phase_index_ = 0;
  bool phase_started_ = false;
  std::int64_t workload_end_ms_ = 0;
  MonotonicTime last_status_{};
  std::string status_line_;

  bool record_closed_ = false;  // the loop ended: alert changes no longer count
  bool loop_ran_ = false;       // set-up succeeded and time zero came

  // Outcome.
  bool aborted_ = false;
  int exit_code_ = kDrillHeld;
  std::string reason_;
  json setup_ = json::object();
};

void Conductor::EmitLocked(const std::string& type, const std::string& name, json detail,
                           std::optional<std::int64_t> t_ms) {
  DrillEvent event{t_ms.value_or(Now()), type, name, std::move(detail)};
  if (options_.progress != nullptr && !options_.terminal) {
    json line = {{"t", static_cast<double>(event.t_ms) / 1000.0}, {"type", type}, {"name", name}};
    if (!event.detail.empty()) line["detail"] = event.detail;
    *options_.progress << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
  } else if (options_.progress != nullptr && type != "health") {
    char when[32];
    std::snprintf(when, sizeof when, "+%7.1fs", static_cast<double>(event.t_ms) / 1000.0);
    *options_.progress << "\r\033[K" << when << "  " << name;
    if (event.detail.contains("what")) *options_.progress << "  " << event.detail["what"].get<std::string>();
    *options_.progress << '\n' << std::flush;
    status_line_.clear();
  }
  // Kept in time order: an event stamped earlier (a runbook step) goes
  // before later ones.
  auto later = std::upper_bound(record_.events.begin(), record_.events.end(), event.t_ms,
                                [](std::int64_t t, const DrillEvent& each) { return t < each.t_ms; });
  record_.events.insert(later, std::move(event));
}

void Conductor::EmitAt(std::int64_t t_ms, const std::string& type, const std::string& name, json detail) {
  std::lock_guard lock(mutex_);
  EmitLocked(type, name, std::move(detail), t_ms);
}

void Conductor::Emit(const std::string& type, const std::string& name, json detail) {
  std::lock_guard lock(mutex_);
  EmitLocked(type, name, std::move(detail));
}

Status Conductor::Prepare() {
  if (!(scale_ > 0 && scale_ <= 10000)) {
    return FD_STATUS(StatusCode::kInvalidArgument, "the time scale must be above 0 and at most 10000");
  }
  for (const Phase& phase : scenario_.phases) {
    if (phase.stress) {
      return FD_STATUS(StatusCode::kUnimplemented,
                       "phase " + phase.name + ": GPU stress in a drill's phase is not run yet; put a "
                       "gpu-compute-burn injection on the timeline instead");
    }
  }
  const std::string monitoring = options_.monitoring.value_or(scenario_.monitoring.kind);
  if (monitoring == "external" && scale_ != 1) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "monitoring: an external Prometheus evaluates its rules in real time; run this drill at time "
                     "scale 1 (--time-scale 1), or use embedded or managed monitoring");
  }
  for (const Injection& injection : scenario_.timeline) {
    if (!injectors::IsRunnable(injection.injector.kind)) {
      return FD_STATUS(StatusCode::kUnimplemented,
                       "timeline " + injection.name + ": injector " + injection.injector.kind + " cannot run in this build");
    }
  }
  std::error_code error;
  fs::create_directories(options_.out_dir, error);
  if (error) return FD_STATUS(StatusCode::kUnavailable, "output folder " + options_.out_dir + ": " + error.message());
  // Disk fills write only here, a folder made for this drill.
  drill_dir_ = (fs::path(options_.out_dir) / "drill-area").string();
  fs::remove_all(drill_dir_, error);
  fs::create_directories(drill_dir_, error);
  const std::string journal_path =
      options_.journal_path.empty() ? injectors::Journal::DefaultPath() : options_.journal_path;
  FD_ASSIGN_OR_RETURN(journal_, injectors::Journal::Open(journal_path));
  journal_->SetListener([this](const injectors::FaultRecord& record) {
    // Begin and End as the journal wrote them: the faults' own timeline.
    if (record.kind == "embedded-target") return;
    Emit("fault", record.ended_ms == 0 ? "journal.begin" : "journal.end",
         {{"id", record.id}, {"kind", record.kind}, {"target", record.target}, {"outcome", record.outcome}});
  });
  return Status();
}

Status Conductor::StartTarget() {
  const Spec& settings = scenario_.target.settings;
  if (scenario_.target.kind == "embedded") {
    targets::EmbeddedTargetOptions embedded;
    embedded.binary = options_.pipeline_binary;
    embedded.device = settings.Text("device", "auto");
    embedded.workers = static_cast<int>(settings.Integer("workers", 2));
    embedded.gpu_memory_fraction = settings.RatioOr("gpuMemoryFraction", 0.9);
    embedded.max_concurrent_batches = static_cast<int>(settings.Integer("maxConcurrentBatches", 4));
    embedded.backup_interval = settings.DurationOr("backupInterval", Duration::zero());
    embedded.seed = scenario_.seed.value_or(1);
    embedded.time_scale = scale_;
    embedded.time_zero = drill_.time_zero();
    embedded.journal = journal_.get();
    FD_ASSIGN_OR_RETURN(target_, targets::StartEmbeddedTarget(embedded, real_));
  } else {
    targets::RemoteTargetOptions remote;
    remote.http = settings.Text("http");
    remote.grpc = settings.Text("grpc");
    remote.gpu_exporter = settings.Text("gpuExporter");
    remote.seed = scenario_.seed.value_or(1);
    if (const char* token = std::getenv("HSOF_FAULTS_TOKEN"); token != nullptr) remote.faults_token = token;
    FD_ASSIGN_OR_RETURN(target_, targets::ConnectRemoteTarget(remote, real_));
  }
  const targets::TargetEndpoints& endpoints = target_->endpoints();
  setup_["target"] = {{"kind", scenario_.target.kind},
                      {"http", endpoints.direct_http},
                      {"grpc", endpoints.direct_grpc},
                      {"gpuExporter", endpoints.gpu_exporter}};
  context_.journal = journal_.get();
  context_.clock = &drill_;
  if (endpoints.pid > 0) context_.processes["pipeline"] = endpoints.pid;
  if (!endpoints.data_dir.empty()) context_.data_directories["pipeline"] = endpoints.data_dir;
  context_.drill_dir = drill_dir_;
  context_.pipeline_grpc = endpoints.faults_grpc;
  context_.faults_token = endpoints.faults_token;
  context_.proxies = target_->proxies();
  context_.gpu.backend = settings.Text("device", "auto");
  context_.gpu.shared_device_memory = endpoints.shared_device_memory;
  if (endpoints.device_memory > 0) context_.gpu.device_memory = endpoints.device_memory;
  context_.gpu.hog_binary = options_.hog_binary;
  // The lease, renewed every third of it: at least ten seconds of real time,
  // so a slow tick (a hog starting, a slow health check) cannot let it lapse.
  context_.ttl = std::max(Duration(30s), Duration(std::chrono::duration_cast<Duration>(10s * scale_)));
  return Status();
}

Status Conductor::StartMonitoring() {
  WatcherOptions watch;
  watch.kind = options_.monitoring.value_or(scenario_.monitoring.kind);
  watch.rule_files = scenario_.monitoring.rules;
  watch.scrape_interval = scenario_.monitoring.scrape_interval;
  watch.evaluation_interval = scenario_.monitoring.evaluation_interval;
  watch.time_scale = scale_;
  watch.prometheus_binary = options_.prometheus_binary;
  watch.alertmanager_binary = options_.alertmanager_binary;
  watch.prometheus_url = scenario_.monitoring.settings.Text("prometheus");
  const targets::TargetEndpoints& endpoints = target_->endpoints();
  // The job names HSOF's rules use (up{job="hsof-main"}).
  watch.targets.push_back({"hsof-main", HostPort(endpoints.direct_http)});
  if (!endpoints.gpu_exporter.empty()) watch.targets.push_back({"hsof-gpu-exporter", HostPort(endpoints.gpu_exporter)});
  FD_ASSIGN_OR_RETURN(watcher_, StartWatcher(watch, [this] { return Now(); }));
  // The alerts the scenario names: their compared quantities go in the samples.
  std::set<std::string> named;
  for (const Expectation& expectation : scenario_.expectations) {
    if (expectation.spec.Has("alert")) named.insert(expectation.spec.Text("alert"));
  }
  for (const Spec& guard : scenario_.guardrails) {
    if (guard.Has("alert")) named.insert(guard.Text("alert"));
  }
  if (scenario_.recovery && !scenario_.recovery->trigger_alert.empty()) named.insert(scenario_.recovery->trigger_alert);
  for (const std::string& path : watch.rule_files) {
    Result<alerts::RuleFile> rules = alerts::LoadRuleFile(path);
    if (!rules.ok()) continue;
    for (const alerts::RuleGroup& group : rules->groups) {
      for (const alerts::Rule& rule : group.rules) {
        if (!named.count(rule.alert) || explain_.count(rule.alert)) continue;
        if (std::string quantity = ComparedQuantity(rule.expr); !quantity.empty()) explain_[rule.alert] = quantity;
      }
    }
  }
  setup_["monitoring"] = {{"kind", watch.kind},
                          {"rules", scenario_.monitoring.rules},
                          {"scrapeIntervalSeconds", std::chrono::duration<double>(watch.scrape_interval).count()},
                          {"evaluationIntervalSeconds", std::chrono::duration<double>(watch.evaluation_interval).count()}};
  return Status();
}

Status Conductor::StartLoad() {
  std::vector<json> mix;
  for (const Spec& kind : scenario_.job_mix) mix.push_back(kind.fields);
  const std::uint64_t seed = scenario_.seed.value_or(1);
  FD_ASSIGN_OR_RETURN(workload::JobMix job_mix, workload::JobMix::FromJson(mix, seed));
  workload::JobLoadOptions load;
  const fs::path base = fs::path(scenario_.path).parent_path();
  for (std::size_t i = 0; i < scenario_.phases.size(); ++i) {
    const Phase& phase = scenario_.phases[i];
    FD_ASSIGN_OR_RETURN(workload::JobPhase job_phase,
                        workload::MakeJobPhase(phase.name, phase.duration, phase.max_in_flight, phase.arrival.kind,
                                               phase.arrival.fields, seed + i, base));
    load.phases.push_back(std::move(job_phase));
  }
  load.run_id = "fd-" + scenario_.metadata.name + "-" + std::to_string(WallMillis(real_.WallNow()));
  // In drill time: long enough for jobs stuck behind a fault to come back.
  load.drain_timeout = std::max(Duration(60s), Duration(std::chrono::duration_cast<Duration>(3s * scale_)));
  workload::HttpJobClientOptions client;
  client.base_url = target_->endpoints().http;  // through the proxy: network faults reach the load
  client.clock = &drill_;
  FD_ASSIGN_OR_RETURN(client_, workload::MakeHttpJobClient(client));
  FD_ASSIGN_OR_RETURN(ledger_, workload::JobLedger::OpenFile((fs::path(options_.out_dir) / "ledger.jsonl").string()));
  FD_ASSIGN_OR_RETURN(load_, workload::JobLoad::Make(std::move(load), std::move(job_mix), *client_, *ledger_, drill_));
  return Status();
}

// ---- the loop ----

void Conductor::RecordAlert(const DrillRecord::AlertChange& change) {
  std::lock_guard lock(mutex_);
  // In time order, whatever order the watcher's threads reported them in.
  auto later = std::upper_bound(record_.alerts.begin(), record_.alerts.end(), change.t_ms,
                                [](std::int64_t t, const DrillRecord::AlertChange& each) { return t < each.t_ms; });
  record_.alerts.insert(later, change);
  EmitLocked("alert", "alert." + change.alert + "." + change.state, {{"what", change.state}}, change.t_ms);
}

void Conductor::TakeAlerts() {
  if (record_closed_) return;  // after the faults were undone: not the drill's doing
  for (const DrillRecord::AlertChange& change : watcher_->TakeChanges()) RecordAlert(change);
  firing_ = watcher_->Firing();
}

void Conductor::Sample() {
  const std::int64_t now = Now();
  if (now < next_sample_ms_) return;
  next_sample_ms_ = now + sample_every_ms_;
  // Health straight from the pipeline, not through the proxy: a network
  // fault on the drill's traffic does not blind the observer.
  const auto [status, body] = HttpGet(target_->endpoints().direct_http + "/health",
                                      std::max(Duration(200ms), std::chrono::duration_cast<Duration>(2s / scale_)));
  std::string health = "unreachable";
  if (status != 0) {
    const json parsed = json::parse(body, nullptr, false);
    health = parsed.is_object() && parsed.contains("status") && parsed["status"].is_string()
                 ? parsed["status"].get<std::string>()
                 : "HTTP " + std::to_string(status);
  }
  {
    std::lock_guard lock(mutex_);
    record_.health.push_back({now, health});
    if (health != health_) EmitLocked("health", "health." + health, {{"what", health}});
    health_ = health;
  }
  const workload::JobProgress progress = load_->Progress(10s);
  const double seconds = std::max(0.001, static_cast<double>(now - last_sample_ms_) / 1000.0);
  std::vector<std::string> active;
  for (const RunningFault& fault : faults_) {
    if (!fault.ended) active.push_back(fault.spec->name);
  }
  json metrics = json::object();
  for (const auto& [alert, quantity] : explain_) {
    if (Result<double> value = watcher_->Query(quantity); value.ok() && std::isfinite(*value)) metrics[alert] = *value;
  }
  samples_.push_back({{"t", static_cast<double>(now) / 1000.0},
                      {"alertQuantities", metrics},
                      {"health", health},
                      {"offeredRate", static_cast<double>(progress.total.sent - last_sent_) / seconds},
                      {"achievedRate", static_cast<double>(progress.total.completed - last_completed_) / seconds},
                      {"p95Seconds", std::chrono::duration<double>(progress.recent_latency).count()},
                      {"inFlight", progress.in_flight},
                      {"activeFaults", active},
                      {"firingAlerts", firing_}});
  last_sent_ = progress.total.sent;
  last_completed_ = progress.total.completed;
  last_sample_ms_ = now;
}

std::pair<bool, std::string> Conductor::Check(const Spec& check, std::int64_t since_ms) {
  const std::string& kind = check.kind;
  if (kind == "health") {
    const std::string wanted = check.Text("status", "HEALTHY");
    const std::string component = check.Text("component");
    if (component.empty()) return {health_ == wanted, "health " + health_};
    const auto [status, body] = HttpGet(target_->endpoints().direct_http + "/health", 2s);
    const json parsed = json::parse(body, nullptr, false);
    std::string seen = "unreachable";
    if (status != 0 && parsed.is_object() && parsed.contains("components") && parsed["components"].is_object() &&
        parsed["components"].contains(component) && parsed["components"][component].is_object()) {
      const json& entry = parsed["components"][component];
      seen = entry.contains("status") && entry["status"].is_string() ? entry["status"].get<std::string>() : "?";
    }
    return {seen == wanted, component + " " + seen};
  }
  if (kind == "noAlertsFiring") {
    std::string firing;
    for (const std::string& alert : firing_) firing += (firing.empty() ? "" : ", ") + alert;
    return {firing_.empty(), firing.empty() ? "no alert firing" : "firing: " + firing};
  }
  if (kind == "alertNotFiring") {
    const std::string alert = check.Text("alert");
    const bool firing = std::find(firing_.begin(), firing_.end(), alert) != firing_.end();
    return {!firing, alert + (firing ? " firing" : " not firing")};
  }
  if (kind == "loadFlowing") {
    const Duration window = std::max(Duration(30s), std::chrono::duration_cast<Duration>(2s * scale_));
    const workload::JobProgress progress = load_->Progress(window);
    const double rate = static_cast<double>(progress.recent_completed) / std::chrono::duration<double>(window).count();
    const double min = check.RateOr("minRate", Rate{0}).per_second;
    char seen[96];
    std::snprintf(seen, sizeof seen, "%.3f jobs/s completing", rate);
    return {progress.recent_completed > 0 && rate >= min, seen};
  }
  if (kind == "metric") {
    const std::string query = check.Text("query");
    Result<double> value = watcher_->Query(query);
    if (!value.ok()) return {false, query + ": " + value.status().message()};
    const std::string op = check.Text("op");
    const double bound = check.Number("value");
    const bool ok = op == "<"    ? *value < bound
                    : op == "<=" ? *value <= bound
                    : op == ">"  ? *value > bound
                    : op == ">=" ? *value >= bound
                    : op == "==" ? *value == bound
                                 : *value != bound;
    char seen[64];
    std::snprintf(seen, sizeof seen, " = %g", *value);
    return {ok, query + seen};
  }
  if (kind == "jobsComplete") {
    // Every job accepted before the check began has finished.
    const std::int64_t since_wall = WallMillis(wall0_) + since_ms;
    std::int64_t waiting = 0;
    for (const workload::LedgerEntry& entry : ledger_->Entries()) {
      if (entry.outcome == workload::JobOutcome::kAccepted && entry.accepted_ms >= 0 && entry.accepted_ms <= since_wall) {
        waiting++;
      }
    }
    return {waiting == 0, waiting == 0 ? "every job accepted before it finished"
                                       : std::to_string(waiting) + " accepted jobs still unfinished"};
  }
  if (kind == "jobsRetained") return JobsRetained(check.DurationOr("recoveryPoint", Duration::zero()));
  return {false, "unknown check " + kind};
}

// Every job the ledger saw complete more than `recovery_point` before the
// first fault began must still be in the pipeline, completed, under its own
// key (a reused id answering with another job does not count).
std::pair<bool, std::string> Conductor::JobsRetained(Duration recovery_point) {
  std::int64_t first_fault_ms = -1;
  for (const RunningFault& fault : faults_) {
    if (first_fault_ms < 0 || fault.started_ms < first_fault_ms) first_fault_ms = fault.started_ms;
  }
  if (first_fault_ms < 0) return {false, "no fault has started: nothing to measure retention from"};
  const std::int64_t cutoff_wall = WallMillis(wall0_) + first_fault_ms - ToMillis(recovery_point);
  std::int64_t checked = 0;
  std::vector<std::string> missing;
  for (const workload::LedgerEntry& entry : ledger_->Entries()) {
    if (entry.outcome != workload::JobOutcome::kCompleted || entry.finished_ms < 0 || entry.finished_ms > cutoff_wall) {
      continue;
    }
    checked++;
    const auto [status, body] = HttpGet(target_->endpoints().direct_http + "/v1/jobs/" + entry.job_id, 2s);
    // One call at most waits on a pipeline that does not answer: this runs on the drill's loop.
    if (status == 0) return {false, "the pipeline does not answer GET /v1/jobs/" + entry.job_id};
    const json job = json::parse(body, nullptr, false);
    const bool kept = status == 200 && job.is_object() && job.value("idempotency_key", "") == entry.key &&
                      job.value("state", "") == "completed";
    if (!kept) missing.push_back(entry.job_id);
  }
  const std::string scope = std::to_string(checked) + " jobs completed more than " +
                            FormatDuration(recovery_point) + " before the first fault";
  if (checked == 0) return {false, "no job completed more than " + FormatDuration(recovery_point) +
                                       " before the first fault: nothing to show a restore kept"};
  if (missing.empty()) return {true, "the pipeline holds all " + scope};
  std::string ids;
  for (std::size_t i = 0; i < missing.size() && i < 5; ++i) ids += (i ? ", " : "") + missing[i];
  return {false, std::to_string(missing.size()) + " of " + scope + " are gone (ids " + ids +
                     (missing.size() > 5 ? ", ..." : "") + ")"};
}

void Conductor::CheckSteadyState() {
  if (steady_ || steady_failed_) return;
  const std::int64_t now = Now();
  if (!scenario_.steady_state) {
    steady_ = true;
    Emit("steady-state", "steady-state.held", {{"what", "no hypothesis given"}});
    return;
  }
  // Alert checks mean something only once the rules have seen the target.
  if (now < ToMillis(scenario_.monitoring.scrape_interval + scenario_.monitoring.evaluation_interval)) return;
  bool all = true;
  std::string seen;
  for (const Spec& check : scenario_.steady_state->checks) {
    const auto [ok, what] = Check(check, 0);
    all = all && ok;
    if (!ok) seen += (seen.empty() ? "" : "; ") + what;
  }
  if (all) {
    steady_ = true;
    Emit("steady-state", "steady-state.held", {{"what", "every check holds"}});
    return;
  }
  steady_seen_ = seen;
  const std::int64_t within = ToMillis(scenario_.steady_state->within.value_or(60s));
  if (now >= within) {
    steady_failed_ = true;
    Emit("steady-state", "steady-state.failed", {{"what", seen}});
  }
}

void Conductor::EndFault(RunningFault& fault, const std::string& why) {
  if (fault.ended) return;
  const Status stopped = fault.injection->Stop();
  fault.ended = true;
  const injectors::InjectionState state = fault.injection->State();
  Emit("fault", fault.spec->name + ".end",
       {{"what", why}, {"kind", fault.spec->injector.kind}, {"state", std::string(injectors::PhaseName(state.phase))},
        {"undo", stopped.ok() ? "done" : stopped.message()}});
  if (!stopped.ok()) {
    // A fault left in force is what the operator must hear first.
    const std::string undo = "could not undo " + fault.spec->name + ": " + stopped.message() +
                             " (run firedrill recover --wait)";
    reason_ = exit_code_ == kDrillHeld ? undo : undo + "; before that: " + reason_;
    exit_code_ = kDrillHarnessError;
  }
}

void Conductor::DriveFaults() {
  const std::int64_t now = Now();
  for (RunningFault& fault : faults_) {
    if (fault.ended) continue;
    std::string why;
    const injectors::InjectionState state = fault.injection->State();
    if (now >= fault.ends_ms) {
      why = "its duration passed";
    } else if (state.phase == injectors::InjectionState::kLapsed && state.lease_ran_out && fault.last_renew_ok) {
      // Renewed fine, yet too late: not the drill's intent, and what follows
      // (an alert resolving) would be credited to the runbook. (A target
      // that went away took its lease with it: that is the case below.)
      EndFault(fault, "its lease ran out before Firedrill renewed it");
      Abort(kDrillHarnessError, fault.spec->name + ": its lease ran out before Firedrill could renew it");
      return;
    } else if (state.phase == injectors::InjectionState::kLapsed) {
      why = "it ended on its own: " + state.detail;  // a helper evicted, a hang cured by a restart
    } else if (!fault.spec->until.empty()) {
      std::lock_guard lock(mutex_);
      if (record_.EventTime(fault.spec->until)) why = fault.spec->until + " happened";
    }
    if (!why.empty()) {
      EndFault(fault, why);
      continue;
    }
    if (now - fault.renewed_ms >= ToMillis(context_.ttl) / 3) {
      // A one-shot fault has nothing to renew; a target that cannot be
      // reached fails the renewal, and its fault ends with it.
      fault.last_renew_ok = fault.injection->Renew().ok();
      fault.renewed_ms = now;
    }
  }
  if (!steady_ || aborted_) return;
  for (const Injection& spec : scenario_.timeline) {
    if (started_faults_.count(spec.name) || now < ToMillis(spec.at)) continue;
    started_faults_.insert(spec.name);
    std::unique_ptr<injectors::Injection> injection;
    {
      std::lock_guard lock(context_mutex_);
      auto started = injectors::StartInjection(spec.injector.kind, spec.injector.fields, context_);
      if (!started.ok()) {
        Emit("fault", spec.name + ".failed", {{"what", started.status().message()}});
        Abort(started.status().code() == StatusCode::kInvalidArgument ? kDrillInvalid : kDrillHarnessError,
              "fault " + spec.name + " could not start: " + started.status().message());
        return;
      }
      injection = std::move(*started);
    }
    RunningFault fault;
    fault.spec = &spec;
    fault.started_ms = now;
    fault.renewed_ms = now;
    // No end at all would be refused by validation; a fault without a
    // duration lasts until its event or the end of the workload.
    fault.ends_ms = spec.duration ? now + ToMillis(*spec.duration) : workload_end_ms_;
    EmitAt(now, "fault", spec.name + ".start", {{"what", injection->Describe()}, {"kind", spec.injector.kind}});
    fault.injection = std::move(injection);
    faults_.push_back(std::move(fault));
  }
}

void Conductor::MaybeStartRecovery() {
  if (!scenario_.recovery || recovery_ != Stage::kWaiting || !steady_ || aborted_) return;
  const auto& recovery = *scenario_.recovery;
  bool due = false;
  std::string why;
  if (recovery.trigger_at) {
    due = Now() >= ToMillis(*recovery.trigger_at);
    why = "at " + FormatDuration(*recovery.trigger_at);
  } else if (!recovery.trigger_alert.empty() && !faults_.empty()) {
    // Only a firing that begins once a fault is in: one that began before
    // the drill injected anything is not what the runbook answers.
    std::lock_guard lock(mutex_);
    for (const DrillRecord::AlertChange& change : record_.alerts) {
      if (change.alert == recovery.trigger_alert && change.state == "firing" &&
          change.t_ms >= faults_.front().started_ms) {
        due = true;
        why = recovery.trigger_alert + " fired at +" + std::to_string(change.t_ms / 1000) + "s";
        break;
      }
    }
  }
  if (!due) return;
  recovery_ = Stage::kRunning;
  recovery_started_ms_ = Now();
  Emit("runbook", "recovery.start", {{"what", recovery.runbook.metadata.name + " runbook: " + why}});
  runner::RunbookContext context;
  context.http = target_->endpoints().direct_http;
  context.admin_grpc = target_->endpoints().direct_grpc;
  context.clock = &drill_;
  context.cancelled = &runbook_cancelled_;
  if (scenario_.target.kind == "embedded") {
    context.restart_target = [this](bool drained) -> Status {
      FD_RETURN_IF_ERROR(target_->Restart(drained));
      std::lock_guard lock(context_mutex_);
      context_.processes["pipeline"] = target_->endpoints().pid;
      return Status();
    };
  }
  runbook_thread_ = std::thread([this, context, runbook = recovery.runbook] {
    runner::RunbookOutcome outcome = runner::RunRunbook(runbook, context);
    std::lock_guard lock(mutex_);
    runbook_outcome_ = std::move(outcome);
  });
}

void Conductor::CheckVerify() {
  if (recovery_ == Stage::kRunning) {
    std::optional<runner::RunbookOutcome> outcome;
    {
      std::lock_guard lock(mutex_);
      if (!runbook_outcome_) return;
      outcome = runbook_outcome_;
    }
    runbook_thread_.join();
    for (const runner::StepOutcome& step : outcome->steps) {
      // At the step's start: the runner stamps it on the real wall clock.
      const std::int64_t at = static_cast<std::int64_t>(
          static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(step.started - real_wall0_).count()) *
          scale_);
      EmitAt(at, "runbook", "runbook." + step.name,
           {{"what", (step.ok ? "ok: " : "FAILED: ") + step.detail},
            {"action", step.action},
            {"ok", step.ok},
            {"tookSeconds", std::chrono::duration<double>(step.took).count() * scale_}});
    }
    recovery_ended_ms_ = Now();
    Emit("runbook", "recovery.end", {{"what", outcome->ok ? "every step succeeded" : "a step failed"}});
    recovery_ = Stage::kVerifying;
  }
  if (recovery_ != Stage::kVerifying) return;
  const auto& verify = scenario_.recovery->runbook.verify;
  if (!verify || verify->checks.empty()) {
    verify_held_ = true;
    verify_seen_ = "no verify block";
    recovery_ = Stage::kDone;
    return;
  }
  bool all = true;
  std::string seen;
  for (const Spec& check : verify->checks) {
    const auto [ok, what] = Check(check, recovery_started_ms_);
    all = all && ok;
    seen += (seen.empty() ? "" : "; ") + what;
  }
  verify_seen_ = seen;
  if (all) {
    verify_held_ = true;
    recovery_ = Stage::kDone;
    Emit("runbook", "recovery.verified", {{"what", seen}});
  } else if (Now() - recovery_ended_ms_ > ToMillis(verify->within.value_or(5min))) {
    recovery_ = Stage::kDone;
    Emit("runbook", "recovery.unverified", {{"what", seen}});
  }
}

void Conductor::CheckGuardrails() {
  const std::int64_t now = Now();
  for (std::size_t i = 0; i < scenario_.guardrails.size(); ++i) {
    const Spec& guard = scenario_.guardrails[i];
    const std::string key = std::to_string(i);
    const std::int64_t lasting = ToMillis(guard.DurationOr("for", Duration::zero()));
    bool breached = false;
    std::string seen;
    if (guard.kind == "alertFires") {
      const std::string alert = guard.Text("alert");
      breached = std::find(firing_.begin(), firing_.end(), alert) != firing_.end();
      seen = alert + " fired";
    } else if (guard.kind == "errorRate" || guard.kind == "latency") {
      const Duration window = std::max(guard.DurationOr("for", Duration::zero()),
                                       std::max(Duration(10s), std::chrono::duration_cast<Duration>(2s * scale_)));
      const double quantile = guard.Number("percentile", 95) / 100.0;
      const workload::JobProgress progress = load_->Progress(window, quantile);
      const std::int64_t settled = progress.recent_completed + progress.recent_failed;
      if (guard.kind == "errorRate" && settled >= 5) {
        const double share = static_cast<double>(progress.recent_failed) / static_cast<double>(settled);
        breached = share > guard.RatioOr("max", 1);
        char text[96];
        std::snprintf(text, sizeof text, "error rate %.1f%% over the last %s", share * 100,
                      FormatDuration(window).c_str());
        seen = text;
      } else if (guard.kind == "latency" && progress.recent_completed > 0) {
        breached = progress.recent_latency > guard.DurationOr("max", Duration::max());
        seen = "p" + guard.Text("percentile") + " latency " + FormatDuration(progress.recent_latency);
      }
    } else if (guard.kind == "health") {
      breached = health_ == guard.Text("status");
      seen = "health " + health_;
    }
    if (!breached) {
      guard_since_.erase(key);
      continue;
    }
    const std::int64_t since = guard_since_.emplace(key, now).first->second;
    if (now - since >= lasting) {
      Emit("guardrail", "guardrail." + guard.kind, {{"what", seen}});
      Abort(kDrillAborted, "guardrail " + guard.kind + ": " + seen);
      return;
    }
  }
  if (options_.interrupt != nullptr && options_.interrupt->load()) {
    Emit("drill", "interrupted", {{"what", "the operator interrupted the drill"}});
    Abort(kDrillAborted, "interrupted (Ctrl-C or SIGTERM)");
  }
}

void Conductor::Abort(int exit_code, const std::string& reason) {
  if (aborted_) return;
  aborted_ = true;
  exit_code_ = exit_code;
  reason_ = reason;
  // Faults first: the target gets its resources back before anything else.
  for (RunningFault& fault : faults_) EndFault(fault, "the drill aborted");
  runbook_cancelled_ = true;
  if (load_) load_->Abort(std::chrono::duration_cast<Duration>(2s * scale_));
}

void Conductor::Tick() {
  const std::int64_t now = Now();
  // Phase boundaries, as the load's own schedule has them.
  while (phase_index_ < scenario_.phases.size()) {
    const Phase& phase = scenario_.phases[phase_index_];
    const std::int64_t start = ToMillis(phase.start_offset);
    const std::int64_t end = start + ToMillis(phase.duration);
    if (!phase_started_ && now >= start) {
      phase_started_ = true;
      Emit("phase", phase.name + ".start");
    }
    if (phase_started_ && now >= end) {
      Emit("phase", phase.name + ".end");
      phase_started_ = false;
      phase_index_++;
      continue;
    }
    break;
  }
  TakeAlerts();
  Sample();
  CheckSteadyState();
  if (steady_failed_ && !aborted_) {
    Abort(kDrillFailed, "the steady state did not hold within " +
                            FormatDuration(scenario_.steady_state->within.value_or(60s)) + ": " + steady_seen_);
    return;
  }
  MaybeStartRecovery();
  CheckVerify();
  if (!aborted_) DriveFaults();
  if (!aborted_) CheckGuardrails();
  ShowStatus();
}

void Conductor::ShowStatus() {
  if (options_.progress == nullptr || !options_.terminal) return;
  const MonotonicTime now = real_.Now();
  if (now - last_status_ < 250ms) return;
  last_status_ = now;
  const double elapsed = static_cast<double>(Now()) / 1000.0;
  const double total = static_cast<double>(workload_end_ms_) / 1000.0;
  const std::string phase = phase_index_ < scenario_.phases.size() ? scenario_.phases[phase_index_].name : "drain";
  std::string faults;
  for (const RunningFault& fault : faults_) {
    if (!fault.ended) faults += (faults.empty() ? "" : ",") + fault.spec->name;
  }
  std::string firing;
  for (const std::string& alert : firing_) firing += (firing.empty() ? "" : ",") + alert;
  double offered = 0;
  double achieved = 0;
  double p95 = 0;
  if (!samples_.empty()) {
    offered = samples_.back()["offeredRate"].get<double>();
    achieved = samples_.back()["achievedRate"].get<double>();
    p95 = samples_.back()["p95Seconds"].get<double>();
  }
  char line[512];
  std::snprintf(line, sizeof line,
                "%s %5.0fs/%.0fs (x%g) | offered %.2f/s achieved %.2f/s p95 %.2fs | %s | faults: %s | firing: %s",
                phase.c_str(), elapsed, total, scale_, offered, achieved, p95, health_.c_str(),
                faults.empty() ? "-" : faults.c_str(), firing.empty() ? "-" : firing.c_str());
  *options_.progress << "\r\033[K" << line << std::flush;
  status_line_ = line;
}

bool Conductor::Finished() {
  if (aborted_) return true;
  const bool load_done = load_->done();
  const bool recovery_settled = recovery_ == Stage::kWaiting || recovery_ == Stage::kDone;
  // The workload is over and the runbook (if it started) has been verified.
  return load_done && recovery_settled;
}

// ---- the end ----

void Conductor::Teardown() {
  // What the drill saw ends here: changes caused by undoing its own faults
  // are not the runbook's doing.
  if (watcher_) TakeAlerts();
  record_.end_ms = Now();
  record_closed_ = true;
  // The runbook first: a fault undone while it restarts the target would
  // meet a pipeline that is not there.
  runbook_cancelled_ = true;
  if (runbook_thread_.joinable()) runbook_thread_.join();
  for (RunningFault& fault : faults_) EndFault(fault, aborted_ ? "the drill aborted" : "the drill ended");
  if (load_) {
    if (!load_->done()) load_->Abort(std::chrono::duration_cast<Duration>(2s * scale_));
    load_result_ = load_->Wait();
    // Jobs whose outcome the run never learned (the pipeline was down when
    // they were sent or followed) are followed, and resent under their key.
    if (!aborted_ && !load_result_->ledger.NothingLost()) {
      resume_result_ = load_->Resume(*client_, std::max(Duration(60s), std::chrono::duration_cast<Duration>(10s * scale_)));
      Emit("drill", "ledger.resumed", {{"what", resume_result_->ledger.ToString()}});
    }
    client_->Shutdown();
  }
  if (watcher_) {
    setup_["monitoring"]["watcher"] = watcher_->Describe();
    watcher_->Stop();
  }
  Emit("drill", "end");
  if (target_) (void)target_->Stop();
  std::error_code error;
  if (!drill_dir_.empty()) fs::remove_all(drill_dir_, error);
}

namespace {

QualitySeen Seen(const workload::QualityStats& stats) {
  return {.count = stats.count, .mean = stats.mean(), .min = stats.min};
}

}  // namespace

void Conductor::BuildRecord() {
  std::lock_guard lock(mutex_);
  if (!record_closed_) record_.end_ms = Now();  // set-up failed: no loop ran
  if (!load_result_) return;
  const workload::JobLoadResult& result = *load_result_;
  std::set<double> percentiles = {50, 95, 99};
  for (const Expectation& expectation : scenario_.expectations) {
    if (expectation.spec.kind == "latency") percentiles.insert(expectation.spec.Number("percentile", 99));
  }
  for (std::size_t i = 0; i < result.phases.size() && i < scenario_.phases.size(); ++i) {
    const workload::JobPhaseCounts& counts = result.phases[i];
    PhaseLoad phase;
    phase.name = counts.name;
    phase.start_ms = ToMillis(scenario_.phases[i].start_offset);
    phase.end_ms = phase.start_ms + ToMillis(scenario_.phases[i].duration);
    phase.sent = counts.sent;
    phase.completed = counts.completed;
    phase.errors = counts.failed + counts.rejected + counts.lost + counts.unanswered;
    for (const double percentile : percentiles) {
      phase.latency_ms[percentile] =
          static_cast<double>(result.phase_corrected[i].ValueAtQuantile(percentile / 100.0)) / 1e6;
    }
    phase.quality = Seen(result.phase_quality[i]);
    record_.phases.push_back(phase);
  }
  const workload::LedgerSummary& ledger = resume_result_ ? resume_result_->ledger : result.ledger;
  record_.lost_jobs = ledger.lost + ledger.unanswered + static_cast<std::int64_t>(ledger.duplicated_keys.size());
  record_.quality = Seen(result.quality);
}

DrillOutcome Conductor::Conclude() {
  DrillOutcome outcome;
  std::vector<Verdict> verdicts;
  // The hypothesis and the runbook are verdicts too, each a JUnit case: the
  // hypothesis first, the runbook after the expectations, so the first
  // failure (the run's reason) names an expectation where one failed.
  // Set-up failed: nothing was tried, so nothing is judged (the report
  // carries the reason and JUnit an error case).
  if (!loop_ran_) {
  } else if (scenario_.steady_state) {
    Verdict steady;
    steady.name = "steady-state";
    steady.kind = "steadyState";
    steady.expected = "every steady-state check holds before any fault";
    steady.held = steady_;
    steady.skipped = !steady_ && steady_seen_.empty();
    steady.seen = steady_ ? "held" : (steady.skipped ? "not checked: the drill ended first" : steady_seen_);
    verdicts.push_back(steady);
  }
  if (steady_) {
    for (const Expectation& expectation : scenario_.expectations) verdicts.push_back(Judge(expectation, record_));
  }
  if (scenario_.recovery && steady_) {
    Verdict runbook;
    runbook.name = "recovery";
    runbook.kind = "runbook";
    runbook.expected = scenario_.recovery->runbook.metadata.name + " runbook succeeds and its verify checks hold";
    if (recovery_started_ms_ < 0) {
      runbook.seen = "never triggered (" +
                     (scenario_.recovery->trigger_alert.empty() ? std::string("its time never came")
                                                                : scenario_.recovery->trigger_alert + " never fired") +
                     ")";
    } else if (!runbook_outcome_ || !runbook_outcome_->ok) {
      std::string failed = "a step failed";
      if (runbook_outcome_) {
        for (const runner::StepOutcome& step : runbook_outcome_->steps) {
          if (!step.ok) failed = "step " + step.name + " failed: " + step.detail;
        }
      }
      runbook.seen = failed;
    } else {
      runbook.held = verify_held_;
      runbook.seen = verify_held_ ? "every step succeeded; verified: " + verify_seen_ : "verify did not hold: " + verify_seen_;
    }
    verdicts.push_back(runbook);
  }
  bool all_held = true;
  std::string first_failure;
  for (const Verdict& verdict : verdicts) {
    if (verdict.skipped) continue;
    if (!verdict.held && first_failure.empty()) first_failure = verdict.name + ": expected " + verdict.expected + "; saw " + verdict.seen;
    all_held = all_held && verdict.held;
  }
  if (exit_code_ == kDrillHeld && !all_held) {
    exit_code_ = kDrillFailed;
    reason_ = first_failure;
  }
  outcome.exit_code = exit_code_;
  outcome.reason = reason_;
  outcome.verdict = exit_code_ == kDrillHeld     ? "held"
                    : exit_code_ == kDrillFailed ? "failed"
                    : exit_code_ == kDrillInvalid ? "invalid"
                    : exit_code_ == kDrillAborted ? "aborted"
                                                  : "harness-error";

  json result;
  result["schemaVersion"] = kResultSchemaVersion;
  result["firedrill"] = {{"version", options_.version}};
  json parameters = json::object();
  for (const Parameter& parameter : scenario_.parameters) parameters[parameter.name] = parameter.value;
  result["scenario"] = {{"name", scenario_.metadata.name},
                        {"path", scenario_.path},
                        {"description", scenario_.metadata.description},
                        {"runbook", scenario_.metadata.runbook},
                        {"parameters", parameters}};
  result["seed"] = scenario_.seed.value_or(1);
  result["timeScale"] = scale_;
  result["hardware"] = Hardware(scenario_.target.settings.Text("device", "auto"));
  result["target"] = setup_.value("target", json::object());
  result["monitoring"] = setup_.value("monitoring", json::object());
  result["startedAt"] = reports::FormatRfc3339Millis(real_wall0_);
  result["drillSeconds"] = static_cast<double>(record_.end_ms) / 1000.0;
  result["wallSeconds"] = std::chrono::duration<double>(real_.Now() - real0_).count();
  result["verdict"] = outcome.verdict;
  result["exitCode"] = outcome.exit_code;
  result["reason"] = outcome.reason;
  json expectations = json::array();
  for (const Verdict& verdict : verdicts) {
    json entry = {{"name", verdict.name},
                  {"kind", verdict.kind},
                  {"held", verdict.held},
                  {"expected", verdict.expected},
                  {"seen", verdict.seen}};
    if (verdict.value_seconds) entry["valueSeconds"] = *verdict.value_seconds;
    if (verdict.skipped) entry["skipped"] = true;
    expectations.push_back(entry);
  }
  result["expectations"] = expectations;
  json events = json::array();
  for (const DrillEvent& event : record_.events) {
    events.push_back({{"t", static_cast<double>(event.t_ms) / 1000.0},
                      {"type", event.type},
                      {"name", event.name},
                      {"detail", event.detail}});
  }
  result["events"] = events;
  result["samples"] = samples_;
  result["alertQuantities"] = explain_;
  if (load_result_) {
    json load = load_result_->ToJson();
    load.erase("phase_latency");  // histograms: too big for the report, kept in load.json
    load.erase("latency");
    load.erase("stage_seconds");
    json phases = json::array();
    for (const PhaseLoad& phase : record_.phases) {
      json latency = json::object();
      for (const auto& [percentile, ms] : phase.latency_ms) {
        char key[16];
        std::snprintf(key, sizeof key, "p%g", percentile);
        latency[key] = ms / 1000.0;
      }
      phases.push_back({{"name", phase.name},
                        {"startSeconds", static_cast<double>(phase.start_ms) / 1000.0},
                        {"endSeconds", static_cast<double>(phase.end_ms) / 1000.0},
                        {"sent", phase.sent},
                        {"completed", phase.completed},
                        {"errors", phase.errors},
                        {"latencySeconds", latency},
                        {"quality", {{"count", phase.quality.count}, {"mean", phase.quality.mean}, {"min", phase.quality.min}}}});
    }
    result["load"] = {{"phases", phases},
                      {"ledger", load["ledger"]},
                      {"quality", load["quality"]},
                      {"lostJobs", record_.lost_jobs},
                      {"ledgerFile", (fs::path(options_.out_dir) / "ledger.jsonl").string()}};
    if (resume_result_) result["load"]["resume"] = resume_result_->ToJson();
    std::ofstream(fs::path(options_.out_dir) / "load.json")
        << load_result_->ToJson().dump(1, ' ', false, json::error_handler_t::replace) << '\n';
  } else {
    result["load"] = nullptr;
  }
  outcome.result = std::move(result);
  return outcome;
}

DrillOutcome Conductor::Run() {
  auto harness = [&](int code, const Status& status) {
    exit_code_ = code;
    reason_ = status.message();
    Emit("drill", "harness-error", {{"what", status.message()}});
  };
  auto code_for = [](const Status& status) {
    return status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kUnimplemented
               ? kDrillInvalid
               : kDrillHarnessError;
  };
  auto interrupted = [&] {
    if (options_.interrupt == nullptr || !options_.interrupt->load()) return false;
    exit_code_ = kDrillAborted;
    reason_ = "interrupted (Ctrl-C or SIGTERM) while setting up";
    return true;
  };
  t0_ms_ = ToMillis(drill_.Now().time_since_epoch());
  wall0_ = drill_.WallNow();
  real0_ = real_.Now();
  real_wall0_ = real_.WallNow();
  workload_end_ms_ = ToMillis(scenario_.WorkloadDuration());
  sample_every_ms_ = std::max<std::int64_t>(ToMillis(std::chrono::duration_cast<Duration>(200ms * scale_)), 1000);
  // A bug must not leave faults in force or the reports unwritten: an
  // exception aborts the drill like a guardrail would, as a harness error.
  try {
    Status status = Prepare();
    if (!status.ok()) {
      harness(code_for(status), status);
    } else if (status = StartTarget(); !status.ok()) {
      harness(code_for(status), status.WithContext("target"));
    } else if (interrupted()) {
    } else if (status = StartMonitoring(); !status.ok()) {
      harness(code_for(status), status.WithContext("monitoring"));
    } else if (interrupted()) {
    } else if (status = StartLoad(); !status.ok()) {
      harness(code_for(status), status.WithContext("load"));
    } else {
      // The drill's time starts with the load.
      t0_ms_ = ToMillis(drill_.Now().time_since_epoch());
      wall0_ = drill_.WallNow();
      real_wall0_ = real_.WallNow();
      {
        std::lock_guard lock(mutex_);
        for (DrillEvent& event : record_.events) event.t_ms = 0;  // set-up happened before the start
      }
      // Alert states the monitoring saw during set-up are the state at time zero.
      for (DrillRecord::AlertChange change : watcher_->TakeChanges()) {
        change.t_ms = 0;
        RecordAlert(change);
      }
      char scale[32];
      std::snprintf(scale, sizeof scale, "%g", scale_);
      Emit("drill", "start", {{"what", scenario_.metadata.name + " at time scale " + scale}});
      loop_ran_ = true;
      load_->Start();
      while (!Finished()) {
        Tick();
        real_.SleepFor(50ms);
      }
    }
  } catch (const std::exception& error) {
    Abort(kDrillHarnessError, std::string("internal error: ") + error.what());
  }
  try {
    Teardown();
  } catch (const std::exception& error) {
    exit_code_ = kDrillHarnessError;
    reason_ = std::string("internal error while tearing down: ") + error.what() + " (run firedrill recover --wait)";
  }
  if (options_.progress != nullptr && options_.terminal && !status_line_.empty()) *options_.progress << "\r\033[K";
  BuildRecord();
  DrillOutcome outcome = Conclude();
  WriteReports(scenario_, options_, outcome);
  return outcome;
}

}  // namespace

DrillOutcome RunDrill(const Scenario& scenario, const DrillOptions& options) {
  Conductor conductor(scenario, options);
  return conductor.Run();
}

}  // namespace firedrill::engine
