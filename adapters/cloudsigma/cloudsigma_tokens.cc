#include "adapters/cloudsigma/cloudsigma_tokens.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/common/kit/poll_token.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::cloudsigma {

PollToken MakePollToken(PollToken::Kind kind, std::string uuid, PollToken::Goal goal,
                        std::string server_uuid) {
  PollToken token;
  token.set_version(kPollTokenVersion);
  token.set_kind(kind);
  token.set_uuid(std::move(uuid));
  token.set_goal(goal);
  token.set_server_uuid(std::move(server_uuid));
  return token;
}

std::string PackPollToken(const PollToken& token) {
  PollToken versioned = token;
  versioned.set_version(kPollTokenVersion);
  return kit::PackToken(versioned);
}

absl::StatusOr<PollToken> ReadPollToken(absl::string_view bytes) {
  absl::StatusOr<PollToken> token = kit::UnpackToken<PollToken>(bytes, kPollTokenVersion);
  if (!token.ok()) return token.status();
  const bool drive = token->kind() == PollToken::DRIVE;
  const bool needs_server =
      token->goal() == PollToken::MOUNTED || token->goal() == PollToken::UNMOUNTED;
  const char* wrong = nullptr;
  if (!drive && token->kind() != PollToken::SERVER) {
    wrong = "it names no drive or server";
  } else if (!IsUuid(token->uuid())) {
    wrong = "its uuid is not a CloudSigma uuid";
  } else if (token->goal() == PollToken::GOAL_UNSPECIFIED ||
             !PollToken::Goal_IsValid(token->goal())) {
    wrong = "it has no goal";
  } else if (needs_server && (!drive || !IsUuid(token->server_uuid()))) {
    wrong = "a drive's mount goal names no server uuid";
  } else if (token->goal() == PollToken::BOOT_DRIVE_READY &&
             (!drive || !token->has_boot() || token->boot().memory_bytes() <= 0)) {
    wrong = "a boot drive's goal names no server to make";
  }
  if (wrong != nullptr) {
    return kit::UnreadableToken(absl::StrCat("a CloudSigma token, but ", wrong));
  }
  return token;
}

std::string PackListPageToken(absl::string_view collection, int64_t offset,
                              absl::string_view anchor_uuid) {
  ListPageToken token;
  token.set_version(kListPageTokenVersion);
  token.set_collection(std::string(collection));
  token.set_offset(offset);
  token.set_anchor_uuid(std::string(anchor_uuid));
  return absl::WebSafeBase64Escape(kit::PackToken(token));
}

absl::StatusOr<std::optional<ListPageToken>> ReadListPageToken(absl::string_view page_token,
                                                               absl::string_view collection) {
  if (page_token.empty()) return std::nullopt;
  std::string bytes;
  if (!absl::WebSafeBase64Unescape(page_token, &bytes) ||
      !kit::HoldsToken<ListPageToken>(bytes)) {
    return InvalidField("page_token", "is not a token this server issued");
  }
  absl::StatusOr<ListPageToken> token =
      kit::UnpackToken<ListPageToken>(bytes, kListPageTokenVersion);
  if (!token.ok()) return InvalidField("page_token", "is not a token this server issued");
  if (token->collection() != collection) {
    return InvalidField("page_token", "belongs to another list");
  }
  if (token->offset() < 1 || !IsUuid(token->anchor_uuid())) {
    return InvalidField("page_token", "is not a token this server issued");
  }
  return std::optional<ListPageToken>(*std::move(token));
}

absl::string_view KindName(PollToken::Kind kind) {
  return kind == PollToken::DRIVE ? "drive" : "server";
}

absl::string_view CollectionOf(PollToken::Kind kind) {
  return kind == PollToken::DRIVE ? "drives" : "servers";
}

}  // namespace cloudplane::adapters::cloudsigma
