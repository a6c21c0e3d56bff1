#include "base/fuzzing/fuzz_checks.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/message_utf8.h"
#include "base/utf8.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace cloudplane::fuzzing {
namespace {

using google::protobuf::Message;

// The message's encoding with map entries in key order.
bool Deterministic(const Message& message, std::string& out) {
  out.clear();
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  return message.SerializeToCodedStream(&coded);
}

}  // namespace

void Fail(absl::string_view what, const char* file, int line) {
  std::fprintf(stderr, "property failed: %.*s (%s:%d)\n", static_cast<int>(what.size()),
               what.data(), file, line);
  std::fflush(stderr);
  std::abort();
}

void CheckUtf8(absl::string_view text, absl::string_view where) {
  if (!IsValidUtf8(text)) {
    Fail(absl::StrCat("invalid UTF-8 in ", where, ": \"",
                      absl::CHexEscape(text.substr(0, 120)), "\""),
         __FILE__, __LINE__);
  }
}

void CheckMessage(const Message& message, absl::string_view where) {
  if (auto path = FindInvalidUtf8(message)) {
    Fail(absl::StrCat("invalid UTF-8 in ", where, ".", *path), __FILE__, __LINE__);
  }
  std::string wire;
  FUZZ_CHECK(Deterministic(message, wire), absl::StrCat(where, ": does not serialise"));
  std::unique_ptr<Message> back(message.New());
  FUZZ_CHECK(back->ParseFromString(wire), absl::StrCat(where, ": a peer cannot parse it"));
  // Equal deterministic encodings are equal messages, and comparing bytes
  // is much cheaper than MessageDifferencer, which keeps harnesses fast.
  std::string again;
  FUZZ_CHECK(Deterministic(*back, again) && again == wire,
             absl::StrCat(where, ": changes over the wire"));
}

absl::string_view BodyOf(absl::string_view input) {
  if (!absl::StartsWith(input, "HTTP/1.")) return input;
  for (absl::string_view end : {"\r\n\r\n", "\n\n"}) {
    const size_t at = input.find(end);
    if (at != absl::string_view::npos) return input.substr(at + end.size());
  }
  return input;
}

void CheckStatus(const absl::Status& status, absl::string_view where) {
  CheckUtf8(status.message(), absl::StrCat(where, ": status message"));
  if (auto info = GetErrorInfo(status)) CheckMessage(*info, absl::StrCat(where, ": ErrorInfo"));
  if (auto bad = GetBadRequest(status)) CheckMessage(*bad, absl::StrCat(where, ": BadRequest"));
}

}  // namespace cloudplane::fuzzing
