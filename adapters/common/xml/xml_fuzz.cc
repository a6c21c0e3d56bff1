// Fuzz harness of the hardened XML parser (tools/bazel/fuzz.bzl, tools/fuzz).
// Properties, for any input:
//   - the limits hold: a parsed tree is no deeper than max_depth and has no
//     more than max_nodes elements, and input over max_bytes is refused;
//   - every name, namespace, text and attribute that comes out is valid
//     UTF-8 (whatever encoding the document declared);
//   - a parsed tree written out again with xml::Escape (which must accept
//     every text the parser produced) parses to the same tree.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "adapters/common/xml/xml.h"
#include "base/fuzzing/fuzz_checks.h"

namespace cloudplane::xml {
namespace {

using fuzzing::CheckUtf8;

constexpr Limits kLimits = {.max_bytes = 1 << 16, .max_depth = 24, .max_nodes = 4000};

void Walk(const Node& node, int depth, size_t& count) {
  ++count;
  FUZZ_CHECK(depth <= kLimits.max_depth, "a tree deeper than max_depth was accepted");
  CheckUtf8(node.Name(), "element name");
  CheckUtf8(node.Prefix(), "element prefix");
  CheckUtf8(node.NamespaceUri(), "namespace URI");
  CheckUtf8(node.Text(), "element text");
  for (const auto& [name, value] : node.Attrs()) {
    CheckUtf8(name, "attribute name");
    CheckUtf8(value, "attribute value");
  }
  for (const Node& child : node.Children()) Walk(child, depth + 1, count);
}

// The tree as XML without prefixes; false when it cannot be written that
// way (two attributes with one local name, which only prefixes told apart).
bool Write(const Node& node, std::string& out) {
  std::set<std::string> names;
  absl::StrAppend(&out, "<", node.Name());
  for (const auto& [name, value] : node.Attrs()) {
    if (!names.insert(name).second) return false;
    auto escaped = Escape(value);
    FUZZ_CHECK(escaped.ok(), "Escape refused an attribute value the parser produced");
    absl::StrAppend(&out, " ", name, "=\"", *escaped, "\"");
  }
  auto text = Escape(node.Text());
  FUZZ_CHECK(text.ok(), "Escape refused a text the parser produced");
  absl::StrAppend(&out, ">", *text);
  for (const Node& child : node.Children()) {
    if (!Write(child, out)) return false;
  }
  absl::StrAppend(&out, "</", node.Name(), ">");
  return true;
}

bool Same(const Node& a, const Node& b) {
  if (a.Name() != b.Name() || a.Text() != b.Text() || a.Attrs() != b.Attrs() ||
      a.Children().size() != b.Children().size()) {
    return false;
  }
  for (size_t i = 0; i < a.Children().size(); ++i) {
    if (!Same(a.Children()[i], b.Children()[i])) return false;
  }
  return true;
}

}  // namespace
}  // namespace cloudplane::xml

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane::xml;
  const absl::string_view input = cloudplane::fuzzing::AsText(data, size);
  auto doc = Parse(input, kLimits);
  if (size > kLimits.max_bytes) {
    FUZZ_CHECK(!doc.ok(), "input over max_bytes was accepted");
  }
  if (!doc.ok()) {
    cloudplane::fuzzing::CheckUtf8(doc.status().message(), "error message");
    return 0;
  }
  size_t count = 0;
  Walk(doc->Root(), 1, count);
  FUZZ_CHECK(count <= kLimits.max_nodes, "more elements than max_nodes were accepted");

  std::string again;
  if (!Write(doc->Root(), again)) return 0;
  auto reparsed = Parse(again, {.max_bytes = 64 << 20, .max_depth = 256, .max_nodes = 1 << 20});
  FUZZ_CHECK(reparsed.ok(), "a tree written out again does not parse");
  FUZZ_CHECK(Same(doc->Root(), reparsed->Root()), "a tree written out again parses differently");
  return 0;
}
