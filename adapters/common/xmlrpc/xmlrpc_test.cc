#include "adapters/common/xmlrpc/xmlrpc.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::xmlrpc {
namespace {

using ::testing::HasSubstr;

std::string Wrap(absl::string_view value_xml) {
  return absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n",
                      "<params>\r\n<param>", value_xml, "</param>\r\n</params>\r\n",
                      "</methodResponse>\r\n");
}

absl::StatusOr<Value> ParseOne(absl::string_view value_xml) {
  absl::StatusOr<Response> r = ParseResponse(Wrap(value_xml));
  if (!r.ok()) return r.status();
  EXPECT_FALSE(r->fault);
  return r->value;
}

TEST(XmlRpcTest, DecodesEveryScalarType) {
  EXPECT_EQ(*ParseOne("<value><string>a &amp; b&#x0d;</string></value>"),
            Value::String("a & b\r"));
  EXPECT_EQ(*ParseOne("<value>untyped</value>"), Value::String("untyped"));
  EXPECT_EQ(*ParseOne("<value></value>"), Value::String(""));
  EXPECT_EQ(*ParseOne("<value><string/></value>"), Value::String(""));
  EXPECT_EQ(*ParseOne("<value><int>-7</int></value>"), Value::Int(-7));
  EXPECT_EQ(*ParseOne("<value><i4> 42 </i4></value>"), Value::Int(42));
  EXPECT_EQ(*ParseOne("<value><i8>-1</i8></value>"), Value::Int(-1));
  EXPECT_EQ(*ParseOne("<value><i8>9223372036854775807</i8></value>"),
            Value::Int(9223372036854775807LL));
  EXPECT_EQ(*ParseOne("<value><ex:i8 xmlns:ex=\"http://ws.apache.org/xmlrpc/namespaces/"
                      "extensions\">5</ex:i8></value>"),
            Value::Int(5));
  EXPECT_EQ(*ParseOne("<value><boolean>1</boolean></value>"), Value::Bool(true));
  EXPECT_EQ(*ParseOne("<value><boolean>0</boolean></value>"), Value::Bool(false));
  EXPECT_EQ(*ParseOne("<value><double>-1.5</double></value>"), Value::Double(-1.5));
  EXPECT_EQ(*ParseOne("<value><base64>aGVs\nbG8=</base64></value>"), Value::Base64("hello"));
  EXPECT_EQ(*ParseOne("<value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601></value>"),
            Value::DateTime("19980717T14:08:55"));
  EXPECT_EQ(*ParseOne("<value><nil/></value>"), Value::Nil());
}

TEST(XmlRpcTest, DecodesNestedArraysAndStructs) {
  absl::StatusOr<Value> v = ParseOne(
      "<value><array><data>\r\n"
      "<value><boolean>1</boolean></value>\r\n"
      "<value><array><data><value><i4>1</i4></value><value><array><data/></array></value>"
      "</data></array></value>\r\n"
      "<value><struct><member><name>a</name><value><string>x</string></value></member>"
      "<member><name>b</name><value><struct/></value></member></struct></value>\r\n"
      "</data></array></value>");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, Value::Array({Value::Bool(true),
                              Value::Array({Value::Int(1), Value::Array({})}),
                              Value::Struct({{"a", Value::String("x")},
                                             {"b", Value::Struct({})}})}));
  ASSERT_NE(v->AsArray()[2].Find("a"), nullptr);
  EXPECT_EQ(v->AsArray()[2].Find("a")->AsString(), "x");
  EXPECT_EQ(v->AsArray()[2].Find("zz"), nullptr);
}

TEST(XmlRpcTest, EncodeThenDecodeRoundTrips) {
  const Value all = Value::Array(
      {Value::Nil(), Value::Bool(true), Value::Int(-3), Value::Int(int64_t{1} << 40),
       Value::Double(0.25), Value::String("<a b=\"c\">&'\t\n\r</a>"), Value::Base64("\x01\xff"),
       Value::DateTime("20240101T00:00:00"),
       Value::Struct({{"k&", Value::Array({Value::String("")})}})});
  absl::StatusOr<std::string> response = EncodeResponse(all);
  ASSERT_TRUE(response.ok()) << response.status();
  absl::StatusOr<Response> back = ParseResponse(*response);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->value, all);
  EXPECT_THAT(*response, HasSubstr("<i8>1099511627776</i8>"));
}

TEST(XmlRpcTest, EncodesCallsLikeXmlRpcC) {
  absl::StatusOr<std::string> call =
      EncodeCall("one.vm.action", {Value::String("oneadmin:s3cret&"),
                                   Value::String("poweroff"), Value::Int(42),
                                   Value::Bool(false)});
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_THAT(*call, HasSubstr("<methodName>one.vm.action</methodName>"));
  EXPECT_THAT(*call, HasSubstr("<param><value><string>oneadmin:s3cret&amp;</string></value>"
                               "</param>"));
  EXPECT_THAT(*call, HasSubstr("<param><value><int>42</int></value></param>"));
  EXPECT_THAT(*call, HasSubstr("<param><value><boolean>0</boolean></value></param>"));
  EXPECT_EQ(EncodeCall("", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeCall("one.vm.info<", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // XML 1.0 cannot carry NUL or invalid UTF-8: refused, never altered.
  EXPECT_EQ(EncodeCall("m", {Value::String(std::string("a\0b", 3))}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeCall("m", {Value::String("\xff")}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(XmlRpcTest, DecodesFaults) {
  const std::string fault = EncodeFault(-506, "Method 'one.foo.bar' not defined");
  absl::StatusOr<Response> r = ParseResponse(fault);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->fault);
  EXPECT_EQ(r->fault_code, -506);
  EXPECT_EQ(r->fault_string, "Method 'one.foo.bar' not defined");

  // A fault without the two members, or with the wrong types, is malformed.
  for (const char* body : {
           "<methodResponse><fault><value><struct/></value></fault></methodResponse>",
           "<methodResponse><fault><value><struct><member><name>faultCode</name><value>"
           "<string>1</string></value></member><member><name>faultString</name><value>x"
           "</value></member></struct></value></fault></methodResponse>",
           "<methodResponse><fault><value><int>1</int></value></fault></methodResponse>",
       }) {
    EXPECT_EQ(ParseResponse(body).status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(XmlRpcTest, RejectsMalformedResponses) {
  const std::string good = Wrap("<value><array><data><value><boolean>1</boolean></value>"
                                "</data></array></value>");
  struct Case {
    std::string body;
    std::string expected;
  };
  const Case cases[] = {
      {"", ""},
      {good.substr(0, good.size() / 2), ""},  // truncated
      {"<methodCall/>", "not <methodResponse>"},
      {"<methodResponse/>", "exactly one element"},
      {"<methodResponse><params/></methodResponse>", "exactly one element"},
      {"<methodResponse><params><param><value>1</value></param><param><value>2</value>"
       "</param></params></methodResponse>",
       "exactly one element"},
      {"<methodResponse><foo/></methodResponse>", "unexpected <foo>"},
      {Wrap("<value><int>12x</int></value>"), "not an integer"},
      {Wrap("<value><int>4294967296</int></value>"), "out of range"},
      {Wrap("<value><i8>99999999999999999999</i8></value>"), "out of range"},
      {Wrap("<value><int></int></value>"), "not an integer"},
      {Wrap("<value><boolean>true</boolean></value>"), "0 or 1"},
      {Wrap("<value><double>nan</double></value>"), "finite"},
      {Wrap("<value><double>1e999</double></value>"), "finite"},
      {Wrap("<value><base64>!!!</base64></value>"), "base64"},
      {Wrap("<value><float>1</float></value>"), "unknown value type <float>"},
      {Wrap("<value><string><b/></string></value>"), "holds an element"},
      {Wrap("<value><int>1</int><int>2</int></value>"), "exactly one element"},
      {Wrap("<value>x<int>1</int></value>"), "text beside"},
      {Wrap("<value><array><value/></array></value>"), "must hold <data>"},
      {Wrap("<value><array><data><int>1</int></data></array></value>"), "unexpected <int>"},
      {Wrap("<value><struct><member><name>a</name></member></struct></value>"),
       "one <name> and one <value>"},
      {Wrap("<value><struct><foo/></struct></value>"), "unexpected <foo>"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Response> r = ParseResponse(c.body);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(r.status().message(), HasSubstr("malformed XML-RPC response")) << c.body;
    EXPECT_THAT(r.status().message(), HasSubstr(c.expected)) << c.body;
  }
}

TEST(XmlRpcTest, RejectsHostileXml) {
  // External entity (XXE): refused at the DOCTYPE, nothing is read.
  const std::string xxe =
      "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
      "<methodResponse><params><param><value><string>&x;</string></value></param></params>"
      "</methodResponse>";
  // Billion laughs.
  std::string bomb = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY l0 \"ha\">";
  for (int i = 1; i < 10; ++i) {
    absl::StrAppend(&bomb, "<!ENTITY l", i, " \"", std::string(10, '&'), "\">");
  }
  bomb += "]><methodResponse><params><param><value>&l9;</value></param></params>"
          "</methodResponse>";
  for (const std::string& body : {xxe, bomb}) {
    absl::StatusOr<Response> r = ParseResponse(body);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("DTD"));
  }
  // Deep nesting stops at the depth limit instead of recursing without end.
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "<value><array><data>";
  absl::StatusOr<Response> r = ParseResponse(Wrap(deep));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  // Over the size limit.
  xml::Limits small;
  small.max_bytes = 64;
  EXPECT_EQ(ParseResponse(Wrap("<value><string>" + std::string(100, 'a') + "</string></value>"),
                          small)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::xmlrpc
