#include "service/watch_hub.h"

#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/thread_role.h"
#include "cloudplane/v1/compute.pb.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace cloudplane::service {
namespace {

using adapters::WatchSource;
using Changes = std::vector<std::shared_ptr<const v1::WatchResponse>>;
using SubPtr = std::shared_ptr<WatchHub::Subscription>;

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeHub(WatchHub::Options()); }
  void TearDown() override {
    hub_.reset();
    loop_.Shutdown();
  }

  void MakeHub(WatchHub::Options options) {
    hub_.reset();
    auto opened = store::Store::OpenInMemory();
    ASSERT_TRUE(opened.ok());
    store_ = *std::move(opened);
    hub_ = std::make_unique<WatchHub>(store_.get(), &loop_, options);
  }

  void PublishInstance(const std::string& account, const std::string& id,
                       v1::WatchResponse::ChangeType type = v1::WatchResponse::UPDATED,
                       WatchSource source = WatchSource::kLocal) {
    v1::Instance instance;
    instance.set_name("accounts/" + account + "/instances/" + id);
    hub_->Publish(account, type, instance.name(), instance, source);
  }

  SubPtr Subscribe(WatchFilter filter, int64_t after = 0,
                   absl::AnyInvocable<void()> on_wake = nullptr,
                   absl::AnyInvocable<void()> on_close = nullptr) {
    auto sub = hub_->Subscribe(std::move(filter), after, std::move(on_wake), std::move(on_close));
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? *sub : nullptr;
  }

  // Everything the subscription has to read now.
  static Changes ReadAll(WatchHub::Subscription& sub, int max = 3) {
    Changes out;
    while (true) {
      size_t before = out.size();
      absl::Status status = sub.Next(max, &out);
      EXPECT_TRUE(status.ok()) << status;
      if (!status.ok() || out.size() == before) return out;
    }
  }

  // Waits until every task posted to `loop` so far has run.
  static void Drain(EventLoop& loop) {
    absl::Notification n;
    loop.Post([&n] { n.Notify(); });
    n.WaitForNotification();
  }

  EventLoop loop_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WatchHub> hub_;
};

TEST_F(WatchHubTest, DeliversInSequenceOrderToMatchingSubscribers) {
  SubPtr a = Subscribe({"a", {}});
  SubPtr all = Subscribe({"-", {"Instance"}});
  SubPtr ops = Subscribe({"-", {"Operation"}});
  PublishInstance("a", "1", v1::WatchResponse::CREATED);
  PublishInstance("b", "2");
  PublishInstance("a", "3", v1::WatchResponse::DELETED);
  Changes seen_a = ReadAll(*a), seen_all = ReadAll(*all);
  ASSERT_EQ(seen_a.size(), 2u);
  ASSERT_EQ(seen_all.size(), 3u);
  EXPECT_TRUE(ReadAll(*ops).empty());
  EXPECT_EQ(seen_a[0]->resource_name(), "accounts/a/instances/1");
  EXPECT_EQ(seen_a[0]->change_type(), v1::WatchResponse::CREATED);
  EXPECT_EQ(seen_a[1]->change_type(), v1::WatchResponse::DELETED);
  EXPECT_EQ(seen_a[0]->source(), "local");
  for (size_t i = 1; i < seen_all.size(); ++i) {
    EXPECT_GT(seen_all[i]->sequence(), seen_all[i - 1]->sequence());
  }
  EXPECT_EQ(a->last_sequence(), seen_a[1]->sequence());
}

TEST_F(WatchHubTest, ReplayThenLiveHasNoGapAndNoDuplicate) {
  SubPtr live = Subscribe({"-", {}});
  for (int i = 0; i < 5; ++i) PublishInstance("a", std::to_string(i));
  Changes first = ReadAll(*live);
  ASSERT_EQ(first.size(), 5u);
  // Resume after the second; more changes arrive while it catches up.
  SubPtr resumed = Subscribe({"-", {}}, first[1]->sequence());
  Changes got;
  ASSERT_TRUE(resumed->Next(2, &got).ok());
  ASSERT_EQ(got.size(), 2u);
  for (int i = 5; i < 8; ++i) PublishInstance("a", std::to_string(i));
  Changes rest = ReadAll(*resumed);
  got.insert(got.end(), rest.begin(), rest.end());
  Changes all = first;
  Changes more = ReadAll(*live);
  all.insert(all.end(), more.begin(), more.end());
  ASSERT_EQ(all.size(), 8u);
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) {
    // Exactly what the live subscriber saw, replayed part and live part alike.
    EXPECT_EQ(got[i]->SerializeAsString(), all[i + 2]->SerializeAsString()) << i;
  }
  EXPECT_TRUE(ReadAll(*Subscribe({"other", {}}, 1)).empty());
}

TEST_F(WatchHubTest, ReplayThenLiveWhilePublishingConcurrently) {
  constexpr int kChanges = 3000;
  for (int i = 0; i < 100; ++i) PublishInstance("a", "old" + std::to_string(i));
  std::thread publisher([&] {
    for (int i = 0; i < kChanges; ++i) PublishInstance("a", std::to_string(i));
  });
  SubPtr sub = Subscribe({"a", {}}, 50);
  Changes got;
  while (got.size() < kChanges + 50) {
    ASSERT_TRUE(sub->Next(7, &got).ok());
  }
  publisher.join();
  Changes tail = ReadAll(*sub);
  EXPECT_TRUE(tail.empty());
  ASSERT_EQ(got.size(), kChanges + 50u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i]->sequence(), 51 + static_cast<int64_t>(i)) << "gap or duplicate at " << i;
  }
}

TEST_F(WatchHubTest, ResumingFromATrimmedSequenceIsOutOfRange) {
  WatchHub::Options options;
  options.keep_changes = 3;
  options.trim_every = 1;
  MakeHub(options);
  for (int i = 0; i < 10; ++i) PublishInstance("a", std::to_string(i));
  auto sub = hub_->Subscribe({"-", {}}, 2, nullptr, nullptr);
  EXPECT_EQ(sub.status().code(), absl::StatusCode::kOutOfRange);
  auto kept = hub_->Subscribe({"-", {}}, 7, nullptr, nullptr);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(ReadAll(**kept).size(), 3u);
}

TEST_F(WatchHubTest, PublishOnATransportThreadIsLoggedOnTheLoopInOrder) {
  SubPtr sub = Subscribe({"-", {}});
  std::thread feed([&] {
    MarkTransportThread("websocket");  // the store would abort here
    for (int i = 0; i < 20; ++i) {
      PublishInstance("a", std::to_string(i), v1::WatchResponse::UPDATED, WatchSource::kPush);
    }
  });
  feed.join();
  Drain(loop_);
  Changes live = ReadAll(*sub);
  ASSERT_EQ(live.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(live[i]->resource_name(), "accounts/a/instances/" + std::to_string(i));
    EXPECT_EQ(live[i]->source(), "push");
    EXPECT_GT(live[i]->sequence(), 0);
  }
}

TEST_F(WatchHubTest, AnArmedSubscriberIsWokenOnceOnTheFanoutThread) {
  std::atomic<int> wakes{0};
  std::atomic<bool> on_fanout{true};
  SubPtr sub = Subscribe({"-", {}}, 0, [&] {
    if (!hub_->fanout_loop()->IsLoopThread()) on_fanout = false;
    ++wakes;
  });
  EXPECT_TRUE(sub->ArmIfIdle());
  // Held until the publishes are in, so they share one wake-up pass.
  absl::Notification release;
  hub_->fanout_loop()->Post([&] { release.WaitForNotification(); });
  for (int i = 0; i < 3; ++i) PublishInstance("a", std::to_string(i));
  EXPECT_EQ(wakes.load(), 0);  // nothing ran on the publishing thread
  release.Notify();
  Drain(*hub_->fanout_loop());
  EXPECT_EQ(wakes.load(), 1);
  EXPECT_TRUE(on_fanout.load());
  // Not armed again: no further wake-up.
  PublishInstance("a", "4");
  Drain(*hub_->fanout_loop());
  EXPECT_EQ(wakes.load(), 1);
  // With changes waiting, arming is refused.
  EXPECT_FALSE(sub->ArmIfIdle());
  EXPECT_EQ(ReadAll(*sub).size(), 4u);
  EXPECT_TRUE(sub->ArmIfIdle());
}

TEST_F(WatchHubTest, VisibilityIsAskedForEachChange) {
  std::atomic<bool> visible{true};
  WatchFilter filter{"-", {}};
  filter.visible = [&](absl::string_view) { return visible.load(); };
  SubPtr sub = Subscribe(std::move(filter));
  PublishInstance("a", "1");
  EXPECT_EQ(ReadAll(*sub).size(), 1u);
  visible = false;  // a reload removed the binding
  PublishInstance("a", "2");
  EXPECT_TRUE(ReadAll(*sub).empty());
}

TEST_F(WatchHubTest, ASlowSubscriberDoesNotHoldUpPublishersOrOthers) {
  SubPtr slow = Subscribe({"-", {}});  // never reads
  Changes read_one;
  ASSERT_TRUE(slow->Next(1, &read_one).ok());
  SubPtr reader = Subscribe({"-", {}});
  absl::Time start = absl::Now();
  for (int i = 0; i < 500; ++i) PublishInstance("a", std::to_string(i));
  std::cout << "500 publishes with a subscriber that never reads: " << absl::Now() - start
            << "\n";
  EXPECT_EQ(ReadAll(*reader, 64).size(), 500u);
  EXPECT_EQ(ReadAll(*slow, 64).size(), 500u);  // and it can still catch up
}

TEST_F(WatchHubTest, FallingBehindTheLiveWindowEndsWithAbortedAndTheLastSequence) {
  WatchHub::Options options;
  options.live_window = 4;
  MakeHub(options);
  SubPtr sub = Subscribe({"-", {}});
  for (int i = 0; i < 2; ++i) PublishInstance("a", std::to_string(i));
  Changes got;
  ASSERT_TRUE(sub->Next(10, &got).ok());
  ASSERT_EQ(got.size(), 2u);
  for (int i = 2; i < 12; ++i) PublishInstance("a", std::to_string(i));
  Changes more;
  absl::Status status = sub->Next(10, &more);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(more.empty());
  std::optional<google::rpc::ErrorInfo> info = GetErrorInfo(status);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), reasons::kWatchFellBehind);
  EXPECT_EQ(info->metadata().at("lastSequence"), std::to_string(got[1]->sequence()));
  // Resuming from it replays the rest from the store, without a gap.
  SubPtr resumed = Subscribe({"-", {}}, got[1]->sequence());
  Changes rest = ReadAll(*resumed);
  ASSERT_EQ(rest.size(), 10u);
  EXPECT_EQ(rest[0]->sequence(), got[1]->sequence() + 1);
  EXPECT_EQ(rest[0]->resource_name(), "accounts/a/instances/2");
}

TEST_F(WatchHubTest, AStreamOnAnotherAccountIsNotWoken) {
  std::atomic<int> other_wakes{0}, own_wakes{0}, all_wakes{0};
  SubPtr other = Subscribe({"quiet", {}}, 0, [&] { ++other_wakes; });
  SubPtr own = Subscribe({"a", {}}, 0, [&] { ++own_wakes; });
  SubPtr all = Subscribe({"-", {}}, 0, [&] { ++all_wakes; });
  for (SubPtr* s : {&other, &own, &all}) ASSERT_TRUE((*s)->ArmIfIdle());
  PublishInstance("a", "1");
  Drain(*hub_->fanout_loop());
  EXPECT_EQ(other_wakes.load(), 0);
  EXPECT_EQ(own_wakes.load(), 1);
  EXPECT_EQ(all_wakes.load(), 1);
  // Still armed, and woken by its own account's change.
  PublishInstance("quiet", "1");
  Drain(*hub_->fanout_loop());
  EXPECT_EQ(other_wakes.load(), 1);
  Changes got = ReadAll(*other);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->resource_name(), "accounts/quiet/instances/1");
}

TEST_F(WatchHubTest, OtherAccountsChangesLeavingTheWindowDoNotEndAStream) {
  WatchHub::Options options;
  options.live_window = 4;
  MakeHub(options);
  SubPtr quiet = Subscribe({"quiet", {}});
  SubPtr busy = Subscribe({"a", {}});
  ASSERT_TRUE(quiet->ArmIfIdle());
  // Far more than the window of another account's changes: the quiet
  // stream was never woken and lost nothing of its own.
  for (int i = 0; i < 12; ++i) PublishInstance("a", std::to_string(i));
  PublishInstance("quiet", "1");
  Changes got;
  ASSERT_TRUE(quiet->Next(10, &got).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->resource_name(), "accounts/quiet/instances/1");
  // The busy one did lose changes of its own account.
  Changes lost;
  EXPECT_EQ(busy->Next(10, &lost).code(), absl::StatusCode::kAborted);
  // And a quiet stream whose own change left the window unread has too.
  for (int i = 12; i < 24; ++i) PublishInstance("a", std::to_string(i));
  PublishInstance("quiet", "2");
  for (int i = 24; i < 36; ++i) PublishInstance("a", std::to_string(i));
  Changes late;
  EXPECT_EQ(quiet->Next(10, &late).code(), absl::StatusCode::kAborted);
}

TEST_F(WatchHubTest, AThousandSubscribersCostPublishersNothing) {
  constexpr int kSubscribers = 1000;
  constexpr int kPublishes = 200;
  auto publish_time = [&] {
    absl::Time start = absl::Now();
    for (int i = 0; i < kPublishes; ++i) PublishInstance("a", std::to_string(i));
    return absl::Now() - start;
  };
  absl::Duration alone = publish_time();

  // Each subscriber reads whenever woken and arms itself again, as a Watch
  // stream does; their reads run on the fan-out thread, not here.
  struct Reader {
    SubPtr sub;
    std::atomic<int> got{0};
  };
  std::vector<std::unique_ptr<Reader>> readers;
  for (int i = 0; i < kSubscribers; ++i) {
    auto reader = std::make_unique<Reader>();
    Reader* r = reader.get();
    r->sub = Subscribe({"a", {}}, 0, [this, r] {
      EXPECT_TRUE(hub_->fanout_loop()->IsLoopThread());
      do {
        Changes out;
        ASSERT_TRUE(r->sub->Next(32, &out).ok());
        r->got += out.size();
      } while (!r->sub->ArmIfIdle());
    });
    ASSERT_TRUE(r->sub->ArmIfIdle());
    readers.push_back(std::move(reader));
  }
  // First with the fan-out thread held: the publishes cannot be waiting on
  // any subscriber.
  absl::Notification release;
  hub_->fanout_loop()->Post([&] { release.WaitForNotification(); });
  absl::Duration held = publish_time();
  for (auto& r : readers) EXPECT_EQ(r->got.load(), 0);
  release.Notify();
  // Then with the subscribers reading meanwhile.
  absl::Duration reading = publish_time();
  Drain(*hub_->fanout_loop());
  std::cout << kPublishes << " publishes: no subscriber " << alone << ", " << kSubscribers
            << " subscribers (fan-out held) " << held << ", " << kSubscribers
            << " subscribers reading " << reading << "\n";
  for (auto& r : readers) EXPECT_EQ(r->got.load(), 2 * kPublishes);
  // O(1) per publish: the same work as alone, give or take noise.
  EXPECT_LT(held, alone * 3 + absl::Milliseconds(50));
}

TEST_F(WatchHubTest, UnsubscribeStopsWakeUps) {
  std::atomic<int> wakes{0};
  SubPtr sub = Subscribe({"-", {}}, 0, [&] { ++wakes; });
  ASSERT_TRUE(sub->ArmIfIdle());
  hub_->Unsubscribe(sub->id());
  PublishInstance("a", "1");
  Drain(*hub_->fanout_loop());
  EXPECT_EQ(wakes.load(), 0);
}

TEST_F(WatchHubTest, CloseAllEndsEverySubscription) {
  int closed = 0;
  std::atomic<int> wakes{0};
  SubPtr a = Subscribe({"-", {}}, 0, [&] { ++wakes; }, [&] { ++closed; });
  SubPtr b = Subscribe({"a", {}}, 0, [&] { ++wakes; }, [&] { ++closed; });
  a->ArmIfIdle();
  b->ArmIfIdle();
  hub_->CloseAll();
  EXPECT_EQ(closed, 2);
  PublishInstance("a", "1");
  Drain(*hub_->fanout_loop());
  EXPECT_EQ(wakes.load(), 0);
}

}  // namespace
}  // namespace cloudplane::service
