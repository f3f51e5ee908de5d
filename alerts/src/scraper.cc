#include "firedrill/alerts/scraper.h"

#include <curl/curl.h>

#include <algorithm>

namespace firedrill::alerts {
namespace {

// What Prometheus 2.42 asks for: OpenMetrics first, then the text format.
constexpr char kAccept[] =
    "Accept: "
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

std::string InstanceOf(const std::string& url) {
  const std::size_t scheme = url.find("://");
  const std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const std::size_t end = url.find('/', start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::size_t Collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

Scraper::Scraper(ScrapeTarget target, SeriesStore* store)
    : target_(std::move(target)),
      instance_(InstanceOf(target_.url)),
      store_(store),
      curl_(curl_easy_init()) {}

Scraper::~Scraper() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

void Scraper::Write(const std::string& name, double value, std::int64_t t_ms) {
  store_->Append(WithName({name, {{"instance", instance_}, {"job", target_.job}}, 0, {}}), t_ms,
                 value);
}

ScrapeOutcome Scraper::Scrape(std::int64_t now_ms) {
  ScrapeOutcome outcome;
  CURL* curl = static_cast<CURL*>(curl_);
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  curl_slist* headers = curl_slist_append(nullptr, kAccept);
  curl_easy_setopt(curl, CURLOPT_URL, target_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(
      curl, CURLOPT_TIMEOUT_MS,
      static_cast<long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(target_.timeout).count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const auto started = std::chrono::steady_clock::now();
  const CURLcode code = curl_easy_perform(curl);
  outcome.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  curl_slist_free_all(headers);

  Result<Exposition> exposition = FD_STATUS(StatusCode::kUnavailable, "not scraped");
  long status = 0;
  if (code != CURLE_OK) {
    outcome.error = error[0] ? error : curl_easy_strerror(code);
  } else if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status); status != 200) {
    outcome.error = "server returned HTTP status " + std::to_string(status);
  } else {
    char* type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    exposition = ParseExposition(body, target_.url, FormatFromContentType(type ? type : ""));
    if (!exposition.ok()) outcome.error = std::string(exposition.status().message());
  }

  std::set<LabelSet> seen;
  std::size_t added = 0;
  if (outcome.error.empty()) {
    outcome.up = true;
    for (const Sample& sample : exposition->samples) {
      LabelSet labels = sample.labels;
      // Target labels win unless the exposition set them (honor_labels: false
      // would rename those to exported_*; Firedrill keeps the target's).
      std::erase_if(labels, [](const auto& label) {
        return label.first == "job" || label.first == "instance";
      });
      labels.emplace_back("job", target_.job);
      labels.emplace_back("instance", instance_);
      labels.emplace_back("__name__", sample.name);
      std::sort(labels.begin(), labels.end());
      store_->Append(labels, sample.timestamp_ms.value_or(now_ms), sample.value);
      added += !last_series_.count(labels);
      seen.insert(std::move(labels));
    }
    outcome.samples = exposition->samples.size();
  }
  // Series of the last good scrape that this one lacks (all of them when it
  // failed) end with a staleness marker.
  for (const LabelSet& labels : last_series_) {
    if (!seen.count(labels)) store_->Append(labels, now_ms, StaleMarker());
  }
  if (outcome.up) last_series_ = std::move(seen);
  if (!outcome.up) last_series_.clear();
  Write("up", outcome.up ? 1 : 0, now_ms);
  Write("scrape_duration_seconds", outcome.duration_seconds, now_ms);
  Write("scrape_samples_scraped", static_cast<double>(outcome.samples), now_ms);
  Write("scrape_series_added", static_cast<double>(added), now_ms);
  return outcome;
}

}  // namespace firedrill::alerts
