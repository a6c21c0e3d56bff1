#include "adapters/opennebula/opennebula_wire.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/http/http_status.h"
#include "base/errors.h"
#include "base/status.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/time_util.h"

namespace cloudplane::adapters::opennebula {
namespace {

absl::Status Malformed(absl::string_view method, absl::string_view detail) {
  return WithErrorInfo(
      absl::InternalError(absl::StrCat("OpenNebula sent a malformed response to ", method, ": ",
                                       detail)),
      "PROVIDER_MALFORMED_RESPONSE", {{"method", std::string(method)}});
}

absl::StatusOr<int64_t> IntChild(const xml::Node& node, absl::string_view child,
                                 absl::string_view what) {
  const xml::Node* c = node.Child(child);
  int64_t v = 0;
  if (c == nullptr) {
    return Malformed(what, absl::StrCat("<", node.Name(), "> has no <", child, ">"));
  }
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(c->Text()), &v)) {
    return Malformed(what, absl::StrCat("<", node.Name(), "><", child, "> is not an integer"));
  }
  return v;
}

int64_t IntOr(const xml::Node* node, absl::string_view child, int64_t fallback) {
  if (node == nullptr) return fallback;
  const xml::Node* c = node->Child(child);
  int64_t v = 0;
  if (c == nullptr || !absl::SimpleAtoi(absl::StripAsciiWhitespace(c->Text()), &v)) {
    return fallback;
  }
  return v;
}

void SetString(google::protobuf::Struct* s, absl::string_view key, absl::string_view value) {
  (*s->mutable_fields())[std::string(key)].set_string_value(std::string(value));
}
void SetNumber(google::protobuf::Struct* s, absl::string_view key, double value) {
  (*s->mutable_fields())[std::string(key)].set_number_value(value);
}

constexpr const char* kVmStates[] = {"INIT",    "PENDING",  "HOLD",       "ACTIVE",
                                     "STOPPED", "SUSPENDED", "DONE",      "FAILED",
                                     "POWEROFF", "UNDEPLOYED", "CLONING", "CLONING_FAILURE"};

// LCM_STATE names (§7.2), indexed by number.
constexpr const char* kLcmStates[] = {
    "LCM_INIT", "PROLOG", "BOOT", "RUNNING", "MIGRATE", "SAVE_STOP", "SAVE_SUSPEND",
    "SAVE_MIGRATE", "PROLOG_MIGRATE", "PROLOG_RESUME", "EPILOG_STOP", "EPILOG", "SHUTDOWN",
    "CANCEL", "FAILURE", "CLEANUP_RESUBMIT", "UNKNOWN", "HOTPLUG", "SHUTDOWN_POWEROFF",
    "BOOT_UNKNOWN", "BOOT_POWEROFF", "BOOT_SUSPENDED", "BOOT_STOPPED", "CLEANUP_DELETE",
    "HOTPLUG_SNAPSHOT", "HOTPLUG_NIC", "HOTPLUG_SAVEAS", "HOTPLUG_SAVEAS_POWEROFF",
    "HOTPLUG_SAVEAS_SUSPENDED", "SHUTDOWN_UNDEPLOY", "EPILOG_UNDEPLOY", "PROLOG_UNDEPLOY",
    "BOOT_UNDEPLOY", "HOTPLUG_PROLOG_POWEROFF", "HOTPLUG_EPILOG_POWEROFF", "BOOT_MIGRATE",
    "BOOT_FAILURE", "BOOT_MIGRATE_FAILURE", "PROLOG_MIGRATE_FAILURE", "PROLOG_FAILURE",
    "EPILOG_FAILURE", "EPILOG_STOP_FAILURE", "EPILOG_UNDEPLOY_FAILURE",
    "PROLOG_MIGRATE_POWEROFF", "PROLOG_MIGRATE_POWEROFF_FAILURE", "PROLOG_MIGRATE_SUSPEND",
    "PROLOG_MIGRATE_SUSPEND_FAILURE", "BOOT_UNDEPLOY_FAILURE", "BOOT_STOPPED_FAILURE",
    "PROLOG_RESUME_FAILURE", "PROLOG_UNDEPLOY_FAILURE", "DISK_SNAPSHOT_POWEROFF",
    "DISK_SNAPSHOT_REVERT_POWEROFF", "DISK_SNAPSHOT_DELETE_POWEROFF", "DISK_SNAPSHOT_SUSPENDED",
    "DISK_SNAPSHOT_REVERT_SUSPENDED", "DISK_SNAPSHOT_DELETE_SUSPENDED", "DISK_SNAPSHOT",
    "DISK_SNAPSHOT_REVERT", "DISK_SNAPSHOT_DELETE", "PROLOG_MIGRATE_UNKNOWN",
    "PROLOG_MIGRATE_UNKNOWN_FAILURE", "DISK_RESIZE", "DISK_RESIZE_POWEROFF",
    "DISK_RESIZE_UNDEPLOYED", "HOTPLUG_NIC_POWEROFF", "HOTPLUG_RESIZE",
    "HOTPLUG_SAVEAS_UNDEPLOYED", "HOTPLUG_SAVEAS_STOPPED", "BACKUP", "BACKUP_POWEROFF",
    "RESTORE"};

std::string Num(int n) { return absl::StrCat(n); }

}  // namespace

// ---------------------------------------------------------------------------
// Responses.

absl::Status StatusFromOneError(int64_t code, absl::string_view message,
                                absl::string_view method) {
  // §4. The message already names the method ("[one.vm.info] ...").
  absl::StatusCode status_code;
  std::string reason;
  switch (code) {
    case 0x100: status_code = absl::StatusCode::kUnauthenticated; reason = "PROVIDER_AUTHENTICATION"; break;
    case 0x200: status_code = absl::StatusCode::kPermissionDenied; reason = "PROVIDER_AUTHORIZATION"; break;
    case 0x400: status_code = absl::StatusCode::kNotFound; reason = "RESOURCE_NOT_FOUND"; break;
    case 0x800: status_code = absl::StatusCode::kFailedPrecondition; reason = "PROVIDER_ACTION"; break;
    case 0x1000: status_code = absl::StatusCode::kInvalidArgument; reason = "PROVIDER_API"; break;
    case 0x2000: status_code = absl::StatusCode::kInternal; reason = "PROVIDER_INTERNAL"; break;
    case 0x4000: status_code = absl::StatusCode::kInternal; reason = "PROVIDER_ALLOCATE"; break;
    // Defined but never emitted by 5.6-6.10 (§4); a lock is a conflict.
    case 0x8000: status_code = absl::StatusCode::kAborted; reason = "PROVIDER_LOCKED"; break;
    // A Raft replication failure: the cluster may recover; retry.
    case 0x10000: status_code = absl::StatusCode::kUnavailable; reason = "PROVIDER_REPLICATION"; break;
    default: status_code = absl::StatusCode::kUnknown; reason = "PROVIDER_ERROR"; break;
  }
  return WithErrorInfo(absl::Status(status_code, absl::StrCat("OpenNebula: ", message)), reason,
                       {{"providerCode", absl::StrCat(code)},
                        {"providerMessage", std::string(message)},
                        {"method", std::string(method)}});
}

absl::StatusOr<xmlrpc::Value> ResultFromResponse(int http_status, absl::string_view body,
                                                 absl::string_view method) {
  if (http_status != 200) {
    absl::Status s = http::HttpStatusToStatus(
        http_status, absl::StrCat("OpenNebula answered ", method, " with HTTP ", http_status));
    return WithErrorInfo(s, DefaultReason(s.code()), {{"httpStatus", absl::StrCat(http_status)},
                                                      {"method", std::string(method)}});
  }
  absl::StatusOr<xmlrpc::Response> r = xmlrpc::ParseResponse(body);
  if (!r.ok()) return Malformed(method, r.status().message());
  if (r->fault) {
    return WithErrorInfo(
        absl::InternalError(absl::StrCat("OpenNebula refused the call ", method,
                                         " (XML-RPC fault ", r->fault_code, "): ",
                                         r->fault_string)),
        "PROVIDER_XMLRPC_FAULT",
        {{"faultCode", absl::StrCat(r->fault_code)}, {"method", std::string(method)}});
  }
  const xmlrpc::Value& v = r->value;
  if (v.type() != xmlrpc::Value::Type::kArray || v.AsArray().size() < 2 ||
      v.AsArray()[0].type() != xmlrpc::Value::Type::kBool) {
    return Malformed(method, "the result is not an array [boolean, result, ...]");
  }
  const auto& items = v.AsArray();
  if (items[0].AsBool()) return items[1];
  // 3 items (5.0-5.2), 4 (5.4-5.8) or 5 (5.10+): only the first 3 matter.
  if (items.size() < 3 || items[1].type() != xmlrpc::Value::Type::kString ||
      items[2].type() != xmlrpc::Value::Type::kInt) {
    return Malformed(method, "a failure must be [false, string message, int code, ...]");
  }
  return StatusFromOneError(items[2].AsInt(), items[1].AsString(), method);
}

absl::StatusOr<int64_t> IntResult(const xmlrpc::Value& v, absl::string_view method) {
  if (v.type() != xmlrpc::Value::Type::kInt) {
    return Malformed(method, absl::StrCat("expected an int result, got ",
                                          xmlrpc::Value::TypeName(v.type())));
  }
  return v.AsInt();
}

absl::StatusOr<std::string> StringResult(const xmlrpc::Value& v, absl::string_view method) {
  if (v.type() != xmlrpc::Value::Type::kString) {
    return Malformed(method, absl::StrCat("expected a string result, got ",
                                          xmlrpc::Value::TypeName(v.type())));
  }
  return v.AsString();
}

absl::StatusOr<xml::Document> ParseObjectDocument(const xmlrpc::Value& v, absl::string_view root,
                                                  absl::string_view method) {
  ASSIGN_OR_RETURN(std::string text, StringResult(v, method));
  // The document travelled entity-escaped inside the XML-RPC string (§2.2)
  // and is parsed a second time, with the same hardening.
  absl::StatusOr<xml::Document> doc = xml::Parse(text);
  if (!doc.ok()) return Malformed(method, doc.status().message());
  if (doc->Root().Name() != root) {
    return Malformed(method, absl::StrCat("expected <", root, ">, got <", doc->Root().Name(),
                                          ">"));
  }
  return doc;
}

// ---------------------------------------------------------------------------
// Templates.

absl::StatusOr<std::string> QuoteTemplateValue(absl::string_view value) {
  if (absl::StrContains(value, "]]>")) {
    return absl::InvalidArgumentError("OpenNebula cannot store a value containing \"]]>\"");
  }
  if (absl::StrContains(value, std::string(1, '\0'))) {
    return absl::InvalidArgumentError("a value cannot contain NUL");
  }
  std::string out = "\"";
  for (char c : value) {
    // §9.1: the only escape is \" ; backslashes stay as they are.
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
    // XML form (§9.2): oned reads the root's children, so ours go in just
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

// ---------------------------------------------------------------------------
// Request options and labels.

absl::StatusOr<std::string> ActionOption(const google::protobuf::Struct& options,
                                         const std::vector<std::string>& allowed) {
  absl::Status status;
  std::string action;
  for (const auto& [key, value] : options.fields()) {
    if (key != "action") {
      AddFieldViolation(status, absl::StrCat("provider_options.", key),
                        "unknown key; the OpenNebula provider reads only \"action\" here");
      continue;
    }
    if (value.kind_case() != google::protobuf::Value::kStringValue ||
        std::find(allowed.begin(), allowed.end(), value.string_value()) == allowed.end()) {
      AddFieldViolation(status, "provider_options.action",
                        absl::StrCat("must be one of ", absl::StrJoin(allowed, ", ")));
      continue;
    }
    action = value.string_value();
  }
  if (!status.ok()) return status;
  return action;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> LabelAttributes(
    const google::protobuf::Map<std::string, std::string>& labels, absl::string_view field) {
  std::vector<std::pair<std::string, std::string>> out;
  absl::Status status;
  for (const auto& [key, value] : labels) {
    const bool key_ok =
        !key.empty() && key.size() <= 63 && absl::ascii_islower(key[0]) &&
        std::all_of(key.begin(), key.end(), [](char c) {
          return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
        });
    if (!key_ok) {
      AddFieldViolation(status, absl::StrCat(field, ".", key),
                        "OpenNebula label keys are [a-z][a-z0-9_]{0,62} (they become "
                        "attribute names, which oned upper-cases)");
      continue;
    }
    if (absl::Status q = QuoteTemplateValue(value).status(); !q.ok()) {
      AddFieldViolation(status, absl::StrCat(field, ".", key), q.message());
      continue;
    }
    out.emplace_back(absl::StrCat(kLabelPrefix, absl::AsciiStrToUpper(key)), value);
  }
  if (!status.ok()) return status;
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, std::string> LabelsFromUserTemplate(const xml::Node* user_template) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : SingleAttributes(user_template)) {
    if (absl::StartsWith(k, kLabelPrefix) && k.size() > sizeof(kLabelPrefix) - 1) {
      out[absl::AsciiStrToLower(k.substr(sizeof(kLabelPrefix) - 1))] = v;
    }
  }
  return out;
}

absl::Status CheckVmName(absl::string_view name, absl::string_view field) {
  if (name.empty()) return InvalidField(field, "cannot be empty");
  if (name.size() > 128) return InvalidField(field, "OpenNebula names are at most 128 characters");
  for (char c : name) {
    if (absl::string_view("&|:\\\";/'#{}$<>\t\n\v\f\r").find(c) != absl::string_view::npos) {
      return InvalidField(field, absl::StrCat("OpenNebula names cannot contain '",
                                              absl::CEscape(std::string(1, c)), "'"));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Names.

bool IsNameId(absl::string_view id) {
  if (id.empty() || id.size() > 63 || !absl::ascii_islower(id[0])) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
  });
}

std::string ResourceId(int64_t oid, absl::string_view name) {
  return IsNameId(name) ? std::string(name) : absl::StrCat(oid);
}

absl::StatusOr<IdOrName> ParseResourceName(absl::string_view field, absl::string_view account,
                                           absl::string_view collection,
                                           absl::string_view resource) {
  std::vector<absl::string_view> parts = absl::StrSplit(resource, '/');
  if (parts.size() != 4 || parts[0] != "accounts" || parts[1] != account ||
      parts[2] != collection) {
    return InvalidField(field, absl::StrCat("must be accounts/", account, "/", collection,
                                            "/{id}"));
  }
  IdOrName out;
  int64_t oid = 0;
  if (!parts[3].empty() && std::all_of(parts[3].begin(), parts[3].end(), absl::ascii_isdigit)) {
    if (!absl::SimpleAtoi(parts[3], &oid) || oid > INT32_MAX) {
      return InvalidField(field, "the object id is out of range");
    }
    out.oid = oid;
    return out;
  }
  if (!IsNameId(parts[3])) {
    return InvalidField(field, "the id is an OpenNebula object id or a name of [a-z0-9-]");
  }
  out.name = std::string(parts[3]);
  return out;
}

// ---------------------------------------------------------------------------
// VMs.

v1::Instance::State InstanceState(int state, int lcm) {
  using S = v1::Instance;
  switch (state) {
    case 0: case 1: case 10: return S::PROVISIONING;  // INIT, PENDING, CLONING
    case 2: case 4: case 8: case 9: return S::STOPPED;  // HOLD, STOPPED, POWEROFF, UNDEPLOYED
    case 5: return S::SUSPENDED;
    case 6: return S::TERMINATED;
    case 7: case 11: return S::ERROR;  // FAILED, CLONING_FAILURE
    case 3: break;
    default: return S::STATE_UNSPECIFIED;
  }
  switch (lcm) {
    case 3: case 4: case 17: case 24: case 25: case 26: case 57: case 58: case 59: case 62:
    case 66: case 69: case 71:
      return S::RUNNING;  // running, migrating, hotplugging, snapshots, backups
    case 0: case 1: case 2: case 8: case 9: case 19: case 20: case 21: case 22: case 31:
    case 32: case 35: case 43: case 45: case 60:
      return S::PROVISIONING;  // prolog and boot paths
    case 5: case 6: case 7: case 10: case 18: case 29: case 30:
      return S::STOPPING;  // save, shutdown-poweroff/undeploy, epilog-stop/undeploy
    case 11: case 12: case 13: case 23:
      return S::TERMINATING;  // epilog, shutdown, cleanup-delete
    case 14: case 16: case 36: case 37: case 38: case 39: case 40: case 41: case 42: case 44:
    case 46: case 47: case 48: case 49: case 50: case 61:
      return S::ERROR;  // failures and UNKNOWN (the hypervisor lost it)
    default:
      return S::RUNNING;  // the remaining ACTIVE states keep the guest up
  }
}

std::string ProviderState(int state, int lcm) {
  std::string s = state >= 0 && state < 12 ? kVmStates[state] : Num(state);
  if (state != 3) return s;
  const int n = static_cast<int>(sizeof(kLcmStates) / sizeof(kLcmStates[0]));
  return absl::StrCat(s, "/", lcm >= 0 && lcm < n ? kLcmStates[lcm] : Num(lcm));
}

absl::StatusOr<VmSummary> SummarizeVm(const xml::Node& vm) {
  VmSummary s;
  ASSIGN_OR_RETURN(s.oid, IntChild(vm, "ID", "VM"));
  ASSIGN_OR_RETURN(int64_t state, IntChild(vm, "STATE", "VM"));
  ASSIGN_OR_RETURN(int64_t lcm, IntChild(vm, "LCM_STATE", "VM"));
  s.state = static_cast<int>(state);
  s.lcm_state = static_cast<int>(lcm);
  s.name = std::string(vm.ChildText("NAME"));
  return s;
}

absl::StatusOr<v1::Instance> InstanceFromVm(const xml::Node& vm, absl::string_view account,
                                            absl::string_view resource_id) {
  ASSIGN_OR_RETURN(VmSummary s, SummarizeVm(vm));
  v1::Instance out;
  out.set_name(absl::StrCat("accounts/", account, "/instances/", resource_id));
  out.set_display_name(s.name);
  out.set_state(InstanceState(s.state, s.lcm_state));
  out.set_provider_state(ProviderState(s.state, s.lcm_state));
  const xml::Node* tmpl = vm.Child("TEMPLATE");
  if (tmpl != nullptr) {
    double cpu = 0;
    int64_t vcpu = 0, memory = 0;
    if (absl::SimpleAtoi(tmpl->ChildText("VCPU"), &vcpu)) out.set_cpu_count(vcpu);
    if (absl::SimpleAtoi(tmpl->ChildText("MEMORY"), &memory)) {
      out.set_memory_bytes(memory << 20);  // MiB
    }
    if (out.cpu_count() == 0 && absl::SimpleAtod(tmpl->ChildText("CPU"), &cpu)) {
      out.set_cpu_count(std::max(1, static_cast<int>(cpu + 0.999)));
    }
    if (const xml::Node* t = tmpl->Child("TEMPLATE_ID"); t != nullptr && !t->Text().empty()) {
      out.set_image(absl::StrCat("accounts/", account, "/images/", t->Text()));
    }
    for (const xml::Node* nic : tmpl->ChildrenNamed("NIC")) {
      for (const char* f : {"IP", "EXTERNAL_IP", "IP6", "IP6_GLOBAL"}) {
        if (!nic->ChildText(f).empty()) out.add_ip_addresses(std::string(nic->ChildText(f)));
      }
    }
    // Disks made from images are volumes; volatile disks (no IMAGE_ID) are not.
    for (const xml::Node* disk : tmpl->ChildrenNamed("DISK")) {
      int64_t image_id = 0;
      if (!absl::SimpleAtoi(disk->ChildText("IMAGE_ID"), &image_id)) continue;
      v1::AttachedVolume* v = out.add_volumes();
      v->set_volume(absl::StrCat("accounts/", account, "/volumes/",
                                 ResourceId(image_id, disk->ChildText("IMAGE"))));
      v->set_device(std::string(disk->ChildText("TARGET")));
    }
  }
  const xml::Node* history = vm.Child("HISTORY_RECORDS");
  if (history != nullptr && !history->Children().empty()) {
    const xml::Node& last = history->Children().back();
    if (!last.ChildText("HID").empty()) {
      out.set_host(absl::StrCat("accounts/", account, "/hosts/", last.ChildText("HID")));
    }
    if (!last.ChildText("CID").empty() && last.ChildText("CID") != "-1") {
      out.set_location(absl::StrCat("accounts/", account, "/locations/cluster-",
                                    last.ChildText("CID")));
    }
  }
  const int64_t stime = IntOr(&vm, "STIME", 0);
  if (stime > 0) *out.mutable_create_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(stime);
  for (auto& [k, v] : LabelsFromUserTemplate(vm.Child("USER_TEMPLATE"))) {
    (*out.mutable_labels())[k] = v;
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "id", static_cast<double>(s.oid));
  SetNumber(d, "state", s.state);
  SetNumber(d, "lcmState", s.lcm_state);
  SetNumber(d, "resched", static_cast<double>(IntOr(&vm, "RESCHED", 0)));
  SetString(d, "deployId", vm.ChildText("DEPLOY_ID"));
  // Sunstone's label list (short bodies carry it too); not our labels, which
  // need values.
  std::map<std::string, std::string> user = SingleAttributes(vm.Child("USER_TEMPLATE"));
  if (auto it = user.find("LABELS"); it != user.end()) SetString(d, "sunstoneLabels", it->second);
  out.set_etag(absl::StrCat(s.state, "-", s.lcm_state, "-", vm.ChildText("LAST_POLL")));
  return out;
}

std::optional<int64_t> DiskOfImage(const xml::Node& vm, int64_t image_id) {
  const xml::Node* tmpl = vm.Child("TEMPLATE");
  if (tmpl == nullptr) return std::nullopt;
  for (const xml::Node* disk : tmpl->ChildrenNamed("DISK")) {
    int64_t image = 0, disk_id = 0;
    if (absl::SimpleAtoi(disk->ChildText("IMAGE_ID"), &image) && image == image_id &&
        absl::SimpleAtoi(disk->ChildText("DISK_ID"), &disk_id)) {
      return disk_id;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Hosts.

absl::StatusOr<v1::Host> HostFromXml(const xml::Node& host, absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(host, "ID", "HOST"));
  ASSIGN_OR_RETURN(int64_t state, IntChild(host, "STATE", "HOST"));
  v1::Host out;
  out.set_name(absl::StrCat("accounts/", account, "/hosts/", id));
  out.set_display_name(std::string(host.ChildText("NAME")));
  static constexpr const char* kHostStates[] = {
      "INIT", "MONITORING_MONITORED", "MONITORED", "ERROR", "DISABLED", "MONITORING_ERROR",
      "MONITORING_INIT", "MONITORING_DISABLED", "OFFLINE"};
  out.set_provider_state(state >= 0 && state <= 8 ? kHostStates[state] : Num(state));
  switch (state) {
    case 1: case 2: case 6: out.set_state(v1::Host::UP); break;  // 1 and 6: ≤5.10 only
    case 3: case 5: out.set_state(v1::Host::ERROR); break;
    case 4: case 7: out.set_state(v1::Host::DISABLED); break;
    case 8: out.set_state(v1::Host::DOWN); break;
    default: out.set_state(v1::Host::STATE_UNSPECIFIED); break;
  }
  const int64_t cluster = IntOr(&host, "CLUSTER_ID", -1);
  if (cluster >= 0) {
    out.set_location(absl::StrCat("accounts/", account, "/locations/cluster-", cluster));
  }
  const xml::Node* share = host.Child("HOST_SHARE");
  out.set_cpu_count(static_cast<int32_t>(IntOr(share, "TOTAL_CPU", 0) / 100));  // CPU x 100
  out.set_memory_bytes(IntOr(share, "TOTAL_MEM", 0) * 1024);                      // KiB
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "state", static_cast<double>(state));
  // 5.12+ keep free/used in MONITORING/CAPACITY; ≤5.10 in HOST_SHARE (§11.3).
  const xml::Node* monitoring = host.Child("MONITORING");
  const xml::Node* capacity = monitoring != nullptr ? monitoring->Child("CAPACITY") : nullptr;
  if (capacity != nullptr) {
    SetNumber(d, "freeMemoryKib", static_cast<double>(IntOr(capacity, "FREE_MEMORY", 0)));
    SetNumber(d, "usedMemoryKib", static_cast<double>(IntOr(capacity, "USED_MEMORY", 0)));
    SetNumber(d, "freeCpu", static_cast<double>(IntOr(capacity, "FREE_CPU", 0)));
    SetNumber(d, "usedCpu", static_cast<double>(IntOr(capacity, "USED_CPU", 0)));
  } else if (share != nullptr && share->Child("FREE_MEM") != nullptr) {
    SetNumber(d, "freeMemoryKib", static_cast<double>(IntOr(share, "FREE_MEM", 0)));
    SetNumber(d, "usedMemoryKib", static_cast<double>(IntOr(share, "USED_MEM", 0)));
    SetNumber(d, "freeCpu", static_cast<double>(IntOr(share, "FREE_CPU", 0)));
    SetNumber(d, "usedCpu", static_cast<double>(IntOr(share, "USED_CPU", 0)));
  }
  SetNumber(d, "runningVms", static_cast<double>(IntOr(share, "RUNNING_VMS", 0)));
  std::map<std::string, std::string> tmpl = SingleAttributes(host.Child("TEMPLATE"));
  google::protobuf::Struct* t = (*d->mutable_fields())["template"].mutable_struct_value();
  for (const auto& [k, v] : tmpl) {
    if (k == "LABELS") {
      for (absl::string_view label : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
        (*out.mutable_labels())[std::string(absl::StripAsciiWhitespace(label))] = "";
      }
    } else {
      SetString(t, k, v);
    }
  }
  return out;
}

absl::StatusOr<v1::Image> ImageFromTemplate(const xml::Node& tmpl, absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(tmpl, "ID", "VMTEMPLATE"));
  v1::Image out;
  out.set_name(absl::StrCat("accounts/", account, "/images/", id));
  out.set_display_name(std::string(tmpl.ChildText("NAME")));
  out.set_state(v1::Image::READY);
  const xml::Node* t = tmpl.Child("TEMPLATE");
  std::map<std::string, std::string> attrs = SingleAttributes(t);
  out.set_description(attrs["DESCRIPTION"]);
  if (t != nullptr) {
    if (const xml::Node* os = t->Child("OS"); os != nullptr) {
      out.set_architecture(std::string(os->ChildText("ARCH")));
    }
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "id", static_cast<double>(id));
  SetString(d, "kind", "vmtemplate");
  SetString(d, "owner", tmpl.ChildText("UNAME"));
  if (!attrs["CPU"].empty()) SetString(d, "cpu", attrs["CPU"]);
  if (!attrs["MEMORY"].empty()) SetString(d, "memoryMib", attrs["MEMORY"]);
  return out;
}

absl::StatusOr<v1::Location> LocationFromZone(const xml::Node& zone, absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(zone, "ID", "ZONE"));
  v1::Location out;
  out.set_name(absl::StrCat("accounts/", account, "/locations/zone-", id));
  out.set_display_name(std::string(zone.ChildText("NAME")));
  out.set_kind(v1::Location::REGION);
  out.set_available(IntOr(&zone, "STATE", 0) == 0);
  SetString(out.mutable_provider_details(), "kind", "zone");
  return out;
}

absl::StatusOr<v1::Location> LocationFromCluster(const xml::Node& cluster,
                                                 absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(cluster, "ID", "CLUSTER"));
  v1::Location out;
  out.set_name(absl::StrCat("accounts/", account, "/locations/cluster-", id));
  out.set_display_name(std::string(cluster.ChildText("NAME")));
  out.set_kind(v1::Location::CLUSTER);
  // A cluster belongs to the zone of the oned that serves it.
  out.set_parent_location(absl::StrCat("accounts/", account, "/locations/zone-0"));
  const xml::Node* hosts = cluster.Child("HOSTS");
  out.set_available(hosts != nullptr && !hosts->Children().empty());
  SetString(out.mutable_provider_details(), "kind", "cluster");
  return out;
}

absl::StatusOr<v1::Location> LocationFromMarketplace(const xml::Node& market,
                                                     absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(market, "ID", "MARKETPLACE"));
  v1::Location out;
  out.set_name(absl::StrCat("accounts/", account, "/locations/market-", id));
  out.set_display_name(std::string(market.ChildText("NAME")));
  out.set_kind(v1::Location::SITE);
  const int64_t zone = IntOr(&market, "ZONE_ID", 0);
  out.set_parent_location(absl::StrCat("accounts/", account, "/locations/zone-", zone));
  // STATE exists since 6.2 (§7.3); older marketplaces are always enabled.
  out.set_available(IntOr(&market, "STATE", 0) == 0);
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetString(d, "kind", "marketplace");
  SetString(d, "marketMad", market.ChildText("MARKET_MAD"));
  const xml::Node* apps = market.Child("MARKETPLACEAPPS");
  SetNumber(d, "apps", apps != nullptr ? apps->Children().size() : 0);
  return out;
}

// ---------------------------------------------------------------------------
// Images as volumes.

bool IsVolumeImageType(int64_t type) { return type >= 0 && type <= 2; }

absl::StatusOr<ImageSummary> SummarizeImage(const xml::Node& image) {
  ImageSummary s;
  ASSIGN_OR_RETURN(s.oid, IntChild(image, "ID", "IMAGE"));
  ASSIGN_OR_RETURN(s.type, IntChild(image, "TYPE", "IMAGE"));
  s.name = std::string(image.ChildText("NAME"));
  return s;
}

absl::StatusOr<v1::Volume> VolumeFromImage(const xml::Node& image, absl::string_view account,
                                           absl::string_view resource_id,
                                           const std::map<int64_t, std::string>& instance_ids) {
  ASSIGN_OR_RETURN(ImageSummary s, SummarizeImage(image));
  ASSIGN_OR_RETURN(int64_t state, IntChild(image, "STATE", "IMAGE"));
  static constexpr const char* kImageStates[] = {
      "INIT", "READY", "USED", "DISABLED", "LOCKED", "ERROR", "CLONE", "DELETE", "USED_PERS",
      "LOCKED_USED", "LOCKED_USED_PERS"};
  static constexpr const char* kImageTypes[] = {"OS", "CDROM", "DATABLOCK", "KERNEL",
                                                "RAMDISK", "CONTEXT", "BACKUP"};
  v1::Volume out;
  out.set_name(absl::StrCat("accounts/", account, "/volumes/", resource_id));
  out.set_display_name(s.name);
  out.set_provider_state(state >= 0 && state <= 10 ? kImageStates[state] : Num(state));
  switch (state) {
    case 0: case 4: case 6: out.set_state(v1::Volume::CREATING); break;  // INIT, LOCKED, CLONE
    case 1: out.set_state(v1::Volume::AVAILABLE); break;
    case 2: case 8: case 9: case 10: out.set_state(v1::Volume::ATTACHED); break;
    case 5: out.set_state(v1::Volume::ERROR); break;
    case 7: out.set_state(v1::Volume::DELETING); break;
    default: out.set_state(v1::Volume::STATE_UNSPECIFIED); break;  // DISABLED
  }
  out.set_media(s.type == 1 ? v1::Volume::CDROM : v1::Volume::DISK);
  out.set_size_bytes(IntOr(&image, "SIZE", 0) << 20);  // MiB
  if (const xml::Node* vms = image.Child("VMS"); vms != nullptr) {
    for (const xml::Node* id : vms->ChildrenNamed("ID")) {
      int64_t vm = 0;
      if (!absl::SimpleAtoi(id->Text(), &vm)) continue;
      auto it = instance_ids.find(vm);
      out.add_attached_to(absl::StrCat("accounts/", account, "/instances/",
                                       it != instance_ids.end() ? it->second : Num(vm)));
    }
  }
  const int64_t regtime = IntOr(&image, "REGTIME", 0);
  if (regtime > 0) {
    *out.mutable_create_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(regtime);
  }
  std::map<std::string, std::string> tmpl = SingleAttributes(image.Child("TEMPLATE"));
  if (auto it = tmpl.find("LABELS"); it != tmpl.end()) {
    for (absl::string_view label : absl::StrSplit(it->second, ',', absl::SkipWhitespace())) {
      (*out.mutable_labels())[std::string(absl::StripAsciiWhitespace(label))] = "";
    }
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "id", static_cast<double>(s.oid));
  SetString(d, "type", s.type >= 0 && s.type <= 6 ? kImageTypes[s.type] : Num(s.type));
  SetNumber(d, "persistent", static_cast<double>(IntOr(&image, "PERSISTENT", 0)));
  SetNumber(d, "runningVms", static_cast<double>(IntOr(&image, "RUNNING_VMS", 0)));
  SetNumber(d, "datastoreId", static_cast<double>(IntOr(&image, "DATASTORE_ID", -1)));
  SetString(d, "datastore", image.ChildText("DATASTORE"));
  SetString(d, "owner", image.ChildText("UNAME"));
  out.set_etag(absl::StrCat(state, "-", IntOr(&image, "RUNNING_VMS", 0)));
  return out;
}

absl::StatusOr<std::pair<std::string, std::string>> DiskDeviceAttribute(
    absl::string_view device) {
  for (absl::string_view prefix : {"xvd", "vd", "sd", "hd"}) {
    if (!absl::StartsWith(device, prefix)) continue;
    absl::string_view letters = device.substr(prefix.size());
    if (letters.empty()) return std::make_pair(std::string("DEV_PREFIX"), std::string(device));
    if (letters.size() <= 2 && std::all_of(letters.begin(), letters.end(), absl::ascii_islower)) {
      return std::make_pair(std::string("TARGET"), std::string(device));
    }
  }
  if (device == "virtio") return std::make_pair(std::string("DEV_PREFIX"), std::string("vd"));
  if (device == "scsi" || device == "sata") {
    return std::make_pair(std::string("DEV_PREFIX"), std::string("sd"));
  }
  if (device == "ide") return std::make_pair(std::string("DEV_PREFIX"), std::string("hd"));
  return InvalidField("device",
                      "must be a target such as vdb, sdc or hda, or a bus: virtio, scsi, sata, "
                      "ide");
}

// ---------------------------------------------------------------------------
// Security groups.

std::string RuleId(const std::vector<std::pair<std::string, std::string>>& attrs) {
  std::vector<std::pair<std::string, std::string>> canonical;
  for (const auto& [k, v] : attrs) {
    const std::string name = absl::AsciiStrToUpper(k);
    canonical.emplace_back(name, name == "PROTOCOL" || name == "RULE_TYPE"
                                     ? absl::AsciiStrToUpper(v)
                                     : v);
  }
  std::sort(canonical.begin(), canonical.end());
  // 64-bit FNV-1a: stable across builds and runs (unlike absl::Hash).
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](absl::string_view text) {
    for (unsigned char c : text) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  for (const auto& [k, v] : canonical) {
    mix(k);
    mix("=");
    mix(v);
    mix("\n");
  }
  return absl::StrFormat("%012x", h >> 16);
}

std::vector<SgRule> SecurityGroupRules(const xml::Node& sg) {
  std::vector<SgRule> out;
  const xml::Node* t = sg.Child("TEMPLATE");
  if (t == nullptr) return out;
  std::map<std::string, int> seen;
  for (const xml::Node* r : t->ChildrenNamed("RULE")) {
    SgRule rule;
    for (const xml::Node& c : r->Children()) {
      rule.attrs.emplace_back(std::string(c.Name()), std::string(c.Text()));
    }
    rule.id = RuleId(rule.attrs);
    const int n = ++seen[rule.id];
    if (n > 1) absl::StrAppend(&rule.id, "-", n);
    out.push_back(std::move(rule));
  }
  return out;
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

v1::FirewallRule FirewallRuleFromAttributes(
    const std::vector<std::pair<std::string, std::string>>& attrs, std::string name) {
  std::map<std::string, std::string> r;
  for (const auto& [k, v] : attrs) r.emplace(absl::AsciiStrToUpper(k), v);
  v1::FirewallRule rule;
  rule.set_name(std::move(name));
  rule.set_action(v1::FirewallRule::ALLOW);  // OpenNebula rules only allow
  const std::string type = absl::AsciiStrToUpper(r["RULE_TYPE"]);
  rule.set_direction(type == "INBOUND"    ? v1::FirewallRule::INGRESS
                     : type == "OUTBOUND" ? v1::FirewallRule::EGRESS
                                          : v1::FirewallRule::DIRECTION_UNSPECIFIED);
  rule.set_protocol(absl::AsciiStrToLower(r["PROTOCOL"]));
  absl::string_view range = r["RANGE"];
  if (!range.empty() && !absl::StrContains(range, ',')) {
    std::pair<absl::string_view, absl::string_view> ab = absl::StrSplit(range, ':');
    int a = 0, b = 0;
    if (absl::SimpleAtoi(ab.first, &a)) {
      rule.set_port_range_start(a);
      rule.set_port_range_end(ab.second.empty() || !absl::SimpleAtoi(ab.second, &b) ? a : b);
    }
  } else if (!range.empty()) {
    rule.set_description(absl::StrCat("ports ", range));
  }
  absl::string_view ip = r["IP"];
  int64_t size = 0;
  if (!ip.empty() && absl::SimpleAtoi(r["SIZE"], &size) && size > 0) {
    int prefix = 32;
    while (prefix > 0 && (int64_t{1} << (32 - prefix)) < size) --prefix;
    const std::string cidr = absl::StrCat(ip, "/", prefix);
    if (type == "OUTBOUND") {
      rule.add_destination_ranges(cidr);
    } else {
      rule.add_source_ranges(cidr);
    }
  }
  if (!r["NETWORK_ID"].empty()) {
    rule.set_description(absl::StrCat("network ", r["NETWORK_ID"]));
  }
  return rule;
}

absl::StatusOr<v1::Firewall> FirewallFromSecurityGroup(const xml::Node& sg,
                                                       absl::string_view account,
                                                       absl::string_view resource_id) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(sg, "ID", "SECURITY_GROUP"));
  v1::Firewall out;
  out.set_name(absl::StrCat("accounts/", account, "/firewalls/", resource_id));
  out.set_display_name(std::string(sg.ChildText("NAME")));
  std::map<std::string, std::string> attrs = SingleAttributes(sg.Child("TEMPLATE"));
  out.set_description(attrs["DESCRIPTION"]);
  SetNumber(out.mutable_provider_details(), "id", static_cast<double>(id));
  for (const SgRule& rule : SecurityGroupRules(sg)) {
    *out.add_rules() =
        FirewallRuleFromAttributes(rule.attrs, absl::StrCat(out.name(), "/rules/", rule.id));
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RuleToTemplate(
    const v1::FirewallRule& rule, absl::string_view field) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string proto = absl::AsciiStrToUpper(rule.protocol());
  if (proto != "TCP" && proto != "UDP" && proto != "ICMP" && proto != "ICMPV6" &&
      proto != "IPSEC" && proto != "ALL") {
    return InvalidField(absl::StrCat(field, ".protocol"),
                        "must be tcp, udp, icmp, icmpv6, ipsec or all");
  }
  if (rule.action() == v1::FirewallRule::DENY) {
    return InvalidField(absl::StrCat(field, ".action"), "OpenNebula rules can only allow");
  }
  out.emplace_back("PROTOCOL", proto);
  out.emplace_back("RULE_TYPE",
                   rule.direction() == v1::FirewallRule::EGRESS ? "OUTBOUND" : "INBOUND");
  if (rule.port_range_start() != 0 || rule.port_range_end() != 0) {
    if (proto != "TCP" && proto != "UDP") {
      return InvalidField(absl::StrCat(field, ".port_range_start"),
                          "ports apply to tcp and udp only");
    }
    const int a = rule.port_range_start(), b = rule.port_range_end() == 0 ? a
                                                                          : rule.port_range_end();
    if (a < 0 || b > 65535 || a > b) {
      return InvalidField(absl::StrCat(field, ".port_range_end"),
                          "ports must satisfy 0 <= start <= end <= 65535");
    }
    out.emplace_back("RANGE", a == b ? absl::StrCat(a) : absl::StrCat(a, ":", b));
  }
  const auto& ranges = rule.direction() == v1::FirewallRule::EGRESS
                           ? rule.destination_ranges()
                           : rule.source_ranges();
  if (ranges.size() > 1) {
    return InvalidField(absl::StrCat(field, ".source_ranges"),
                        "OpenNebula takes one address range per rule");
  }
  if (ranges.size() == 1 && ranges[0] != "0.0.0.0/0") {
    std::pair<absl::string_view, absl::string_view> cidr = absl::StrSplit(ranges[0], '/');
    std::vector<absl::string_view> octets = absl::StrSplit(cidr.first, '.');
    int prefix = 32;
    bool ok = octets.size() == 4 && (cidr.second.empty() || absl::SimpleAtoi(cidr.second, &prefix))
              && prefix >= 0 && prefix <= 32;
    for (absl::string_view o : octets) {
      int n = 0;
      ok = ok && absl::SimpleAtoi(o, &n) && n >= 0 && n <= 255;
    }
    if (!ok) {
      return InvalidField(absl::StrCat(field, ".source_ranges"), "must be one IPv4 CIDR");
    }
    out.emplace_back("IP", std::string(cidr.first));
    out.emplace_back("SIZE", absl::StrCat(int64_t{1} << (32 - prefix)));
  }
  return out;
}

}  // namespace cloudplane::adapters::opennebula
