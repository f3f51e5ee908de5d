#include "firedrill/pipeline/job.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace firedrill::pipeline {
namespace {

using nlohmann::json;

Status FieldError(const std::string& field, const std::string& message) {
  return FD_STATUS(StatusCode::kInvalidArgument, "field '" + field + "': " + message);
}

// A value as an error message shows it: containers by their size only, so a
// deeply nested one is never walked.
std::string Shown(const json& value) {
  if (value.is_array()) {
    return value.empty() ? "[]" : "an array of " + std::to_string(value.size()) + " items";
  }
  if (value.is_object()) {
    return value.empty() ? "{}" : "an object of " + std::to_string(value.size()) + " fields";
  }
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// Nesting depth outside strings, so that a body of ten thousand brackets is
// refused before a parser or destructor recurses through it.
std::size_t NestingDepth(std::string_view body) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Status CheckKnownFields(const json& object, const std::string& prefix,
                        std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : object.items()) {
    bool found = false;
    for (std::string_view k : known) found = found || name == k;
    if (!found) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return FieldError(prefix + name, "unknown field (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Status ReadInteger(const json& object, const std::string& prefix, const char* name,
                   std::uint64_t low, std::uint64_t high, std::uint64_t* out) {
  const auto it = object.find(name);
  if (it == object.end()) return Status::Ok();  // the default stands
  const std::string field = prefix + name;
  const std::string range = "[" + std::to_string(low) + ", " + std::to_string(high) + "]";
  if (!it->is_number_integer()) {
    return FieldError(field, "expected an integer in " + range + ", got " + Shown(*it));
  }
  if (it->is_number_unsigned()
          ? it->get<std::uint64_t>() > high || it->get<std::uint64_t>() < low
          : it->get<std::int64_t>() < static_cast<std::int64_t>(low) ||
                it->get<std::int64_t>() > static_cast<std::int64_t>(std::min<std::uint64_t>(
                                              high, std::numeric_limits<std::int64_t>::max()))) {
    return FieldError(field, "expected an integer in " + range + ", got " + Shown(*it));
  }
  *out = it->is_number_unsigned() ? it->get<std::uint64_t>()
                                  : static_cast<std::uint64_t>(it->get<std::int64_t>());
  return Status::Ok();
}

Status ReadCsvDataset(const json& value, JobRequest* request) {
  for (const auto& [name, field] : value.items()) {
    if (name != "csv" && name != "target") {
      return FieldError("dataset." + name,
                        "not allowed with csv (a CSV dataset takes csv and target only)");
    }
  }
  const json& csv = value.at("csv");
  if (!csv.is_string() || csv.get_ref<const std::string&>().empty() ||
      csv.get_ref<const std::string&>().size() > 512) {
    return FieldError("dataset.csv", "expected a path of 1 to 512 characters, got " + Shown(csv));
  }
  const std::string& path = csv.get_ref<const std::string&>();
  // Only files inside the dataset directory: no absolute paths, no "..".
  bool parent = path == ".." || path.rfind("../", 0) == 0 ||
                path.find("/../") != std::string::npos ||
                (path.size() >= 3 && path.compare(path.size() - 3, 3, "/..") == 0);
  if (path.front() == '/' || parent || path.find('\0') != std::string::npos) {
    return FieldError("dataset.csv",
                      "must be a relative path inside the dataset directory, got " + Shown(csv));
  }
  request->csv = path;
  if (const auto target = value.find("target"); target != value.end()) {
    if (!target->is_string() || target->get_ref<const std::string&>().empty()) {
      return FieldError("dataset.target", "expected a column name, got " + Shown(*target));
    }
    request->csv_target = target->get<std::string>();
  }
  return Status::Ok();
}

Status ReadDataset(const json& value, gpu::DatasetSpec* spec) {
  if (!value.is_object()) return FieldError("dataset", "expected an object, got " + Shown(value));
  FD_RETURN_IF_ERROR(CheckKnownFields(
      value, "dataset.", {"samples", "features", "informative", "decoys", "noise", "seed"}));
  std::uint64_t samples = spec->samples, features = spec->features, informative = spec->informative,
                decoys = spec->decoys, seed = spec->seed;
  FD_RETURN_IF_ERROR(ReadInteger(value, "dataset.", "samples", 16, kMaxSamples, &samples));
  FD_RETURN_IF_ERROR(ReadInteger(value, "dataset.", "features", 1, kMaxFeatures, &features));
  FD_RETURN_IF_ERROR(ReadInteger(value, "dataset.", "informative", 1, kMaxFeatures, &informative));
  FD_RETURN_IF_ERROR(ReadInteger(value, "dataset.", "decoys", 0, kMaxFeatures, &decoys));
  FD_RETURN_IF_ERROR(
      ReadInteger(value, "dataset.", "seed", 0, std::numeric_limits<std::uint64_t>::max(), &seed));
  if (const auto it = value.find("noise"); it != value.end()) {
    if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0 ||
        it->get<double>() > 100) {
      return FieldError("dataset.noise", "expected a number in [0, 100], got " + Shown(*it));
    }
    spec->noise = it->get<double>();
  }
  if (samples * features > kMaxDatasetValues) {
    return FieldError("dataset", "samples x features is " + std::to_string(samples * features) +
                                     ", more than " + std::to_string(kMaxDatasetValues));
  }
  if (informative + decoys > features) {
    return FieldError("dataset", "informative + decoys (" + std::to_string(informative + decoys) +
                                     ") exceeds features (" + std::to_string(features) + ")");
  }
  spec->samples = samples;
  spec->features = features;
  spec->informative = informative;
  spec->decoys = decoys;
  spec->seed = seed;
  return Status::Ok();
}

}  // namespace

Result<JobRequest> ParseJobRequest(std::string_view body) {
  if (body.size() > kMaxJobRequestBytes) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "request body is " + std::to_string(body.size()) +
                         " bytes, more than the limit of " + std::to_string(kMaxJobRequestBytes));
  }
  constexpr std::size_t kMaxNesting = 16;
  if (const std::size_t depth = NestingDepth(body); depth > kMaxNesting) {
    return FD_STATUS(StatusCode::kInvalidArgument, "request body nests " + std::to_string(depth) +
                                                       " levels deep, more than " +
                                                       std::to_string(kMaxNesting));
  }
  json document;
  try {
    document = json::parse(body);
  } catch (const json::exception& error) {
    // A parse_error's what() reads "[json.exception.parse_error.101] parse
    // error at line 1, column 2: ..."; a number too large for a double is an
    // out_of_range ("number overflow parsing '1e330'").
    const std::string what = error.what();
    std::size_t at = what.find("at line");
    if (at == std::string::npos)
      at = what.find("] ") == std::string::npos ? 0 : what.find("] ") + 2;
    return FD_STATUS(StatusCode::kInvalidArgument, "request body is not JSON: " + what.substr(at));
  }
  if (!document.is_object())
    return FieldError("(body)", "expected a JSON object, got " + Shown(document));
  FD_RETURN_IF_ERROR(CheckKnownFields(document, "", {"idempotency_key", "mode", "dataset"}));
  JobRequest request;
  if (const auto it = document.find("idempotency_key"); it != document.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
        it->get_ref<const std::string&>().size() > kMaxIdempotencyKeyLength) {
      return FieldError("idempotency_key", "expected a string of 1 to " +
                                               std::to_string(kMaxIdempotencyKeyLength) +
                                               " characters, got " + Shown(*it));
    }
    request.idempotency_key = it->get<std::string>();
  }
  if (const auto it = document.find("mode"); it != document.end()) {
    if (!it->is_string() || !gpu::ParseMode(it->get_ref<const std::string&>(), &request.mode)) {
      return FieldError("mode", "expected one of fast, balanced, accurate, got " + Shown(*it));
    }
  }
  const auto dataset = document.find("dataset");
  if (dataset == document.end()) return FieldError("dataset", "required");
  if (dataset->is_object() && dataset->contains("csv")) {
    FD_RETURN_IF_ERROR(ReadCsvDataset(*dataset, &request));
  } else {
    FD_RETURN_IF_ERROR(ReadDataset(*dataset, &request.dataset));
  }
  return request;
}

std::string JobRequestToJson(const JobRequest& request) {
  json out = {{"mode", gpu::ModeName(request.mode)}};
  if (!request.csv.empty()) {
    out["dataset"] = {{"csv", request.csv}};
    if (!request.csv_target.empty()) out["dataset"]["target"] = request.csv_target;
  } else {
    out["dataset"] = {{"samples", request.dataset.samples},
                      {"features", request.dataset.features},
                      {"informative", request.dataset.informative},
                      {"decoys", request.dataset.decoys},
                      {"noise", request.dataset.noise},
                      {"seed", request.dataset.seed}};
  }
  if (!request.idempotency_key.empty()) out["idempotency_key"] = request.idempotency_key;
  return out.dump();
}

}  // namespace firedrill::pipeline
