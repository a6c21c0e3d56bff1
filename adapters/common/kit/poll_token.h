// Typed poll tokens: each adapter keeps what it needs to find its work again
// in a message of its own (`<p>_tokens.proto`, every message with a
// `uint32 version = 1` field), packed in a google.protobuf.Any and serialized
// into MutationProgress::poll_token. The runner stores the bytes and hands
// them back after a restart, so a token must stay readable across releases:
// a change of meaning bumps `version`, and UnpackToken refuses versions it
// does not know instead of misreading them.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_POLL_TOKEN_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_POLL_TOKEN_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/message.h"

namespace cloudplane::adapters::kit {

// The bytes of `token` packed in an Any.
std::string PackToken(const google::protobuf::Message& token);

// Reads `bytes` into `token` (whose `version` field must be between 1 and
// `current_version`). DATA_LOSS with reason OPERATION_STATE_UNREADABLE when
// the bytes are no Any, hold another message type, or an unknown version.
absl::Status UnpackToken(absl::string_view bytes, uint32_t current_version,
                         google::protobuf::Message& token);

template <typename T>
absl::StatusOr<T> UnpackToken(absl::string_view bytes, uint32_t current_version) {
  T token;
  if (absl::Status s = UnpackToken(bytes, current_version, token); !s.ok()) return s;
  return token;
}

// DATA_LOSS with reason OPERATION_STATE_UNREADABLE: "the operation's poll
// token is unreadable: <why>". For an adapter's own checks of a token that
// unpacked but cannot be one it made.
absl::Status UnreadableToken(absl::string_view why);

// True when `bytes` hold a token of type T (an adapter with several token
// types tries them in turn).
template <typename T>
bool HoldsToken(absl::string_view bytes) {
  google::protobuf::Any any;
  return any.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) && any.Is<T>();
}

}  // namespace cloudplane::adapters::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_POLL_TOKEN_H_
