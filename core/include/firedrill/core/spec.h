// A small declarative description of a configuration format: the one source
// for the validator's checks and messages, the JSON Schema that editors use,
// and the reference tables in the docs. Components describe their own parts
// (an injector its parameters, an arrival process its fields) with it, and
// the engine assembles the whole scenario format from those parts.
//
// Schemas are immutable once built and shared by pointer; thread-safe to read.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace firedrill::spec {

enum class Type {
  kString,
  kInteger,
  kNumber,
  kBoolean,
  kDuration,  // "30s"   (see firedrill/core/units.h)
  kRate,      // "20/s"
  kSize,      // "4GiB"
  kRatio,     // "95%" or 0.95
  kEnum,      // one of a fixed set of strings
  kObject,    // fixed fields
  kList,      // items of one schema
  kMap,       // user-chosen names -> values of one schema
  kUnion,     // object whose `kind` field picks one of several field sets
  kScalar,    // any single value (a parameter default)
};

struct Schema;
using SchemaPtr = std::shared_ptr<const Schema>;

struct Field {
  std::string name;
  SchemaPtr schema;
  bool required = false;
  std::string description;
};

struct Variant {
  std::string kind;
  std::string description;
  std::vector<Field> fields;
  // Each group names fields of which exactly one must be set.
  std::vector<std::vector<std::string>> exactly_one_of = {};
};

struct Schema {
  Type type = Type::kString;
  std::string description;
  std::optional<double> minimum;  // integer, number
  std::optional<double> maximum;
  std::vector<std::string> enum_values;
  // kObject: its fields. kUnion: fields every variant shares.
  std::vector<Field> fields;
  // kObject/kUnion: each group names fields of which exactly one must be set.
  std::vector<std::vector<std::string>> exactly_one_of;
  // kList, kMap: the element schema.
  SchemaPtr items;
  // kList of objects: a field whose value must be unique across the list.
  std::string unique_field;
  // kUnion: the field that picks the variant, and what a variant is called
  // in messages ("injector", "action").
  std::string discriminator = "kind";
  std::string variant_noun;
  std::vector<Variant> variants;

  const Field* FindField(std::string_view name) const;
  const Variant* FindVariant(std::string_view kind) const;
};

// Builders, so format descriptions read like the format.
SchemaPtr String(std::string description = {});
SchemaPtr Integer(std::string description = {}, std::optional<double> minimum = std::nullopt,
                  std::optional<double> maximum = std::nullopt);
SchemaPtr Number(std::string description = {}, std::optional<double> minimum = std::nullopt,
                 std::optional<double> maximum = std::nullopt);
SchemaPtr Boolean(std::string description = {});
SchemaPtr DurationValue(std::string description = {});
SchemaPtr RateValue(std::string description = {});
SchemaPtr SizeValue(std::string description = {});
SchemaPtr RatioValue(std::string description = {});
SchemaPtr Enum(std::vector<std::string> values, std::string description = {});
SchemaPtr Scalar(std::string description = {});
SchemaPtr Object(std::vector<Field> fields, std::string description = {},
                 std::vector<std::vector<std::string>> exactly_one_of = {});
SchemaPtr List(SchemaPtr items, std::string description = {}, std::string unique_field = {});
SchemaPtr Map(SchemaPtr values, std::string description = {});
SchemaPtr Union(std::string variant_noun, std::vector<Variant> variants,
                std::string description = {}, std::vector<Field> common_fields = {},
                std::string discriminator = "kind");

Field Required(std::string name, SchemaPtr schema, std::string description = {});
Field Optional(std::string name, SchemaPtr schema, std::string description = {});

// Whether a field set to `value` counts as given for an exactly_one_of
// group: a boolean flag set to false does not.
bool CountsAsGiven(const Schema& schema, std::string_view value);

// Human name of a type for messages: "a duration", "a list", "an integer".
std::string TypeNoun(const Schema& schema);

// JSON Schema (draft 2020-12) for `schema`. Unions become an enum on `kind`
// plus if/then branches, which editors complete well.
nlohmann::ordered_json ToJsonSchema(const Schema& schema);

}  // namespace firedrill::spec
