#include "adapters/common/scratch/durable_put.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "adapters/common/scratch/in_memory_scratch.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters {
namespace {

TEST(DurablePutTest, ContinuesOnTheLoopOnceWritten) {
  EventLoop loop;
  auto scratch = NewInMemoryScratch(&loop, "acct");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  ASSERT_TRUE((*scratch)->Load("marks").ok());
  absl::Notification done;
  absl::Status got = absl::UnknownError("not run");
  bool on_loop = false;
  PutDurably(**scratch, "marks", "op/1", "bytes", "op/1", [&](absl::Status s) {
    got = s;
    on_loop = loop.IsLoopThread();
    done.Notify();
  });
  EXPECT_EQ(*(*scratch)->Get("marks", "op/1"), "bytes");  // memory at once
  done.WaitForNotification();
  EXPECT_TRUE(got.ok()) << got;
  EXPECT_TRUE(on_loop);
}

TEST(DurablePutTest, ARefusedPutContinuesAtOnceWithTheError) {
  EventLoop loop;
  auto scratch = NewInMemoryScratch(&loop, "acct");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  absl::Status got = absl::UnknownError("not run");
  // "marks" was never loaded: the Put is refused.
  PutDurably(**scratch, "marks", "op/1", "bytes", "op/1", [&](absl::Status s) { got = s; });
  EXPECT_EQ(got.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(got.message(), "could not mark op/1: ")) << got;
  EXPECT_EQ(GetErrorInfo(got)->reason(), "STATE_STORE_FAILED");
}

TEST(DurablePutTest, AWriteDroppedAtShutdownIsUnavailable) {
  auto loop = std::make_unique<EventLoop>();
  auto scratch = NewInMemoryScratch(loop.get(), "acct");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  ASSERT_TRUE((*scratch)->Load("marks").ok());
  loop->Shutdown();
  absl::Status got = absl::UnknownError("not run");
  PutDurably(**scratch, "marks", "op/1", "bytes", "op/1", [&](absl::Status s) { got = s; });
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable) << got;
  EXPECT_EQ(GetErrorInfo(got)->reason(), "STATE_STORE_FAILED");
}

}  // namespace
}  // namespace cloudplane::adapters
