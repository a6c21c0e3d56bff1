// Fuzz harness of the ServerConfig loader (tools/bazel/fuzz.bzl): the text
// of a config file through ParseConfigText, which is what LoadConfig does
// with it (parse, fill in defaults, check). Properties:
//   - an accepted config has valid UTF-8 in every string and crosses the
//     wire unchanged (it is what the server keeps and logs from);
//   - loading is a fixed point: an accepted config printed and loaded again
//     gives the same config (defaults are filled in once, checks accept
//     what they produced);
//   - a refusal is a status a person can read (valid UTF-8).
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/fuzzing/fuzz_checks.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "service/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane;
  auto config = service::ParseConfigText(fuzzing::AsText(data, size), "fuzz.textproto");
  if (!config.ok()) {
    fuzzing::CheckStatus(config.status(), "ParseConfigText");
    return 0;
  }
  fuzzing::CheckMessage(*config, "ServerConfig");
  std::string text;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*config, &text),
             "an accepted config does not print");
  auto again = service::ParseConfigText(text, "printed.textproto");
  FUZZ_CHECK(again.ok(), "an accepted config, printed, is refused");
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(*config, *again),
             "an accepted config, printed and loaded again, changes");
  return 0;
}
