// Property checks for the fuzz harnesses (*_fuzz.cc beside each parser).
//
// A harness is a `LLVMFuzzerTestOneInput`. Beyond "no crash", it asserts
// properties of what a parser returns, with FUZZ_CHECK: on a failure the
// property and the place are printed and the process aborts, which libFuzzer
// records as a finding (and the corpus driver as a failed test).
//
//   auto unit = fleet::ParseUnit(input, "lab");
//   if (unit.ok()) fuzzing::CheckMessage(*unit, "ParseUnit");
//   fuzzing::CheckStatus(unit.status(), "ParseUnit");
//
// Not for production code: abort() is the point here.
#ifndef CLOUDPLANE_BASE_FUZZING_FUZZ_CHECKS_H_
#define CLOUDPLANE_BASE_FUZZING_FUZZ_CHECKS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace cloudplane::fuzzing {

// Prints "property failed: <what> (<file>:<line>)" and aborts.
[[noreturn]] void Fail(absl::string_view what, const char* file, int line);

#define FUZZ_CHECK(cond, what)                                       \
  do {                                                               \
    if (!(cond)) ::cloudplane::fuzzing::Fail((what), __FILE__, __LINE__); \
  } while (0)

// `text` is valid UTF-8 (base/utf8.h); `where` names it in the failure.
void CheckUtf8(absl::string_view text, absl::string_view where);

// Every string field of `message`, at any depth (repeated, maps, oneofs,
// google.protobuf.Struct values and keys), is valid UTF-8; and the message
// serialises and parses back to an equal message, as a gRPC peer would
// read it.
void CheckMessage(const google::protobuf::Message& message, absl::string_view where);

// The status's message and every string of its payloads (google.rpc
// ErrorInfo, BadRequest, ... as attached by base/errors) are valid UTF-8, so
// it converts to a gRPC status a client can read.
void CheckStatus(const absl::Status& status, absl::string_view where);

// CheckMessage on the message of an ok result, CheckStatus on an error.
template <typename T>
void CheckResult(const absl::StatusOr<T>& result, absl::string_view where) {
  if (result.ok()) {
    CheckMessage(*result, where);
  } else {
    CheckStatus(result.status(), where);
  }
}

// The input as text.
inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// The body of a recorded HTTP answer ("HTTP/1.1 200 OK", headers, a blank
// line, the body), as the seeds from ../shared/fixtures are; any other input
// is a body already and comes back unchanged.
absl::string_view BodyOf(absl::string_view input);

}  // namespace cloudplane::fuzzing

#endif  // CLOUDPLANE_BASE_FUZZING_FUZZ_CHECKS_H_
