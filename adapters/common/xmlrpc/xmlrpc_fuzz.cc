// Fuzz harness of the XML-RPC response decoder (tools/bazel/fuzz.bzl).
// Properties, for any input:
//   - strings, struct member names, fault strings and dateTime texts that
//     come out are valid UTF-8 (base64 is bytes and is not checked);
//   - a decoded value (or fault) encoded again decodes to the same value;
//     doubles within the precision of the 17 decimals the encoder writes,
//     and a value holding an infinite or NaN double is refused by the
//     encoder rather than written.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "adapters/common/xmlrpc/xmlrpc.h"
#include "base/fuzzing/fuzz_checks.h"

namespace cloudplane::xmlrpc {
namespace {

using fuzzing::CheckUtf8;

// Checks strings; returns whether every double is finite.
bool Check(const Value& v) {
  switch (v.type()) {
    case Value::Type::kString:
    case Value::Type::kDateTime:
      CheckUtf8(v.AsString(), "string value");
      return true;
    case Value::Type::kDouble:
      return std::isfinite(v.AsDouble());
    case Value::Type::kArray: {
      bool finite = true;
      for (const Value& item : v.AsArray()) finite = Check(item) && finite;
      return finite;
    }
    case Value::Type::kStruct: {
      bool finite = true;
      for (const auto& [name, item] : v.AsStruct()) {
        CheckUtf8(name, "struct member name");
        finite = Check(item) && finite;
      }
      return finite;
    }
    default:
      return true;
  }
}

bool Same(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::kDouble: {
      const double x = a.AsDouble(), y = b.AsDouble();
      return std::fabs(x - y) <= 1e-17 + 1e-15 * std::fabs(x);
    }
    case Value::Type::kArray:
      if (a.AsArray().size() != b.AsArray().size()) return false;
      for (size_t i = 0; i < a.AsArray().size(); ++i) {
        if (!Same(a.AsArray()[i], b.AsArray()[i])) return false;
      }
      return true;
    case Value::Type::kStruct:
      if (a.AsStruct().size() != b.AsStruct().size()) return false;
      for (size_t i = 0; i < a.AsStruct().size(); ++i) {
        if (a.AsStruct()[i].first != b.AsStruct()[i].first ||
            !Same(a.AsStruct()[i].second, b.AsStruct()[i].second)) {
          return false;
        }
      }
      return true;
    default:
      return a == b;
  }
}

}  // namespace
}  // namespace cloudplane::xmlrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane::xmlrpc;
  auto response = ParseResponse(cloudplane::fuzzing::AsText(data, size),
                                {.max_bytes = 1 << 16, .max_depth = 32, .max_nodes = 4000});
  if (!response.ok()) {
    cloudplane::fuzzing::CheckUtf8(response.status().message(), "error message");
    return 0;
  }
  if (response->fault) {
    cloudplane::fuzzing::CheckUtf8(response->fault_string, "fault string");
    if (response->fault_code < std::numeric_limits<int>::min() ||
        response->fault_code > std::numeric_limits<int>::max()) {
      return 0;  // EncodeFault takes an int, as faults on the wire are.
    }
    auto again = ParseResponse(EncodeFault(static_cast<int>(response->fault_code),
                                           response->fault_string));
    FUZZ_CHECK(again.ok() && again->fault, "an encoded fault does not decode as one");
    FUZZ_CHECK(again->fault_code == response->fault_code &&
                   again->fault_string == response->fault_string,
               "a fault changes when encoded and decoded");
    return 0;
  }
  const bool finite = Check(response->value);
  auto encoded = EncodeResponse(response->value);
  if (!finite) {
    FUZZ_CHECK(!encoded.ok(), "a NaN or infinite double was encoded");
    return 0;
  }
  FUZZ_CHECK(encoded.ok(), "a decoded value cannot be encoded again");
  auto again = ParseResponse(*encoded, {.max_bytes = 64 << 20, .max_depth = 256,
                                        .max_nodes = 1 << 20});
  FUZZ_CHECK(again.ok() && !again->fault, "an encoded value does not decode");
  FUZZ_CHECK(Same(response->value, again->value), "a value changes when encoded and decoded");
  return 0;
}
