#include "adapters/common/xml/xml.h"

#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "base/utf8.h"

namespace cloudplane::xml {
namespace {

absl::string_view View(const xmlChar* s) {
  return s == nullptr ? absl::string_view()
                      : absl::string_view(reinterpret_cast<const char*>(s));
}

// xmlInitParser sets up global tables; calling it once before any parse is
// what makes concurrent parses safe.
void InitLibxmlOnce() {
  static absl::once_flag once;
  absl::call_once(once, [] { xmlInitParser(); });
}

constexpr char kDtdRejected[] = "XML documents with a DTD are not accepted";

// Node's destructor recurses once per level; this bounds the stack it uses.
constexpr int kMaxDepthCap = 256;

}  // namespace

// Builds the Node tree from SAX2 events and collects the first error. Named
// (not in the anonymous namespace) because Node and Document befriend it.
struct ParseState {
  xmlParserCtxtPtr ctxt = nullptr;
  Limits limits;
  std::unique_ptr<Node> root;
  // Open elements, innermost last. Only the innermost one's children vector
  // grows, so pointers to the ones below it stay valid.
  std::vector<Node*> open;
  size_t elements = 0;
  std::string error;  // First error; empty while all is well.

  // Records our own reason to reject and halts the parser at once.
  void Reject(std::string reason) {
    if (error.empty()) error = std::move(reason);
    xmlStopParser(ctxt);
  }

  static ParseState* From(void* user) { return static_cast<ParseState*>(user); }

  static void OnStartElement(void* user, const xmlChar* localname,
                             const xmlChar* prefix, const xmlChar* uri,
                             int /*nb_namespaces*/,
                             const xmlChar** /*namespaces*/, int nb_attributes,
                             int /*nb_defaulted*/, const xmlChar** attributes) {
    ParseState* s = From(user);
    if (!s->error.empty()) return;
    if (++s->elements > s->limits.max_nodes) {
      s->Reject(absl::StrCat("XML document has more than ",
                             s->limits.max_nodes, " elements"));
      return;
    }
    const int max_depth = std::min(s->limits.max_depth, kMaxDepthCap);
    if (static_cast<int>(s->open.size()) + 1 > max_depth) {
      s->Reject(absl::StrCat("XML document nests elements deeper than ",
                             max_depth, " levels"));
      return;
    }
    Node* node;
    if (s->open.empty()) {
      s->root = std::make_unique<Node>();
      node = s->root.get();
    } else {
      node = &s->open.back()->children_.emplace_back();
    }
    node->name_ = std::string(View(localname));
    node->prefix_ = std::string(View(prefix));
    node->namespace_uri_ = std::string(View(uri));
    // Five pointers per attribute: localname, prefix, URI, value begin, end.
    for (int i = 0; i < nb_attributes; ++i) {
      const xmlChar** a = attributes + 5 * i;
      std::string value(reinterpret_cast<const char*>(a[3]), a[4] - a[3]);
      // Without entity substitution libxml2 hands over "&" (from "&amp;" or
      // "&#38;") as the text "&#38;", for a tree builder to decode later. A
      // literal "&#38;" cannot otherwise occur here: a raw '&' in the input
      // always starts a reference, and undeclared entities are fatal errors.
      if (value.find("&#38;") != std::string::npos) {
        value = absl::StrReplaceAll(value, {{"&#38;", "&"}});
      }
      if (!IsValidUtf8(value)) {
        s->Reject(absl::StrCat("XML attribute ", View(a[0]), " of <", node->name_,
                               "> is not valid UTF-8"));
        return;
      }
      node->attrs_.emplace_back(std::string(View(a[0])), std::move(value));
    }
    s->open.push_back(node);
  }

  static void OnEndElement(void* user, const xmlChar*, const xmlChar*,
                           const xmlChar*) {
    ParseState* s = From(user);
    if (s->open.empty()) return;
    // libxml2 checks the encoding of character data but not of every CDATA
    // section (an overlong C1 8B inside one passed, found by xml_fuzz), so
    // each element's text is checked once it is complete.
    if (s->error.empty() && !IsValidUtf8(s->open.back()->text_)) {
      s->Reject(absl::StrCat("XML text of <", s->open.back()->name_, "> is not valid UTF-8"));
    }
    s->open.pop_back();
  }

  // Text, CDATA and whitespace all arrive here.
  static void OnCharacters(void* user, const xmlChar* chars, int len) {
    ParseState* s = From(user);
    if (!s->error.empty() || s->open.empty()) return;
    s->open.back()->text_.append(reinterpret_cast<const char*>(chars), len);
  }

  // Called on "<!DOCTYPE name ...", before an internal subset is read, so no
  // entity is ever declared, let alone expanded or fetched.
  static void OnDoctype(void* user, const xmlChar*, const xmlChar*,
                        const xmlChar*) {
    From(user)->Reject(kDtdRejected);
  }

  static void OnEntityDecl(void* user, const xmlChar*, int, const xmlChar*,
                           const xmlChar*, xmlChar*) {
    From(user)->Reject(kDtdRejected);  // Unreachable after OnDoctype; belt.
  }

  // Structured diagnostics from the parser (and, through the thread-local
  // hook, from encoding and I/O code).
  static void OnError(void* user, xmlErrorPtr e) {
    if (e == nullptr || e->level == XML_ERR_WARNING) return;
    ParseState* s = From(user);
    if (!s->error.empty()) return;
    std::string message(absl::StripAsciiWhitespace(
        e->message != nullptr ? e->message : "unknown error"));
    // libxml2 messages can span lines ("...UTF-8, indicate encoding !\nBytes:
    // 0xFF ..."); one line reads better in a status.
    absl::StrReplaceAll({{"\n", "; "}}, &message);
    // libxml2 quotes the input around the error, cut at a byte count, so a
    // character may be split (xml_fuzz); the message is repaired.
    message = RepairUtf8(message);
    if (e->line > 0) {
      s->error = absl::StrCat("malformed XML at line ", e->line, ", column ",
                              e->int2, ": ", message);
    } else {
      s->error = absl::StrCat("malformed XML: ", message);
    }
  }

  // Unstructured diagnostics (xmlGenericError); printf-style.
  static void OnGenericError(void* user, const char* fmt, ...) {
    ParseState* s = From(user);
    if (s == nullptr || !s->error.empty()) return;
    char buf[256];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);
    s->error = absl::StrCat("malformed XML: ", absl::StripAsciiWhitespace(buf));
  }
};

namespace {

// Points libxml2's thread-local fallback error hooks at `state` for the
// duration of one parse, so that no diagnostic reaches the default handler
// (which prints to stderr), and restores the caller's hooks afterwards.
class ScopedErrorHooks {
 public:
  explicit ScopedErrorHooks(ParseState* state)
      : old_structured_(xmlStructuredError),
        old_structured_ctx_(xmlStructuredErrorContext),
        old_generic_(xmlGenericError),
        old_generic_ctx_(xmlGenericErrorContext) {
    xmlSetStructuredErrorFunc(state, &ParseState::OnError);
    xmlSetGenericErrorFunc(state, &ParseState::OnGenericError);
  }
  ~ScopedErrorHooks() {
    xmlSetStructuredErrorFunc(old_structured_ctx_, old_structured_);
    xmlSetGenericErrorFunc(old_generic_ctx_, old_generic_);
  }
  ScopedErrorHooks(const ScopedErrorHooks&) = delete;
  ScopedErrorHooks& operator=(const ScopedErrorHooks&) = delete;

 private:
  xmlStructuredErrorFunc old_structured_;
  void* old_structured_ctx_;
  xmlGenericErrorFunc old_generic_;
  void* old_generic_ctx_;
};

}  // namespace

absl::StatusOr<Document> Parse(absl::string_view text, const Limits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("XML document is ", text.size(),
                     " bytes; the limit is ", limits.max_bytes));
  }
  if (text.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("XML document too large for libxml2");
  }
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("empty XML document");
  }
  InitLibxmlOnce();

  ParseState state;
  state.limits = limits;

  // Only the handlers below exist: no default SAX2 tree builder, no entity
  // resolver, no external subset loader.
  xmlSAXHandler sax;
  std::memset(&sax, 0, sizeof(sax));
  sax.initialized = XML_SAX2_MAGIC;
  sax.startElementNs = &ParseState::OnStartElement;
  sax.endElementNs = &ParseState::OnEndElement;
  sax.characters = &ParseState::OnCharacters;
  sax.ignorableWhitespace = &ParseState::OnCharacters;
  sax.cdataBlock = &ParseState::OnCharacters;
  sax.internalSubset = &ParseState::OnDoctype;
  sax.externalSubset = &ParseState::OnDoctype;
  sax.entityDecl = &ParseState::OnEntityDecl;
  sax.serror = &ParseState::OnError;

  ScopedErrorHooks hooks(&state);
  xmlParserCtxtPtr ctxt =
      xmlCreatePushParserCtxt(&sax, &state, nullptr, 0, nullptr);
  if (ctxt == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate an XML parser");
  }
  state.ctxt = ctxt;
  // Deliberately absent: NOENT, DTDLOAD, DTDATTR, DTDVALID, XINCLUDE, HUGE
  // (keeps libxml2's own size/depth caps), RECOVER.
  xmlCtxtUseOptions(ctxt, XML_PARSE_NONET);
  ctxt->replaceEntities = 0;
  ctxt->loadsubset = 0;
  ctxt->validate = 0;
  xmlParseChunk(ctxt, text.data(), static_cast<int>(text.size()),
                /*terminate=*/1);
  const bool well_formed = ctxt->wellFormed != 0;
  xmlFreeParserCtxt(ctxt);

  if (!state.error.empty()) return absl::InvalidArgumentError(state.error);
  if (!well_formed || state.root == nullptr || !state.open.empty()) {
    return absl::InvalidArgumentError("malformed XML: incomplete document");
  }
  Document doc;
  doc.root_ = std::move(state.root);
  return doc;
}

std::optional<absl::string_view> Node::Attr(absl::string_view local_name) const {
  for (const auto& [name, value] : attrs_) {
    if (name == local_name) return absl::string_view(value);
  }
  return std::nullopt;
}

const Node* Node::Child(absl::string_view local_name) const {
  for (const Node& child : children_) {
    if (child.name_ == local_name) return &child;
  }
  return nullptr;
}

std::vector<const Node*> Node::ChildrenNamed(absl::string_view local_name) const {
  std::vector<const Node*> out;
  for (const Node& child : children_) {
    if (child.name_ == local_name) out.push_back(&child);
  }
  return out;
}

absl::string_view Node::ChildText(absl::string_view local_name) const {
  const Node* child = Child(local_name);
  return child == nullptr ? absl::string_view() : child->Text();
}

absl::StatusOr<std::string> Escape(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        case '\t': out += "&#9;"; break;
        case '\n': out += "&#10;"; break;
        case '\r': out += "&#13;"; break;
        default:
          // Other C0 controls are not XML 1.0 characters, not even as
          // character references.
          if (c < 0x20) {
            return absl::InvalidArgumentError(absl::StrFormat(
                "byte offset %d: control character U+%04X cannot appear in "
                "XML",
                i, c));
          }
          out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Multi-byte UTF-8: validate the sequence (shortest form, no surrogates,
    // at most U+10FFFF) and copy it unchanged.
    int len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      len = 0;
      cp = 0;
    }
    bool valid = len > 0 && i + len <= n;
    for (int k = 1; valid && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) valid = false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (valid) {
      if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
          (cp >= 0xD800 && cp <= 0xDFFF)) {
        valid = false;
      }
    }
    if (!valid) {
      return absl::InvalidArgumentError(
          absl::StrFormat("byte offset %d: invalid UTF-8", i));
    }
    if (cp == 0xFFFE || cp == 0xFFFF) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "byte offset %d: U+%04X cannot appear in XML", i, cp));
    }
    out.append(text.data() + i, len);
    i += len;
  }
  return out;
}

}  // namespace cloudplane::xml
