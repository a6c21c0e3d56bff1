#include "service/audit_log.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>
#include <stdlib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "google/rpc/code.pb.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "store/store.h"

namespace cloudplane::service {
namespace {

using ::testing::HasSubstr;

// Collects what the AuditLog writes; safe to read once the writers are done
// (AuditLog serialises its own writes).
class LogSink {
 public:
  std::ostream* stream() { return &out_; }
  std::vector<std::string> Lines() {
    std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
  }
  std::vector<std::string> AuditLines() {
    std::vector<std::string> out;
    for (auto& l : Lines()) {
      if (absl::StartsWith(l, "{\"audit\":")) out.push_back(l);
    }
    return out;
  }

 private:
  std::ostringstream out_;
};

v1::AuditEvent Event(std::string principal, std::string account,
                     google::rpc::Code code = google::rpc::OK) {
  v1::AuditEvent e;
  e.set_principal(std::move(principal));
  e.set_credential("api_key");
  e.set_method("cloudplane.v1.ComputeService.CreateInstance");
  e.set_account(account);
  e.set_resource(account + "/instances/web-1");
  e.set_permission("compute.CreateInstance");
  e.set_code(code);
  return e;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::Store::OpenInMemory();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  // Holds the loop until the returned notification is notified, so that
  // events pile up in the queue.
  std::shared_ptr<absl::Notification> BlockLoop() {
    auto release = std::make_shared<absl::Notification>();
    auto started = std::make_shared<absl::Notification>();
    loop_.Post([release, started] {
      started->Notify();
      release->WaitForNotification();
    });
    started->WaitForNotification();
    return release;
  }

  // Returns once every task posted so far has run.
  void DrainLoop() {
    absl::Notification done;
    loop_.Post([&done] { done.Notify(); });
    done.WaitForNotification();
  }

  std::vector<v1::AuditEvent> Stored(store::AuditQuery q = {}) {
    q.page_size = 1000;
    auto page = ListAuditEvents(*store_, q);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return {};
    return {page->audit_events().begin(), page->audit_events().end()};
  }

  std::unique_ptr<store::Store> store_;
  LogSink log_;
  EventLoop loop_;  // Declared after store_: stops before the store closes.
};

TEST_F(AuditLogTest, JsonLineHasEveryFieldEscaped) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  v1::AuditEvent e = Event("al\"ice\\\n\x01", "accounts/lab",
                           google::rpc::PERMISSION_DENIED);
  e.set_request_id("req-1");
  e.set_message("caller lacks compute.CreateInstance on accounts/lab");
  e.set_operation("operations/abc");
  e.set_name("auditEvents/99");  // ignored: the store names events
  e.mutable_time()->set_seconds(1714564800);  // 2024-05-01T12:00:00Z
  e.mutable_time()->set_nanos(1500);
  audit.Record(e);

  std::vector<std::string> lines = log_.Lines();
  ASSERT_EQ(lines.size(), 1u) << log_.Lines().size();
  rapidjson::Document doc;
  doc.Parse(lines[0].c_str());
  ASSERT_FALSE(doc.HasParseError()) << lines[0];
  ASSERT_TRUE(doc.IsObject());
  ASSERT_EQ(doc.MemberCount(), 1u);
  const rapidjson::Value& a = doc["audit"];
  ASSERT_TRUE(a.IsObject());
  std::map<std::string, std::string> got;
  for (auto it = a.MemberBegin(); it != a.MemberEnd(); ++it) {
    ASSERT_TRUE(it->value.IsString()) << it->name.GetString();
    got[it->name.GetString()] =
        std::string(it->value.GetString(), it->value.GetStringLength());
  }
  std::map<std::string, std::string> want = {
      {"time", "2024-05-01T12:00:00.000001Z"},
      {"principal", "al\"ice\\\n\x01"},
      {"credential", "api_key"},
      {"method", "cloudplane.v1.ComputeService.CreateInstance"},
      {"resource", "accounts/lab/instances/web-1"},
      {"account", "accounts/lab"},
      {"request_id", "req-1"},
      {"permission", "compute.CreateInstance"},
      {"code", "PERMISSION_DENIED"},
      {"message", "caller lacks compute.CreateInstance on accounts/lab"},
      {"operation", "operations/abc"},
  };
  EXPECT_EQ(got, want);
  // The escapes themselves: nothing raw that would break the line.
  EXPECT_THAT(lines[0], HasSubstr(R"("principal":"al\"ice\\\n\u0001")"));
  EXPECT_THAT(lines[0],
              ::testing::StartsWith(R"({"audit":{"time":"2024-05-01T12:00:00.000001Z",)"));
}

TEST_F(AuditLogTest, InvalidUtf8IsReplacedInTheLineAndTheStore) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  audit.Record(Event("CN=caf\xC3\xA9 \xFF\xC0\xAF end", "accounts/lab"));
  ASSERT_TRUE(audit.Flush().ok());
  const std::string want = "CN=caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end";
  std::vector<std::string> lines = log_.AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(lines[0].c_str());
  ASSERT_FALSE(doc.HasParseError()) << lines[0];
  EXPECT_EQ(std::string(doc["audit"]["principal"].GetString()), want);
  std::vector<v1::AuditEvent> stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].principal(), want);
}

TEST_F(AuditLogTest, RecordStampsTimeOnlyWhenUnset) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  absl::Time before = absl::Now();
  audit.Record(Event("a", "accounts/lab"));
  absl::Time after = absl::Now();
  v1::AuditEvent given = Event("b", "accounts/lab");
  given.mutable_time()->set_seconds(1000);
  audit.Record(given);
  ASSERT_TRUE(audit.Flush().ok());
  std::vector<v1::AuditEvent> stored = Stored();
  ASSERT_EQ(stored.size(), 2u);
  // Newest (highest sequence) first, whatever the times say.
  EXPECT_EQ(stored[0].principal(), "b");
  EXPECT_EQ(stored[0].time().seconds(), 1000);
  absl::Time stamped = absl::FromUnixSeconds(stored[1].time().seconds()) +
                       absl::Nanoseconds(stored[1].time().nanos());
  EXPECT_GE(stamped, absl::FromUnixMicros(absl::ToUnixMicros(before)));
  EXPECT_LE(stamped, after);
}

TEST_F(AuditLogTest, ManyRecordsAreOneFlushOnTheLoop) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  auto release = BlockLoop();
  for (int i = 0; i < 100; ++i) {
    audit.Record(Event(absl::StrCat("p", i), "accounts/lab"));
  }
  // Every line is out at once, before anything reached the store.
  EXPECT_EQ(log_.AuditLines().size(), 100u);
  EXPECT_TRUE(Stored().empty());
  EXPECT_EQ(audit.stats().flushes, 0);
  release->Notify();
  DrainLoop();
  AuditLog::Stats stats = audit.stats();
  EXPECT_EQ(stats.recorded, 100);
  EXPECT_EQ(stats.stored, 100);
  EXPECT_EQ(stats.flushes, 1);
  std::vector<v1::AuditEvent> stored = Stored();
  ASSERT_EQ(stored.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    // Queue order is sequence order; names come from the sequence.
    const v1::AuditEvent& e = stored[99 - i];
    EXPECT_EQ(e.principal(), absl::StrCat("p", i));
    EXPECT_TRUE(absl::StartsWith(e.name(), "auditEvents/")) << e.name();
  }
  EXPECT_NE(stored[0].name(), stored[1].name());

  // The next event after a flush posts a new one.
  audit.Record(Event("later", "accounts/lab"));
  DrainLoop();
  EXPECT_EQ(audit.stats().flushes, 2);
  EXPECT_EQ(Stored().size(), 101u);
}

TEST_F(AuditLogTest, QueueIsBoundedAndDropsAreReported) {
  AuditLog audit(store_.get(), &loop_, log_.stream(), /*max_queued=*/5);
  auto release = BlockLoop();
  for (int i = 0; i < 8; ++i) audit.Record(Event("flood", ""));
  release->Notify();
  DrainLoop();
  AuditLog::Stats stats = audit.stats();
  EXPECT_EQ(stats.recorded, 8);
  EXPECT_EQ(stats.stored, 5);
  EXPECT_EQ(stats.dropped, 3);
  EXPECT_EQ(Stored().size(), 5u);
  // Every event still has its log line, and one line tells the drop count.
  EXPECT_EQ(log_.AuditLines().size(), 8u);
  std::vector<std::string> drop_lines;
  for (const std::string& l : log_.Lines()) {
    if (absl::StrContains(l, "not stored")) drop_lines.push_back(l);
  }
  ASSERT_EQ(drop_lines.size(), 1u);
  EXPECT_THAT(drop_lines[0], HasSubstr(" 3 events"));

  // The count is reported once: a later flush has nothing to add.
  audit.Record(Event("calm", ""));
  DrainLoop();
  int reports = 0;
  for (const std::string& l : log_.Lines()) {
    if (absl::StrContains(l, "not stored")) ++reports;
  }
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(audit.stats().stored, 6);
}

TEST_F(AuditLogTest, FlushWritesOnTheCallingThread) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  EXPECT_TRUE(audit.Flush().ok());  // nothing queued
  auto release = BlockLoop();
  for (int i = 0; i < 3; ++i) audit.Record(Event("x", "accounts/lab"));
  ASSERT_TRUE(audit.Flush().ok());
  EXPECT_EQ(Stored().size(), 3u);  // while the loop is still blocked
  release->Notify();
  DrainLoop();  // the posted flush finds an empty queue
  EXPECT_EQ(Stored().size(), 3u);
  EXPECT_EQ(audit.stats().flushes, 1);
}

TEST_F(AuditLogTest, FailedWriteIsLoggedAndLaterBatchesAreStored) {
  // A file store whose write lock another process holds: writes fail with
  // UNAVAILABLE after the busy timeout.
  std::string dir = ::testing::TempDir();
  if (dir.empty() || dir.back() != '/') dir += '/';
  dir += "audit_log_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/store.db";
  store::Store::Options options;
  options.busy_timeout = absl::Milliseconds(50);
  auto opened = store::Store::Open(path, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<store::Store> file_store = std::move(opened).value();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);

  AuditLog audit(file_store.get(), &loop_, log_.stream());
  auto release = BlockLoop();
  audit.Record(Event("lost", "accounts/lab"));
  absl::Status flushed = audit.Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable) << flushed;
  std::vector<std::string> errors;
  for (const std::string& l : log_.Lines()) {
    if (absl::StrContains(l, "cannot store")) errors.push_back(l);
  }
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("cannot store 1 events"));
  EXPECT_EQ(audit.stats().failed, 1);

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);
  audit.Record(Event("kept", "accounts/lab"));
  release->Notify();
  DrainLoop();
  auto page = ListAuditEvents(*file_store, store::AuditQuery());
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->audit_events_size(), 1);
  EXPECT_EQ(page->audit_events(0).principal(), "kept");
  EXPECT_EQ(audit.stats().stored, 1);
}

TEST_F(AuditLogTest, DestructorFlushesWhatIsQueued) {
  auto release = BlockLoop();
  {
    AuditLog audit(store_.get(), &loop_, log_.stream());
    audit.Record(Event("x", "accounts/lab"));
    audit.Record(Event("y", "accounts/lab"));
  }
  EXPECT_EQ(Stored().size(), 2u);
  release->Notify();
  DrainLoop();  // the flush posted by the dead AuditLog does nothing
  EXPECT_EQ(Stored().size(), 2u);
}

TEST_F(AuditLogTest, EventsRecordedAfterTheLoopStoppedWaitForFlush) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  loop_.Shutdown();
  audit.Record(Event("x", "accounts/lab"));
  EXPECT_EQ(log_.AuditLines().size(), 1u);
  EXPECT_TRUE(Stored().empty());
  ASSERT_TRUE(audit.Flush().ok());
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(AuditLogTest, ConcurrentRecordsKeepLinesWholeAndStoreEverything) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&audit, t] {
      for (int i = 0; i < kPerThread; ++i) {
        audit.Record(Event(absl::StrCat("t", t, "-", i), "accounts/lab"));
      }
    });
  }
  for (auto& th : threads) th.join();
  DrainLoop();
  ASSERT_TRUE(audit.Flush().ok());
  std::vector<std::string> lines = log_.Lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const std::string& line : lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    ASSERT_FALSE(doc.HasParseError()) << line;
  }
  AuditLog::Stats stats = audit.stats();
  EXPECT_EQ(stats.stored, kThreads * kPerThread);
  EXPECT_EQ(stats.dropped, 0);
  EXPECT_LT(stats.flushes, kThreads * kPerThread);  // batched
  store::AuditQuery q;
  size_t total = 0;
  do {
    auto page = ListAuditEvents(*store_, q);
    ASSERT_TRUE(page.ok()) << page.status();
    total += page->audit_events_size();
    q.page_token = page->next_page_token();
  } while (!q.page_token.empty());
  EXPECT_EQ(total, static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(AuditLogTest, ListingFiltersByAccountPrincipalAndVisibleAccounts) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  audit.Record(Event("alice", "accounts/lab"));
  audit.Record(Event("bob", "accounts/prod"));
  audit.Record(Event("", ""));  // refused before authentication
  audit.Record(Event("alice", "accounts/prod"));
  ASSERT_TRUE(audit.Flush().ok());

  v1::ListAuditEventsRequest request;
  request.set_account("accounts/prod");
  auto query = ToAuditQuery(request);
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(query->account, "prod");
  std::vector<v1::AuditEvent> got = Stored(*query);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].principal(), "alice");
  EXPECT_EQ(got[0].account(), "accounts/prod");
  EXPECT_EQ(got[1].principal(), "bob");

  request.set_principal("bob");
  query = ToAuditQuery(request);
  ASSERT_TRUE(query.ok());
  got = Stored(*query);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].principal(), "bob");

  // What an ADMIN of lab only sees, and an ADMIN of everything ("" admits
  // the events without an account).
  store::AuditQuery lab_admin;
  lab_admin.accounts = {"lab"};
  got = Stored(lab_admin);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].account(), "accounts/lab");
  store::AuditQuery with_unnamed;
  with_unnamed.accounts = {"lab", ""};
  EXPECT_EQ(Stored(with_unnamed).size(), 2u);

  // Names are distinct and follow the sequence.
  got = Stored();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3].name(), "auditEvents/1");
  EXPECT_EQ(got[0].name(), "auditEvents/4");
}

// ---- Retention ----------------------------------------------------------------

// A settable clock for AuditLog::Options::clock that also checks the audit
// log reads it on the loop thread only (trims never run elsewhere).
class LoopClock {
 public:
  LoopClock(EventLoop* loop, absl::Time start)
      : loop_(loop), now_us_(absl::ToUnixMicros(start)) {}
  std::function<absl::Time()> Fn() {
    return [this] {
      EXPECT_TRUE(loop_->IsLoopThread());
      return absl::FromUnixMicros(now_us_.load());
    };
  }
  void Advance(absl::Duration d) { now_us_ += absl::ToInt64Microseconds(d); }

 private:
  EventLoop* loop_;
  std::atomic<int64_t> now_us_;
};

const absl::Time kNow = absl::FromUnixSeconds(1714564800);  // 2024-05-01T12:00:00Z

v1::AuditEvent At(v1::AuditEvent e, absl::Time t) {
  const int64_t us = absl::ToUnixMicros(t);
  e.mutable_time()->set_seconds(us / 1000000);
  e.mutable_time()->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
  return e;
}

std::vector<std::string> Principals(const std::vector<v1::AuditEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.principal());
  return out;
}

std::vector<std::string> LinesWith(LogSink& log, absl::string_view needle) {
  std::vector<std::string> out;
  for (const std::string& l : log.Lines()) {
    if (absl::StrContains(l, needle)) out.push_back(l);
  }
  return out;
}

TEST_F(AuditLogTest, WithoutRetentionNothingIsTrimmed) {
  AuditLog audit(store_.get(), &loop_, log_.stream());
  audit.Record(At(Event("ancient", "accounts/lab"), absl::FromUnixSeconds(1)));
  DrainLoop();
  EXPECT_EQ(Principals(Stored()), std::vector<std::string>{"ancient"});
  EXPECT_EQ(audit.stats().trims, 0);
}

TEST_F(AuditLogTest, RetentionRemovesOldEventsAtTheFirstLoopFlush) {
  LoopClock clock(&loop_, kNow);
  AuditLog audit(store_.get(), &loop_, log_.stream(),
                 AuditLog::Options{.retention = absl::Hours(24 * 30),
                                   .clock = clock.Fn()});
  const absl::Time cutoff = kNow - absl::Hours(24 * 30);
  auto release = BlockLoop();
  audit.Record(At(Event("old", "accounts/lab"), cutoff - absl::Hours(24)));
  audit.Record(At(Event("just-old", "accounts/lab"),
                  cutoff - absl::Microseconds(1)));
  audit.Record(At(Event("at-cutoff", "accounts/lab"), cutoff));
  audit.Record(At(Event("recent", "accounts/prod"), kNow - absl::Hours(1)));
  audit.Record(Event("now", "accounts/prod"));  // stamped with absl::Now()
  // Record never trims: nothing has been attempted while the loop is held.
  EXPECT_EQ(audit.stats().trims, 0);
  release->Notify();
  DrainLoop();

  AuditLog::Stats stats = audit.stats();
  EXPECT_EQ(stats.stored, 5);
  EXPECT_EQ(stats.trims, 1);
  EXPECT_EQ(stats.removed, 2);
  EXPECT_EQ(Principals(Stored()),
            (std::vector<std::string>{"now", "recent", "at-cutoff"}));
  std::vector<std::string> removed = LinesWith(log_, "removed");
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0],
            "cloudplaned: audit log: removed 2 events older than "
            "2024-04-01T12:00:00Z");
  // Every event still has its log line.
  EXPECT_EQ(log_.AuditLines().size(), 5u);
}

TEST_F(AuditLogTest, TrimRunsAgainOnlyWhenDue) {
  LoopClock clock(&loop_, kNow);
  AuditLog audit(store_.get(), &loop_, log_.stream(),
                 AuditLog::Options{.retention = absl::Hours(24),
                                   .clock = clock.Fn()});
  const absl::Time old = kNow - absl::Hours(48);
  audit.Record(Event("first", "accounts/lab"));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 1);  // the first flush trims
  EXPECT_TRUE(LinesWith(log_, "removed").empty());  // nothing to remove

  // Half the interval later, a flush writes but does not trim.
  clock.Advance(AuditLog::TrimInterval(absl::Hours(24)) / 2);
  audit.Record(At(Event("old-1", "accounts/lab"), old));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 1);
  EXPECT_EQ(Principals(Stored()),
            (std::vector<std::string>{"old-1", "first"}));

  // An explicit Flush never trims, whatever the time.
  clock.Advance(AuditLog::TrimInterval(absl::Hours(24)));
  auto release = BlockLoop();
  audit.Record(At(Event("old-2", "accounts/lab"), old));
  ASSERT_TRUE(audit.Flush().ok());
  EXPECT_EQ(audit.stats().trims, 1);
  EXPECT_EQ(Stored().size(), 3u);

  // The loop's flush (its batch already taken) trims now that it is due.
  release->Notify();
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 2);
  EXPECT_EQ(audit.stats().removed, 2);
  EXPECT_EQ(Principals(Stored()), std::vector<std::string>{"first"});

  // And not again until the interval has passed after that.
  clock.Advance(AuditLog::TrimInterval(absl::Hours(24)) - absl::Seconds(1));
  audit.Record(At(Event("old-3", "accounts/lab"), old));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 2);
  clock.Advance(absl::Seconds(1));
  audit.Record(Event("trigger", "accounts/lab"));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 3);
  EXPECT_EQ(Principals(Stored()),
            (std::vector<std::string>{"trigger", "first"}));
  EXPECT_EQ(LinesWith(log_, "removed").size(), 2u);
}

TEST(AuditLogTrimIntervalTest, ATenthOfTheRetentionWithinOneSecondAndTenMinutes) {
  EXPECT_EQ(AuditLog::TrimInterval(absl::Hours(24)), absl::Minutes(10));
  EXPECT_EQ(AuditLog::TrimInterval(absl::Hours(24 * 90)), absl::Minutes(10));
  EXPECT_EQ(AuditLog::TrimInterval(absl::Minutes(100)), absl::Minutes(10));
  EXPECT_EQ(AuditLog::TrimInterval(absl::Minutes(30)), absl::Minutes(3));
  EXPECT_EQ(AuditLog::TrimInterval(absl::Seconds(60)), absl::Seconds(6));
  EXPECT_EQ(AuditLog::TrimInterval(absl::Seconds(10)), absl::Seconds(1));
  EXPECT_EQ(AuditLog::TrimInterval(absl::Seconds(5)), absl::Seconds(1));
  EXPECT_EQ(AuditLog::TrimInterval(absl::Seconds(1)), absl::Seconds(1));
}

TEST_F(AuditLogTest, ShortRetentionTrimsEveryTenthOfIt) {
  // 60 s: events older than a minute go, checked every 6 s of writing.
  LoopClock clock(&loop_, kNow);
  AuditLog audit(store_.get(), &loop_, log_.stream(),
                 AuditLog::Options{.retention = absl::Seconds(60),
                                   .clock = clock.Fn()});
  audit.Record(At(Event("61s", "accounts/lab"), kNow - absl::Seconds(61)));
  audit.Record(At(Event("59s", "accounts/lab"), kNow - absl::Seconds(59)));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 1);
  EXPECT_EQ(Principals(Stored()), std::vector<std::string>{"59s"});

  // 5.999 s later "59s" is past the retention, but no trim is due yet.
  clock.Advance(absl::Seconds(6) - absl::Milliseconds(1));
  audit.Record(At(Event("a", "accounts/lab"), kNow + absl::Seconds(5)));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 1);
  EXPECT_EQ(Principals(Stored()), (std::vector<std::string>{"a", "59s"}));

  // At 6 s it is due: "59s" (65 s old) goes, "a" (1 s old) stays.
  clock.Advance(absl::Milliseconds(1));
  audit.Record(At(Event("b", "accounts/lab"), kNow + absl::Seconds(6)));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 2);
  EXPECT_EQ(audit.stats().removed, 2);
  EXPECT_EQ(Principals(Stored()), (std::vector<std::string>{"b", "a"}));
}

TEST_F(AuditLogTest, FailedTrimIsLoggedAndRetriedWhenDue) {
  std::string dir = ::testing::TempDir();
  if (dir.empty() || dir.back() != '/') dir += '/';
  dir += "audit_log_trim_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/store.db";
  store::Store::Options options;
  options.busy_timeout = absl::Milliseconds(50);
  auto opened = store::Store::Open(path, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<store::Store> file_store = std::move(opened).value();

  LoopClock clock(&loop_, kNow);
  AuditLog audit(file_store.get(), &loop_, log_.stream(),
                 AuditLog::Options{.retention = absl::Hours(24),
                                   .clock = clock.Fn()});
  auto stored = [&] {
    auto page = ListAuditEvents(*file_store, store::AuditQuery());
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<v1::AuditEvent> out;
    if (page.ok()) out.assign(page->audit_events().begin(), page->audit_events().end());
    return Principals(out);
  };
  auto release = BlockLoop();
  audit.Record(At(Event("old", "accounts/lab"), kNow - absl::Hours(48)));
  ASSERT_TRUE(audit.Flush().ok());  // stored; an explicit Flush does not trim

  // Another process holds the write lock when the loop's flush trims.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  release->Notify();
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 1);
  EXPECT_EQ(audit.stats().removed, 0);
  std::vector<std::string> errors = LinesWith(log_, "cannot remove");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("older than 2024-04-30T12:00:00Z"));
  EXPECT_THAT(errors[0], HasSubstr("UNAVAILABLE"));
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);

  // Not retried before it is due...
  audit.Record(Event("recent", "accounts/lab"));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 1);
  EXPECT_EQ(stored(), (std::vector<std::string>{"recent", "old"}));
  // ...and retried, successfully, when it is.
  clock.Advance(AuditLog::TrimInterval(absl::Hours(24)));
  audit.Record(Event("later", "accounts/lab"));
  DrainLoop();
  EXPECT_EQ(audit.stats().trims, 2);
  EXPECT_EQ(audit.stats().removed, 1);
  EXPECT_EQ(stored(), (std::vector<std::string>{"later", "recent"}));
  EXPECT_EQ(LinesWith(log_, "removed 1 events").size(), 1u);
  EXPECT_EQ(LinesWith(log_, "cannot remove").size(), 1u);
}

TEST(ToAuditQueryTest, ConvertsAndValidates) {
  v1::ListAuditEventsRequest request;
  auto q = ToAuditQuery(request);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->account, "");
  EXPECT_EQ(q->start, absl::InfinitePast());
  EXPECT_EQ(q->end, absl::InfiniteFuture());

  request.mutable_start_time()->set_seconds(0);  // set, at the epoch
  request.mutable_end_time()->set_seconds(100);
  request.mutable_end_time()->set_nanos(5000);
  request.set_page_size(7);
  request.set_page_token("tok");
  q = ToAuditQuery(request);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->start, absl::UnixEpoch());
  EXPECT_EQ(q->end, absl::FromUnixSeconds(100) + absl::Microseconds(5));
  EXPECT_EQ(q->page_size, 7);
  EXPECT_EQ(q->page_token, "tok");

  for (const char* bad : {"lab", "accounts/", "accounts/a/b", "projects/x"}) {
    v1::ListAuditEventsRequest r;
    r.set_account(bad);
    EXPECT_EQ(ToAuditQuery(r).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  v1::ListAuditEventsRequest reversed;
  reversed.mutable_start_time()->set_seconds(200);
  reversed.mutable_end_time()->set_seconds(100);
  EXPECT_EQ(ToAuditQuery(reversed).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::ListAuditEventsRequest out_of_range;
  out_of_range.mutable_start_time()->set_nanos(-1);
  EXPECT_EQ(ToAuditQuery(out_of_range).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::service
