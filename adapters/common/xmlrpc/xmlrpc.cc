#include "adapters/common/xmlrpc/xmlrpc.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "base/status.h"

namespace cloudplane::xmlrpc {

Value Value::Bool(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.int_ = b ? 1 : 0;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.type_ = Type::kInt;
  v.int_ = i;
  return v;
}
Value Value::Double(double d) {
  Value v;
  v.type_ = Type::kDouble;
  v.double_ = d;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}
Value Value::Base64(std::string bytes) {
  Value v;
  v.type_ = Type::kBase64;
  v.string_ = std::move(bytes);
  return v;
}
Value Value::DateTime(std::string iso8601) {
  Value v;
  v.type_ = Type::kDateTime;
  v.string_ = std::move(iso8601);
  return v;
}
Value Value::Array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kArray;
  v.items_ = std::move(items);
  return v;
}
Value Value::Struct(std::vector<Member> members) {
  Value v;
  v.type_ = Type::kStruct;
  v.members_ = std::move(members);
  return v;
}

const Value* Value::Find(absl::string_view name) const {
  for (const Member& m : members_) {
    if (m.first == name) return &m.second;
  }
  return nullptr;
}

absl::string_view Value::TypeName(Type type) {
  switch (type) {
    case Type::kNil: return "nil";
    case Type::kBool: return "boolean";
    case Type::kInt: return "int";
    case Type::kDouble: return "double";
    case Type::kString: return "string";
    case Type::kBase64: return "base64";
    case Type::kDateTime: return "dateTime.iso8601";
    case Type::kArray: return "array";
    case Type::kStruct: return "struct";
  }
  return "unknown";
}

bool operator==(const Value& a, const Value& b) {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case Value::Type::kNil: return true;
    case Value::Type::kBool:
    case Value::Type::kInt: return a.int_ == b.int_;
    case Value::Type::kDouble: return a.double_ == b.double_;
    case Value::Type::kString:
    case Value::Type::kBase64:
    case Value::Type::kDateTime: return a.string_ == b.string_;
    case Value::Type::kArray: return a.items_ == b.items_;
    case Value::Type::kStruct: return a.members_ == b.members_;
  }
  return false;
}

namespace {

// ---------------------------------------------------------------------------
// Encoding.

absl::Status AppendValue(std::string& out, const Value& v, int depth) {
  // Deep enough for any real call; stops a runaway self-similar value.
  if (depth > 24) return absl::InvalidArgumentError("XML-RPC value nested too deeply");
  out += "<value>";
  switch (v.type()) {
    case Value::Type::kNil:
      out += "<nil/>";
      break;
    case Value::Type::kBool:
      absl::StrAppend(&out, "<boolean>", v.AsBool() ? "1" : "0", "</boolean>");
      break;
    case Value::Type::kInt:
      if (v.AsInt() >= std::numeric_limits<int32_t>::min() &&
          v.AsInt() <= std::numeric_limits<int32_t>::max()) {
        absl::StrAppend(&out, "<int>", v.AsInt(), "</int>");
      } else {
        absl::StrAppend(&out, "<i8>", v.AsInt(), "</i8>");
      }
      break;
    case Value::Type::kDouble: {
      if (!std::isfinite(v.AsDouble())) {
        return absl::InvalidArgumentError("XML-RPC cannot carry an infinite or NaN double");
      }
      // The spec allows no exponent.
      std::string text = absl::StrFormat("%.17f", v.AsDouble());
      if (absl::StrContains(text, '.')) {
        while (text.back() == '0') text.pop_back();
        if (text.back() == '.') text.push_back('0');
      }
      absl::StrAppend(&out, "<double>", text, "</double>");
      break;
    }
    case Value::Type::kString: {
      ASSIGN_OR_RETURN(std::string escaped, xml::Escape(v.AsString()));
      absl::StrAppend(&out, "<string>", escaped, "</string>");
      break;
    }
    case Value::Type::kBase64:
      absl::StrAppend(&out, "<base64>", absl::Base64Escape(v.AsString()), "</base64>");
      break;
    case Value::Type::kDateTime: {
      ASSIGN_OR_RETURN(std::string escaped, xml::Escape(v.AsString()));
      absl::StrAppend(&out, "<dateTime.iso8601>", escaped, "</dateTime.iso8601>");
      break;
    }
    case Value::Type::kArray:
      out += "<array><data>";
      for (const Value& item : v.AsArray()) RETURN_IF_ERROR(AppendValue(out, item, depth + 1));
      out += "</data></array>";
      break;
    case Value::Type::kStruct:
      out += "<struct>";
      for (const auto& [name, member] : v.AsStruct()) {
        ASSIGN_OR_RETURN(std::string escaped, xml::Escape(name));
        absl::StrAppend(&out, "<member><name>", escaped, "</name>");
        RETURN_IF_ERROR(AppendValue(out, member, depth + 1));
        out += "</member>";
      }
      out += "</struct>";
      break;
  }
  out += "</value>";
  return absl::OkStatus();
}

bool IsMethodName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != ':' && c != '/' && c != '-') {
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Decoding.

absl::Status Malformed(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed XML-RPC response at ", path, ": ",
                                                 what));
}

bool IsBlank(absl::string_view text) {
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

// The single child element of `node`, refusing text beside it.
absl::StatusOr<const xml::Node*> OnlyChild(const xml::Node& node, absl::string_view path) {
  if (node.Children().size() != 1) {
    return Malformed(path, absl::StrCat("<", node.Name(), "> must hold exactly one element, not ",
                                        node.Children().size()));
  }
  if (!IsBlank(node.Text())) {
    return Malformed(path, absl::StrCat("text beside the element in <", node.Name(), ">"));
  }
  return &node.Children()[0];
}

absl::StatusOr<int64_t> ParseInt(absl::string_view text, int bits, absl::string_view path) {
  // xmlrpc-c allows surrounding whitespace and a leading '+' or '-'.
  absl::string_view t = absl::StripAsciiWhitespace(text);
  absl::string_view digits = t;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) digits.remove_prefix(1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return Malformed(path, absl::StrCat("not an integer: \"", absl::CHexEscape(t.substr(0, 40)),
                                        "\""));
  }
  int64_t value = 0;
  if (t[0] == '+') t.remove_prefix(1);
  if (!absl::SimpleAtoi(t, &value) ||
      (bits == 32 && (value < std::numeric_limits<int32_t>::min() ||
                      value > std::numeric_limits<int32_t>::max()))) {
    return Malformed(path, absl::StrCat("integer out of range for ", bits, " bits"));
  }
  return value;
}

absl::StatusOr<Value> Decode(const xml::Node& value, const std::string& path);

absl::StatusOr<Value> DecodeTyped(const xml::Node& typed, const std::string& path) {
  const absl::string_view type = typed.Name();
  const std::string here = absl::StrCat(path, "/", type);
  const bool scalar = type != "array" && type != "struct";
  if (scalar && !typed.Children().empty()) {
    return Malformed(here, absl::StrCat("<", type, "> holds an element"));
  }
  if (type == "string") return Value::String(std::string(typed.Text()));
  if (type == "int" || type == "i4" || type == "i1" || type == "i2") {
    ASSIGN_OR_RETURN(int64_t i, ParseInt(typed.Text(), 32, here));
    return Value::Int(i);
  }
  if (type == "i8") {  // also <ex:i8>: Name() is the local name
    ASSIGN_OR_RETURN(int64_t i, ParseInt(typed.Text(), 64, here));
    return Value::Int(i);
  }
  if (type == "boolean") {
    // Only 0 or 1, as xmlrpc-c (and the spec) insist.
    absl::string_view t = absl::StripAsciiWhitespace(typed.Text());
    if (t == "1") return Value::Bool(true);
    if (t == "0") return Value::Bool(false);
    return Malformed(here, "a boolean must be 0 or 1");
  }
  if (type == "double") {
    absl::string_view t = absl::StripAsciiWhitespace(typed.Text());
    double d = 0;
    if (t.empty() || !absl::SimpleAtod(t, &d) || !std::isfinite(d) ||
        t.find_first_of("nN") != absl::string_view::npos /* nan, inf */) {
      return Malformed(here, "not a finite double");
    }
    return Value::Double(d);
  }
  if (type == "base64") {
    std::string compact;
    for (char c : typed.Text()) {
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') compact.push_back(c);
    }
    std::string bytes;
    if (!absl::Base64Unescape(compact, &bytes)) return Malformed(here, "bad base64");
    return Value::Base64(std::move(bytes));
  }
  if (type == "dateTime.iso8601") {
    return Value::DateTime(std::string(absl::StripAsciiWhitespace(typed.Text())));
  }
  if (type == "nil") return Value::Nil();
  if (type == "array") {
    ASSIGN_OR_RETURN(const xml::Node* data, OnlyChild(typed, here));
    if (data->Name() != "data") return Malformed(here, "<array> must hold <data>");
    if (!IsBlank(data->Text())) return Malformed(here + "/data", "text inside <data>");
    std::vector<Value> items;
    items.reserve(data->Children().size());
    int n = 0;
    for (const xml::Node& item : data->Children()) {
      const std::string item_path = absl::StrCat(here, "/data/value[", n++, "]");
      if (item.Name() != "value") {
        return Malformed(item_path, absl::StrCat("unexpected <", item.Name(), ">"));
      }
      ASSIGN_OR_RETURN(Value v, Decode(item, item_path));
      items.push_back(std::move(v));
    }
    return Value::Array(std::move(items));
  }
  if (type == "struct") {
    if (!IsBlank(typed.Text())) return Malformed(here, "text inside <struct>");
    std::vector<Value::Member> members;
    int n = 0;
    for (const xml::Node& member : typed.Children()) {
      const std::string member_path = absl::StrCat(here, "/member[", n++, "]");
      if (member.Name() != "member") {
        return Malformed(member_path, absl::StrCat("unexpected <", member.Name(), ">"));
      }
      const xml::Node* name = member.Child("name");
      const xml::Node* value = member.Child("value");
      if (name == nullptr || value == nullptr || member.Children().size() != 2) {
        return Malformed(member_path, "a member needs one <name> and one <value>");
      }
      ASSIGN_OR_RETURN(Value v, Decode(*value, member_path + "/value"));
      members.emplace_back(std::string(name->Text()), std::move(v));
    }
    return Value::Struct(std::move(members));
  }
  return Malformed(here, absl::StrCat("unknown value type <", type, ">"));
}

absl::StatusOr<Value> Decode(const xml::Node& value, const std::string& path) {
  // <value>text</value> without a type element is a string (spec).
  if (value.Children().empty()) return Value::String(std::string(value.Text()));
  ASSIGN_OR_RETURN(const xml::Node* typed, OnlyChild(value, path));
  return DecodeTyped(*typed, path);
}

}  // namespace

absl::StatusOr<std::string> EncodeCall(absl::string_view method,
                                       const std::vector<Value>& params) {
  if (!IsMethodName(method)) {
    return absl::InvalidArgumentError("XML-RPC method name must be non-empty ASCII");
  }
  std::string out = absl::StrCat("<?xml version=\"1.0\"?>\n<methodCall><methodName>", method,
                                 "</methodName><params>");
  for (const Value& p : params) {
    out += "<param>";
    RETURN_IF_ERROR(AppendValue(out, p, 0));
    out += "</param>";
  }
  out += "</params></methodCall>\n";
  return out;
}

absl::StatusOr<std::string> EncodeResponse(const Value& value) {
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param>";
  RETURN_IF_ERROR(AppendValue(out, value, 0));
  out += "</param>\r\n</params>\r\n</methodResponse>\r\n";
  return out;
}

std::string EncodeFault(int fault_code, absl::string_view fault_string) {
  absl::StatusOr<std::string> escaped = xml::Escape(fault_string);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<fault>";
  Value v = Value::Struct({{"faultCode", Value::Int(fault_code)},
                           {"faultString", Value::String(escaped.ok() ? std::string(fault_string)
                                                                      : "(unprintable)")}});
  (void)AppendValue(out, v, 0);
  out += "</fault>\r\n</methodResponse>\r\n";
  return out;
}

absl::StatusOr<Value> DecodeValue(const xml::Node& value_element) {
  if (value_element.Name() != "value") {
    return Malformed(value_element.Name(), "expected a <value> element");
  }
  return Decode(value_element, "value");
}

absl::StatusOr<Response> ParseResponse(absl::string_view body, const xml::Limits& limits) {
  absl::StatusOr<xml::Document> doc = xml::Parse(body, limits);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed XML-RPC response: ", doc.status().message()));
  }
  const xml::Node& root = doc->Root();
  if (root.Name() != "methodResponse") {
    return Malformed("/", absl::StrCat("root element is <", root.Name(),
                                       ">, not <methodResponse>"));
  }
  ASSIGN_OR_RETURN(const xml::Node* body_element, OnlyChild(root, "/methodResponse"));
  Response response;
  if (body_element->Name() == "fault") {
    const std::string path = "/methodResponse/fault";
    ASSIGN_OR_RETURN(const xml::Node* value, OnlyChild(*body_element, path));
    if (value->Name() != "value") return Malformed(path, "<fault> must hold <value>");
    ASSIGN_OR_RETURN(Value v, Decode(*value, path + "/value"));
    const Value* code = v.Find("faultCode");
    const Value* text = v.Find("faultString");
    if (v.type() != Value::Type::kStruct || code == nullptr ||
        code->type() != Value::Type::kInt || text == nullptr ||
        text->type() != Value::Type::kString) {
      return Malformed(path, "a fault must be a struct with int faultCode and string faultString");
    }
    response.fault = true;
    response.fault_code = code->AsInt();
    response.fault_string = text->AsString();
    return response;
  }
  if (body_element->Name() != "params") {
    return Malformed("/methodResponse",
                     absl::StrCat("unexpected <", body_element->Name(), ">"));
  }
  const std::string path = "/methodResponse/params";
  ASSIGN_OR_RETURN(const xml::Node* param, OnlyChild(*body_element, path));
  if (param->Name() != "param") return Malformed(path, "<params> must hold one <param>");
  ASSIGN_OR_RETURN(const xml::Node* value, OnlyChild(*param, path + "/param"));
  if (value->Name() != "value") return Malformed(path + "/param", "<param> must hold <value>");
  ASSIGN_OR_RETURN(response.value, Decode(*value, path + "/param/value"));
  return response;
}

}  // namespace cloudplane::xmlrpc
