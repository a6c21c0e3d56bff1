// The CloudSigma adapter's poll tokens (cloudsigma_tokens.proto): what a
// pending mutation waits for, and how it is written into and read back from
// MutationProgress::poll_token.
//
// Thread-safety: all functions are thread-safe.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_TOKENS_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_TOKENS_H_

#include <cstdint>
#include <optional>
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

// The ListPageToken version this server writes and the newest it reads.
inline constexpr uint32_t kListPageTokenVersion = 1;

// The next_page_token that continues a list of `collection` ("servers",
// "drives") after the object `anchor_uuid`, which was at `offset` - 1.
std::string PackListPageToken(absl::string_view collection, int64_t offset,
                              absl::string_view anchor_uuid);

// The token a List* request carries: nullopt for "" (the first page), else
// the ListPageToken. INVALID_ARGUMENT naming `page_token` for anything
// PackListPageToken did not make for `collection` (not base64, not a packed
// ListPageToken, an unknown version, another collection, an offset below 1,
// an anchor that is no uuid).
absl::StatusOr<std::optional<ListPageToken>> ReadListPageToken(absl::string_view page_token,
                                                               absl::string_view collection);

// "drive" or "server" (for messages), and the collection path segment
// "drives" or "servers".
absl::string_view KindName(PollToken::Kind kind);
absl::string_view CollectionOf(PollToken::Kind kind);

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_TOKENS_H_
