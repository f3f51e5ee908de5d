#include "firedrill/core/spec.h"

#include <gtest/gtest.h>

namespace firedrill::spec {
namespace {

TEST(SpecTest, ObjectsBecomeClosedJsonSchemaObjects) {
  const SchemaPtr schema = Object({Required("name", String("the name")), Optional("at", DurationValue("offset"))});
  const auto json = ToJsonSchema(*schema);
  EXPECT_EQ(json["type"], "object");
  EXPECT_EQ(json["additionalProperties"], false);
  EXPECT_EQ(json["required"], nlohmann::ordered_json::array({"name"}));
  EXPECT_EQ(json["properties"]["name"]["description"], "the name");
  // Durations accept the unit pattern or a ${parameter} reference.
  EXPECT_EQ(json["properties"]["at"]["anyOf"].size(), 2u);
}

TEST(SpecTest, UnionsBecomeAKindEnumWithOneBranchPerVariant) {
  const SchemaPtr schema =
      Union("injector", {{"a", "first", {Required("x", Integer())}}, {"b", "second", {}}}, "", {}, "kind");
  const auto json = ToJsonSchema(*schema);
  EXPECT_EQ(json["properties"]["kind"]["enum"], nlohmann::ordered_json::array({"a", "b"}));
  ASSERT_EQ(json["allOf"].size(), 2u);
  EXPECT_EQ(json["allOf"][0]["if"]["properties"]["kind"]["const"], "a");
  EXPECT_EQ(json["allOf"][0]["then"]["required"], nlohmann::ordered_json::array({"x"}));
  EXPECT_EQ(json["allOf"][1]["then"]["propertyNames"]["enum"], nlohmann::ordered_json::array({"kind"}));
}

TEST(SpecTest, ExactlyOneOfBecomesOneOfRequired) {
  const SchemaPtr schema = Object({Optional("alert", String()), Optional("at", DurationValue())}, "", {{"alert", "at"}});
  const auto json = ToJsonSchema(*schema);
  EXPECT_EQ(json["allOf"][0]["oneOf"].size(), 2u);
  EXPECT_EQ(schema->FindField("at")->name, "at");
  EXPECT_EQ(schema->FindField("nope"), nullptr);
}

}  // namespace
}  // namespace firedrill::spec
