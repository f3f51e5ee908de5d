#include "firedrill/alerts/api_clients.h"

#include <curl/curl.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace firedrill::alerts {
namespace {

using nlohmann::json;

struct Reply {
  long status = 0;
  std::string body;
};

std::size_t Collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

long Millis(Duration duration) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

// One line of at most 300 characters, for quoting a server's body in a message.
std::string Excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 300)) out += (c == '\n' || c == '\r') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (text.size() > 300) out += "...";
  return out;
}

StatusCode CodeForHttp(long status) {
  switch (status) {
    case 400:
    case 422:
      return StatusCode::kInvalidArgument;
    case 401:
    case 403:
      return StatusCode::kFailedPrecondition;
    case 404:
      return StatusCode::kNotFound;
    case 408:
    case 504:
      return StatusCode::kDeadlineExceeded;
    case 429:
      return StatusCode::kResourceExhausted;
    default:
      return status >= 500 ? StatusCode::kUnavailable : StatusCode::kInternal;
  }
}

// Prometheus's errorType says more than the HTTP status (503 covers both
// "timeout" and "unavailable").
StatusCode CodeForErrorType(const std::string& type, StatusCode fallback) {
  if (type == "bad_data" || type == "execution") return StatusCode::kInvalidArgument;
  if (type == "timeout") return StatusCode::kDeadlineExceeded;
  if (type == "canceled") return StatusCode::kCancelled;
  if (type == "unavailable") return StatusCode::kUnavailable;
  if (type == "not_found") return StatusCode::kNotFound;
  if (type == "internal") return StatusCode::kInternal;
  return fallback;
}

// The server's own words from an error body: Prometheus's {"errorType",
// "error"}, go-swagger's {"code", "message"}, a JSON string, or plain text.
std::string ServerError(const std::string& body, std::string* error_type) {
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_string()) return Excerpt(parsed.get<std::string>());
  if (parsed.is_object()) {
    if (auto type = parsed.find("errorType"); type != parsed.end() && type->is_string()) {
      *error_type = type->get<std::string>();
    }
    for (const char* key : {"error", "message"}) {
      if (auto it = parsed.find(key); it != parsed.end() && it->is_string()) {
        return Excerpt(it->get<std::string>());
      }
    }
    return Excerpt(parsed.dump());
  }
  return Excerpt(body);
}

struct Request {
  Request(const char* method_in, std::string url_in, std::string body_in = "",
          const char* content_type_in = nullptr)
      : method(method_in),
        url(std::move(url_in)),
        body(std::move(body_in)),
        content_type(content_type_in) {}
  const char* method;
  std::string url;
  std::string body;
  const char* content_type;  // set for a request with a body
};

// Sends one request on `curl` (reset first, so its connection is reused) and
// turns transport failures and non-2xx answers into a Status that names the
// method, the URL, the HTTP status and what the server said.
Result<Reply> Perform(void* handle, const ApiClientOptions& options, const Request& request) {
  CURL* curl = static_cast<CURL*>(handle);
  const std::string where = std::string(request.method) + " " + request.url;
  if (curl == nullptr) return FD_STATUS(StatusCode::kInternal, where + ": curl_easy_init failed");
  curl_easy_reset(curl);
  Reply reply;
  char error[CURL_ERROR_SIZE] = {};
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (request.content_type != nullptr) {
    headers =
        curl_slist_append(headers, (std::string("Content-Type: ") + request.content_type).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Millis(options.timeout));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, Millis(options.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  if (std::string_view(request.method) == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
  } else if (std::string_view(request.method) != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method);
  }
  const CURLcode code = curl_easy_perform(curl);
  // The handle outlives this frame's buffers; it must not keep pointers to them.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    const std::string why = error[0] ? error : curl_easy_strerror(code);
    if (code == CURLE_OPERATION_TIMEDOUT) {
      return FD_STATUS(StatusCode::kDeadlineExceeded, where + ": no answer within " +
                                                          std::to_string(Millis(options.timeout)) +
                                                          " ms (" + why + ")");
    }
    return FD_STATUS(StatusCode::kUnavailable, where + ": " + why);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  if (reply.status < 200 || reply.status > 299) {
    std::string error_type;
    const std::string said = ServerError(reply.body, &error_type);
    const StatusCode status_code = CodeForErrorType(error_type, CodeForHttp(reply.status));
    std::string message = where + ": HTTP " + std::to_string(reply.status);
    if (!error_type.empty()) message += " (" + error_type + ")";
    if (!said.empty()) message += ": " + said;
    return FD_STATUS(status_code, message);
  }
  return reply;
}

std::string Escape(void* curl, const std::string& text) {
  char* escaped =
      curl_easy_escape(static_cast<CURL*>(curl), text.c_str(), static_cast<int>(text.size()));
  std::string out = escaped ? escaped : "";
  curl_free(escaped);
  return out;
}

// Seconds with millisecond precision, the way Prometheus takes times and steps.
std::string Seconds(std::int64_t ms) {
  const char* sign = ms < 0 ? "-" : "";
  const std::int64_t magnitude = ms < 0 ? -ms : ms;
  std::string fraction = std::to_string(magnitude % 1000);
  fraction.insert(0, 3 - fraction.size(), '0');
  return sign + std::to_string(magnitude / 1000) + "." + fraction;
}

std::int64_t EpochMillis(WallTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

// Decoding helpers for use inside Decode(): they throw, and Decode turns any
// exception into a Status.
double ValueOf(const json& text) {
  Result<double> value = ParsePrometheusValue(text.get<std::string>());
  if (!value.ok()) throw std::runtime_error(value.status().message());
  return *value;
}

WallTime TimeOf(const json& text) {
  Result<WallTime> time = ParseRfc3339(text.get<std::string>());
  if (!time.ok()) throw std::runtime_error(time.status().message());
  return *time;
}

WallTime OptionalTime(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? WallTime{} : TimeOf(*it);
}

LabelMap LabelsOf(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? LabelMap{} : it->get<LabelMap>();
}

std::string StringOf(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? std::string() : it->get<std::string>();
}

Duration SecondsDuration(const json& seconds) {
  return Duration(static_cast<Duration::rep>(std::llround(seconds.get<double>() * 1e9)));
}

// A [timestamp, "value"] pair.
InstantSample PairOf(const json& pair) {
  InstantSample sample;
  sample.timestamp_ms = std::llround(pair.at(0).get<double>() * 1000);
  sample.value = ValueOf(pair.at(1));
  return sample;
}

template <typename F>
auto Decode(const std::string& where, F&& decode) -> decltype(decode()) {
  try {
    return decode();
  } catch (const std::exception& e) {
    return FD_STATUS(StatusCode::kInternal, where + ": unexpected response: " + e.what());
  }
}

// Sends `request` and unwraps Prometheus's {"status", "data", "warnings"}
// envelope; `context` (e.g. the query) prefixes any error.
Result<json> PrometheusCall(void* curl, const ApiClientOptions& options, const Request& request,
                            const std::string& context = "",
                            std::vector<std::string>* warnings = nullptr) {
  Result<Reply> reply = Perform(curl, options, request);
  if (!reply.ok()) return context.empty() ? reply.status() : reply.status().WithContext(context);
  const std::string where = std::string(request.method) + " " + request.url;
  return Decode(where, [&]() -> Result<json> {
    json parsed = json::parse(reply->body);
    if (parsed.at("status").get<std::string>() != "success") {
      Status status(CodeForErrorType(StringOf(parsed, "errorType"), StatusCode::kInternal),
                    where + ": " + StringOf(parsed, "errorType") + ": " + StringOf(parsed, "error"),
                    __FILE__, __LINE__);
      return context.empty() ? status : status.WithContext(context);
    }
    if (warnings != nullptr && parsed.contains("warnings")) {
      *warnings = parsed["warnings"].get<std::vector<std::string>>();
    }
    return std::move(parsed["data"]);
  });
}

QueryResult QueryResultOf(const json& data) {
  QueryResult out;
  out.result_type = data.at("resultType").get<std::string>();
  const json& result = data.at("result");
  if (out.result_type == "vector") {
    for (const json& item : result) {
      InstantSample sample = PairOf(item.at("value"));
      sample.labels = LabelsOf(item, "metric");
      out.samples.push_back(std::move(sample));
    }
  } else if (out.result_type == "matrix") {
    for (const json& item : result) {
      RangeSeries series;
      series.labels = LabelsOf(item, "metric");
      for (const json& pair : item.at("values")) series.points.push_back(PairOf(pair));
      out.series.push_back(std::move(series));
    }
  } else if (out.result_type == "scalar") {
    out.samples.push_back(PairOf(result));
  } else if (out.result_type == "string") {
    out.string_value = result.at(1).get<std::string>();
  } else {
    throw std::runtime_error("unknown resultType \"" + out.result_type + "\"");
  }
  return out;
}

PrometheusAlert PrometheusAlertOf(const json& item) {
  PrometheusAlert alert;
  alert.labels = LabelsOf(item, "labels");
  alert.annotations = LabelsOf(item, "annotations");
  alert.state = item.at("state").get<std::string>();
  alert.active_at = OptionalTime(item, "activeAt");
  alert.value = ValueOf(item.at("value"));
  return alert;
}

PrometheusRule PrometheusRuleOf(const json& item) {
  PrometheusRule rule;
  rule.type = item.at("type").get<std::string>();
  rule.name = item.at("name").get<std::string>();
  rule.query = item.at("query").get<std::string>();
  rule.labels = LabelsOf(item, "labels");
  rule.annotations = LabelsOf(item, "annotations");
  rule.health = StringOf(item, "health");
  rule.last_error = StringOf(item, "lastError");
  rule.state = StringOf(item, "state");
  if (auto it = item.find("duration"); it != item.end()) rule.duration = SecondsDuration(*it);
  if (auto it = item.find("alerts"); it != item.end() && it->is_array()) {
    for (const json& alert : *it) rule.alerts.push_back(PrometheusAlertOf(alert));
  }
  return rule;
}

AlertmanagerAlert AlertmanagerAlertOf(const json& item) {
  AlertmanagerAlert alert;
  alert.labels = LabelsOf(item, "labels");
  alert.annotations = LabelsOf(item, "annotations");
  alert.starts_at = OptionalTime(item, "startsAt");
  alert.ends_at = OptionalTime(item, "endsAt");
  alert.updated_at = OptionalTime(item, "updatedAt");
  alert.generator_url = StringOf(item, "generatorURL");
  alert.fingerprint = StringOf(item, "fingerprint");
  const json& status = item.at("status");
  alert.state = status.at("state").get<std::string>();
  alert.silenced_by = status.value("silencedBy", std::vector<std::string>());
  alert.inhibited_by = status.value("inhibitedBy", std::vector<std::string>());
  if (auto it = item.find("receivers"); it != item.end() && it->is_array()) {
    for (const json& receiver : *it) alert.receivers.push_back(StringOf(receiver, "name"));
  }
  return alert;
}

Silence SilenceOf(const json& item) {
  Silence silence;
  silence.id = item.at("id").get<std::string>();
  for (const json& matcher : item.at("matchers")) {
    silence.matchers.push_back({matcher.at("name").get<std::string>(),
                                matcher.at("value").get<std::string>(),
                                matcher.value("isRegex", false), matcher.value("isEqual", true)});
  }
  silence.starts_at = OptionalTime(item, "startsAt");
  silence.ends_at = OptionalTime(item, "endsAt");
  silence.updated_at = OptionalTime(item, "updatedAt");
  silence.created_by = StringOf(item, "createdBy");
  silence.comment = StringOf(item, "comment");
  if (auto it = item.find("status"); it != item.end()) silence.state = StringOf(*it, "state");
  return silence;
}

std::string Where(const Request& request) {
  return std::string(request.method) + " " + request.url;
}

}  // namespace

// ---- PrometheusClient ----

PrometheusClient::PrometheusClient(std::string base_url, ApiClientOptions options)
    : base_url_(std::move(base_url)), options_(options), curl_(curl_easy_init()) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

PrometheusClient::~PrometheusClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<QueryResult> PrometheusClient::Query(const std::string& expr, std::optional<WallTime> time) {
  std::lock_guard lock(mutex_);
  // POSTed as a form, so long expressions never meet a URL length limit.
  Request request{"POST", base_url_ + "/api/v1/query", "query=" + Escape(curl_, expr),
                  "application/x-www-form-urlencoded"};
  if (time) request.body += "&time=" + Seconds(EpochMillis(*time));
  std::vector<std::string> warnings;
  FD_ASSIGN_OR_RETURN(
      json data, PrometheusCall(curl_, options_, request, "query \"" + expr + "\"", &warnings));
  Result<QueryResult> result =
      Decode(Where(request), [&]() -> Result<QueryResult> { return QueryResultOf(data); });
  if (result.ok()) result->warnings = std::move(warnings);
  return result;
}

Result<QueryResult> PrometheusClient::QueryRange(const std::string& expr, WallTime start,
                                                 WallTime end, Duration step) {
  std::lock_guard lock(mutex_);
  const std::int64_t step_ms = std::chrono::duration_cast<std::chrono::milliseconds>(step).count();
  Request request{"POST", base_url_ + "/api/v1/query_range",
                  "query=" + Escape(curl_, expr) + "&start=" + Seconds(EpochMillis(start)) +
                      "&end=" + Seconds(EpochMillis(end)) + "&step=" + Seconds(step_ms),
                  "application/x-www-form-urlencoded"};
  std::vector<std::string> warnings;
  FD_ASSIGN_OR_RETURN(json data, PrometheusCall(curl_, options_, request,
                                                "range query \"" + expr + "\"", &warnings));
  Result<QueryResult> result =
      Decode(Where(request), [&]() -> Result<QueryResult> { return QueryResultOf(data); });
  if (result.ok()) result->warnings = std::move(warnings);
  return result;
}

Result<std::vector<PrometheusAlert>> PrometheusClient::Alerts() {
  std::lock_guard lock(mutex_);
  const Request request{"GET", base_url_ + "/api/v1/alerts"};
  FD_ASSIGN_OR_RETURN(json data, PrometheusCall(curl_, options_, request));
  return Decode(Where(request), [&]() -> Result<std::vector<PrometheusAlert>> {
    std::vector<PrometheusAlert> alerts;
    for (const json& item : data.at("alerts")) alerts.push_back(PrometheusAlertOf(item));
    return alerts;
  });
}

Result<std::vector<PrometheusRuleGroup>> PrometheusClient::Rules() {
  std::lock_guard lock(mutex_);
  const Request request{"GET", base_url_ + "/api/v1/rules"};
  FD_ASSIGN_OR_RETURN(json data, PrometheusCall(curl_, options_, request));
  return Decode(Where(request), [&]() -> Result<std::vector<PrometheusRuleGroup>> {
    std::vector<PrometheusRuleGroup> groups;
    for (const json& item : data.at("groups")) {
      PrometheusRuleGroup group;
      group.name = item.at("name").get<std::string>();
      group.file = StringOf(item, "file");
      if (auto it = item.find("interval"); it != item.end()) group.interval = SecondsDuration(*it);
      for (const json& rule : item.at("rules")) group.rules.push_back(PrometheusRuleOf(rule));
      groups.push_back(std::move(group));
    }
    return groups;
  });
}

Result<std::vector<PrometheusTarget>> PrometheusClient::Targets() {
  std::lock_guard lock(mutex_);
  const Request request{"GET", base_url_ + "/api/v1/targets?state=active"};
  FD_ASSIGN_OR_RETURN(json data, PrometheusCall(curl_, options_, request));
  return Decode(Where(request), [&]() -> Result<std::vector<PrometheusTarget>> {
    std::vector<PrometheusTarget> targets;
    for (const json& item : data.at("activeTargets")) {
      targets.push_back({LabelsOf(item, "labels"), StringOf(item, "scrapeUrl"),
                         StringOf(item, "health"), StringOf(item, "lastError"),
                         OptionalTime(item, "lastScrape")});
    }
    return targets;
  });
}

Result<std::vector<std::string>> PrometheusClient::Alertmanagers() {
  std::lock_guard lock(mutex_);
  const Request request{"GET", base_url_ + "/api/v1/alertmanagers"};
  FD_ASSIGN_OR_RETURN(json data, PrometheusCall(curl_, options_, request));
  return Decode(Where(request), [&]() -> Result<std::vector<std::string>> {
    std::vector<std::string> urls;
    for (const json& item : data.at("activeAlertmanagers")) urls.push_back(StringOf(item, "url"));
    return urls;
  });
}

Status PrometheusClient::Ready() {
  std::lock_guard lock(mutex_);
  return Perform(curl_, options_, {"GET", base_url_ + "/-/ready"}).status();
}

Status PrometheusClient::Reload() {
  std::lock_guard lock(mutex_);
  return Perform(curl_, options_, {"POST", base_url_ + "/-/reload"}).status();
}

// ---- AlertmanagerClient ----

AlertmanagerClient::AlertmanagerClient(std::string base_url, ApiClientOptions options)
    : base_url_(std::move(base_url)), options_(options), curl_(curl_easy_init()) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

AlertmanagerClient::~AlertmanagerClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<std::vector<AlertmanagerAlert>> AlertmanagerClient::Alerts(const AlertFilter& filter) {
  std::lock_guard lock(mutex_);
  auto flag = [](bool on) { return on ? "true" : "false"; };
  Request request{"GET", base_url_ + "/api/v2/alerts?active=" + flag(filter.active) + "&silenced=" +
                             flag(filter.silenced) + "&inhibited=" + flag(filter.inhibited) +
                             "&unprocessed=" + flag(filter.unprocessed)};
  for (const std::string& matcher : filter.matchers) {
    request.url += "&filter=" + Escape(curl_, matcher);
  }
  FD_ASSIGN_OR_RETURN(Reply reply, Perform(curl_, options_, request));
  return Decode(Where(request), [&]() -> Result<std::vector<AlertmanagerAlert>> {
    std::vector<AlertmanagerAlert> alerts;
    for (const json& item : json::parse(reply.body)) alerts.push_back(AlertmanagerAlertOf(item));
    return alerts;
  });
}

Status AlertmanagerClient::PostAlerts(const std::vector<PostableAlert>& alerts) {
  std::lock_guard lock(mutex_);
  json body = json::array();
  for (const PostableAlert& alert : alerts) {
    json item = {{"labels", alert.labels}, {"annotations", alert.annotations}};
    if (alert.starts_at) item["startsAt"] = FormatRfc3339(*alert.starts_at);
    if (alert.ends_at) item["endsAt"] = FormatRfc3339(*alert.ends_at);
    // The API requires a URI here, so an empty one is left out rather than sent.
    if (!alert.generator_url.empty()) item["generatorURL"] = alert.generator_url;
    body.push_back(std::move(item));
  }
  return Perform(curl_, options_,
                 {"POST", base_url_ + "/api/v2/alerts", body.dump(), "application/json"})
      .status();
}

Result<std::vector<Silence>> AlertmanagerClient::Silences() {
  std::lock_guard lock(mutex_);
  const Request request{"GET", base_url_ + "/api/v2/silences"};
  FD_ASSIGN_OR_RETURN(Reply reply, Perform(curl_, options_, request));
  return Decode(Where(request), [&]() -> Result<std::vector<Silence>> {
    std::vector<Silence> silences;
    for (const json& item : json::parse(reply.body)) silences.push_back(SilenceOf(item));
    return silences;
  });
}

Result<Silence> AlertmanagerClient::GetSilence(const std::string& id) {
  std::lock_guard lock(mutex_);
  const Request request{"GET", base_url_ + "/api/v2/silence/" + Escape(curl_, id)};
  FD_ASSIGN_OR_RETURN(Reply reply, Perform(curl_, options_, request));
  return Decode(Where(request),
                [&]() -> Result<Silence> { return SilenceOf(json::parse(reply.body)); });
}

Result<std::string> AlertmanagerClient::CreateSilence(const Silence& silence) {
  std::lock_guard lock(mutex_);
  json matchers = json::array();
  for (const SilenceMatcher& matcher : silence.matchers) {
    matchers.push_back({{"name", matcher.name},
                        {"value", matcher.value},
                        {"isRegex", matcher.is_regex},
                        {"isEqual", matcher.is_equal}});
  }
  json body = {{"matchers", matchers},
               {"startsAt", FormatRfc3339(silence.starts_at)},
               {"endsAt", FormatRfc3339(silence.ends_at)},
               {"createdBy", silence.created_by},
               {"comment", silence.comment}};
  if (!silence.id.empty()) body["id"] = silence.id;
  const Request request{"POST", base_url_ + "/api/v2/silences", body.dump(), "application/json"};
  FD_ASSIGN_OR_RETURN(Reply reply, Perform(curl_, options_, request));
  return Decode(Where(request), [&]() -> Result<std::string> {
    return json::parse(reply.body).at("silenceID").get<std::string>();
  });
}

Status AlertmanagerClient::DeleteSilence(const std::string& id) {
  std::lock_guard lock(mutex_);
  return Perform(curl_, options_, {"DELETE", base_url_ + "/api/v2/silence/" + Escape(curl_, id)})
      .status();
}

Status AlertmanagerClient::Ready() {
  std::lock_guard lock(mutex_);
  return Perform(curl_, options_, {"GET", base_url_ + "/-/ready"}).status();
}

// ---- Encodings ----

Result<double> ParsePrometheusValue(std::string_view text) {
  std::string_view digits = text;
  // from_chars takes no leading '+', which Prometheus writes for "+Inf".
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || (digits.front() == '-' && text.front() == '+') || error != std::errc() ||
      end != digits.data() + digits.size()) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "\"" + std::string(text) + "\" is not a Prometheus sample value");
  }
  return value;
}

Result<WallTime> ParseRfc3339(std::string_view text) {
  const auto fail = [&](const char* why) -> Status {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "\"" + std::string(text) + "\" is not an RFC 3339 time: " + why);
  };
  std::size_t at = 0;
  // Reads exactly `width` digits.
  const auto number = [&](std::size_t width, int* out) {
    if (at + width > text.size()) return false;
    int value = 0;
    for (std::size_t i = 0; i < width; ++i) {
      const char c = text[at + i];
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    at += width;
    *out = value;
    return true;
  };
  const auto expect = [&](std::string_view any_of) {
    if (at >= text.size() || any_of.find(text[at]) == std::string_view::npos) return false;
    ++at;
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!number(4, &year) || !expect("-") || !number(2, &month) || !expect("-") || !number(2, &day) ||
      !expect("Tt ") || !number(2, &hour) || !expect(":") || !number(2, &minute) || !expect(":") ||
      !number(2, &second)) {
    return fail("expected YYYY-MM-DDTHH:MM:SS");
  }
  std::int64_t nanos = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (digits < 9) nanos = nanos * 10 + (text[at] - '0');
      ++digits;
      ++at;
    }
    if (digits == 0) return fail("expected digits after '.'");
    for (int i = digits; i < 9; ++i) nanos *= 10;
  }
  int offset_seconds = 0;
  if (expect("Zz")) {
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int sign = text[at] == '-' ? -1 : 1;
    ++at;
    int offset_hours = 0, offset_minutes = 0;
    if (!number(2, &offset_hours) || !expect(":") || !number(2, &offset_minutes)) {
      return fail("expected a zone offset +HH:MM");
    }
    offset_seconds = sign * (offset_hours * 3600 + offset_minutes * 60);
  } else {
    return fail("expected 'Z' or a zone offset");
  }
  if (at != text.size()) return fail("unexpected text after the time");
  if (year == 1 && month == 1 && day == 1 && hour == 0 && minute == 0 && second == 0 &&
      nanos == 0 && offset_seconds == 0) {
    return WallTime{};
  }
  const std::chrono::year_month_day date{std::chrono::year(year),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return fail("no such date or time");
  // WallTime counts nanoseconds in 64 bits: about 1678 to 2262.
  if (year < 1678 || year > 2261) return fail("outside the years 1678 to 2261");
  const std::int64_t seconds =
      static_cast<std::int64_t>(std::chrono::sys_days(date).time_since_epoch().count()) * 86400 +
      hour * 3600 + minute * 60 + second - offset_seconds;
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::seconds(seconds) +
                                                                 std::chrono::nanoseconds(nanos)));
}

std::string FormatRfc3339(WallTime time) {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(time);
  const auto day = std::chrono::floor<std::chrono::days>(ms);
  const std::chrono::year_month_day date(day);
  const std::chrono::hh_mm_ss clock(ms - day);
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(date.year()),
                unsigned(date.month()), unsigned(date.day()), int(clock.hours().count()),
                int(clock.minutes().count()), int(clock.seconds().count()),
                int(clock.subseconds().count()));
  return text;
}

}  // namespace firedrill::alerts
