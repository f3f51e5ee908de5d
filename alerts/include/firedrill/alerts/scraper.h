// Scrapes a /metrics endpoint into a SeriesStore the way Prometheus 2.42
// does: the exposition's samples get `job` and `instance` labels and the
// scrape's time (exposed timestamps are honoured, as honor_timestamps
// defaults to true); `up`, `scrape_duration_seconds`, `scrape_samples_scraped`
// and `scrape_series_added` are written for every scrape; a failed scrape
// marks every series of the last good one stale, and a series that vanishes
// from one scrape to the next is marked stale too.
//
// Thread-safety: one Scrape at a time per Scraper.
#pragma once

#include <chrono>
#include <set>
#include <string>

#include "firedrill/alerts/series_store.h"
#include "firedrill/core/clock.h"

namespace firedrill::alerts {

struct ScrapeTarget {
  std::string job;
  std::string url;  // http://127.0.0.1:PORT/metrics
  Duration timeout = std::chrono::seconds(10);
};

struct ScrapeOutcome {
  bool up = false;
  std::string error;  // why not, when not up
  std::size_t samples = 0;
  double duration_seconds = 0;
};

class Scraper {
 public:
  Scraper(ScrapeTarget target, SeriesStore* store);
  ~Scraper();
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;

  // One scrape, stamped `now_ms` (the evaluation clock's time).
  ScrapeOutcome Scrape(std::int64_t now_ms);

 private:
  void Write(const std::string& name, double value, std::int64_t t_ms);

  ScrapeTarget target_;
  std::string instance_;
  SeriesStore* store_;
  void* curl_ = nullptr;  // one handle, so connections are kept alive
  std::set<LabelSet> last_series_;
};

}  // namespace firedrill::alerts
