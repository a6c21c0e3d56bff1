// XML-RPC values, request encoding and response decoding (xmlrpc.com spec,
// as xmlrpc-c implements it), built on adapters/common/xml.
//
//   ASSIGN_OR_RETURN(std::string body,
//                    xmlrpc::EncodeCall("one.vm.info", {Value::String(session),
//                                                       Value::Int(42)}));
//   ... POST body with Content-Type: text/xml ...
//   ASSIGN_OR_RETURN(xmlrpc::Response r, xmlrpc::ParseResponse(http_body));
//   if (r.fault) { ... r.fault_code, r.fault_string ... }
//   else { const Value& v = r.value; ... }
//
// Types: nil, boolean, int (<int>/<i4>/<i1>/<i2>/<i8>/<ex:i8>, kept as
// int64), double, string (also a <value> with text and no type element),
// base64 (decoded bytes), dateTime.iso8601 (the text as sent), array and
// struct, nested to any depth the XML limits allow.
//
// Safety: parsing goes through xml::Parse (no DTDs, so no external entities
// or entity bombs; bounded size, depth and element count). Strict where a
// lenient reading could change a value: a boolean must be 0 or 1, integers
// must fit their width, a struct member needs a name and a value.
//
// Thread-safety: all functions are thread-safe; Values are plain values.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_XMLRPC_XMLRPC_H_
#define CLOUDPLANE_ADAPTERS_COMMON_XMLRPC_XMLRPC_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/xml/xml.h"

namespace cloudplane::xmlrpc {

class Value {
 public:
  enum class Type { kNil, kBool, kInt, kDouble, kString, kBase64, kDateTime, kArray, kStruct };
  using Member = std::pair<std::string, Value>;

  Value() = default;  // nil
  static Value Nil() { return Value(); }
  static Value Bool(bool b);
  static Value Int(int64_t i);  // encoded as <int> when it fits 32 bits, else <i8>
  static Value Double(double d);
  static Value String(std::string s);
  static Value Base64(std::string bytes);
  static Value DateTime(std::string iso8601);
  static Value Array(std::vector<Value> items);
  static Value Struct(std::vector<Member> members);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }
  // The accessors return the value of the matching type, and a default
  // (false, 0, "", empty) for any other type; check type() first.
  bool AsBool() const { return type_ == Type::kBool && int_ != 0; }
  int64_t AsInt() const { return type_ == Type::kInt ? int_ : 0; }
  double AsDouble() const { return type_ == Type::kDouble ? double_ : 0; }
  // String, base64 (decoded) and dateTime text.
  const std::string& AsString() const { return string_; }
  const std::vector<Value>& AsArray() const { return items_; }
  const std::vector<Member>& AsStruct() const { return members_; }
  // The first struct member named `name`, or nullptr.
  const Value* Find(absl::string_view name) const;

  // "int", "string", ... as the spec names them (for error messages).
  static absl::string_view TypeName(Type type);

  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

 private:
  Type type_ = Type::kNil;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

// A <methodCall> document. INVALID_ARGUMENT when the method name is empty or
// not printable ASCII, or a string cannot be carried by XML 1.0 (invalid
// UTF-8, control characters; see xml::Escape). Strings are always wrapped in
// <string>; nothing here is logged.
absl::StatusOr<std::string> EncodeCall(absl::string_view method,
                                       const std::vector<Value>& params);

// A <methodResponse> document with one param, or a fault; for servers and
// emulators written in C++ and for tests.
absl::StatusOr<std::string> EncodeResponse(const Value& value);
std::string EncodeFault(int fault_code, absl::string_view fault_string);

struct Response {
  bool fault = false;
  int64_t fault_code = 0;     // when fault
  std::string fault_string;   // when fault
  Value value;                // the single param, when not a fault
};

// Decodes a <methodResponse>. INVALID_ARGUMENT, with a message saying what is
// wrong and where (element path), for anything that is not a well-formed
// XML-RPC response: XML errors (truncation, DTDs, limits; see xml::Parse),
// a wrong root, not exactly one param, unknown value types, bad numbers or
// booleans, bad base64, a fault without an int faultCode / string
// faultString. Never crashes and runs in time linear in the input.
absl::StatusOr<Response> ParseResponse(absl::string_view body,
                                       const xml::Limits& limits = {});

// Decodes one <value> element (for callers holding a parsed tree).
absl::StatusOr<Value> DecodeValue(const xml::Node& value_element);

}  // namespace cloudplane::xmlrpc

#endif  // CLOUDPLANE_ADAPTERS_COMMON_XMLRPC_XMLRPC_H_
