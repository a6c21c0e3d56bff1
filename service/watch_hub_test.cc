#include "service/watch_hub.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "base/thread_role.h"
#include "cloudplane/v1/compute.pb.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace cloudplane::service {
namespace {

using adapters::WatchSource;

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::Store::OpenInMemory();
    ASSERT_TRUE(opened.ok());
    store_ = *std::move(opened);
    hub_ = std::make_unique<WatchHub>(store_.get(), &loop_);
  }
  void TearDown() override { loop_.Shutdown(); }

  void PublishInstance(const std::string& account, const std::string& id,
                       v1::WatchResponse::ChangeType type = v1::WatchResponse::UPDATED,
                       WatchSource source = WatchSource::kLocal) {
    v1::Instance instance;
    instance.set_name("accounts/" + account + "/instances/" + id);
    hub_->Publish(account, type, instance.name(), instance, source);
  }

  // Waits until every task posted to the loop so far has run.
  void Drain() {
    absl::Notification n;
    loop_.Post([&n] { n.Notify(); });
    n.WaitForNotification();
  }

  EventLoop loop_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WatchHub> hub_;
};

TEST_F(WatchHubTest, DeliversInSequenceOrderToMatchingSubscribers) {
  std::vector<v1::WatchResponse> seen_a, seen_all;
  hub_->Subscribe({"a", {}}, [&](const v1::WatchResponse& c) { seen_a.push_back(c); }, nullptr);
  hub_->Subscribe({"-", {"Instance"}}, [&](const v1::WatchResponse& c) { seen_all.push_back(c); },
                  nullptr);
  PublishInstance("a", "1", v1::WatchResponse::CREATED);
  PublishInstance("b", "2");
  PublishInstance("a", "3", v1::WatchResponse::DELETED);
  ASSERT_EQ(seen_a.size(), 2u);
  ASSERT_EQ(seen_all.size(), 3u);
  EXPECT_EQ(seen_a[0].resource_name(), "accounts/a/instances/1");
  EXPECT_EQ(seen_a[0].change_type(), v1::WatchResponse::CREATED);
  EXPECT_EQ(seen_a[1].change_type(), v1::WatchResponse::DELETED);
  EXPECT_EQ(seen_a[0].source(), "local");
  for (size_t i = 1; i < seen_all.size(); ++i) {
    EXPECT_GT(seen_all[i].sequence(), seen_all[i - 1].sequence());
  }
}

TEST_F(WatchHubTest, ReplayResumesAfterASequenceWithWhatLiveSubscribersSaw) {
  std::vector<v1::WatchResponse> live;
  hub_->Subscribe({"-", {}}, [&](const v1::WatchResponse& c) { live.push_back(c); }, nullptr);
  for (int i = 0; i < 5; ++i) PublishInstance("a", std::to_string(i));
  int64_t scanned = 0;
  auto replayed = hub_->Replay({"-", {}}, live[1].sequence(), 100, &scanned);
  ASSERT_TRUE(replayed.ok());
  ASSERT_EQ(replayed->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*replayed)[i].SerializeAsString(), live[i + 2].SerializeAsString());
  }
  EXPECT_EQ(scanned, live.back().sequence());
  auto filtered = hub_->Replay({"other", {}}, 0, 100, &scanned);
  ASSERT_TRUE(filtered.ok());
  EXPECT_TRUE(filtered->empty());
}

TEST_F(WatchHubTest, PublishOnATransportThreadIsLoggedOnTheLoopInOrder) {
  std::vector<v1::WatchResponse> live;
  absl::Mutex mu;
  hub_->Subscribe({"-", {}},
                  [&](const v1::WatchResponse& c) {
                    // Delivered on the loop, not on the publishing thread.
                    EXPECT_TRUE(loop_.IsLoopThread());
                    absl::MutexLock lock(&mu);
                    live.push_back(c);
                  },
                  nullptr);
  std::thread feed([&] {
    MarkTransportThread("websocket");  // the store would abort here
    for (int i = 0; i < 20; ++i) {
      PublishInstance("a", std::to_string(i), v1::WatchResponse::UPDATED, WatchSource::kPush);
    }
  });
  feed.join();
  Drain();
  absl::MutexLock lock(&mu);
  ASSERT_EQ(live.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(live[i].resource_name(), "accounts/a/instances/" + std::to_string(i));
    EXPECT_EQ(live[i].source(), "push");
  }
}

TEST_F(WatchHubTest, SlowSubscriberUnsubscribeWaitsForItsDeliveryAndNothingFollows) {
  absl::Notification entered, release;
  std::atomic<int> calls{0};
  uint64_t id = hub_->Subscribe({"-", {}},
                                [&](const v1::WatchResponse&) {
                                  ++calls;
                                  entered.Notify();
                                  release.WaitForNotification();
                                },
                                nullptr);
  std::thread publisher([&] { PublishInstance("a", "1"); });
  entered.WaitForNotification();
  std::atomic<bool> unsubscribed{false};
  std::thread unsubscriber([&] {
    hub_->Unsubscribe(id);
    unsubscribed = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(unsubscribed.load());  // still inside the slow listener
  release.Notify();
  publisher.join();
  unsubscriber.join();
  EXPECT_TRUE(unsubscribed.load());
  PublishInstance("a", "2");
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(WatchHubTest, CloseAllEndsEverySubscription) {
  int closed = 0, calls = 0;
  hub_->Subscribe({"-", {}}, [&](const v1::WatchResponse&) { ++calls; }, [&] { ++closed; });
  hub_->Subscribe({"a", {}}, [&](const v1::WatchResponse&) { ++calls; }, [&] { ++closed; });
  hub_->CloseAll();
  EXPECT_EQ(closed, 2);
  PublishInstance("a", "1");
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace cloudplane::service
