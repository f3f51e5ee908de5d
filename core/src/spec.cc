#include "firedrill/core/spec.h"

#include "firedrill/core/units.h"

namespace firedrill::spec {
namespace {

SchemaPtr Make(Type type, std::string description) {
  auto schema = std::make_shared<Schema>();
  schema->type = type;
  schema->description = std::move(description);
  return schema;
}

SchemaPtr Ranged(Type type, std::string description, std::optional<double> minimum,
                 std::optional<double> maximum) {
  auto schema = std::make_shared<Schema>();
  schema->type = type;
  schema->description = std::move(description);
  schema->minimum = minimum;
  schema->maximum = maximum;
  return schema;
}

}  // namespace

const Field* Schema::FindField(std::string_view name) const {
  for (const Field& field : fields) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

bool CountsAsGiven(const Schema& schema, std::string_view value) {
  return !(schema.type == Type::kBoolean && value == "false");
}

const Variant* Schema::FindVariant(std::string_view kind) const {
  for (const Variant& variant : variants) {
    if (variant.kind == kind) return &variant;
  }
  return nullptr;
}

SchemaPtr String(std::string description) { return Make(Type::kString, std::move(description)); }

SchemaPtr Integer(std::string description, std::optional<double> minimum,
                  std::optional<double> maximum) {
  return Ranged(Type::kInteger, std::move(description), minimum, maximum);
}

SchemaPtr Number(std::string description, std::optional<double> minimum,
                 std::optional<double> maximum) {
  return Ranged(Type::kNumber, std::move(description), minimum, maximum);
}

SchemaPtr Boolean(std::string description) { return Make(Type::kBoolean, std::move(description)); }
SchemaPtr DurationValue(std::string description) {
  return Make(Type::kDuration, std::move(description));
}
SchemaPtr RateValue(std::string description) { return Make(Type::kRate, std::move(description)); }
SchemaPtr SizeValue(std::string description) { return Make(Type::kSize, std::move(description)); }
SchemaPtr RatioValue(std::string description) { return Make(Type::kRatio, std::move(description)); }
SchemaPtr Scalar(std::string description) { return Make(Type::kScalar, std::move(description)); }

SchemaPtr Enum(std::vector<std::string> values, std::string description) {
  auto schema = std::make_shared<Schema>();
  schema->type = Type::kEnum;
  schema->description = std::move(description);
  schema->enum_values = std::move(values);
  return schema;
}

SchemaPtr Object(std::vector<Field> fields, std::string description,
                 std::vector<std::vector<std::string>> exactly_one_of) {
  auto schema = std::make_shared<Schema>();
  schema->type = Type::kObject;
  schema->description = std::move(description);
  schema->fields = std::move(fields);
  schema->exactly_one_of = std::move(exactly_one_of);
  return schema;
}

SchemaPtr List(SchemaPtr items, std::string description, std::string unique_field) {
  auto schema = std::make_shared<Schema>();
  schema->type = Type::kList;
  schema->description = std::move(description);
  schema->items = std::move(items);
  schema->unique_field = std::move(unique_field);
  return schema;
}

SchemaPtr Map(SchemaPtr values, std::string description) {
  auto schema = std::make_shared<Schema>();
  schema->type = Type::kMap;
  schema->description = std::move(description);
  schema->items = std::move(values);
  return schema;
}

SchemaPtr Union(std::string variant_noun, std::vector<Variant> variants, std::string description,
                std::vector<Field> common_fields, std::string discriminator) {
  auto schema = std::make_shared<Schema>();
  schema->discriminator = std::move(discriminator);
  schema->type = Type::kUnion;
  schema->description = std::move(description);
  schema->variant_noun = std::move(variant_noun);
  schema->variants = std::move(variants);
  schema->fields = std::move(common_fields);
  return schema;
}

Field Required(std::string name, SchemaPtr schema, std::string description) {
  if (description.empty()) description = schema->description;
  return Field{std::move(name), std::move(schema), true, std::move(description)};
}

Field Optional(std::string name, SchemaPtr schema, std::string description) {
  if (description.empty()) description = schema->description;
  return Field{std::move(name), std::move(schema), false, std::move(description)};
}

std::string TypeNoun(const Schema& schema) {
  switch (schema.type) {
    case Type::kString: return "a string";
    case Type::kInteger: return "an integer";
    case Type::kNumber: return "a number";
    case Type::kBoolean: return "true or false";
    case Type::kDuration: return "a duration";
    case Type::kRate: return "a rate";
    case Type::kSize: return "a size";
    case Type::kRatio: return "a ratio";
    case Type::kEnum: return "one of a fixed set of names";
    case Type::kObject: return "a mapping";
    case Type::kList: return "a list";
    case Type::kMap: return "a mapping of names";
    case Type::kUnion: return "a mapping with a kind";
    case Type::kScalar: return "a single value";
  }
  return "a value";
}

namespace {

using Json = nlohmann::ordered_json;

// Parameter references are allowed wherever a scalar is: "${name}".
constexpr std::string_view kParameterPattern = "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$";

Json ScalarOrParameter(Json value_schema) {
  return Json{{"anyOf", Json::array({std::move(value_schema),
                                     Json{{"type", "string"},
                                          {"pattern", std::string(kParameterPattern)}}})}};
}

Json Properties(const std::vector<Field>& fields, Json& required) {
  Json properties = Json::object();
  for (const Field& field : fields) {
    Json property = ToJsonSchema(*field.schema);
    if (!field.description.empty()) property["description"] = field.description;
    properties[field.name] = std::move(property);
    if (field.required) required.push_back(field.name);
  }
  return properties;
}

Json OneOfGroups(const std::vector<std::vector<std::string>>& groups) {
  Json all = Json::array();
  for (const auto& group : groups) {
    Json choices = Json::array();
    for (const std::string& name : group) choices.push_back(Json{{"required", {name}}});
    all.push_back(Json{{"oneOf", choices}});
  }
  return all;
}

}  // namespace

Json ToJsonSchema(const Schema& schema) {
  Json out;
  auto with_description = [&](Json json) {
    if (!schema.description.empty()) json["description"] = schema.description;
    return json;
  };
  auto bounds = [&](Json& json) {
    if (schema.minimum) json["minimum"] = *schema.minimum;
    if (schema.maximum) json["maximum"] = *schema.maximum;
  };
  switch (schema.type) {
    case Type::kString:
      return with_description(Json{{"type", "string"}});
    case Type::kInteger: {
      Json json{{"type", "integer"}};
      bounds(json);
      return with_description(ScalarOrParameter(json));
    }
    case Type::kNumber: {
      Json json{{"type", "number"}};
      bounds(json);
      return with_description(ScalarOrParameter(json));
    }
    case Type::kBoolean:
      return with_description(ScalarOrParameter(Json{{"type", "boolean"}}));
    case Type::kDuration:
      return with_description(ScalarOrParameter(Json{
          {"type", "string"}, {"pattern", std::string(kDurationPattern)}, {"examples", {"30s", "5m", "1h30m"}}}));
    case Type::kRate:
      return with_description(ScalarOrParameter(
          Json{{"type", "string"}, {"pattern", std::string(kRatePattern)}, {"examples", {"20/s", "3/m"}}}));
    case Type::kSize:
      return with_description(ScalarOrParameter(
          Json{{"type", "string"}, {"pattern", std::string(kSizePattern)}, {"examples", {"512MiB", "4GiB"}}}));
    case Type::kRatio:
      return with_description(Json{
          {"anyOf", Json::array({Json{{"type", "number"}, {"minimum", 0}, {"maximum", 1}},
                                 Json{{"type", "string"}, {"pattern", std::string(kRatioPattern)}},
                                 Json{{"type", "string"}, {"pattern", std::string(kParameterPattern)}}})}});
    case Type::kEnum:
      return with_description(ScalarOrParameter(Json{{"enum", schema.enum_values}}));
    case Type::kScalar:
      return with_description(Json{{"type", Json::array({"string", "number", "boolean"})}});
    case Type::kObject: {
      Json required = Json::array();
      out = Json{{"type", "object"}, {"properties", Properties(schema.fields, required)}};
      out["additionalProperties"] = false;
      if (!required.empty()) out["required"] = required;
      if (!schema.exactly_one_of.empty()) out["allOf"] = OneOfGroups(schema.exactly_one_of);
      return with_description(out);
    }
    case Type::kList:
      return with_description(Json{{"type", "array"}, {"items", ToJsonSchema(*schema.items)}});
    case Type::kMap:
      return with_description(
          Json{{"type", "object"}, {"additionalProperties", ToJsonSchema(*schema.items)}});
    case Type::kUnion: {
      // The shared fields and the discriminator are typed at the top; each
      // branch types, requires and limits its own fields (the same name may
      // mean different things in different variants: `max` is a duration in
      // one expectation and a count in another).
      Json kinds = Json::array();
      for (const Variant& variant : schema.variants) kinds.push_back(variant.kind);
      const std::string& key = schema.discriminator;
      Json required = Json::array({key});
      Json properties = Properties(schema.fields, required);
      properties[key] = Json{{"enum", kinds}, {"description", "which " + schema.variant_noun}};
      Json branches = Json::array();
      for (const Variant& variant : schema.variants) {
        Json variant_required = Json::array();
        Json variant_properties = Properties(variant.fields, variant_required);
        Json allowed = Json::array({key});
        for (const Field& field : schema.fields) allowed.push_back(field.name);
        for (const Field& field : variant.fields) allowed.push_back(field.name);
        Json then{{"properties", variant_properties},
                  {"propertyNames", Json{{"enum", allowed}}}};
        if (!variant_required.empty()) then["required"] = variant_required;
        if (!variant.exactly_one_of.empty()) then["allOf"] = OneOfGroups(variant.exactly_one_of);
        if (!variant.description.empty()) then["description"] = variant.description;
        branches.push_back(Json{{"if", Json{{"properties", Json{{key, Json{{"const", variant.kind}}}}}}},
                                {"then", then}});
      }
      out = Json{{"type", "object"}, {"properties", properties}, {"required", required}};
      out["allOf"] = branches;
      return with_description(out);
    }
  }
  return out;
}

}  // namespace firedrill::spec
