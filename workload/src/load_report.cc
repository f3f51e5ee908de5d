#include "firedrill/workload/load_report.h"

#include <arpa/inet.h>
#include <time.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace firedrill::workload {
namespace {

std::string Milliseconds(std::int64_t nanoseconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f ms", static_cast<double>(nanoseconds) / 1e6);
  return text;
}

nlohmann::json Quantiles(const LatencyHistogram& histogram) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}}) {
    out[name] = histogram.ValueAtQuantile(q);
  }
  out["max"] = histogram.max();
  out["mean"] = histogram.mean();
  out["count"] = histogram.count();
  return out;
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr address{};
  if (inet_pton(AF_INET, std::string(host).c_str(), &address) == 1) {
    return (ntohl(address.s_addr) >> 24) == 127;
  }
  return false;
}

Status CheckLoadTarget(std::string_view target, std::string_view host, bool allow_remote) {
  if (allow_remote || IsLoopbackHost(host)) return Status();
  return FD_STATUS(StatusCode::kInvalidArgument,
                   std::string(target) + ": " + std::string(host) +
                       " is not a loopback address; Firedrill sends load elsewhere only when allowed (--allow-remote)");
}

double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double LoadReport::achieved_rate() const {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? static_cast<double>(answered) / seconds : 0;
}

void LoadReport::Judge(Duration max_schedule_lag) {
  invalid_reasons.clear();
  const double seconds = std::chrono::duration<double>(elapsed).count();
  if (seconds > 0 && threads > 0) {
    const double busy = cpu_seconds / (seconds * threads);
    if (busy > kMaxGeneratorBusyShare) {
      char text[200];
      std::snprintf(text, sizeof text,
                    "the generator's threads were busy %.0f%% of the run (limit %.0f%%): the rate measured may be "
                    "the generator's, not the target's; add --threads or lower the rate",
                    busy * 100, kMaxGeneratorBusyShare * 100);
      invalid_reasons.emplace_back(text);
    }
  }
  if (schedule_lag.count() > 0) {
    const std::int64_t lag = schedule_lag.ValueAtQuantile(0.99);
    if (lag > max_schedule_lag.count()) {
      invalid_reasons.push_back("the generator sent late: schedule lag p99 " + Milliseconds(lag) + " (limit " +
                                Milliseconds(max_schedule_lag.count()) +
                                "), so its latency figures include its own delay");
    }
  }
  valid = invalid_reasons.empty();
}

nlohmann::json LoadReport::ToJson() const {
  nlohmann::json out;
  out["target"] = target;
  out["transport"] = transport;
  out["arrival"] = arrival;
  out["threads"] = threads;
  out["connections"] = connections;
  out["offered_rate"] = offered_rate;
  out["achieved_rate"] = achieved_rate();
  out["elapsed_seconds"] = std::chrono::duration<double>(elapsed).count();
  out["counts"] = {{"scheduled", scheduled}, {"sent", sent},       {"answered", answered},
                   {"failed", failed},       {"errors", errors},   {"unsent", unsent},
                   {"waited_for_connection", waited_for_connection}};
  out["statuses"] = statuses;
  out["error_kinds"] = error_kinds;
  if (!protocols.empty()) out["protocols"] = protocols;
  out["latency_ns"] = {{"corrected", Quantiles(corrected)},
                       {"uncorrected", Quantiles(uncorrected)},
                       {"schedule_lag", Quantiles(schedule_lag)}};
  out["generator"] = {{"cpu_seconds", cpu_seconds}};
  out["valid"] = valid;
  out["invalid_reasons"] = invalid_reasons;
  out["histograms"] = {{"corrected", corrected.ToJson()},
                       {"uncorrected", uncorrected.ToJson()},
                       {"schedule_lag", schedule_lag.ToJson()}};
  return out;
}

std::string LoadReport::Summary() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%s %s (%s), %d thread(s), %d connection(s), %.1f s\n", transport.c_str(),
                target.c_str(), arrival.c_str(), threads, connections, std::chrono::duration<double>(elapsed).count());
  out += line;
  std::snprintf(line, sizeof line,
                "  requests: %lld sent, %lld answered (%lld error statuses), %lld without answer, %lld unsent\n",
                static_cast<long long>(sent), static_cast<long long>(answered), static_cast<long long>(failed),
                static_cast<long long>(errors), static_cast<long long>(unsent));
  out += line;
  std::snprintf(line, sizeof line, "  rate: %.1f/s achieved", achieved_rate());
  out += line;
  if (offered_rate > 0) {
    std::snprintf(line, sizeof line, " of %.1f/s offered", offered_rate);
    out += line;
  }
  out += "\n";
  const auto row = [&](const char* name, const LatencyHistogram& histogram) {
    std::snprintf(line, sizeof line, "  %-12s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", name,
                  Milliseconds(histogram.ValueAtQuantile(0.5)).c_str(),
                  Milliseconds(histogram.ValueAtQuantile(0.9)).c_str(),
                  Milliseconds(histogram.ValueAtQuantile(0.99)).c_str(),
                  Milliseconds(histogram.ValueAtQuantile(0.999)).c_str(), Milliseconds(histogram.max()).c_str());
    out += line;
  };
  row("latency", corrected);
  row("uncorrected", uncorrected);
  if (schedule_lag.count() > 0) row("sched. lag", schedule_lag);
  for (const auto& [kind, count] : error_kinds) {
    std::snprintf(line, sizeof line, "  error: %s x%lld\n", kind.c_str(), static_cast<long long>(count));
    out += line;
  }
  std::snprintf(line, sizeof line, "  generator CPU: %.2f s\n", cpu_seconds);
  out += line;
  if (!valid) {
    out += "  INVALID RUN:\n";
    for (const std::string& reason : invalid_reasons) out += "    " + reason + "\n";
  }
  return out;
}

}  // namespace firedrill::workload
