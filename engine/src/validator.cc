#include "validator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "firedrill/core/text.h"
#include "firedrill/core/units.h"

namespace firedrill::engine {
namespace {

using spec::Type;

std::string Where(const std::string& path) { return path.empty() ? "at the top level" : "in " + path; }
std::string Prefix(const std::string& path) { return path.empty() ? "" : path + ": "; }

std::string Quote(const std::string& text) { return "\"" + text + "\""; }

std::string FormatBound(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

std::string RangeProblem(double value, const spec::Schema& schema) {
  if (schema.minimum && value < *schema.minimum) {
    return "is below the minimum " + FormatBound(*schema.minimum);
  }
  if (schema.maximum && value > *schema.maximum) {
    return "is above the maximum " + FormatBound(*schema.maximum);
  }
  return "";
}

std::vector<std::string> FieldNames(const std::vector<const spec::Field*>& fields) {
  std::vector<std::string> names;
  for (const spec::Field* field : fields) names.push_back(field->name);
  return names;
}

std::string WithSuggestion(std::string message, const std::string& word,
                           const std::vector<std::string>& candidates, bool list_all) {
  const std::string suggestion = ClosestMatch(word, candidates);
  if (!suggestion.empty()) return message + "; did you mean " + Quote(suggestion) + "?";
  if (list_all) return message + "; expected one of: " + JoinNames(candidates);
  return message;
}

// For a key that is not valid here but is valid in another variant of the
// same union: that variant's kind.
std::string VariantOwning(const spec::Schema& schema, const std::string& key) {
  if (schema.type != Type::kUnion) return "";
  for (const spec::Variant& variant : schema.variants) {
    for (const spec::Field& field : variant.fields) {
      if (field.name == key) return variant.kind;
    }
  }
  return "";
}

}  // namespace

std::string FieldPath(const std::string& path, const std::string& field) {
  return path.empty() ? field : path + "." + field;
}

std::string ItemPath(const std::string& path, const TreeNode& item, std::size_t index) {
  if (item.kind == TreeNode::Kind::kMap) {
    const TreeNode* name = item.Find("name");
    if (name != nullptr && name->IsScalar() && !name->scalar.empty() && name->scalar.size() < 64 &&
        name->scalar.find_first_of(" \t\r\n[]") == std::string::npos) {
      return path + "[" + name->scalar + "]";
    }
  }
  return path + "[" + std::to_string(index) + "]";
}

void Validator::Report(int line, int column, std::string message) {
  diagnostics_->push_back(Diagnostic{file_, line, column, std::move(message)});
}

std::string Validator::CheckScalar(const std::string& text, const spec::Schema& schema) {
  switch (schema.type) {
    case Type::kString:
    case Type::kScalar:
      return "";
    case Type::kInteger: {
      std::int64_t value = 0;
      const char* end = text.data() + text.size();
      auto [ptr, ec] = std::from_chars(text.data(), end, value);
      if (ec == std::errc::result_out_of_range) return "integer " + Quote(text) + " is out of range";
      if (ec != std::errc() || ptr != end) return "expected an integer, got " + Quote(text);
      return RangeProblem(static_cast<double>(value), schema).empty()
                 ? ""
                 : Quote(text) + " " + RangeProblem(static_cast<double>(value), schema);
    }
    case Type::kNumber: {
      double value = 0;
      const char* end = text.data() + text.size();
      auto [ptr, ec] = std::from_chars(text.data(), end, value);
      if (ec != std::errc() || ptr != end || !std::isfinite(value)) {
        return "expected a number, got " + Quote(text);
      }
      const std::string range = RangeProblem(value, schema);
      return range.empty() ? "" : Quote(text) + " " + range;
    }
    case Type::kBoolean:
      if (text == "true" || text == "false" || text == "True" || text == "False" ||
          text == "TRUE" || text == "FALSE") {
        return "";
      }
      return "expected true or false, got " + Quote(text);
    case Type::kDuration: {
      auto parsed = ParseDuration(text);
      return parsed.ok() ? "" : parsed.status().message();
    }
    case Type::kRate: {
      auto parsed = ParseRate(text);
      return parsed.ok() ? "" : parsed.status().message();
    }
    case Type::kSize: {
      auto parsed = ParseSize(text);
      return parsed.ok() ? "" : parsed.status().message();
    }
    case Type::kRatio: {
      auto parsed = ParseRatio(text);
      return parsed.ok() ? "" : parsed.status().message();
    }
    case Type::kEnum:
      for (const std::string& value : schema.enum_values) {
        if (value == text) return "";
      }
      return WithSuggestion("unknown value " + Quote(text), text, schema.enum_values, true);
    default:
      return "expected " + spec::TypeNoun(schema);
  }
}

void Validator::Check(const TreeNode& node, const spec::Schema& schema, const std::string& path) {
  const auto mismatch = [&] {
    std::string message = Prefix(path) + "expected " + spec::TypeNoun(schema) + ", got " + DescribeNode(node);
    if (node.kind == TreeNode::Kind::kNull) message = Prefix(path) + "has no value; expected " + spec::TypeNoun(schema);
    Report(node, std::move(message));
  };
  switch (schema.type) {
    case Type::kObject:
    case Type::kUnion: {
      if (node.kind != TreeNode::Kind::kMap) return mismatch();
      std::vector<const spec::Field*> fields;
      for (const spec::Field& field : schema.fields) fields.push_back(&field);
      if (schema.type == Type::kObject) return CheckFields(node, fields, schema, schema.exactly_one_of, path, "");
      const std::string& key = schema.discriminator;
      const TreeNode* kind = node.Find(key);
      std::vector<std::string> kinds;
      for (const spec::Variant& variant : schema.variants) kinds.push_back(variant.kind);
      if (kind == nullptr) {
        Report(node, Prefix(path) + "missing required key " + Quote(key) + " naming the " +
                         schema.variant_noun + "; expected one of: " + JoinNames(kinds));
        return;
      }
      if (!kind->IsScalar()) {
        Report(*kind, FieldPath(path, key) + ": expected the name of a " + schema.variant_noun +
                          ", got " + DescribeNode(*kind));
        return;
      }
      const spec::Variant* variant = schema.FindVariant(kind->scalar);
      if (variant == nullptr) {
        Report(*kind, WithSuggestion(FieldPath(path, key) + ": unknown " + schema.variant_noun + " " +
                                         Quote(kind->scalar),
                                     kind->scalar, kinds, true));
        return;
      }
      for (const spec::Field& field : variant->fields) fields.push_back(&field);
      return CheckFields(node, fields, schema, variant->exactly_one_of, path, key);
    }
    case Type::kList: {
      if (node.kind != TreeNode::Kind::kList) return mismatch();
      std::map<std::string, int> seen;
      for (std::size_t i = 0; i < node.items.size(); ++i) {
        const TreeNode& item = node.items[i];
        Check(item, *schema.items, ItemPath(path, item, i));
        if (schema.unique_field.empty() || item.kind != TreeNode::Kind::kMap) continue;
        const TreeNode* name = item.Find(schema.unique_field);
        if (name == nullptr || !name->IsScalar()) continue;
        auto [it, inserted] = seen.emplace(name->scalar, name->line);
        if (!inserted) {
          Report(*name, Prefix(path) + schema.unique_field + " " + Quote(name->scalar) +
                            " is used twice (first at line " + std::to_string(it->second) +
                            "); names must be unique");
        }
      }
      return;
    }
    case Type::kMap: {
      if (node.kind != TreeNode::Kind::kMap) return mismatch();
      for (const auto& [key, value] : node.entries) {
        Check(value, *schema.items, FieldPath(path, key.name));
      }
      return;
    }
    default: {
      if (node.reported) return;
      if (node.kind != TreeNode::Kind::kScalar) return mismatch();
      std::string problem = CheckScalar(node.scalar, schema);
      if (problem.empty()) return;
      if (!node.origin.empty()) problem += " (from " + node.origin + ")";
      Report(node, Prefix(path) + problem);
    }
  }
}

void Validator::CheckFields(const TreeNode& node, const std::vector<const spec::Field*>& fields,
                            const spec::Schema& schema,
                            const std::vector<std::vector<std::string>>& exactly_one_of,
                            const std::string& path, const std::string& allowed_extra_key) {
  std::vector<std::string> names = FieldNames(fields);
  if (!allowed_extra_key.empty()) names.push_back(allowed_extra_key);
  for (const auto& [key, value] : node.entries) {
    if (key.name == allowed_extra_key) continue;
    const spec::Field* field = nullptr;
    for (const spec::Field* candidate : fields) {
      if (candidate->name == key.name) field = candidate;
    }
    if (field == nullptr) {
      std::string message = "unknown key " + Quote(key.name) + " " + Where(path);
      if (const std::string owner = VariantOwning(schema, key.name); !owner.empty()) {
        Report(key.line, key.column, message + "; it belongs to " + schema.discriminator + " " + Quote(owner));
      } else {
        Report(key.line, key.column, WithSuggestion(message, key.name, names, names.size() <= 12));
      }
      continue;
    }
    Check(value, *field->schema, FieldPath(path, key.name));
  }
  for (const spec::Field* field : fields) {
    if (field->required && node.Find(field->name) == nullptr) {
      std::string message = Prefix(path) + "missing required key " + Quote(field->name);
      if (!field->description.empty()) message += " (" + field->description + ")";
      Report(node, std::move(message));
    }
  }
  for (const auto& group : exactly_one_of) {
    std::vector<std::string> present;
    for (const std::string& name : group) {
      const TreeNode* value = node.Find(name);
      if (value == nullptr) continue;
      const auto field = std::find_if(fields.begin(), fields.end(), [&](const spec::Field* each) { return each->name == name; });
      if (field == fields.end() || spec::CountsAsGiven(*(*field)->schema, value->scalar)) present.push_back(name);
    }
    if (present.size() == 1) continue;
    std::vector<std::string> quoted;
    for (const std::string& name : present.empty() ? group : present) quoted.push_back(Quote(name));
    Report(node, Prefix(path) + (present.empty() ? "needs one of " + JoinNames(quoted, " or ")
                                                  : "has " + JoinNames(quoted, " and ") + "; give only one"));
  }
}

nlohmann::json TreeToJson(const TreeNode& node) {
  switch (node.kind) {
    case TreeNode::Kind::kNull: return nullptr;
    case TreeNode::Kind::kScalar: return node.scalar;
    case TreeNode::Kind::kList: {
      nlohmann::json out = nlohmann::json::array();
      for (const TreeNode& item : node.items) out.push_back(TreeToJson(item));
      return out;
    }
    case TreeNode::Kind::kMap: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [key, value] : node.entries) out[key.name] = TreeToJson(value);
      return out;
    }
  }
  return nullptr;
}

}  // namespace firedrill::engine
