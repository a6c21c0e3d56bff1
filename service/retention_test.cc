#include "service/retention.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace cloudplane::service {
namespace {

using ::testing::HasSubstr;

// The store's and the pruner's clock: settable, so "old" is exact.
class Clock {
 public:
  absl::Time Now() { return absl::FromUnixMicros(micros_.load()); }
  void Set(absl::Time t) { micros_ = absl::ToUnixMicros(t); }
  std::function<absl::Time()> Fn() {
    return [this] { return Now(); };
  }

 private:
  std::atomic<int64_t> micros_{absl::ToUnixMicros(absl::FromUnixSeconds(1'700'000'000))};
};

// Thread-safe sink for the pruner's log lines.
class Log : public std::ostream {
 public:
  Log() : std::ostream(&buffer_) {}
  std::string text() { return buffer_.str(); }

 private:
  std::stringbuf buffer_;
};

// Waits (really) until `done` says so, at most 10 s.
template <typename F>
bool WaitFor(F done) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::Store::Options options;
    options.clock = clock_.Fn();
    auto store = store::Store::OpenInMemory(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Inserts an operation (done or not) written at the clock's current time.
  void AddOperation(const std::string& name, bool done, const std::string& request_id = "") {
    store::OperationRecord r;
    r.op.set_name(name);
    r.op.set_done(done);
    r.account = "acct";
    r.method = "/cloudplane.v1.ComputeService/CreateInstance";
    r.request_id = request_id;
    r.request_fingerprint = "fp";
    r.phase = done ? "done" : "submitted";
    ASSERT_TRUE(store_->InsertOperation(r).ok());
  }

  std::vector<std::string> OperationNames() {
    store::ListOperationsQuery q;
    q.page_size = 1000;
    auto page = store_->ListOperations(q);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> names;
    for (const auto& r : page->records) names.push_back(r.op.name());
    return names;
  }

  Clock clock_;
  std::unique_ptr<store::Store> store_;
  EventLoop loop_;
  Log log_;
};

TEST_F(RetentionTest, DefaultIntervalIsATenthOfTheShorterRetentionWithinBounds) {
  Retention::Options o;
  EXPECT_EQ(Retention::DefaultInterval(o), absl::Minutes(1));  // nothing to prune
  o.operation_retention = absl::Hours(24 * 7);
  o.change_log_retention = absl::Hours(24);
  EXPECT_EQ(Retention::DefaultInterval(o), absl::Minutes(1));
  o.change_log_retention = absl::Seconds(300);
  EXPECT_EQ(Retention::DefaultInterval(o), absl::Seconds(30));
  o.operation_retention = absl::Seconds(3);
  EXPECT_EQ(Retention::DefaultInterval(o), absl::Seconds(1));
}

TEST_F(RetentionTest, RemovesOldFinishedOperationsKeepsUnfinishedAndFreesRequestIds) {
  AddOperation("operations/old-done", true, "req-old");
  AddOperation("operations/old-pending", false, "req-pending");
  clock_.Set(clock_.Now() + absl::Hours(2));
  AddOperation("operations/recent-done", true, "req-recent");
  clock_.Set(clock_.Now() + absl::Minutes(30));

  Retention::Options options;
  options.operation_retention = absl::Hours(1);
  options.clock = clock_.Fn();
  Retention retention(store_.get(), &loop_, &log_, options);
  retention.Start();
  ASSERT_TRUE(WaitFor([&] { return retention.stats().passes >= 1; }));
  retention.Stop();

  EXPECT_THAT(OperationNames(),
              ::testing::ElementsAre("operations/old-pending", "operations/recent-done"));
  EXPECT_EQ(retention.stats().operations_removed, 1);
  EXPECT_EQ(retention.stats().failures, 0);
  // Its request_id starts a new operation now.
  store::OperationRecord again;
  again.op.set_name("operations/new");
  again.account = "acct";
  again.method = "/cloudplane.v1.ComputeService/CreateInstance";
  again.request_id = "req-old";
  again.request_fingerprint = "fp";
  auto inserted = store_->InsertOperation(again);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_FALSE(inserted->existed);
  EXPECT_THAT(log_.text(), HasSubstr("cloudplaned: retention: removed 1 finished operation(s) "
                                     "last changed before "));
}

TEST_F(RetentionTest, LargeBacklogGoesInBatchesAndLogsOneLine) {
  for (int i = 0; i < 7; ++i) AddOperation(absl::StrCat("operations/", i), true);
  clock_.Set(clock_.Now() + absl::Hours(2));

  Retention::Options options;
  options.operation_retention = absl::Hours(1);
  options.batch = 2;
  options.clock = clock_.Fn();
  Retention retention(store_.get(), &loop_, &log_, options);
  retention.Start();
  ASSERT_TRUE(WaitFor([&] { return retention.stats().passes >= 1; }));
  retention.Stop();

  EXPECT_TRUE(OperationNames().empty());
  EXPECT_EQ(retention.stats().operations_removed, 7);
  EXPECT_EQ(retention.stats().batches, 4);  // 2 + 2 + 2 + 1
  // One line per pass, not per batch.
  std::string text = log_.text();
  EXPECT_EQ(text.find("retention: removed 7 "), text.rfind("retention:")) << text;
}

TEST_F(RetentionTest, BatchesInterleaveWithPostedTasks) {
  for (int i = 0; i < 6; ++i) AddOperation(absl::StrCat("operations/", i), true);
  clock_.Set(clock_.Now() + absl::Hours(2));
  Retention::Options options;
  options.operation_retention = absl::Hours(1);
  options.batch = 1;
  options.clock = clock_.Fn();
  Retention retention(store_.get(), &loop_, &log_, options);
  // Each loop task the test posts records how many batches had run then.
  absl::Notification release;
  loop_.Post([&] { release.WaitForNotification(); });
  retention.Start();  // queued: the first batch
  std::vector<int64_t> seen;
  absl::Mutex seen_mu;
  for (int i = 0; i < 3; ++i) {
    loop_.Post([&] {
      absl::MutexLock lock(&seen_mu);
      seen.push_back(retention.stats().batches);
    });
  }
  release.Notify();
  ASSERT_TRUE(WaitFor([&] { return retention.stats().passes >= 1; }));
  retention.Stop();
  // All three ran after the first batch and before the pass was over: the
  // next batch went behind them in the queue.
  absl::MutexLock lock(&seen_mu);
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(retention.stats().batches, 7);  // 6 of one row, then an empty one
}

TEST_F(RetentionTest, ChangeLogByAgeAndByCount) {
  std::vector<int64_t> seqs;
  for (int i = 0; i < 3; ++i) {
    seqs.push_back(*store_->AppendChange("acct", "Instance", "x", 1, "old"));
  }
  clock_.Set(clock_.Now() + absl::Hours(2));
  for (int i = 0; i < 6; ++i) {
    seqs.push_back(*store_->AppendChange("acct", "Instance", "x", 1, "new"));
  }
  Retention::Options options;
  options.change_log_retention = absl::Hours(1);
  options.change_log_max_entries = 4;
  options.clock = clock_.Fn();
  Retention retention(store_.get(), &loop_, &log_, options);
  retention.Start();
  ASSERT_TRUE(WaitFor([&] { return retention.stats().passes >= 1; }));
  retention.Stop();

  EXPECT_EQ(retention.stats().changes_removed, 5);  // 3 by age, 2 by count
  EXPECT_EQ(store_->ListChangesSince(seqs[3], 10).status().code(),
            absl::StatusCode::kOutOfRange);
  auto kept = store_->ListChangesSince(seqs[4], 10);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->size(), 4u);
  EXPECT_EQ(kept->front().seq, seqs[5]);
  EXPECT_THAT(log_.text(), HasSubstr("removed 0 finished operation(s) and 5 change-log entries "
                                     "(older than "));
  EXPECT_THAT(log_.text(), HasSubstr("or beyond the newest 4)"));
}

TEST_F(RetentionTest, RunsEveryIntervalAndLogsOnlyWhenItRemoved) {
  Retention::Options options;
  options.operation_retention = absl::Hours(1);
  options.interval = absl::Milliseconds(20);
  options.clock = clock_.Fn();
  Retention retention(store_.get(), &loop_, &log_, options);
  retention.Start();
  ASSERT_TRUE(WaitFor([&] { return retention.stats().passes >= 3; }));
  EXPECT_EQ(log_.text(), "");  // nothing removed, nothing said (and written)

  AddOperation("operations/later", true);
  clock_.Set(clock_.Now() + absl::Hours(2));
  ASSERT_TRUE(WaitFor([&] { return retention.stats().operations_removed == 1; }));
  retention.Stop();
  EXPECT_TRUE(OperationNames().empty());
  EXPECT_THAT(log_.text(), HasSubstr("removed 1 finished operation(s)"));

  // Stopped: no further pass.
  const int64_t passes = retention.stats().passes;
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(retention.stats().passes, passes);
}

TEST(RetentionFileTest, StoreErrorEndsThePassAndTheNextOneRetries) {
  char dir_template[] = "/tmp/retention_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = absl::StrCat(dir_template, "/state.db");
  store::Store::Options store_options;
  store_options.busy_timeout = absl::Milliseconds(10);
  auto store = store::Store::Open(path, store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  store::OperationRecord r;
  r.op.set_name("operations/old");
  r.op.set_done(true);
  r.account = "acct";
  r.method = "/m";
  ASSERT_TRUE((*store)->InsertOperation(r).ok());

  // Another connection holds the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  EventLoop loop;
  Log log;
  Retention::Options options;
  options.operation_retention = absl::Seconds(1);
  options.interval = absl::Milliseconds(50);
  options.clock = [] { return absl::Now() + absl::Hours(1); };
  Retention retention(store->get(), &loop, &log, options);
  retention.Start();
  ASSERT_TRUE(WaitFor([&] { return retention.stats().failures >= 1; }));
  EXPECT_EQ(retention.stats().operations_removed, 0);

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  ASSERT_TRUE(WaitFor([&] { return retention.stats().operations_removed == 1; }));
  retention.Stop();
  EXPECT_EQ((*store)->GetOperation("operations/old").status().code(),
            absl::StatusCode::kNotFound);
  // Read once the loop no longer writes to it.
  EXPECT_THAT(log.text(), HasSubstr("cloudplaned: retention: pass stopped (next in 50ms): "));
  EXPECT_THAT(log.text(), HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(log.text(), HasSubstr("removed 1 finished operation(s)"));
}

}  // namespace
}  // namespace cloudplane::service
