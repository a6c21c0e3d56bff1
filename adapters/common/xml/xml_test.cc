#include "adapters/common/xml/xml.h"

#include <fcntl.h>
#include <stdlib.h>
#include <libxml/globals.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::xml {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

constexpr char kDtdMessage[] = "XML documents with a DTD are not accepted";

// An S3-style listing: default namespace, entities, attributes, whitespace.
constexpr char kListing[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>photos &amp; more</Name>
  <IsTruncated>false</IsTruncated>
  <Contents id="1" kind="a&amp;b&lt;c&#38;d&quot;">
    <Key>2024/a.jpg</Key>
    <Size>1024</Size>
  </Contents>
  <!-- a comment -->
  <Contents id="2"><Key>b&#233;&#x263A;.jpg</Key><Size>7</Size></Contents>
</ListBucketResult>
)";

TEST(ParseTest, WellFormedDocument) {
  auto doc = Parse(kListing);
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Node& root = doc->Root();
  EXPECT_EQ(root.Name(), "ListBucketResult");
  EXPECT_EQ(root.NamespaceUri(), "http://s3.amazonaws.com/doc/2006-03-01/");
  EXPECT_EQ(root.Prefix(), "");
  EXPECT_EQ(root.ChildText("Name"), "photos & more");
  EXPECT_EQ(root.ChildText("IsTruncated"), "false");
  EXPECT_EQ(root.ChildText("Missing"), "");
  EXPECT_EQ(root.Child("Missing"), nullptr);
  ASSERT_EQ(root.Children().size(), 4u);  // the comment is not an element
  EXPECT_EQ(&root.Children(), &root.ChildElements());

  std::vector<const Node*> contents = root.ChildrenNamed("Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(contents[0]->ChildText("Key"), "2024/a.jpg");
  EXPECT_EQ(contents[0]->ChildText("Size"), "1024");
  EXPECT_THAT(contents[0]->Attr("id"), Optional(absl::string_view("1")));
  EXPECT_THAT(contents[0]->Attr("kind"),
              Optional(absl::string_view("a&b<c&d\"")));
  EXPECT_EQ(contents[0]->Attr("nope"), std::nullopt);
  EXPECT_EQ(contents[1]->ChildText("Key"), "b\xC3\xA9\xE2\x98\xBA.jpg");
  EXPECT_EQ(contents[1]->Child("Key")->NamespaceUri(),
            "http://s3.amazonaws.com/doc/2006-03-01/");
  EXPECT_EQ(root.Child("Contents"), contents[0]);
}

// Strings from XML reach protos unchecked by cloudplane: libxml2 itself must
// refuse what is not UTF-8, raw or as a character reference.
TEST(ParseTest, TextThatIsNotUtf8IsRefusedByTheParser) {
  for (const char* bad : {"<a>\xED\xA0\x80</a>",       // an encoded surrogate
                          "<a>x\xC3</a>",                 // a truncated sequence
                          "<a>\xFF</a>",                  // not UTF-8 at all
                          "<a>&#xD800;</a>",              // a surrogate reference
                          "<a>&#xDD5D;</a>", "<a>&#x110000;</a>", "<a>&#0;</a>",
                          "<a b=\"\xED\xB5\x9D\"/>"}) {  // in an attribute
    EXPECT_FALSE(Parse(bad).ok()) << bad;
  }
  auto good = Parse("<a>caf\xC3\xA9 &#x1F600;</a>");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->Root().Text(), "caf\xC3\xA9 \xF0\x9F\x98\x80");
}

// libxml2 2.9.14 lets an overlong sequence through inside CDATA when a valid
// multi-byte character precedes it (found by xml_fuzz); Parse checks every
// element's text itself.
TEST(ParseTest, CdataThatIsNotUtf8IsRefused) {
  for (const char* bad : {"<a><![CDATA[\xC4\x9D\xC1\x8B]]></a>", "<a><![CDATA[x\xC1\x8B]]></a>",
                          "<a>ok<b/><![CDATA[\xE9]]></a>"}) {
    auto doc = Parse(bad);
    EXPECT_FALSE(doc.ok()) << bad;
    EXPECT_THAT(doc.status().message(), HasSubstr("UTF-8"));
  }
}

// xml_fuzz: libxml2's message for an unterminated comment quotes its first
// bytes and split a two-byte character; the error is valid UTF-8.
TEST(ParseTest, ErrorMessagesAreValidUtf8) {
  std::string doc = "<?xml version=\"1.0\"?>\n<r>\n<!--";
  for (int i = 0; i < 40; ++i) doc += "\xC2\x8F";
  auto parsed = Parse(doc);
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(IsValidUtf8(parsed.status().message())) << parsed.status();
}

TEST(ParseTest, TextIsDirectTextOnlyWithWhitespaceKept) {
  auto doc = Parse("<a> x <b>inner</b> y </a>");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->Root().Text(), " x  y ");
  EXPECT_EQ(doc->Root().ChildText("b"), "inner");
}

TEST(ParseTest, Cdata) {
  // "]]>" ends a CDATA section, so it is split across two.
  auto doc = Parse("<a>pre<![CDATA[<b>&amp; </x>]]]]><![CDATA[>]]>post</a>");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->Root().Text(), "pre<b>&amp; </x>]]>post");
  EXPECT_TRUE(doc->Root().Children().empty());
}

TEST(ParseTest, Namespaces) {
  auto doc = Parse(R"(<env:Envelope xmlns:env="urn:env" xmlns="urn:default"
        xmlns:xsi="urn:xsi">
      <env:Body><item xsi:type="t1" plain="p"/></env:Body></env:Envelope>)");
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Node& root = doc->Root();
  EXPECT_EQ(root.Name(), "Envelope");
  EXPECT_EQ(root.Prefix(), "env");
  EXPECT_EQ(root.NamespaceUri(), "urn:env");
  EXPECT_TRUE(root.Attrs().empty());  // xmlns declarations are not attributes
  const Node* body = root.Child("Body");
  ASSERT_NE(body, nullptr);
  const Node* item = body->Child("item");
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(item->NamespaceUri(), "urn:default");
  EXPECT_THAT(item->Attr("type"), Optional(absl::string_view("t1")));
  EXPECT_THAT(item->Attr("plain"), Optional(absl::string_view("p")));
}

TEST(ParseTest, UndeclaredPrefixIsRejected) {
  auto doc = Parse("<x:a/>");
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseTest, NodesStayValidWhenDocumentMoves) {
  auto parsed = Parse(kListing);
  ASSERT_TRUE(parsed.ok());
  const Node* key = parsed->Root().Child("Contents")->Child("Key");
  Document moved = *std::move(parsed);
  EXPECT_EQ(moved.Root().Child("Contents")->Child("Key"), key);
  EXPECT_EQ(key->Text(), "2024/a.jpg");
}

TEST(ParseTest, MalformedAndTruncatedAreInvalidArgument) {
  const struct {
    const char* text;
    const char* message_part;
  } cases[] = {
      {"<a><b></a>", "line 1"},
      {"<a>\n<b>text</b>\n<c>", "line 3"},  // truncated
      {"<a attr=\"unterminated></a>", "malformed XML"},
      {"not xml at all", "malformed XML"},
      {"<a/><b/>", "malformed XML"},           // two roots
      {"<a>&undeclared;</a>", "undeclared"},   // entity without a DTD
      {"<a>\x01</a>", "malformed XML"},        // control character
      {"", "empty"},
      {"   \n", "empty"},
  };
  for (const auto& c : cases) {
    auto doc = Parse(c.text);
    ASSERT_FALSE(doc.ok()) << c.text;
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument)
        << c.text;
    EXPECT_THAT(doc.status().message(), HasSubstr(c.message_part))
        << c.text << " -> " << doc.status();
  }
}

TEST(ParseTest, ExternalEntityIsRejected) {
  constexpr char kXxe[] = R"(<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>)";
  auto doc = Parse(kXxe);
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(doc.status().message(), kDtdMessage);
}

TEST(ParseTest, AnyDoctypeIsRejected) {
  for (const char* text : {
           "<!DOCTYPE a><a/>",
           "<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x.dtd\"><a/>",
           "<!DOCTYPE a PUBLIC \"-//x//y\" \"file:///etc/passwd\"><a/>",
           "<!DOCTYPE a [<!ATTLIST a b CDATA \"d\">]><a/>",
       }) {
    auto doc = Parse(text);
    ASSERT_FALSE(doc.ok()) << text;
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(doc.status().message(), kDtdMessage) << text;
  }
}

TEST(ParseTest, BillionLaughsIsRejectedQuickly) {
  std::string text = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
                     "<!ENTITY lol0 \"lol\">\n";
  for (int i = 1; i < 10; ++i) {
    absl::StrAppend(&text, "<!ENTITY lol", i, " \"");
    for (int j = 0; j < 10; ++j) absl::StrAppend(&text, "&lol", i - 1, ";");
    absl::StrAppend(&text, "\">\n");
  }
  absl::StrAppend(&text, "]>\n<lolz>&lol9;</lolz>");
  const absl::Time start = absl::Now();
  auto doc = Parse(text);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(doc.status().message(), kDtdMessage);
}

std::string Nested(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "<d>";
  s += "x";
  for (int i = 0; i < depth; ++i) s += "</d>";
  return s;
}

TEST(ParseTest, DepthLimit) {
  EXPECT_TRUE(Parse(Nested(64)).ok());
  auto too_deep = Parse(Nested(65));
  EXPECT_EQ(too_deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(too_deep.status().message(),
            "XML document nests elements deeper than 64 levels");

  Limits shallow;
  shallow.max_depth = 3;
  EXPECT_TRUE(Parse(Nested(3), shallow).ok());
  EXPECT_EQ(Parse(Nested(4), shallow).status().code(),
            absl::StatusCode::kInvalidArgument);

  const absl::Time start = absl::Now();
  EXPECT_EQ(Parse(Nested(100000)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  // Larger limits are capped at 256.
  Limits deep;
  deep.max_depth = 100000;
  EXPECT_TRUE(Parse(Nested(256), deep).ok());
  EXPECT_EQ(Parse(Nested(257), deep).status().message(),
            "XML document nests elements deeper than 256 levels");
}

TEST(ParseTest, ElementCountLimit) {
  Limits limits;
  limits.max_nodes = 10;
  std::string ten = "<r>";
  for (int i = 0; i < 9; ++i) ten += "<i/>";
  EXPECT_TRUE(Parse(ten + "</r>", limits).ok());
  auto eleven = Parse(ten + "<i/></r>", limits);
  EXPECT_EQ(eleven.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(eleven.status().message(),
            "XML document has more than 10 elements");
}

TEST(ParseTest, SizeLimit) {
  Limits limits;
  limits.max_bytes = 20;
  EXPECT_TRUE(Parse("<a>0123456789012</a>", limits).ok());  // 20 bytes
  auto big = Parse("<a>01234567890123</a>", limits);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(big.status().message(),
            "XML document is 21 bytes; the limit is 20");

  // The default limit: 16 MiB.
  std::string huge = "<a>" + std::string(16 << 20, 'x') + "</a>";
  EXPECT_THAT(Parse(huge).status().message(), HasSubstr("the limit is 16777216"));
}

TEST(ParseTest, Encodings) {
  // Bytes that are not UTF-8, in a document that does not declare another
  // encoding.
  auto bad = Parse("<a>caf\xE9</a>");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("UTF-8"));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("\n")));

  // Truncated multi-byte sequence at the end of text.
  EXPECT_EQ(Parse("<a>\xE2\x98</a>").status().code(),
            absl::StatusCode::kInvalidArgument);

  // A declared Latin-1 document comes out as UTF-8.
  auto latin1 = Parse(
      "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a v=\"\xE9\">caf\xE9</a>");
  ASSERT_TRUE(latin1.ok()) << latin1.status();
  EXPECT_EQ(latin1->Root().Text(), "caf\xC3\xA9");
  EXPECT_THAT(latin1->Root().Attr("v"), Optional(absl::string_view("\xC3\xA9")));

  // UTF-8 byte order mark.
  auto bom = Parse("\xEF\xBB\xBF<a>ok</a>");
  ASSERT_TRUE(bom.ok()) << bom.status();
  EXPECT_EQ(bom->Root().Text(), "ok");

  // UTF-16LE with BOM.
  const char utf16[] = "\xFF\xFE<\0a\0>\0\xE9\0<\0/\0a\0>\0";
  auto wide = Parse(absl::string_view(utf16, sizeof(utf16) - 1));
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_EQ(wide->Root().Text(), "\xC3\xA9");
}

// Runs `fn` with fd 2 redirected to a temp file; returns what was written.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  char path[] = "/tmp/cpxmlstderrXXXXXX";
  const int file = mkstemp(path);
  EXPECT_GE(file, 0);
  fflush(stderr);
  const int saved = dup(2);
  dup2(file, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string captured;
  lseek(file, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(file, buf, sizeof(buf))) > 0) captured.append(buf, n);
  close(file);
  unlink(path);
  return captured;
}

TEST(ParseTest, NothingIsWrittenToStderr) {
  // Sanity check of the capture itself.
  EXPECT_EQ(CaptureStderr([] { std::fputs("probe", stderr); }), "probe");

  const std::string out = CaptureStderr([] {
    for (const char* text :
         {"<a><b></a>", "<a>caf\xE9</a>", "<!DOCTYPE a><a/>", "<a>&x;</a>",
          "<?xml version=\"1.0\" encoding=\"NO-SUCH-ENCODING\"?><a/>",
          "<a xmlns:p=\"\"><p:b/></a>", "<a>\x01</a>", "<a"}) {
      EXPECT_FALSE(Parse(text).ok()) << text;
    }
    EXPECT_FALSE(Parse(Nested(300), Limits{.max_depth = 1000}).ok());
  });
  EXPECT_EQ(out, "");
}

TEST(ParseTest, ErrorHooksOfCallerAreRestored) {
  // After a failing parse on this thread, libxml2's default handlers are
  // back in place (they are thread-local and we only borrow them).
  void* const ctx_before = xmlGenericErrorContext;
  const auto generic_before = xmlGenericError;
  EXPECT_FALSE(Parse("<a>").ok());
  EXPECT_EQ(xmlGenericErrorContext, ctx_before);
  EXPECT_EQ(xmlGenericError, generic_before);
}

TEST(ParseTest, ConcurrentParses) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if ((i + t) % 2 == 0) {
          auto doc = Parse(kListing);
          if (!doc.ok() || doc->Root().ChildText("Name") != "photos & more") {
            ++failures;
          }
        } else {
          auto doc = Parse("<a><b></a>");
          if (doc.ok() || !absl::StrContains(doc.status().message(), "line 1")) {
            ++failures;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
}

TEST(EscapeTest, EscapesMarkupAndWhitespace) {
  EXPECT_THAT(Escape("plain text/é ☺ 😀"),
              ::testing::Eq(absl::StatusOr<std::string>("plain text/é ☺ 😀")));
  auto escaped = Escape("a&b<c>d\"e'f\tg\nh\ri");
  ASSERT_TRUE(escaped.ok());
  EXPECT_EQ(*escaped,
            "a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g&#10;h&#13;i");
  EXPECT_EQ(*Escape(""), "");
}

TEST(EscapeTest, RejectsWhatXmlCannotCarry) {
  const struct {
    absl::string_view text;
    const char* message_part;
  } cases[] = {
      {absl::string_view("a\0b", 3), "byte offset 1: control character U+0000"},
      {"x\x01", "byte offset 1: control character U+0001"},
      {"\x1b[0m", "U+001B"},
      {"caf\xE9", "byte offset 3: invalid UTF-8"},
      {"\xC0\xAF", "invalid UTF-8"},          // overlong '/'
      {"\xED\xA0\x80", "invalid UTF-8"},      // surrogate
      {"\xF4\x90\x80\x80", "invalid UTF-8"},  // above U+10FFFF
      {"\xE2\x98", "invalid UTF-8"},          // truncated
      {"\xEF\xBF\xBE", "U+FFFE"},
      {"\xEF\xBF\xBF", "U+FFFF"},
  };
  for (const auto& c : cases) {
    auto escaped = Escape(c.text);
    ASSERT_FALSE(escaped.ok()) << absl::CHexEscape(c.text);
    EXPECT_EQ(escaped.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(escaped.status().message(), HasSubstr(c.message_part));
  }
}

TEST(EscapeTest, RoundTripsThroughParse) {
  for (absl::string_view value :
       {"a&b", "<tag attr='x'>", "quote\"apos'", "  spaced  ",
        "tab\tnl\ncr\rcrlf\r\n", "]]>", "&amp; literally", "é☺😀"}) {
    auto escaped = Escape(value);
    ASSERT_TRUE(escaped.ok()) << value;
    auto doc = Parse(absl::StrCat("<r a=\"", *escaped, "\" b='", *escaped,
                                  "'>", *escaped, "</r>"));
    ASSERT_TRUE(doc.ok()) << value << ": " << doc.status();
    EXPECT_EQ(doc->Root().Text(), value);
    EXPECT_THAT(doc->Root().Attr("a"), Optional(value));
    EXPECT_THAT(doc->Root().Attr("b"), Optional(value));
  }
}

}  // namespace
}  // namespace cloudplane::xml
