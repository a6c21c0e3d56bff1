// RapidJSON helpers shared by the JSON adapters (fleet, CloudSigma,
// enStratus, Phantom's REST API): one way to parse a provider body, one error
// for a body that is not what the protocol promises, one member lookup.
//
// Every parse validates UTF-8, so no invalid string reaches a proto string
// field from here.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_JSON_JSON_H_
#define CLOUDPLANE_ADAPTERS_COMMON_JSON_JSON_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rapidjson/document.h"

namespace cloudplane::json {

// INTERNAL with ErrorInfo reason PROVIDER_MALFORMED_RESPONSE and the message
// "<provider> sent malformed JSON: <detail>". `detail` names keys and
// offsets, never values.
absl::Status Malformed(absl::string_view provider, absl::string_view detail);

struct ParseOptions {
  // Accept `[1,2,]` and `{"a":1,}` (one recorded CloudSigma dump has one).
  bool trailing_commas = false;
};

// Parses `body` into `doc`; Malformed (naming the error and its offset) when
// it is not JSON or not valid UTF-8 — the raw bytes, and every string and
// member name after \u escapes are decoded (a lone surrogate escape such as
// "\udd5d" is refused, naming the JSON path of the string, never its value),
// and when a number is beyond a double's range (e.g. 2e308).
absl::Status Parse(absl::string_view body, absl::string_view provider, rapidjson::Document& doc,
                   ParseOptions options = {});

// Whether `body` is one well-formed JSON text in valid UTF-8 (its raw bytes;
// no NUL), without building a document: for HttpRequest::validate, which
// only needs to tell a truncated or garbled answer from a whole one. The
// decoded-escape and number-range checks are Parse's, which the adapter
// runs on the answer it keeps. Malformed as Parse words it.
absl::Status CheckSyntax(absl::string_view body, absl::string_view provider,
                         ParseOptions options = {});

// Member `key` of `obj`; nullptr when `obj` is not an object, or the member is
// absent or null (providers omit empty fields or send null for them alike).
const rapidjson::Value* Member(const rapidjson::Value& obj, const char* key);

// `value` as an int64, as providers send integers: a JSON integer that fits,
// a finite number of magnitude below 2^53 (truncated towards zero), or a
// string of decimal digits that fits. nullopt for anything else, including
// numbers too large for int64 (never a wrapped or undefined conversion: a
// 1e116 once reached a float-to-int cast, found by cloudsigma_feed_fuzz).
std::optional<int64_t> Int64(const rapidjson::Value& value);

// Compact JSON text of `value`.
std::string Serialize(const rapidjson::Value& value);

}  // namespace cloudplane::json

#endif  // CLOUDPLANE_ADAPTERS_COMMON_JSON_JSON_H_
