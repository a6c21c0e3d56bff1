#include "adapters/common/scratch/store_scratch.h"

#include <memory>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace cloudplane::adapters {
namespace {

class StoreScratchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::Store::OpenInMemory();
    ASSERT_TRUE(opened.ok());
    store_ = *std::move(opened);
  }
  // Waits until every write posted so far has run.
  void Drain() {
    absl::Notification n;
    loop_.Post([&n] { n.Notify(); });
    n.WaitForNotification();
  }
  std::unique_ptr<store::Store> store_;
  EventLoop loop_;
};

TEST_F(StoreScratchTest, WritesAreVisibleAtOnceAndDurableOnTheLoop) {
  auto scratch = NewStoreScratch(store_.get(), &loop_, "acct");
  ASSERT_TRUE(scratch->Load("aliases").ok());
  absl::Notification written;
  absl::Status write_status = absl::UnknownError("not run");
  ASSERT_TRUE(scratch
                  ->Put("aliases", "web", "bytes-1",
                        [&](absl::Status s) {
                          write_status = s;
                          written.Notify();
                        })
                  .ok());
  EXPECT_EQ(*scratch->Get("aliases", "web"), "bytes-1");
  written.WaitForNotification();
  EXPECT_TRUE(write_status.ok());
  EXPECT_EQ(*store_->GetResource("acct", "scratch/aliases", "web"), "bytes-1");

  // A new ScratchStore (a restart) loads what was written.
  auto again = NewStoreScratch(store_.get(), &loop_, "acct");
  ASSERT_TRUE(again->Load("aliases").ok());
  EXPECT_EQ(*again->Get("aliases", "web"), "bytes-1");
  auto listed = again->List("aliases");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);

  ASSERT_TRUE(again->Delete("aliases", "web").ok());
  EXPECT_EQ(again->Get("aliases", "web").status().code(), absl::StatusCode::kNotFound);
  Drain();
  EXPECT_EQ(store_->GetResource("acct", "scratch/aliases", "web").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreScratchTest, AccountsAreSeparate) {
  auto a = NewStoreScratch(store_.get(), &loop_, "a");
  auto b = NewStoreScratch(store_.get(), &loop_, "b");
  ASSERT_TRUE(a->Load("c").ok());
  ASSERT_TRUE(b->Load("c").ok());
  ASSERT_TRUE(a->Put("c", "x", "1").ok());
  EXPECT_EQ(b->Get("c", "x").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreScratchTest, RefusalsChangeNothing) {
  auto scratch = NewStoreScratch(store_.get(), &loop_, "acct");
  EXPECT_EQ(scratch->Put("unloaded", "x", "1").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scratch->Get("unloaded", "x").status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(scratch->Load("c").ok());
  EXPECT_EQ(scratch->Put("c", "", "1").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scratch->Load("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(scratch->List("c")->empty());
}

}  // namespace
}  // namespace cloudplane::adapters
