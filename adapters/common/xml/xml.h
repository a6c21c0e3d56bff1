// Hardened XML parsing (libxml2) and escaping for provider wire formats.
//
// Provider responses (S3-style, EC2 query API, XML-RPC, ...) are parsed into
// a small immutable tree:
//
//   ASSIGN_OR_RETURN(xml::Document doc, xml::Parse(response.body));
//   for (const xml::Node* item : doc.Root().ChildrenNamed("Contents")) {
//     absl::string_view key = item->ChildText("Key");
//   }
//
// Safety, since the input comes from the network:
//   - A document with a DOCTYPE is rejected as soon as the parser meets it,
//     before any declaration inside it is read. Providers never send one, and
//     this removes external entities (XXE), entity expansion bombs ("billion
//     laughs") and DTD fetching in one rule.
//   - No network access (XML_PARSE_NONET); none of NOENT, DTDLOAD, DTDATTR,
//     DTDVALID, XINCLUDE, HUGE or RECOVER is ever set.
//   - Input size, element nesting depth and element count are limited.
//   - libxml2 diagnostics go to a per-parse handler and end up in the
//     returned status; nothing is written to stderr.
//
// Thread-safety: Parse() and Escape() may run concurrently on any threads.
// A Document is immutable and may be read from several threads.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_XML_XML_H_
#define CLOUDPLANE_ADAPTERS_COMMON_XML_XML_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::xml {

struct Limits {
  // Input size in bytes.
  size_t max_bytes = 16 << 20;
  // Element nesting; the root element is depth 1. Values above 256 act as
  // 256 (the tree is freed recursively, one stack frame per level).
  int max_depth = 64;
  // Number of elements in the document.
  size_t max_nodes = 500'000;
};

// One element. Text, CDATA and child elements are kept; comments and
// processing instructions are dropped. A Node belongs to its Document:
// references and pointers to it are valid while the Document lives (moving
// the Document keeps them valid).
class Node {
 public:
  // Local name, without namespace prefix ("Key" for <s3:Key>).
  absl::string_view Name() const { return name_; }
  // Namespace prefix as written ("s3"), or empty.
  absl::string_view Prefix() const { return prefix_; }
  // Namespace URI the element is in, or empty for none.
  absl::string_view NamespaceUri() const { return namespace_uri_; }

  // Text and CDATA directly inside this element (not inside its children),
  // concatenated in document order, in UTF-8, with character and predefined
  // entity references decoded. Whitespace is kept as it was.
  absl::string_view Text() const { return text_; }

  // Value of the attribute with this local name (ignoring any namespace), or
  // std::nullopt. Namespace declarations (xmlns) are not attributes.
  std::optional<absl::string_view> Attr(absl::string_view local_name) const;
  const std::vector<std::pair<std::string, std::string>>& Attrs() const {
    return attrs_;
  }

  // Child elements in document order.
  const std::vector<Node>& Children() const { return children_; }
  const std::vector<Node>& ChildElements() const { return children_; }
  // The first child element with this local name, or nullptr.
  const Node* Child(absl::string_view local_name) const;
  // All child elements with this local name, in document order.
  std::vector<const Node*> ChildrenNamed(absl::string_view local_name) const;
  // Text() of Child(local_name), or "" when there is no such child.
  absl::string_view ChildText(absl::string_view local_name) const;

 private:
  friend struct ParseState;
  std::string name_;
  std::string prefix_;
  std::string namespace_uri_;
  std::string text_;
  std::vector<std::pair<std::string, std::string>> attrs_;
  std::vector<Node> children_;
};

class Document {
 public:
  const Node& Root() const { return *root_; }

 private:
  friend absl::StatusOr<Document> Parse(absl::string_view text,
                                        const struct Limits& limits);
  std::unique_ptr<Node> root_;
};

// Parses `text` (UTF-8, or another encoding its XML declaration names).
// Returns INVALID_ARGUMENT, with a message saying why, for: malformed or
// truncated XML (with line and column), a DOCTYPE ("XML documents with a DTD
// are not accepted"), input over `limits.max_bytes`, nesting deeper than
// `limits.max_depth`, more than `limits.max_nodes` elements, bytes that are
// not valid in the document's encoding, an empty document.
absl::StatusOr<Document> Parse(absl::string_view text, const Limits& limits = {});

// Escapes `text` for use as element text or as a double- or single-quoted
// attribute value: & < > " ' become entity references, and tab, LF and CR
// become character references (so attribute values and CRs survive XML's
// whitespace normalisation). Everything else valid in XML 1.0 passes
// through unchanged.
//
// Returns INVALID_ARGUMENT, naming the byte offset, for text XML 1.0 cannot
// carry at all: invalid UTF-8, control characters other than tab/LF/CR
// (U+0000-U+001F), U+FFFE and U+FFFF. They are rejected rather than replaced
// because a silently changed value (say, an object key) would name something
// else.
absl::StatusOr<std::string> Escape(absl::string_view text);

}  // namespace cloudplane::xml

#endif  // CLOUDPLANE_ADAPTERS_COMMON_XML_XML_H_
