#include "adapters/cloudsigma/cloudsigma_tokens.h"

#include <string>

#include "adapters/common/kit/poll_token.h"
#include "base/errors.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

constexpr char kDrive[] = "5d3bb6d8-ce39-41e8-8742-2ba5af5ef2d0";
constexpr char kServer[] = "d0ae4a09-13d5-4af2-aa12-56935035adef";

void ExpectUnreadable(const std::string& bytes, const char* why) {
  absl::StatusOr<PollToken> token = ReadPollToken(bytes);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kDataLoss) << why;
  auto info = GetErrorInfo(token.status());
  ASSERT_TRUE(info.has_value()) << why;
  EXPECT_EQ(info->reason(), "OPERATION_STATE_UNREADABLE") << why;
}

TEST(PollTokens, EveryGoalRoundTrips) {
  for (PollToken::Goal goal : {PollToken::SETTLED, PollToken::GONE, PollToken::MOUNTED,
                               PollToken::UNMOUNTED}) {
    const std::string bytes = PackPollToken(MakePollToken(PollToken::DRIVE, kDrive, goal, kServer));
    EXPECT_TRUE(kit::HoldsToken<PollToken>(bytes));
    absl::StatusOr<PollToken> back = ReadPollToken(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->version(), kPollTokenVersion);
    EXPECT_EQ(back->kind(), PollToken::DRIVE);
    EXPECT_EQ(back->uuid(), kDrive);
    EXPECT_EQ(back->goal(), goal);
    EXPECT_EQ(back->server_uuid(), kServer);
  }
  for (PollToken::Goal goal : {PollToken::RUNNING, PollToken::STOPPED, PollToken::GONE}) {
    absl::StatusOr<PollToken> back =
        ReadPollToken(PackPollToken(MakePollToken(PollToken::SERVER, kServer, goal)));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->kind(), PollToken::SERVER);
    EXPECT_EQ(back->uuid(), kServer);
    EXPECT_EQ(back->goal(), goal);
    EXPECT_TRUE(back->server_uuid().empty());
  }
}

TEST(PollTokens, PackWritesTheCurrentVersion) {
  PollToken token = MakePollToken(PollToken::DRIVE, kDrive, PollToken::SETTLED);
  token.set_version(0);
  absl::StatusOr<PollToken> back = ReadPollToken(PackPollToken(token));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->version(), kPollTokenVersion);
}

TEST(PollTokens, ForeignOrInconsistentTokensAreRefused) {
  ExpectUnreadable("", "empty");
  ExpectUnreadable("drive:5d3bb6d8-ce39-41e8-8742-2ba5af5ef2d0:settled", "the old string grammar");
  ExpectUnreadable(kit::PackToken(google::protobuf::Empty()), "another message type");

  PollToken newer = MakePollToken(PollToken::DRIVE, kDrive, PollToken::SETTLED);
  newer.set_version(kPollTokenVersion + 1);
  ExpectUnreadable(kit::PackToken(newer), "a version from the future");

  ExpectUnreadable(PackPollToken(MakePollToken(PollToken::KIND_UNSPECIFIED, kDrive,
                                               PollToken::SETTLED)),
                   "no kind");
  ExpectUnreadable(PackPollToken(MakePollToken(PollToken::DRIVE, "x", PollToken::SETTLED)),
                   "not a uuid");
  ExpectUnreadable(
      PackPollToken(MakePollToken(PollToken::DRIVE, kDrive, PollToken::GOAL_UNSPECIFIED)),
      "no goal");
  ExpectUnreadable(PackPollToken(MakePollToken(PollToken::DRIVE, kDrive, PollToken::MOUNTED)),
                   "mounted without a server");
  ExpectUnreadable(
      PackPollToken(MakePollToken(PollToken::DRIVE, kDrive, PollToken::UNMOUNTED, "x")),
      "unmounted from a server that is no uuid");
  ExpectUnreadable(
      PackPollToken(MakePollToken(PollToken::SERVER, kServer, PollToken::MOUNTED, kServer)),
      "a server cannot be mounted");
}

TEST(PollTokens, ABootDriveTokenCarriesTheServerToMake) {
  PollToken token = MakePollToken(PollToken::DRIVE, kDrive, PollToken::BOOT_DRIVE_READY);
  ExpectUnreadable(PackPollToken(token), "no server to make");
  token.mutable_boot()->set_name("web");
  token.mutable_boot()->set_cpu_mhz(1000);
  token.mutable_boot()->set_memory_bytes(int64_t{1} << 30);
  (*token.mutable_boot()->mutable_meta())["cloudplane_operation"] = "operations/x";
  token.mutable_boot()->add_nics()->set_vlan_uuid(kServer);
  token.mutable_boot()->set_start(true);
  absl::StatusOr<PollToken> back = ReadPollToken(PackPollToken(token));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->boot().meta().at("cloudplane_operation"), "operations/x");
  EXPECT_EQ(back->boot().nics(0).vlan_uuid(), kServer);
  EXPECT_TRUE(back->boot().start());
  PollToken server = MakePollToken(PollToken::SERVER, kServer, PollToken::BOOT_DRIVE_READY);
  *server.mutable_boot() = token.boot();
  ExpectUnreadable(PackPollToken(server), "a server is no boot drive");
}

TEST(PollTokens, KindNames) {
  EXPECT_EQ(KindName(PollToken::DRIVE), "drive");
  EXPECT_EQ(KindName(PollToken::SERVER), "server");
  EXPECT_EQ(CollectionOf(PollToken::DRIVE), "drives");
  EXPECT_EQ(CollectionOf(PollToken::SERVER), "servers");
}

}  // namespace
}  // namespace cloudplane::adapters::cloudsigma
