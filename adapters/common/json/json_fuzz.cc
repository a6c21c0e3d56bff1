// Fuzz harness of the JSON parse every JSON adapter goes through
// (tools/bazel/fuzz.bzl). Properties, for any body, with and without
// trailing commas allowed:
//   - a parsed document holds only valid UTF-8 strings and member names
//     (json::Parse promises it; lone surrogate escapes are refused);
//   - a parsed document serialised and parsed again serialises to the same
//     text (the codec is symmetric from the first serialisation on);
//   - an error names no invalid UTF-8.
#include <cstddef>
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane;
  const absl::string_view body = fuzzing::AsText(data, size);
  for (bool trailing_commas : {false, true}) {
    rapidjson::Document doc;
    absl::Status status = json::Parse(body, "fuzz", doc, {.trailing_commas = trailing_commas});
    if (!status.ok()) {
      fuzzing::CheckStatus(status, "json::Parse");
      continue;
    }
    Walk(doc, 0);
    const std::string once = json::Serialize(doc);
    rapidjson::Document again;
    status = json::Parse(once, "fuzz", again);
    FUZZ_CHECK(status.ok(), "a serialised document does not parse");
    FUZZ_CHECK(json::Serialize(again) == once, "a document changes when serialised again");
  }
  return 0;
}
