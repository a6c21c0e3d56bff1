// Fuzz harness of the JSON parse every JSON adapter goes through
// (tools/bazel/fuzz.bzl). Properties, for any body, with and without
// trailing commas allowed:
//   - a parsed document holds only valid UTF-8 strings and member names
//     (json::Parse promises it; lone surrogate escapes are refused);
//   - a parsed document serialised and parsed again is the same document,
//     doubles within 8 units in the last place (RapidJSON's normal-precision
//     read is up to 3 off a correctly rounded one; json_test pins it), which
//     also catches a number read wildly wrong;
//   - an error names no invalid UTF-8.
#include <cmath>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <string>

#include "adapters/common/json/json.h"
#include "base/fuzzing/fuzz_checks.h"
#include "rapidjson/document.h"

namespace {

void Walk(const rapidjson::Value& v, int depth) {
  using cloudplane::fuzzing::CheckUtf8;
  if (v.IsString()) {
    CheckUtf8(absl::string_view(v.GetString(), v.GetStringLength()), "JSON string");
  } else if (v.IsArray()) {
    for (const auto& item : v.GetArray()) Walk(item, depth + 1);
  } else if (v.IsObject()) {
    for (const auto& member : v.GetObject()) {
      CheckUtf8(absl::string_view(member.name.GetString(), member.name.GetStringLength()),
                "JSON member name");
      Walk(member.value, depth + 1);
    }
  }
}

bool Same(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsDouble() || b.IsDouble()) {
    if (!a.IsNumber() || !b.IsNumber()) return false;
    const double x = a.GetDouble(), y = b.GetDouble();
    if (x == y) return true;
    if ((x < 0) != (y < 0)) return false;
    int64_t i, j;
    std::memcpy(&i, &x, sizeof i);
    std::memcpy(&j, &y, sizeof j);
    return (i > j ? i - j : j - i) <= 8;
  }
  if (a.GetType() != b.GetType()) return false;
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!Same(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (auto i = a.MemberBegin(), j = b.MemberBegin(); i != a.MemberEnd(); ++i, ++j) {
      if (i->name != j->name || !Same(i->value, j->value)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane;
  const absl::string_view body = fuzzing::AsText(data, size);
  for (bool trailing_commas : {false, true}) {
    rapidjson::Document doc;
    absl::Status status = json::Parse(body, "fuzz", doc, {.trailing_commas = trailing_commas});
    // The syntax check (HttpRequest::validate's) accepts everything Parse
    // accepts; what it refuses, Parse refuses too.
    const absl::Status syntax =
        json::CheckSyntax(body, "fuzz", {.trailing_commas = trailing_commas});
    FUZZ_CHECK(!status.ok() || syntax.ok(), "CheckSyntax refused what Parse accepted");
    if (!syntax.ok()) {
      FUZZ_CHECK(!status.ok(), "Parse accepted what CheckSyntax refused");
      fuzzing::CheckStatus(syntax, "json::CheckSyntax");
    }
    if (!status.ok()) {
      fuzzing::CheckStatus(status, "json::Parse");
      continue;
    }
    Walk(doc, 0);
    const std::string once = json::Serialize(doc);
    rapidjson::Document again;
    status = json::Parse(once, "fuzz", again);
    FUZZ_CHECK(status.ok(), "a serialised document does not parse");
    FUZZ_CHECK(Same(doc, again), "a document changes when serialised and parsed again");
  }
  return 0;
}
