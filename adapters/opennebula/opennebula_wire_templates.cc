// Templates ([template]): quoting, the text and XML forms, and the VM
// template a create's provider_options carry.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "adapters/opennebula/opennebula_wire.h"
#include "base/errors.h"
#include "base/status.h"
#include "google/protobuf/struct.pb.h"

namespace cloudplane::adapters::opennebula {

absl::StatusOr<std::string> QuoteTemplateValue(absl::string_view value) {
  if (absl::StrContains(value, "]]>")) {
    return absl::InvalidArgumentError("OpenNebula cannot store a value containing \"]]>\"");
  }
  if (absl::StrContains(value, std::string(1, '\0'))) {
    return absl::InvalidArgumentError("a value cannot contain NUL");
  }
  std::string out = "\"";
  for (char c : value) {
    // [template]: the only escape is \" ; backslashes stay as they are.
    if (c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

bool IsTemplateName(absl::string_view name) {
  if (name.empty() || !(absl::ascii_isalpha(name[0]) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

absl::StatusOr<std::string> FlatTemplate(
    const std::vector<std::pair<std::string, std::string>>& attrs, absl::string_view field) {
  std::string out;
  absl::Status status;
  for (const auto& [key, value] : attrs) {
    if (!IsTemplateName(key)) {
      AddFieldViolation(status, absl::StrCat(field, ".", key),
                        "an OpenNebula attribute name is letters, digits and _, not starting "
                        "with a digit");
      continue;
    }
    absl::StatusOr<std::string> quoted = QuoteTemplateValue(value);
    if (!quoted.ok()) {
      AddFieldViolation(status, absl::StrCat(field, ".", key), quoted.status().message());
      continue;
    }
    absl::StrAppend(&out, key, "=", *quoted, "\n");
  }
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::string> XmlTemplate(absl::string_view root,
                                        const std::vector<XmlAttr>& attrs) {
  if (!IsTemplateName(root)) return absl::InvalidArgumentError("bad template root name");
  std::string out = absl::StrCat("<", root, ">");
  for (const XmlAttr& a : attrs) {
    if (!IsTemplateName(a.name)) {
      return absl::InvalidArgumentError(absl::StrCat("bad attribute name \"", a.name, "\""));
    }
    absl::StrAppend(&out, "<", a.name, ">");
    if (a.vector.empty()) {
      ASSIGN_OR_RETURN(std::string v, xml::Escape(a.value));
      out += v;
    } else {
      for (const auto& [k, value] : a.vector) {
        if (!IsTemplateName(k)) {
          return absl::InvalidArgumentError(absl::StrCat("bad attribute name \"", k, "\""));
        }
        ASSIGN_OR_RETURN(std::string v, xml::Escape(value));
        absl::StrAppend(&out, "<", k, ">", v, "</", k, ">");
      }
    }
    absl::StrAppend(&out, "</", a.name, ">");
  }
  absl::StrAppend(&out, "</", root, ">");
  return out;
}

std::map<std::string, std::string> SingleAttributes(const xml::Node* template_node) {
  std::map<std::string, std::string> out;
  if (template_node == nullptr) return out;
  for (const xml::Node& c : template_node->Children()) {
    if (c.Children().empty()) out.emplace(std::string(c.Name()), std::string(c.Text()));
  }
  return out;
}

namespace {

// A Struct scalar as template text: integers without ".0", bools YES/NO.
absl::StatusOr<std::string> ScalarText(const google::protobuf::Value& v, absl::string_view field) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kStringValue:
      return v.string_value();
    case google::protobuf::Value::kNumberValue: {
      const double d = v.number_value();
      if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -9e15 && d < 9e15) {
        return absl::StrCat(static_cast<int64_t>(d));
      }
      // The shortest text that reads back as the same double.
      for (int precision = 15; precision <= 17; ++precision) {
        std::string text = absl::StrFormat("%.*g", precision, d);
        double back = 0;
        if (absl::SimpleAtod(text, &back) && back == d) return text;
      }
      return absl::StrFormat("%.17g", d);
    }
    case google::protobuf::Value::kBoolValue:
      return std::string(v.bool_value() ? "YES" : "NO");
    case google::protobuf::Value::kNullValue:
      return std::string();
    default:
      return InvalidField(field, "must be a string, number, bool or null here");
  }
}

bool IsScalar(const google::protobuf::Value& v) {
  return v.kind_case() != google::protobuf::Value::kStructValue &&
         v.kind_case() != google::protobuf::Value::kListValue;
}

// One Struct member as template attributes: a scalar, a vector (Struct of
// scalars), or a list of either (the attribute repeated). Keys are sorted so
// the text does not depend on map order.
absl::Status AppendAttributes(absl::string_view key, const google::protobuf::Value& v,
                              absl::string_view field, std::vector<XmlAttr>* out) {
  const std::string path = absl::StrCat(field, ".", key);
  if (!IsTemplateName(key)) {
    return InvalidField(path,
                        "an OpenNebula attribute name is letters, digits and _, not starting "
                        "with a digit");
  }
  if (v.kind_case() == google::protobuf::Value::kListValue) {
    for (const google::protobuf::Value& item : v.list_value().values()) {
      if (item.kind_case() == google::protobuf::Value::kListValue) {
        return InvalidField(path, "a list cannot hold lists");
      }
      RETURN_IF_ERROR(AppendAttributes(key, item, field, out));
    }
    return absl::OkStatus();
  }
  XmlAttr attr;
  attr.name = std::string(key);
  if (v.kind_case() == google::protobuf::Value::kStructValue) {
    std::map<std::string, const google::protobuf::Value*> sorted;
    for (const auto& [k, sub] : v.struct_value().fields()) sorted[k] = &sub;
    if (sorted.empty()) return InvalidField(path, "an empty map is not a template attribute");
    for (const auto& [k, sub] : sorted) {
      const std::string sub_path = absl::StrCat(path, ".", k);
      if (!IsTemplateName(k)) return InvalidField(sub_path, "not an OpenNebula attribute name");
      if (!IsScalar(*sub)) {
        return InvalidField(sub_path, "templates nest one level deep: vector values are scalars");
      }
      ASSIGN_OR_RETURN(std::string text, ScalarText(*sub, sub_path));
      attr.vector.emplace_back(k, std::move(text));
    }
  } else {
    ASSIGN_OR_RETURN(attr.value, ScalarText(v, path));
  }
  out->push_back(std::move(attr));
  return absl::OkStatus();
}

absl::StatusOr<std::string> TextTemplate(const std::vector<XmlAttr>& attrs,
                                         absl::string_view field) {
  std::string out;
  for (const XmlAttr& a : attrs) {
    if (a.vector.empty()) {
      absl::StatusOr<std::string> q = QuoteTemplateValue(a.value);
      if (!q.ok()) return InvalidField(absl::StrCat(field, ".", a.name), q.status().message());
      absl::StrAppend(&out, a.name, "=", *q, "\n");
      continue;
    }
    std::vector<std::string> parts;
    for (const auto& [k, v] : a.vector) {
      absl::StatusOr<std::string> q = QuoteTemplateValue(v);
      if (!q.ok()) {
        return InvalidField(absl::StrCat(field, ".", a.name, ".", k), q.status().message());
      }
      parts.push_back(absl::StrCat(k, "=", *q));
    }
    absl::StrAppend(&out, a.name, "=[", absl::StrJoin(parts, ","), "]\n");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> VmTemplateFromOption(
    const google::protobuf::Value& option,
    const std::vector<std::pair<std::string, std::string>>& extra, absl::string_view field) {
  if (option.kind_case() == google::protobuf::Value::kStringValue) {
    const std::string& raw = option.string_value();
    if (absl::StripAsciiWhitespace(raw).empty()) return InvalidField(field, "is empty");
    if (raw[0] != '<') {
      // Text form: our attributes first, then the caller's text as it is.
      ASSIGN_OR_RETURN(std::string head, FlatTemplate(extra, field));
      return absl::StrCat(head, raw);
    }
    // XML form ([template]): oned reads the root's children, so ours go in just
    // before the root's closing tag.
    absl::string_view body = absl::StripTrailingAsciiWhitespace(raw);
    const size_t root_end = body.find_first_of(" \t\r\n/>", 1);
    const absl::string_view root = body.substr(1, root_end == absl::string_view::npos
                                                      ? absl::string_view::npos
                                                      : root_end - 1);
    const size_t close = body.rfind("</");
    absl::string_view tag =
        close == absl::string_view::npos ? absl::string_view() : body.substr(close + 2);
    if (close == absl::string_view::npos || tag.empty() || tag.back() != '>' ||
        absl::StripTrailingAsciiWhitespace(tag.substr(0, tag.size() - 1)) != root ||
        !IsTemplateName(root)) {
      return InvalidField(field, "an XML template must end with its root element's closing tag");
    }
    std::string inserted;
    for (const auto& [k, v] : extra) {
      if (!IsTemplateName(k)) return InvalidField(field, "bad attribute name");
      absl::StatusOr<std::string> escaped = xml::Escape(v);
      if (!escaped.ok()) {
        return InvalidField(absl::StrCat(field, ".", k), escaped.status().message());
      }
      absl::StrAppend(&inserted, "<", k, ">", *escaped, "</", k, ">");
    }
    return absl::StrCat(body.substr(0, close), inserted, body.substr(close));
  }
  if (option.kind_case() != google::protobuf::Value::kStructValue ||
      option.struct_value().fields().empty()) {
    return InvalidField(field, "must be the template text or a non-empty map (as pyone takes)");
  }
  const auto& fields = option.struct_value().fields();
  std::vector<XmlAttr> attrs;
  for (const auto& [k, v] : extra) attrs.push_back({k, v, {}});
  if (fields.size() == 1 &&
      fields.begin()->second.kind_case() == google::protobuf::Value::kStructValue) {
    // pyone: one root key holding a map is the XML form.
    const std::string& root = fields.begin()->first;
    const std::string root_field = absl::StrCat(field, ".", root);
    if (!IsTemplateName(root)) return InvalidField(root_field, "not an XML element name");
    std::map<std::string, const google::protobuf::Value*> sorted;
    for (const auto& [k, v] : fields.begin()->second.struct_value().fields()) sorted[k] = &v;
    for (const auto& [k, v] : sorted) RETURN_IF_ERROR(AppendAttributes(k, *v, root_field, &attrs));
    absl::StatusOr<std::string> out = XmlTemplate(root, attrs);
    if (!out.ok()) return InvalidField(root_field, out.status().message());
    return out;
  }
  std::map<std::string, const google::protobuf::Value*> sorted;
  for (const auto& [k, v] : fields) sorted[k] = &v;
  for (const auto& [k, v] : sorted) RETURN_IF_ERROR(AppendAttributes(k, *v, field, &attrs));
  return TextTemplate(attrs, field);
}

absl::StatusOr<std::string> VectorTemplate(
    absl::string_view name, const std::vector<std::pair<std::string, std::string>>& attrs) {
  if (!IsTemplateName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("bad attribute name \"", name, "\""));
  }
  std::vector<std::string> parts;
  for (const auto& [k, v] : attrs) {
    if (!IsTemplateName(k)) {
      return absl::InvalidArgumentError(absl::StrCat("bad attribute name \"", k, "\""));
    }
    ASSIGN_OR_RETURN(std::string quoted, QuoteTemplateValue(v));
    parts.push_back(absl::StrCat(k, "=", quoted));
  }
  return absl::StrCat(name, "=[", absl::StrJoin(parts, ","), "]\n");
}

absl::StatusOr<std::string> RuleSetTemplate(
    const std::vector<std::vector<std::pair<std::string, std::string>>>& rules) {
  if (rules.empty()) return std::string("RULE=[]\n");
  std::string out;
  for (const auto& rule : rules) {
    ASSIGN_OR_RETURN(std::string line, VectorTemplate("RULE", rule));
    out += line;
  }
  return out;
}

}  // namespace cloudplane::adapters::opennebula
