#include "base/event_loop.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane {
namespace {

using ::testing::ElementsAre;

// Records integers from callbacks; callbacks run on the loop thread while the
// test thread reads, hence the lock.
class Recorder {
 public:
  void Add(int v) {
    absl::MutexLock lock(&mu_);
    values_.push_back(v);
  }
  std::vector<int> values() {
    absl::MutexLock lock(&mu_);
    return values_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> values_;
};

// Posts a final task and waits for it: everything posted earlier has run.
void Flush(EventLoop& loop) {
  absl::Notification done;
  ASSERT_TRUE(loop.Post([&] { done.Notify(); }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(EventLoopTest, PostedTasksRunInOrderOnLoopThread) {
  EventLoop loop;
  Recorder rec;
  std::atomic<bool> all_on_loop{true};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(loop.Post([&, i] {
      if (!loop.IsLoopThread()) all_on_loop = false;
      rec.Add(i);
    }));
  }
  Flush(loop);
  std::vector<int> want(100);
  for (int i = 0; i < 100; ++i) want[i] = i;
  EXPECT_EQ(rec.values(), want);
  EXPECT_TRUE(all_on_loop);
  EXPECT_FALSE(loop.IsLoopThread());
}

TEST(EventLoopTest, TimersFireInTimeOrder) {
  EventLoop loop;
  Recorder rec;
  absl::Notification done;
  const absl::Time start = absl::Now();
  // Scheduled out of order; two share a due time and keep scheduling order.
  const absl::Time base = start + absl::Milliseconds(50);
  loop.RunAt(base + absl::Milliseconds(30), [&] { rec.Add(3); });
  loop.RunAt(base + absl::Milliseconds(10), [&] { rec.Add(1); });
  loop.RunAt(base + absl::Milliseconds(20), [&] { rec.Add(2); });
  loop.RunAt(base + absl::Milliseconds(20), [&] { rec.Add(22); });
  loop.RunAfter(absl::ZeroDuration(), [&] { rec.Add(0); });
  loop.RunAt(base + absl::Milliseconds(40), [&] { done.Notify(); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(rec.values(), ElementsAre(0, 1, 2, 22, 3));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
}

TEST(EventLoopTest, TimerDoesNotFireEarly) {
  EventLoop loop;
  absl::Notification fired;
  absl::Time fired_at;
  const absl::Time start = absl::Now();
  loop.RunAfter(absl::Milliseconds(100), [&] {
    fired_at = absl::Now();
    fired.Notify();
  });
  ASSERT_TRUE(fired.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(fired_at - start, absl::Milliseconds(100));
}

TEST(EventLoopTest, CancelPreventsTimer) {
  EventLoop loop;
  Recorder rec;
  TimerId a = loop.RunAfter(absl::Milliseconds(30), [&] { rec.Add(1); });
  TimerId b = loop.RunAfter(absl::Milliseconds(30), [&] { rec.Add(2); });
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(loop.Cancel(a));
  EXPECT_FALSE(loop.Cancel(a));      // already cancelled
  EXPECT_FALSE(loop.Cancel(12345));  // unknown
  absl::Notification done;
  loop.RunAfter(absl::Milliseconds(60), [&] { done.Notify(); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(rec.values(), ElementsAre(2));
  EXPECT_FALSE(loop.Cancel(b));  // already ran
}

TEST(EventLoopTest, CancelDestroysCallbackImmediately) {
  EventLoop loop;
  auto token = std::make_shared<int>(7);
  std::weak_ptr<int> weak = token;
  TimerId id = loop.RunAfter(absl::Hours(1), [t = std::move(token)] {});
  EXPECT_FALSE(weak.expired());
  EXPECT_TRUE(loop.Cancel(id));
  EXPECT_TRUE(weak.expired());
}

TEST(EventLoopTest, CancelFromInsideCallback) {
  EventLoop loop;
  Recorder rec;
  TimerId later = loop.RunAfter(absl::Milliseconds(50), [&] { rec.Add(2); });
  absl::Notification done;
  loop.Post([&] {
    rec.Add(loop.Cancel(later) ? 1 : -1);
    loop.RunAfter(absl::Milliseconds(80), [&] { done.Notify(); });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(rec.values(), ElementsAre(1));
}

TEST(EventLoopTest, PostFromInsideCallbackRunsAfterQueuedTasks) {
  EventLoop loop;
  Recorder rec;
  absl::Notification done;
  loop.Post([&] {
    rec.Add(1);
    loop.Post([&] {
      rec.Add(3);
      done.Notify();
    });
  });
  loop.Post([&] { rec.Add(2); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(rec.values(), ElementsAre(1, 2, 3));
}

TEST(EventLoopTest, ShutdownRunsPostedTasksAndDropsPendingTimers) {
  Recorder rec;
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> weak = token;
  EventLoop loop;
  absl::Notification release;
  // Hold the loop busy so the following posts are still queued at Shutdown.
  loop.Post([&] { release.WaitForNotification(); });
  for (int i = 0; i < 5; ++i) loop.Post([&, i] { rec.Add(i); });
  loop.RunAfter(absl::Milliseconds(1), [&] { rec.Add(100); });
  loop.RunAfter(absl::Hours(1), [&, t = std::move(token)] { rec.Add(200); });
  release.Notify();
  loop.Shutdown();
  EXPECT_THAT(rec.values(), ElementsAre(0, 1, 2, 3, 4));
  EXPECT_TRUE(weak.expired());  // dropped timer destroyed, not leaked

  // Refused afterwards; Shutdown is idempotent.
  EXPECT_FALSE(loop.Post([&] { rec.Add(-1); }));
  EXPECT_EQ(loop.RunAfter(absl::ZeroDuration(), [&] { rec.Add(-2); }), 0u);
  loop.Shutdown();
  EXPECT_THAT(rec.values(), ElementsAre(0, 1, 2, 3, 4));
}

TEST(EventLoopTest, ShutdownWithOnlyFarTimersReturnsPromptly) {
  EventLoop loop;
  for (int i = 0; i < 10; ++i) loop.RunAfter(absl::Hours(1 + i), [] {});
  const absl::Time start = absl::Now();
  loop.Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(EventLoopTest, PostDuringShutdownDrainIsRefused) {
  EventLoop loop;
  std::atomic<int> posted_result{-1};
  absl::Notification release;
  loop.Post([&] { release.WaitForNotification(); });
  loop.Post([&] { posted_result = loop.Post([] {}) ? 1 : 0; });
  release.Notify();
  loop.Shutdown();
  EXPECT_EQ(posted_result, 0);
}

TEST(EventLoopTest, DestroyFromOwnCallback) {
  auto* loop = new EventLoop;
  absl::Notification done;
  loop->Post([&] {
    delete loop;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(EventLoopTest, ConcurrentPostersAllRun) {
  EventLoop loop;
  std::atomic<int> count{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) loop.Post([&] { ++count; });
    });
  }
  for (auto& t : threads) t.join();
  Flush(loop);
  EXPECT_EQ(count, 4000);
}

}  // namespace
}  // namespace cloudplane
