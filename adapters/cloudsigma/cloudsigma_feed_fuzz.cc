// Fuzz harness of the CloudSigma websocket feed's frame handling
// (tools/bazel/fuzz.bzl): what Feed::Next does with a message, without the
// network. A frame is parsed; one about a drive or a server that carries its
// object has that object read and turned into the Volume or Instance the
// feed publishes. Properties: nothing that comes out holds invalid UTF-8,
// the published message crosses the wire to a gRPC peer unchanged, and the
// uuid the feed would fetch is the last segment of the frame's resource_uri.
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "base/fuzzing/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane;
  using namespace cloudplane::adapters::cloudsigma;
  auto frame = ParseFrame(fuzzing::AsText(data, size));
  if (!frame.ok()) {
    fuzzing::CheckStatus(frame.status(), "ParseFrame");
    return 0;
  }
  fuzzing::CheckUtf8(frame->resource_type, "frame resource_type");
  fuzzing::CheckUtf8(frame->resource_uri, "frame resource_uri");
  fuzzing::CheckUtf8(frame->uuid, "frame uuid");
  if (frame->resource_type != "drives" && frame->resource_type != "servers") return 0;
  if (!IsUuid(frame->uuid)) return 0;
  FUZZ_CHECK(absl::StrContains(frame->resource_uri, frame->uuid),
             "the uuid is not from the frame's resource_uri");
  if (!frame->object_json.has_value()) return 0;
  auto object = ParseObject(*frame->object_json);
  if (!object.ok()) {
    fuzzing::CheckStatus(object.status(), "ParseObject");
    return 0;
  }
  const IdMap none;
  if (frame->resource_type == "drives") {
    auto volume = DriveToVolume(object->json, "lab", none);
    if (volume.ok()) fuzzing::CheckMessage(*volume, "DriveToVolume");
  } else {
    auto instance = ServerToInstance(object->json, "lab", none);
    if (instance.ok()) fuzzing::CheckMessage(*instance, "ServerToInstance");
  }
  return 0;
}
