#include "base/message_utf8.h"

#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"

namespace cloudplane {
namespace {

TEST(FindInvalidUtf8Test, NamesTheFirstBadStringAtAnyDepth) {
  google::protobuf::Struct ok;
  (*ok.mutable_fields())["caf\xC3\xA9"].set_string_value("\xF0\x9F\x98\x80");
  EXPECT_EQ(FindInvalidUtf8(ok), std::nullopt);

  google::protobuf::Struct deep;
  auto* list = (*deep.mutable_fields())["a"].mutable_list_value();
  list->add_values()->set_string_value("x");
  list->add_values()->set_string_value("\xED\xB5\x9D");  // a surrogate
  EXPECT_EQ(FindInvalidUtf8(deep), "fields[0].value.list_value.values[1].string_value");

  google::protobuf::Struct key;
  (*key.mutable_fields())["\xFF"].set_number_value(1);
  EXPECT_EQ(FindInvalidUtf8(key), "fields[0].key");
}

}  // namespace
}  // namespace cloudplane
