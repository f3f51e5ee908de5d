#include "firedrill/workload/ledger.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace firedrill::workload {

std::string_view JobOutcomeName(JobOutcome outcome) {
  switch (outcome) {
    case JobOutcome::kSubmitting:
      return "submitting";
    case JobOutcome::kAccepted:
      return "accepted";
    case JobOutcome::kRejected:
      return "rejected";
    case JobOutcome::kCompleted:
      return "completed";
    case JobOutcome::kFailed:
      return "failed";
    case JobOutcome::kLost:
      return "lost";
  }
  return "?";
}

std::string LedgerSummary::ToString() const {
  std::string out = std::to_string(submitted) + " submitted, " + std::to_string(accepted) +
                    " accepted, " + std::to_string(completed) + " completed, " +
                    std::to_string(failed) + " failed, " + std::to_string(lost) + " lost, " +
                    std::to_string(rejected) + " rejected";
  if (unanswered > 0) out += ", " + std::to_string(unanswered) + " never answered";
  if (!duplicated_keys.empty()) {
    out += ", " + std::to_string(duplicated_keys.size()) + " idempotency keys accepted twice";
  }
  return out;
}

Result<std::unique_ptr<JobLedger>> JobLedger::OpenFile(const std::string& path) {
  auto ledger = std::make_unique<JobLedger>();
  ledger->file_.open(path, std::ios::trunc);
  if (!ledger->file_) {
    return FD_STATUS(StatusCode::kUnavailable, path + ": cannot write the job ledger");
  }
  return ledger;
}

Result<std::unique_ptr<JobLedger>> JobLedger::ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return FD_STATUS(StatusCode::kNotFound, path + ": cannot read the job ledger");
  auto ledger = std::make_unique<JobLedger>();
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    const nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
    if (event.is_discarded() || !event.is_object() || !event.contains("event") ||
        !event["event"].is_string() || !event.contains("t") || !event["t"].is_number_integer()) {
      // A crash can cut the last line short; anything else is damage.
      if (in.peek() == EOF) break;
      return FD_STATUS(StatusCode::kInvalidArgument,
                       where + "not a ledger event (want {\"t\", \"event\", \"key\", \"value\"})");
    }
    auto text = [&](const char* field) {
      return event.contains(field) && event[field].is_string() ? event[field].get<std::string>()
                                                               : "";
    };
    Status status = ledger->Apply(event["event"].get<std::string>(), text("key"), text("value"),
                                  event["t"].get<std::int64_t>(), false);
    if (!status.ok()) return FD_STATUS(StatusCode::kInvalidArgument, where + status.message());
  }
  return ledger;
}

Status JobLedger::Submit(const std::string& key, std::int64_t t_ms) {
  return Apply("submit", key, "", t_ms, true);
}
Status JobLedger::Attempt(const std::string& key, std::int64_t t_ms) {
  return Apply("attempt", key, "", t_ms, true);
}
Status JobLedger::Accept(const std::string& key, const std::string& job_id, std::int64_t t_ms) {
  return Apply("accept", key, job_id, t_ms, true);
}
Status JobLedger::Reject(const std::string& key, const std::string& reason, std::int64_t t_ms) {
  return Apply("reject", key, reason, t_ms, true);
}
Status JobLedger::Complete(const std::string& job_id, std::int64_t t_ms) {
  return Apply("complete", job_id, "", t_ms, true);
}
Status JobLedger::Fail(const std::string& job_id, const std::string& reason, std::int64_t t_ms) {
  return Apply("fail", job_id, reason, t_ms, true);
}

Status JobLedger::Apply(const std::string& event, const std::string& key, const std::string& value,
                        std::int64_t t_ms, bool write) {
  std::lock_guard lock(mutex_);
  auto entry_for_key = [&]() -> LedgerEntry* {
    const auto found = by_key_.find(key);
    return found == by_key_.end() ? nullptr : &entries_[found->second];
  };
  auto entry_for_job = [&]() -> LedgerEntry* {
    const auto found = by_job_.find(key);
    return found == by_job_.end() ? nullptr : &entries_[found->second];
  };
  if (event == "submit") {
    if (by_key_.count(key))
      return FD_STATUS(StatusCode::kAlreadyExists,
                       "idempotency key " + key + " was entered before");
    by_key_[key] = entries_.size();
    LedgerEntry entry;
    entry.key = key;
    entry.submitted_ms = t_ms;
    entries_.push_back(std::move(entry));
  } else if (event == "attempt" || event == "accept" || event == "reject") {
    LedgerEntry* entry = entry_for_key();
    if (!entry)
      return FD_STATUS(StatusCode::kNotFound, "idempotency key " + key + " was never submitted");
    if (event == "attempt") {
      ++entry->attempts;
    } else if (event == "accept") {
      if (!entry->job_id.empty() && entry->job_id != value) {
        // The pipeline made a second job for one key: idempotency broke.
        if (std::find(duplicated_keys_.begin(), duplicated_keys_.end(), key) ==
            duplicated_keys_.end()) {
          duplicated_keys_.push_back(key);
        }
      } else if (entry->job_id.empty()) {
        entry->job_id = value;
        entry->accepted_ms = t_ms;
        by_job_[value] = static_cast<std::size_t>(entry - entries_.data());
      }
      if (entry->outcome == JobOutcome::kSubmitting || entry->outcome == JobOutcome::kRejected) {
        entry->outcome = JobOutcome::kAccepted;
        entry->reason.clear();
      }
    } else if (entry->outcome == JobOutcome::kSubmitting) {
      entry->outcome = JobOutcome::kRejected;
      entry->reason = value;
      entry->finished_ms = t_ms;
    }
  } else if (event == "complete" || event == "fail") {
    LedgerEntry* entry = entry_for_job();
    if (!entry) return FD_STATUS(StatusCode::kNotFound, "job " + key + " was never accepted");
    // The first outcome stands; a lost job that turns up later still counts.
    if (entry->outcome == JobOutcome::kAccepted || entry->outcome == JobOutcome::kLost) {
      entry->outcome = event == "complete" ? JobOutcome::kCompleted : JobOutcome::kFailed;
      entry->reason = value;
      entry->finished_ms = t_ms;
    }
  } else if (event == "close") {
    for (LedgerEntry& entry : entries_) {
      if (entry.outcome == JobOutcome::kAccepted) {
        entry.outcome = JobOutcome::kLost;
        entry.finished_ms = t_ms;
      }
    }
  } else {
    return FD_STATUS(StatusCode::kInvalidArgument, "unknown ledger event \"" + event + "\"");
  }
  if (write && file_.is_open()) {
    // Reasons quote what servers sent, which need not be UTF-8: replace
    // bad bytes rather than throw on a client's I/O thread.
    file_ << nlohmann::json{{"t", t_ms}, {"event", event}, {"key", key}, {"value", value}}.dump(
                 -1, ' ', false, nlohmann::json::error_handler_t::replace)
          << '\n';
    file_.flush();
  }
  return Status::Ok();
}

LedgerSummary JobLedger::Close(std::int64_t t_ms) {
  (void)Apply("close", "", "", t_ms, true);
  return Summary();
}

LedgerSummary JobLedger::Summary() const {
  std::lock_guard lock(mutex_);
  return SummaryLocked();
}

LedgerSummary JobLedger::SummaryLocked() const {
  LedgerSummary summary;
  for (const LedgerEntry& entry : entries_) {
    ++summary.submitted;
    if (!entry.job_id.empty()) ++summary.accepted;
    switch (entry.outcome) {
      case JobOutcome::kSubmitting:
        ++summary.unanswered;
        break;
      case JobOutcome::kAccepted:
        break;
      case JobOutcome::kRejected:
        ++summary.rejected;
        ++summary.rejected_by_reason[entry.reason];
        break;
      case JobOutcome::kCompleted:
        ++summary.completed;
        break;
      case JobOutcome::kFailed:
        ++summary.failed;
        ++summary.failed_by_reason[entry.reason];
        break;
      case JobOutcome::kLost:
        ++summary.lost;
        break;
    }
  }
  summary.duplicated_keys = duplicated_keys_;
  return summary;
}

std::vector<LedgerEntry> JobLedger::Entries() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

std::vector<std::string> JobLedger::Unfinished() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const LedgerEntry& entry : entries_) {
    if (entry.outcome == JobOutcome::kAccepted) out.push_back(entry.job_id);
  }
  return out;
}

}  // namespace firedrill::workload
