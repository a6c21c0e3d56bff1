// The CloudSigma adapter's poll tokens (cloudsigma_tokens.proto): what a
// pending mutation waits for, and how it is written into and read back from
// MutationProgress::poll_token.
//
// Thread-safety: all functions are thread-safe.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_TOKENS_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_TOKENS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/cloudsigma/cloudsigma_tokens.pb.h"

namespace cloudplane::adapters::cloudsigma {

// The PollToken version this server writes and the newest it reads.
inline constexpr uint32_t kPollTokenVersion = 1;

// A token of the current version. `server_uuid` only for MOUNTED and
// UNMOUNTED.
PollToken MakePollToken(PollToken::Kind kind, std::string uuid, PollToken::Goal goal,
                        std::string server_uuid = "");

// The bytes of MutationProgress::poll_token for `token`.
std::string PackPollToken(const PollToken& token);

// The token in `bytes`. DATA_LOSS with reason OPERATION_STATE_UNREADABLE for
// bytes PackPollToken did not make: no PollToken, an unknown version, or a
// token that names no drive or server, no goal, or (MOUNTED, UNMOUNTED) no
// server, or (BOOT_DRIVE_READY) no server to make.
absl::StatusOr<PollToken> ReadPollToken(absl::string_view bytes);

// "drive" or "server" (for messages), and the collection path segment
// "drives" or "servers".
absl::string_view KindName(PollToken::Kind kind);
absl::string_view CollectionOf(PollToken::Kind kind);

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_TOKENS_H_
