// Finding text that is not UTF-8 inside a protobuf message. Protobuf's text
// format parser (config files) and hand-filled messages do not check string
// fields, but a message holding invalid UTF-8 cannot be read by a gRPC peer;
// this finds the first such field so it can be refused by name.
#ifndef CLOUDPLANE_BASE_MESSAGE_UTF8_H_
#define CLOUDPLANE_BASE_MESSAGE_UTF8_H_

#include <optional>
#include <string>

#include "google/protobuf/message.h"

namespace cloudplane {

// The path of the first `string` field (at any depth: repeated fields, maps,
// oneofs, google.protobuf.Struct) whose value is not valid UTF-8, e.g.
// `auth.bindings[0].groups[1]`; nullopt when every one is valid. `bytes`
// fields are not text and are not looked at.
std::optional<std::string> FindInvalidUtf8(const google::protobuf::Message& message);

}  // namespace cloudplane

#endif  // CLOUDPLANE_BASE_MESSAGE_UTF8_H_
