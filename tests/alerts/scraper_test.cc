#include "firedrill/alerts/scraper.h"

#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <mutex>

#include "firedrill/net/http_server.h"

namespace firedrill::alerts {
namespace {

// A target whose answer the test sets: a real HTTP server on loopback.
class Exporter {
 public:
  Exporter() {
    auto server = net::HttpServer::Start({}, [this](const net::HttpRequest&) {
      std::unique_lock lock(mutex_);
      released_.wait(lock, [this] { return !hold_; });
      return net::HttpResponse{status_, "text/plain; version=0.0.4", body_, {}};
    });
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }
  ~Exporter() { Release(); }
  void Serve(int status, std::string body) {
    std::lock_guard lock(mutex_);
    status_ = status;
    body_ = std::move(body);
  }
  void Hold() {
    std::lock_guard lock(mutex_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard lock(mutex_);
      hold_ = false;
    }
    released_.notify_all();
  }
  std::string url() const { return server_->url() + "/metrics"; }
  std::string instance() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  void Stop() { server_->Stop(); }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool hold_ = false;
  int status_ = 200;
  std::string body_;
  std::unique_ptr<net::HttpServer> server_;
};

double Last(const SeriesStore& store, const LabelSet& match) {
  const std::vector<Series> found = store.Select(match);
  EXPECT_EQ(found.size(), 1u);
  return found.empty() || found[0].points.empty() ? NAN : found[0].points.back().value;
}

TEST(ScraperTest, WritesSamplesWithTargetLabelsAndTheSyntheticSeries) {
  Exporter exporter;
  exporter.Serve(
      200,
      "# TYPE hsof_errors_total counter\nhsof_errors_total 3\nqueue{job=\"fake\"} 7\nold 1 5000\n");
  SeriesStore store;
  Scraper scraper({"hsof-main", exporter.url()}, &store);
  const ScrapeOutcome outcome = scraper.Scrape(60'000);
  ASSERT_TRUE(outcome.up) << outcome.error;
  EXPECT_EQ(outcome.samples, 3u);
  const LabelSet target = {{"instance", exporter.instance()}, {"job", "hsof-main"}};
  EXPECT_EQ(Last(store, {{"__name__", "hsof_errors_total"}, {"job", "hsof-main"}}), 3);
  // The target's job label wins over the exposed one.
  EXPECT_EQ(Last(store, {{"__name__", "queue"}, {"job", "hsof-main"}}), 7);
  EXPECT_EQ(store.Select({{"__name__", "old"}})[0].points[0].t_ms, 5000)
      << "exposed timestamps are honoured";
  EXPECT_EQ(Last(store, {{"__name__", "up"}, {"job", "hsof-main"}}), 1);
  EXPECT_EQ(Last(store, {{"__name__", "scrape_samples_scraped"}}), 3);
  EXPECT_EQ(Last(store, {{"__name__", "scrape_series_added"}}), 3);
  EXPECT_GT(Last(store, {{"__name__", "scrape_duration_seconds"}}), 0);
  EXPECT_EQ(
      store.Select({{"__name__", "up"}})[0].labels,
      (LabelSet{{"__name__", "up"}, {"instance", exporter.instance()}, {"job", "hsof-main"}}));
}

TEST(ScraperTest, VanishedSeriesAndFailedScrapesGoStale) {
  Exporter exporter;
  exporter.Serve(200, "a 1\nb 2\n");
  SeriesStore store;
  Scraper scraper({"job", exporter.url()}, &store);
  ASSERT_TRUE(scraper.Scrape(1000).up);
  exporter.Serve(200, "a 1\n");
  ASSERT_TRUE(scraper.Scrape(2000).up);
  EXPECT_TRUE(IsStaleMarker(Last(store, {{"__name__", "b"}})));
  EXPECT_EQ(Last(store, {{"__name__", "scrape_series_added"}}), 0);

  exporter.Serve(500, "oops");
  const ScrapeOutcome failed = scraper.Scrape(3000);
  EXPECT_FALSE(failed.up);
  EXPECT_EQ(failed.error, "server returned HTTP status 500");
  EXPECT_TRUE(IsStaleMarker(Last(store, {{"__name__", "a"}})));
  EXPECT_EQ(Last(store, {{"__name__", "up"}}), 0);

  exporter.Serve(200, "a 1\nthis is not a metric\n");
  const ScrapeOutcome broken = scraper.Scrape(4000);
  EXPECT_FALSE(broken.up);
  EXPECT_NE(broken.error.find(":2:6: invalid value 'is'"), std::string::npos) << broken.error;

  exporter.Stop();
  const ScrapeOutcome refused = scraper.Scrape(5000);
  EXPECT_FALSE(refused.up);
  EXPECT_FALSE(refused.error.empty());
  EXPECT_EQ(Last(store, {{"__name__", "up"}}), 0);
}

TEST(ScraperTest, AScrapePastItsTimeoutIsDown) {
  Exporter exporter;
  exporter.Serve(200, "a 1\n");
  exporter.Hold();
  SeriesStore store;
  Scraper scraper({"job", exporter.url(), std::chrono::milliseconds(200)}, &store);
  const ScrapeOutcome outcome = scraper.Scrape(1000);
  exporter.Release();
  EXPECT_FALSE(outcome.up);
  EXPECT_NE(outcome.error.find("imed out"), std::string::npos) << outcome.error;
  EXPECT_GE(outcome.duration_seconds, 0.2);
}

TEST(SeriesStoreTest, KeepsOrderRetentionAndStaleness) {
  SeriesStore store(10'000);
  const LabelSet series = {{"__name__", "x"}};
  EXPECT_TRUE(store.Append(series, 1000, 1));
  EXPECT_TRUE(store.Append(series, 2000, 2));
  EXPECT_FALSE(store.Append(series, 1500, 9)) << "out of order";
  EXPECT_TRUE(store.Append(series, 2000, 3)) << "same time replaces";
  EXPECT_TRUE(store.Append({{"__name__", "y"}}, 20'000, 1));
  store.Compact();
  EXPECT_EQ(store.SeriesCount(), 1u) << "x's samples are past the 10 s retention";
  EXPECT_TRUE(std::isnan(StaleMarker()));
  EXPECT_TRUE(IsStaleMarker(StaleMarker()));
  EXPECT_FALSE(IsStaleMarker(std::nan("")));
}

}  // namespace
}  // namespace firedrill::alerts
