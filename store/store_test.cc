#include "store/store.h"

#include <thread>

#include "base/thread_role.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

#define CP_TEST_CONCAT_INNER_(a, b) a##b
#define CP_TEST_CONCAT_(a, b) CP_TEST_CONCAT_INNER_(a, b)
#define ASSERT_OK(expr)                          \
  do {                                           \
    const ::absl::Status cp_s_ = (expr);         \
    ASSERT_TRUE(cp_s_.ok()) << cp_s_;            \
  } while (false)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                   \
  ASSERT_OK_AND_ASSIGN_IMPL_(CP_TEST_CONCAT_(cp_or_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()

// A deterministic clock: each reading is 1ms after the previous one, unless
// frozen.
class FakeClock {
 public:
  absl::Time Now() {
    return absl::FromUnixMicros(frozen_ ? micros_.load()
                                        : micros_.fetch_add(1000) + 1000);
  }
  void Freeze() { frozen_ = true; }
  Store::Options Options() {
    Store::Options options;
    options.clock = [this] { return Now(); };
    return options;
  }

 private:
  std::atomic<int64_t> micros_{1'700'000'000'000'000};
  std::atomic<bool> frozen_{false};
};

OperationRecord MakeRecord(std::string name, std::string account = "acct",
                           std::string request_id = "",
                           std::string fingerprint = "fp-1") {
  OperationRecord r;
  r.op.set_name(std::move(name));
  r.account = std::move(account);
  r.method = "/cloudplane.v1.Compute/CreateVm";
  r.request_id = std::move(request_id);
  r.request_fingerprint = std::move(fingerprint);
  r.phase = "accepted";
  r.poll_token = std::string("tok\0en", 6);  // Binary-safe.
  return r;
}

std::string Describe(const OperationRecord& r) {
  return absl::StrCat("op{", r.op.ShortDebugString(), "} account=", r.account,
                      " method=", r.method, " request_id=", r.request_id,
                      " fp=", absl::CHexEscape(r.request_fingerprint),
                      " phase=", r.phase,
                      " poll=", absl::CHexEscape(r.poll_token),
                      " create=", absl::FormatTime(r.create_time),
                      " update=", absl::FormatTime(r.update_time));
}

std::vector<std::string> Names(const std::vector<OperationRecord>& records) {
  std::vector<std::string> names;
  for (const auto& r : records) names.push_back(r.op.name());
  return names;
}

std::string MakeTempDir() {
  std::string base = ::testing::TempDir();
  if (base.empty() || base.back() != '/') base += '/';
  std::string tmpl = base + "store_test_XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

// Runs one query against the file with a plain SQLite connection and returns
// the first column of the first row.
std::string QueryOne(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) out = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

class MemStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::OpenInMemory(clock_.Options());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

// ---- Operations -------------------------------------------------------------

TEST_F(MemStoreTest, InsertGetRoundTrip) {
  OperationRecord in = MakeRecord("operations/1", "acct", "req-1");
  in.op.mutable_metadata()->set_type_url("type.googleapis.com/x.Meta");
  in.op.mutable_metadata()->set_value("meta");
  in.create_time = absl::UnixEpoch();  // Ignored: the store stamps times.

  ASSERT_OK_AND_ASSIGN(InsertResult inserted, store_->InsertOperation(in));
  EXPECT_FALSE(inserted.existed);
  EXPECT_GT(inserted.record.create_time, absl::FromUnixSeconds(1'600'000'000));
  EXPECT_EQ(inserted.record.create_time, inserted.record.update_time);

  ASSERT_OK_AND_ASSIGN(OperationRecord got,
                       store_->GetOperation("operations/1"));
  EXPECT_EQ(Describe(got), Describe(inserted.record));
  in.create_time = in.update_time = inserted.record.create_time;
  EXPECT_EQ(Describe(got), Describe(in));
}

TEST_F(MemStoreTest, UpdateReplacesProgressAndKeepsIdentity) {
  ASSERT_OK_AND_ASSIGN(InsertResult inserted,
                       store_->InsertOperation(MakeRecord("operations/1")));
  OperationRecord next = inserted.record;
  next.op.set_done(true);
  next.op.mutable_error()->set_code(5);
  next.phase = "done";
  next.poll_token = "";
  next.account = "someone-else";  // Identity fields are ignored.
  next.request_id = "changed";
  ASSERT_OK(store_->UpdateOperation(next));

  ASSERT_OK_AND_ASSIGN(OperationRecord got,
                       store_->GetOperation("operations/1"));
  EXPECT_TRUE(got.op.done());
  EXPECT_EQ(got.op.error().code(), 5);
  EXPECT_EQ(got.phase, "done");
  EXPECT_EQ(got.poll_token, "");
  EXPECT_EQ(got.account, "acct");
  EXPECT_EQ(got.request_id, "");
  EXPECT_EQ(got.create_time, inserted.record.create_time);
  EXPECT_GT(got.update_time, inserted.record.update_time);
}

TEST_F(MemStoreTest, MissingOperations) {
  EXPECT_EQ(store_->GetOperation("operations/x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateOperation(MakeRecord("operations/x")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteOperation("operations/x").code(),
            absl::StatusCode::kNotFound);

  ASSERT_OK(store_->InsertOperation(MakeRecord("operations/x")).status());
  ASSERT_OK(store_->DeleteOperation("operations/x"));
  EXPECT_EQ(store_->GetOperation("operations/x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteOperation("operations/x").code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MemStoreTest, InsertRejectsEmptyAndDuplicateNames) {
  EXPECT_EQ(store_->InsertOperation(MakeRecord("")).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_OK(store_->InsertOperation(MakeRecord("operations/1")).status());
  absl::Status dup =
      store_->InsertOperation(MakeRecord("operations/1")).status();
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(dup.message(), HasSubstr("operations/1 already exists"));
}

TEST_F(MemStoreTest, SameRequestIdReturnsExistingRecord) {
  ASSERT_OK_AND_ASSIGN(
      InsertResult first,
      store_->InsertOperation(MakeRecord("operations/1", "acct", "req-1")));
  // A retry allocates a fresh operation name; the store must hand back the
  // first one untouched.
  OperationRecord retry = MakeRecord("operations/2", "acct", "req-1");
  retry.phase = "other";
  ASSERT_OK_AND_ASSIGN(InsertResult second, store_->InsertOperation(retry));
  EXPECT_TRUE(second.existed);
  EXPECT_EQ(Describe(second.record), Describe(first.record));
  EXPECT_EQ(store_->GetOperation("operations/2").status().code(),
            absl::StatusCode::kNotFound);

  // Even after the operation progressed, the current record comes back.
  OperationRecord done = first.record;
  done.op.set_done(true);
  ASSERT_OK(store_->UpdateOperation(done));
  ASSERT_OK_AND_ASSIGN(InsertResult third, store_->InsertOperation(retry));
  EXPECT_TRUE(third.existed);
  EXPECT_TRUE(third.record.op.done());
}

TEST_F(MemStoreTest, SameRequestIdDifferentRequestIsAlreadyExists) {
  ASSERT_OK(store_
                ->InsertOperation(
                    MakeRecord("operations/1", "acct", "req-1", "fp-1"))
                .status());
  absl::Status s = store_
                       ->InsertOperation(MakeRecord("operations/2", "acct",
                                                    "req-1", "fp-2"))
                       .status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(),
              HasSubstr("req-1 was already used for a different request"));
  EXPECT_EQ(store_->GetOperation("operations/2").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MemStoreTest, RequestIdIsScopedToAccountAndMethod) {
  ASSERT_OK(
      store_->InsertOperation(MakeRecord("operations/1", "a", "req")).status());
  ASSERT_OK_AND_ASSIGN(
      InsertResult other_account,
      store_->InsertOperation(MakeRecord("operations/2", "b", "req")));
  EXPECT_FALSE(other_account.existed);
  OperationRecord other_method = MakeRecord("operations/3", "a", "req");
  other_method.method = "/cloudplane.v1.Compute/DeleteVm";
  ASSERT_OK_AND_ASSIGN(InsertResult r, store_->InsertOperation(other_method));
  EXPECT_FALSE(r.existed);
}

TEST_F(MemStoreTest, EmptyRequestIdNeverDeduplicates) {
  ASSERT_OK_AND_ASSIGN(InsertResult a,
                       store_->InsertOperation(MakeRecord("operations/1")));
  ASSERT_OK_AND_ASSIGN(InsertResult b,
                       store_->InsertOperation(MakeRecord("operations/2")));
  EXPECT_FALSE(a.existed);
  EXPECT_FALSE(b.existed);
  ASSERT_OK(store_->GetOperation("operations/1").status());
  ASSERT_OK(store_->GetOperation("operations/2").status());
}

TEST_F(MemStoreTest, ListUnfinishedOperations) {
  for (int i = 0; i < 5; ++i) {
    OperationRecord r = MakeRecord(absl::StrCat("operations/", i));
    r.op.set_done(i % 2 == 1);
    ASSERT_OK(store_->InsertOperation(r).status());
  }
  ASSERT_OK_AND_ASSIGN(auto unfinished, store_->ListUnfinishedOperations());
  EXPECT_THAT(Names(unfinished),
              ElementsAre("operations/0", "operations/2", "operations/4"));

  OperationRecord finish = MakeRecord("operations/2");
  finish.op.set_done(true);
  ASSERT_OK(store_->UpdateOperation(finish));
  ASSERT_OK_AND_ASSIGN(unfinished, store_->ListUnfinishedOperations());
  EXPECT_THAT(Names(unfinished), ElementsAre("operations/0", "operations/4"));
}

// Pages through the whole query; fails the test on any error.
std::vector<OperationRecord> ListAll(Store& store, ListOperationsQuery q,
                                     int* pages = nullptr,
                                     std::function<void()> between = {}) {
  std::vector<OperationRecord> all;
  int n = 0;
  do {
    auto page = store.ListOperations(q);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    ++n;
    EXPECT_LE(static_cast<int>(page->records.size()),
              q.page_size == 0 ? 50 : q.page_size);
    for (auto& r : page->records) all.push_back(std::move(r));
    q.page_token = page->next_page_token;
    if (between && !q.page_token.empty()) between();
  } while (!q.page_token.empty());
  if (pages != nullptr) *pages = n;
  return all;
}

TEST_F(MemStoreTest, ListOperationsPagesInCreateOrder) {
  std::vector<std::string> expected;
  for (int i = 0; i < 57; ++i) {
    OperationRecord r = MakeRecord(absl::StrFormat("operations/%03d", 56 - i),
                                   i % 3 == 0 ? "a" : "b");
    r.op.set_done(i % 2 == 0);
    ASSERT_OK(store_->InsertOperation(r).status());
    expected.push_back(r.op.name());
  }
  int pages = 0;
  ListOperationsQuery q;
  q.page_size = 10;
  EXPECT_EQ(Names(ListAll(*store_, q, &pages)), expected);
  EXPECT_EQ(pages, 6);

  q.account = "a";
  std::vector<std::string> got = Names(ListAll(*store_, q));
  EXPECT_EQ(got.size(), 19u);
  for (const auto& r : ListAll(*store_, q)) EXPECT_EQ(r.account, "a");

  q.account = "";
  q.only_unfinished = true;
  std::vector<OperationRecord> unfinished = ListAll(*store_, q);
  EXPECT_EQ(unfinished.size(), 28u);
  for (const auto& r : unfinished) EXPECT_FALSE(r.op.done());

  q.account = "b";
  EXPECT_EQ(ListAll(*store_, q).size(), 19u);  // b and odd i: 38 b's / 2.

  ListOperationsQuery defaults;  // page_size 0 = 50.
  ASSERT_OK_AND_ASSIGN(OperationPage first, store_->ListOperations(defaults));
  EXPECT_EQ(first.records.size(), 50u);
  EXPECT_FALSE(first.next_page_token.empty());
}

TEST_F(MemStoreTest, ListOperationsPageSizeLimits) {
  ListOperationsQuery q;
  q.page_size = -1;
  EXPECT_EQ(store_->ListOperations(q).status().code(),
            absl::StatusCode::kInvalidArgument);

  for (int i = 0; i < 1001; ++i) {
    ASSERT_OK(store_->InsertOperation(MakeRecord(absl::StrCat("op/", i)))
                  .status());
  }
  q.page_size = 5000;  // Clamped to 1000.
  ASSERT_OK_AND_ASSIGN(OperationPage page, store_->ListOperations(q));
  EXPECT_EQ(page.records.size(), 1000u);
  q.page_token = page.next_page_token;
  ASSERT_OK_AND_ASSIGN(page, store_->ListOperations(q));
  EXPECT_EQ(page.records.size(), 1u);
  EXPECT_EQ(page.next_page_token, "");
}

TEST_F(MemStoreTest, PaginationSurvivesConcurrentInsertsAndDeletes) {
  // Frozen clock: every record has the same create_time, so the order (and
  // the keyset) is decided by the name, and inserts can land on either side
  // of the cursor.
  clock_.Freeze();
  std::set<std::string> originals;
  for (int i = 0; i < 40; ++i) {
    std::string name = absl::StrFormat("op/b%03d", i * 10);
    ASSERT_OK(store_->InsertOperation(MakeRecord(name)).status());
    originals.insert(name);
  }
  int round = 0;
  std::string deleted_unseen;
  std::set<std::string> seen_so_far;
  ListOperationsQuery q;
  q.page_size = 7;
  std::vector<OperationRecord> all;
  do {
    ASSERT_OK_AND_ASSIGN(OperationPage page, store_->ListOperations(q));
    for (auto& r : page.records) {
      seen_so_far.insert(r.op.name());
      all.push_back(std::move(r));
    }
    q.page_token = page.next_page_token;
    if (q.page_token.empty()) break;
    // Before the cursor, right next to it, after it, and far after it;
    // also delete the last seen record (the cursor itself).
    const std::string& cursor = all.back().op.name();
    for (std::string name :
         {absl::StrCat("op/a", round), absl::StrCat(cursor, "-", round),
          absl::StrFormat("op/b%03d-x", (round + 2) * 10),
          absl::StrCat("op/c", round)}) {
      ASSERT_OK(store_->InsertOperation(MakeRecord(name)).status());
    }
    ASSERT_OK(store_->DeleteOperation(cursor));
    ++round;
  } while (true);
  EXPECT_GT(round, 5);

  std::map<std::string, int> count;
  for (const auto& r : all) ++count[r.op.name()];
  for (const auto& [name, n] : count) EXPECT_EQ(n, 1) << name;
  for (const auto& name : originals) EXPECT_EQ(count[name], 1) << name;
  for (int i = 0; i < round; ++i) {
    // Inserted behind the cursor: never returned.
    EXPECT_EQ(count.count(absl::StrCat("op/a", i)), 0u);
    // Inserted ahead of the cursor: returned exactly once.
    EXPECT_EQ(count[absl::StrCat("op/c", i)], 1);
  }
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].op.name(), all[i].op.name());
  }
}

TEST_F(MemStoreTest, PaginationWithInsertsFromAnotherThread) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(store_->InsertOperation(MakeRecord(absl::StrCat("op/", i)))
                  .status());
  }
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      ASSERT_OK(store_->InsertOperation(MakeRecord(absl::StrCat("new/", i)))
                    .status());
    }
  });
  ListOperationsQuery q;
  q.page_size = 9;
  std::map<std::string, int> count;
  int pages = 0;
  // Stop once all originals were read; the writer keeps the tail growing.
  while (true) {
    ASSERT_OK_AND_ASSIGN(OperationPage page, store_->ListOperations(q));
    ++pages;
    for (const auto& r : page.records) ++count[r.op.name()];
    q.page_token = page.next_page_token;
    if (q.page_token.empty() || pages >= 12) break;
  }
  stop = true;
  writer.join();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(count[absl::StrCat("op/", i)], 1);
  for (const auto& [name, n] : count) EXPECT_EQ(n, 1) << name;
}

TEST_F(MemStoreTest, MalformedPageTokens) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(store_->InsertOperation(MakeRecord(absl::StrCat("op/", i), "a"))
                  .status());
  }
  ListOperationsQuery q;
  q.account = "a";
  q.page_size = 1;
  ASSERT_OK_AND_ASSIGN(OperationPage page, store_->ListOperations(q));
  const std::string good = page.next_page_token;
  ASSERT_FALSE(good.empty());

  for (std::string bad :
       {std::string("!!!not base64!!!"), std::string("abc"),
        absl::WebSafeBase64Escape("garbage"),
        absl::WebSafeBase64Escape("3:op11:a1:09:notanumber4:op/0"),
        absl::WebSafeBase64Escape("3:op11:a1:0"),
        absl::WebSafeBase64Escape("99:op1"), good.substr(0, good.size() - 4),
        good + "AAAA"}) {
    q.page_token = bad;
    absl::Status s = store_->ListOperations(q).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("page_token")) << bad;
  }

  // A good token presented with another query.
  q.page_token = good;
  q.account = "b";
  EXPECT_EQ(store_->ListOperations(q).status().code(),
            absl::StatusCode::kInvalidArgument);
  q.account = "a";
  q.only_unfinished = true;
  EXPECT_EQ(store_->ListOperations(q).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A resource token is not an operation token, and vice versa.
  ASSERT_OK(store_->PutResource("a", "vms", "1", "x"));
  ASSERT_OK(store_->PutResource("a", "vms", "2", "x"));
  ASSERT_OK_AND_ASSIGN(ResourcePage rpage,
                       store_->ListResources("a", "vms", 1, ""));
  q.only_unfinished = false;
  q.page_token = rpage.next_page_token;
  EXPECT_EQ(store_->ListOperations(q).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListResources("a", "vms", 1, good).status().code(),
            absl::StatusCode::kInvalidArgument);

  // And the good token still works with its own query.
  q.page_token = good;
  ASSERT_OK_AND_ASSIGN(page, store_->ListOperations(q));
  EXPECT_THAT(Names(page.records), ElementsAre("op/1"));
}

// ---- Resources --------------------------------------------------------------

TEST_F(MemStoreTest, ResourceRoundTrip) {
  EXPECT_EQ(store_->GetResource("a", "vms", "vm-1").status().code(),
            absl::StatusCode::kNotFound);
  const std::string binary("\0\1\2\xff", 4);
  ASSERT_OK(store_->PutResource("a", "vms", "vm-1", binary));
  ASSERT_OK_AND_ASSIGN(std::string got,
                       store_->GetResource("a", "vms", "vm-1"));
  EXPECT_EQ(got, binary);

  ASSERT_OK(store_->PutResource("a", "vms", "vm-1", ""));  // Overwrite.
  ASSERT_OK_AND_ASSIGN(got, store_->GetResource("a", "vms", "vm-1"));
  EXPECT_EQ(got, "");

  // Keys are (account, collection, id).
  EXPECT_EQ(store_->GetResource("b", "vms", "vm-1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetResource("a", "disks", "vm-1").status().code(),
            absl::StatusCode::kNotFound);

  ASSERT_OK_AND_ASSIGN(bool existed,
                       store_->DeleteResource("a", "vms", "vm-1"));
  EXPECT_TRUE(existed);
  ASSERT_OK_AND_ASSIGN(existed, store_->DeleteResource("a", "vms", "vm-1"));
  EXPECT_FALSE(existed);
  EXPECT_EQ(store_->GetResource("a", "vms", "vm-1").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MemStoreTest, ResourceKeysMustBeNonEmpty) {
  EXPECT_EQ(store_->PutResource("a", "", "x", "b").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutResource("a", "vms", "", "b").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetResource("a", "vms", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->DeleteResource("a", "", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListResources("a", "", 0, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListResources("a", "vms", -3, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MemStoreTest, ListResourcesPagesById) {
  std::vector<std::string> ids;
  for (int i = 0; i < 23; ++i) {
    std::string id = absl::StrFormat("vm-%02d", (i * 7) % 23);
    ASSERT_OK(store_->PutResource("a", "vms", id, "v" + id));
    ids.push_back(id);
  }
  ASSERT_OK(store_->PutResource("a", "disks", "d", "x"));
  ASSERT_OK(store_->PutResource("b", "vms", "vm-00", "x"));
  std::sort(ids.begin(), ids.end());

  std::vector<std::string> got;
  std::string token;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(ResourcePage page,
                         store_->ListResources("a", "vms", 5, token));
    ++pages;
    for (const auto& e : page.resources) {
      EXPECT_EQ(e.bytes, "v" + e.id);
      got.push_back(e.id);
    }
    token = page.next_page_token;
    if (!token.empty()) {
      // Deleting the cursor row does not disturb the next page.
      ASSERT_OK(store_->DeleteResource("a", "vms", got.back()).status());
    }
  } while (!token.empty());
  EXPECT_EQ(got, ids);
  EXPECT_EQ(pages, 5);

  ASSERT_OK_AND_ASSIGN(ResourcePage first,
                       store_->ListResources("a", "vms", 2, ""));
  EXPECT_EQ(store_->ListResources("a", "disks", 2, first.next_page_token)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListResources("b", "vms", 2, first.next_page_token)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MemStoreTest, ListResourcesAfterReadsByIdAfterACursor) {
  for (const char* id : {"vm-3", "vm-1", "vm-2", "vm-10"}) {
    ASSERT_OK(store_->PutResource("a", "vms", id, absl::StrCat("v", id)));
  }
  ASSERT_OK(store_->PutResource("a", "disks", "vm-0", "x"));
  ASSERT_OK(store_->PutResource("b", "vms", "vm-0", "x"));
  auto ids = [](const std::vector<ResourceEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.id);
    return out;
  };

  // Byte order of ids, from the first; only this account's collection.
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListResourcesAfter("a", "vms", "", 100));
  EXPECT_EQ(ids(all), (std::vector<std::string>{"vm-1", "vm-10", "vm-2", "vm-3"}));
  EXPECT_EQ(all[0].bytes, "vvm-1");
  // After a cursor, at most `limit`; the cursor need not exist.
  ASSERT_OK_AND_ASSIGN(auto two, store_->ListResourcesAfter("a", "vms", "vm-1", 2));
  EXPECT_EQ(ids(two), (std::vector<std::string>{"vm-10", "vm-2"}));
  ASSERT_OK_AND_ASSIGN(auto rest, store_->ListResourcesAfter("a", "vms", "vm-20", 2));
  EXPECT_EQ(ids(rest), (std::vector<std::string>{"vm-3"}));
  ASSERT_OK_AND_ASSIGN(auto none, store_->ListResourcesAfter("a", "vms", "vm-3", 2));
  EXPECT_TRUE(none.empty());

  EXPECT_EQ(store_->ListResourcesAfter("a", "", "", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListResourcesAfter("a", "vms", "", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListResourcesAfter("a", "vms", "", 10001).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Transactions -----------------------------------------------------------

TEST_F(MemStoreTest, TransactionCommits) {
  ASSERT_OK(store_->PutResource("a", "counters", "c", "1"));
  ASSERT_OK(store_->RunInTransaction([](TxnView& txn) -> absl::Status {
    absl::StatusOr<std::string> v = txn.GetResource("a", "counters", "c");
    if (!v.ok()) return v.status();
    RETURN_IF_ERROR(txn.PutResource("a", "counters", "c", *v + "1"));
    RETURN_IF_ERROR(txn.PutResource("a", "vms", "new", "x"));
    return txn.AppendChange("a", "vm", "vms/new", 1, "x").status();
  }));
  ASSERT_OK_AND_ASSIGN(std::string c,
                       store_->GetResource("a", "counters", "c"));
  EXPECT_EQ(c, "11");
  ASSERT_OK(store_->GetResource("a", "vms", "new").status());
  ASSERT_OK_AND_ASSIGN(auto changes, store_->ListChangesSince(0, 10));
  EXPECT_EQ(changes.size(), 1u);
}

TEST_F(MemStoreTest, TransactionRollsBackOnError) {
  ASSERT_OK(store_->PutResource("a", "vms", "keep", "old"));
  ASSERT_OK(store_->InsertOperation(MakeRecord("operations/1")).status());
  absl::Status s = store_->RunInTransaction([](TxnView& txn) -> absl::Status {
    RETURN_IF_ERROR(txn.PutResource("a", "vms", "keep", "new"));
    RETURN_IF_ERROR(txn.PutResource("a", "vms", "added", "x"));
    absl::StatusOr<bool> existed = txn.DeleteResource("a", "vms", "keep");
    if (!existed.ok() || !*existed) return absl::InternalError("delete");
    RETURN_IF_ERROR(txn.AppendChange("a", "vm", "vms/added", 1, "").status());
    absl::StatusOr<OperationRecord> op = txn.GetOperation("operations/1");
    if (!op.ok()) return op.status();
    op->op.set_done(true);
    RETURN_IF_ERROR(txn.UpdateOperation(*op));
    return absl::FailedPreconditionError("vm is busy");
  });
  EXPECT_EQ(s, absl::FailedPreconditionError("vm is busy"));

  ASSERT_OK_AND_ASSIGN(std::string keep,
                       store_->GetResource("a", "vms", "keep"));
  EXPECT_EQ(keep, "old");
  EXPECT_EQ(store_->GetResource("a", "vms", "added").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto changes, store_->ListChangesSince(0, 10));
  EXPECT_TRUE(changes.empty());
  ASSERT_OK_AND_ASSIGN(OperationRecord op,
                       store_->GetOperation("operations/1"));
  EXPECT_FALSE(op.op.done());

  // The store is usable afterwards.
  ASSERT_OK(store_->PutResource("a", "vms", "after", "x"));
}

TEST_F(MemStoreTest, StoreCallsInsideTransactionAreRefused) {
  absl::Status inner;
  absl::Status s = store_->RunInTransaction([&](TxnView& txn) -> absl::Status {
    RETURN_IF_ERROR(txn.PutResource("a", "vms", "x", "1"));
    inner = store_->PutResource("a", "vms", "y", "1");  // Would deadlock.
    return inner;
  });
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GetResource("a", "vms", "x").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MemStoreTest, TxnViewIsBoundToItsThread) {
  absl::Status other_thread;
  ASSERT_OK(store_->RunInTransaction([&](TxnView& txn) {
    std::thread t(
        [&] { other_thread = txn.PutResource("a", "vms", "x", "1"); });
    t.join();
    return absl::OkStatus();
  }));
  EXPECT_EQ(other_thread.code(), absl::StatusCode::kFailedPrecondition);
}

// ---- Group commit ------------------------------------------------------------

// Holds the store's current batch open (a RunInTransaction that waits inside
// its callback) until Release, so that the writes started meanwhile queue up
// and go together in the next batch.
class HeldBatch {
 public:
  explicit HeldBatch(Store& store) : store_(store) {
    thread_ = std::thread([this] {
      status_ = store_.RunInTransaction([this](TxnView& txn) {
        entered_.Notify();
        release_.WaitForNotification();
        return txn.PutResource("a", "held", "h", "1");
      });
    });
    entered_.WaitForNotification();
  }
  absl::Status Release() {
    release_.Notify();
    thread_.join();
    return status_;
  }

 private:
  Store& store_;
  absl::Notification entered_;
  absl::Notification release_;
  absl::Status status_;
  std::thread thread_;
};

// Waits until `n` writes are queued behind the held batch.
void WaitQueued(Store& store, int64_t n) {
  while (store.GetStats().queued < n) absl::SleepFor(absl::Milliseconds(1));
}

TEST(GroupCommitTest, ConcurrentWritesShareOneCommit) {
  const std::string path = MakeTempDir() + "/store.db";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
  const Store::Stats before = store->GetStats();
  HeldBatch held(*store);
  constexpr int kWriters = 8;
  std::vector<std::thread> writers;
  std::vector<absl::Status> statuses(kWriters);
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      statuses[i] = store->InsertOperation(MakeRecord(absl::StrCat("operations/", i), "a",
                                                      absl::StrCat("req-", i)))
                        .status();
    });
  }
  WaitQueued(*store, kWriters);
  ASSERT_OK(held.Release());
  for (std::thread& t : writers) t.join();
  for (const absl::Status& s : statuses) ASSERT_OK(s);
  const Store::Stats after = store->GetStats();
  // The held write's commit, then one for all eight.
  EXPECT_EQ(after.writes - before.writes, kWriters + 1);
  EXPECT_EQ(after.commits - before.commits, 2);
  EXPECT_EQ(after.queued, 0);

  // Each write is durable and whole: a new Store on the file sees them.
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, Store::Open(path));
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_OK_AND_ASSIGN(OperationRecord r,
                         store->GetOperation(absl::StrCat("operations/", i)));
    EXPECT_EQ(r.request_id, absl::StrCat("req-", i));
  }
  ASSERT_OK(store->GetResource("a", "held", "h").status());
}

TEST(GroupCommitTest, AFailingWriteDoesNotPoisonItsBatch) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::OpenInMemory());
  ASSERT_OK(store->InsertOperation(MakeRecord("operations/taken")).status());
  const Store::Stats before = store->GetStats();
  HeldBatch held(*store);
  absl::Status first, failing, duplicate, last;
  std::thread t1([&] { first = store->PutResource("a", "vms", "1", "x"); });
  WaitQueued(*store, 1);
  // Writes, then fails: its writes must go, the others' must stay.
  std::thread t2([&] {
    failing = store->RunInTransaction([](TxnView& txn) -> absl::Status {
      RETURN_IF_ERROR(txn.PutResource("a", "vms", "2", "x"));
      RETURN_IF_ERROR(txn.AppendChange("a", "vm", "vms/2", 1, "x").status());
      return absl::FailedPreconditionError("vm 2 is busy");
    });
  });
  WaitQueued(*store, 2);
  // A constraint violation inside SQLite (a name that exists).
  std::thread t3(
      [&] { duplicate = store->InsertOperation(MakeRecord("operations/taken")).status(); });
  WaitQueued(*store, 3);
  std::thread t4([&] { last = store->PutResource("a", "vms", "4", "x"); });
  WaitQueued(*store, 4);
  ASSERT_OK(held.Release());
  for (std::thread* t : {&t1, &t2, &t3, &t4}) t->join();

  ASSERT_OK(first);
  EXPECT_EQ(failing, absl::FailedPreconditionError("vm 2 is busy"));
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kAlreadyExists) << duplicate;
  ASSERT_OK(last);
  ASSERT_OK(store->GetResource("a", "vms", "1").status());
  EXPECT_EQ(store->GetResource("a", "vms", "2").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK(store->GetResource("a", "vms", "4").status());
  ASSERT_OK_AND_ASSIGN(auto changes, store->ListChangesSince(0, 10));
  EXPECT_TRUE(changes.empty());
  const Store::Stats after = store->GetStats();
  EXPECT_EQ(after.writes - before.writes, 3);   // held, first, last
  EXPECT_EQ(after.commits - before.commits, 2);  // held, then the batch of four
}

TEST(GroupCommitTest, ABatchOfFailuresCommitsNothing) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::OpenInMemory());
  const Store::Stats before = store->GetStats();
  EXPECT_EQ(store->UpdateOperation(MakeRecord("operations/none")).code(),
            absl::StatusCode::kNotFound);
  const Store::Stats after = store->GetStats();
  EXPECT_EQ(after.writes, before.writes);
  EXPECT_EQ(after.commits, before.commits);
}

// ---- Change log -------------------------------------------------------------

TEST_F(MemStoreTest, ChangeLog) {
  ASSERT_OK_AND_ASSIGN(int64_t last, store_->LastChangeSeq());
  EXPECT_EQ(last, 0);
  std::vector<int64_t> seqs;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(
        int64_t seq, store_->AppendChange("a", "vm", absl::StrCat("vms/", i), i,
                                          absl::StrCat("body", i)));
    if (!seqs.empty()) {
      EXPECT_GT(seq, seqs.back());
    }
    seqs.push_back(seq);
  }
  ASSERT_OK_AND_ASSIGN(auto changes, store_->ListChangesSince(0, 3));
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].seq, seqs[0]);
  EXPECT_EQ(changes[2].resource_name, "vms/2");
  EXPECT_EQ(changes[2].change_type, 2);
  EXPECT_EQ(changes[2].bytes, "body2");
  EXPECT_EQ(changes[2].account, "a");
  EXPECT_EQ(changes[2].kind, "vm");
  EXPECT_GT(changes[2].time, changes[0].time);
  ASSERT_OK_AND_ASSIGN(changes, store_->ListChangesSince(changes[2].seq, 100));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].seq, seqs[4]);

  EXPECT_EQ(store_->ListChangesSince(0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListChangesSince(0, 10001).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListChangesSince(-1, 1).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Trim the first three: readers behind the trim point must resync.
  ASSERT_OK(store_->TrimChangesBefore(seqs[3]));
  EXPECT_EQ(store_->ListChangesSince(0, 10).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->ListChangesSince(seqs[1], 10).status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_OK_AND_ASSIGN(changes, store_->ListChangesSince(seqs[2], 10));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].seq, seqs[3]);

  // Trimming everything (and far beyond) keeps the sequence and lets a
  // reader at the head continue.
  ASSERT_OK(store_->TrimChangesBefore(1'000'000));
  ASSERT_OK_AND_ASSIGN(changes, store_->ListChangesSince(seqs[4], 10));
  EXPECT_TRUE(changes.empty());
  ASSERT_OK_AND_ASSIGN(last, store_->LastChangeSeq());
  EXPECT_EQ(last, seqs[4]);
  ASSERT_OK_AND_ASSIGN(int64_t next,
                       store_->AppendChange("a", "vm", "x", 0, ""));
  EXPECT_GT(next, seqs[4]);
  ASSERT_OK_AND_ASSIGN(changes, store_->ListChangesSince(seqs[4], 10));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].seq, next);
  EXPECT_EQ(store_->ListChangesSince(seqs[3], 10).status().code(),
            absl::StatusCode::kOutOfRange);
}

// ---- Retention ----------------------------------------------------------------

// Marks the stored operation `name` done (an update, so update_time moves).
absl::Status MarkDone(Store& store, const std::string& name) {
  absl::StatusOr<OperationRecord> r = store.GetOperation(name);
  if (!r.ok()) return r.status();
  r->op.set_done(true);
  r->phase = "done";
  return store.UpdateOperation(*r);
}

TEST_F(MemStoreTest, PruneFinishedOperationsKeepsUnfinishedAndFreesRequestIds) {
  // old-done-1, old-done-2 and old-pending are written before the cut-off;
  // new-done after it.
  for (std::string name : {"old-done-1", "old-done-2", "old-pending"}) {
    ASSERT_OK(store_->InsertOperation(
                        MakeRecord("operations/" + name, "acct", "req-" + name))
                  .status());
  }
  ASSERT_OK(MarkDone(*store_, "operations/old-done-1"));
  ASSERT_OK(MarkDone(*store_, "operations/old-done-2"));
  const absl::Time cut = clock_.Now();
  ASSERT_OK(store_->InsertOperation(MakeRecord("operations/new-done", "acct",
                                               "req-new-done"))
                .status());
  ASSERT_OK(MarkDone(*store_, "operations/new-done"));

  EXPECT_EQ(store_->PruneFinishedOperations(cut, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PruneFinishedOperations(cut, 10001).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Batches of one, oldest first.
  ASSERT_OK_AND_ASSIGN(int64_t removed, store_->PruneFinishedOperations(cut, 1));
  EXPECT_EQ(removed, 1);
  EXPECT_EQ(store_->GetOperation("operations/old-done-1").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK(store_->GetOperation("operations/old-done-2").status());
  ASSERT_OK_AND_ASSIGN(removed, store_->PruneFinishedOperations(cut, 1));
  EXPECT_EQ(removed, 1);
  ASSERT_OK_AND_ASSIGN(removed, store_->PruneFinishedOperations(cut, 1000));
  EXPECT_EQ(removed, 0);  // only the unfinished one is older than the cut
  ASSERT_OK_AND_ASSIGN(OperationPage page,
                       store_->ListOperations(ListOperationsQuery()));
  EXPECT_THAT(Names(page.records),
              ElementsAre("operations/old-pending", "operations/new-done"));

  // The pruned operation's request_id now starts a new operation, even for
  // a different request (its fingerprint is forgotten too).
  ASSERT_OK_AND_ASSIGN(
      InsertResult again,
      store_->InsertOperation(MakeRecord("operations/retry", "acct",
                                         "req-old-done-1", "fp-other")));
  EXPECT_FALSE(again.existed);
  EXPECT_EQ(again.record.op.name(), "operations/retry");
  // A kept one still answers with itself.
  ASSERT_OK_AND_ASSIGN(again, store_->InsertOperation(MakeRecord(
                                  "operations/x", "acct", "req-new-done")));
  EXPECT_TRUE(again.existed);
  EXPECT_EQ(again.record.op.name(), "operations/new-done");

  // Unfinished operations are never pruned, however old.
  ASSERT_OK_AND_ASSIGN(removed, store_->PruneFinishedOperations(
                                    absl::InfiniteFuture(), 1000));
  EXPECT_EQ(removed, 1);  // new-done; old-pending and retry are unfinished
  ASSERT_OK_AND_ASSIGN(page, store_->ListOperations(ListOperationsQuery()));
  EXPECT_THAT(Names(page.records),
              ElementsAre("operations/old-pending", "operations/retry"));
}

TEST_F(MemStoreTest, TrimChangesOlderThanRemovesAPrefixInBatches) {
  std::vector<int64_t> seqs;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(int64_t seq,
                         store_->AppendChange("a", "vm", "vms/x", 1, "b"));
    seqs.push_back(seq);
  }
  const absl::Time cut = clock_.Now();
  ASSERT_OK_AND_ASSIGN(int64_t newest,
                       store_->AppendChange("a", "vm", "vms/x", 1, "b"));

  EXPECT_EQ(store_->TrimChangesOlderThan(cut, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(int64_t removed, store_->TrimChangesOlderThan(cut, 2));
  EXPECT_EQ(removed, 2);
  EXPECT_EQ(store_->ListChangesSince(0, 10).status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_OK_AND_ASSIGN(auto changes, store_->ListChangesSince(seqs[1], 10));
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].seq, seqs[2]);
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesOlderThan(cut, 2));
  EXPECT_EQ(removed, 2);
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesOlderThan(cut, 2));
  EXPECT_EQ(removed, 1);
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesOlderThan(cut, 2));
  EXPECT_EQ(removed, 0);
  // The change at or after the cut stays, and a reader just before it goes
  // on without a gap.
  EXPECT_EQ(store_->ListChangesSince(seqs[3], 10).status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_OK_AND_ASSIGN(changes, store_->ListChangesSince(seqs[4], 10));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].seq, newest);
  // Trimming everything keeps the sequence going.
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesOlderThan(
                                    absl::InfiniteFuture(), 10));
  EXPECT_EQ(removed, 1);
  ASSERT_OK_AND_ASSIGN(int64_t next,
                       store_->AppendChange("a", "vm", "vms/x", 1, "b"));
  EXPECT_GT(next, newest);
  ASSERT_OK_AND_ASSIGN(changes, store_->ListChangesSince(newest, 10));
  ASSERT_EQ(changes.size(), 1u);
}

TEST_F(MemStoreTest, TrimChangesToCountKeepsTheNewest) {
  std::vector<int64_t> seqs;
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK_AND_ASSIGN(int64_t seq,
                         store_->AppendChange("a", "vm", "vms/x", 1, "b"));
    seqs.push_back(seq);
  }
  EXPECT_EQ(store_->TrimChangesToCount(-1, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->TrimChangesToCount(3, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(int64_t removed, store_->TrimChangesToCount(20, 100));
  EXPECT_EQ(removed, 0);
  // Keep 3, in batches of 4: 4, 3, then nothing.
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesToCount(3, 4));
  EXPECT_EQ(removed, 4);
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesToCount(3, 4));
  EXPECT_EQ(removed, 3);
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesToCount(3, 4));
  EXPECT_EQ(removed, 0);
  EXPECT_EQ(store_->ListChangesSince(seqs[5], 10).status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_OK_AND_ASSIGN(auto changes, store_->ListChangesSince(seqs[6], 10));
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].seq, seqs[7]);
  EXPECT_EQ(changes[2].seq, seqs[9]);
  // keep 0 empties the log; the sequence goes on.
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimChangesToCount(0, 100));
  EXPECT_EQ(removed, 3);
  ASSERT_OK_AND_ASSIGN(changes, store_->ListChangesSince(seqs[9], 10));
  EXPECT_TRUE(changes.empty());
  ASSERT_OK_AND_ASSIGN(int64_t last, store_->LastChangeSeq());
  EXPECT_EQ(last, seqs[9]);
}

TEST_F(MemStoreTest, RetentionInsideTransactionIsRefused) {
  ASSERT_OK(store_->RunInTransaction([&](TxnView&) {
    EXPECT_EQ(store_->PruneFinishedOperations(absl::Now(), 1).status().code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(store_->TrimChangesOlderThan(absl::Now(), 1).status().code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(store_->TrimChangesToCount(0, 1).status().code(),
              absl::StatusCode::kFailedPrecondition);
    return absl::OkStatus();
  }));
}

// ---- Operations restricted to a set of accounts ------------------------------

TEST_F(MemStoreTest, ListOperationsRestrictedToAccountsPages) {
  // a, b, c interleaved; only a and c are visible.
  std::vector<std::string> want;
  for (int i = 0; i < 9; ++i) {
    std::string account = std::string(1, "abc"[i % 3]);
    std::string name = absl::StrCat("operations/", i);
    ASSERT_OK(store_->InsertOperation(MakeRecord(name, account)).status());
    if (account != "b") want.push_back(name);
  }
  ListOperationsQuery q;
  q.accounts = {"c", "a", "a"};  // order and duplicates do not matter
  q.page_size = 2;
  std::vector<std::string> got;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(OperationPage page, store_->ListOperations(q));
    for (const auto& r : page.records) {
      EXPECT_NE(r.account, "b") << r.op.name();
      got.push_back(r.op.name());
    }
    q.page_token = page.next_page_token;
    ++pages;
  } while (!q.page_token.empty() && pages < 10);
  EXPECT_EQ(got, want);
  EXPECT_EQ(pages, 3);

  // The same set in another order accepts the token; another set does not,
  // and neither does the unrestricted query.
  q = ListOperationsQuery();
  q.accounts = {"a", "c"};
  q.page_size = 2;
  ASSERT_OK_AND_ASSIGN(OperationPage first, store_->ListOperations(q));
  ASSERT_FALSE(first.next_page_token.empty());
  q.accounts = {"c", "a"};
  q.page_token = first.next_page_token;
  ASSERT_OK_AND_ASSIGN(OperationPage second, store_->ListOperations(q));
  EXPECT_EQ(Names(second.records),
            (std::vector<std::string>{"operations/3", "operations/5"}));
  for (std::vector<std::string> other :
       {std::vector<std::string>{"a"}, std::vector<std::string>{"a", "b", "c"},
        std::vector<std::string>{}}) {
    q.accounts = other;
    absl::Status s = store_->ListOperations(q).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("different query"));
  }

  // account AND accounts: inside the set narrows, outside gives nothing.
  q = ListOperationsQuery();
  q.accounts = {"a", "c"};
  q.account = "c";
  ASSERT_OK_AND_ASSIGN(OperationPage only_c, store_->ListOperations(q));
  EXPECT_EQ(Names(only_c.records),
            (std::vector<std::string>{"operations/2", "operations/5",
                                      "operations/8"}));
  q.account = "b";
  ASSERT_OK_AND_ASSIGN(OperationPage none, store_->ListOperations(q));
  EXPECT_TRUE(none.records.empty());
  EXPECT_TRUE(none.next_page_token.empty());

  // Account ids that need escaping in the set still match exactly.
  ASSERT_OK(store_->InsertOperation(MakeRecord("operations/q", "x\"y\\z\n"))
                .status());
  q = ListOperationsQuery();
  q.accounts = {"x\"y\\z\n"};
  ASSERT_OK_AND_ASSIGN(OperationPage odd, store_->ListOperations(q));
  EXPECT_EQ(Names(odd.records), std::vector<std::string>{"operations/q"});
}

TEST_F(MemStoreTest, UnrestrictedOperationTokensStillWork) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(store_->InsertOperation(MakeRecord(absl::StrCat("op/", i), "a"))
                  .status());
  }
  ListOperationsQuery q;
  q.page_size = 1;
  ASSERT_OK_AND_ASSIGN(OperationPage first, store_->ListOperations(q));
  ASSERT_OK_AND_ASSIGN(OperationRecord r0, store_->GetOperation("op/0"));
  // A token as the previous version wrote it ("op1", no accounts field).
  q.page_token = absl::WebSafeBase64Escape(absl::StrCat(
      "3:op10:1:0", absl::StrCat(absl::ToUnixMicros(r0.create_time)).size(),
      ":", absl::ToUnixMicros(r0.create_time), "4:op/0"));
  ASSERT_OK_AND_ASSIGN(OperationPage second, store_->ListOperations(q));
  EXPECT_EQ(Names(second.records), std::vector<std::string>{"op/1"});
  // The same old token is foreign to a restricted query.
  q.accounts = {"a"};
  EXPECT_EQ(store_->ListOperations(q).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Audit log --------------------------------------------------------------

AuditRecord Audit(int64_t time_s, std::string principal, std::string account,
                  std::string bytes) {
  AuditRecord r;
  r.time = absl::FromUnixSeconds(time_s);
  r.principal = std::move(principal);
  r.account = std::move(account);
  r.bytes = std::move(bytes);
  return r;
}

std::vector<std::string> Bytes(const std::vector<AuditRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.bytes);
  return out;
}

// Pages through `q` (page size as set) and returns every record's bytes.
std::vector<std::string> ListAllAudit(Store& store, AuditQuery q,
                                      int* pages = nullptr) {
  std::vector<std::string> out;
  int n = 0;
  do {
    absl::StatusOr<AuditPage> page = store.ListAuditEvents(q);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    for (const auto& r : page->records) out.push_back(r.bytes);
    q.page_token = page->next_page_token;
    ++n;
  } while (!q.page_token.empty() && n < 100);
  if (pages != nullptr) *pages = n;
  return out;
}

TEST_F(MemStoreTest, AuditEventsAppendInOneBatchAndListNewestFirst) {
  ASSERT_OK(store_->AppendAuditEvents({}));
  AuditPage empty;
  ASSERT_OK_AND_ASSIGN(empty, store_->ListAuditEvents(AuditQuery()));
  EXPECT_TRUE(empty.records.empty());
  EXPECT_TRUE(empty.next_page_token.empty());

  std::vector<AuditRecord> batch;
  for (int i = 0; i < 7; ++i) {
    batch.push_back(Audit(1000 + i, "alice", "lab", absl::StrCat("e", i)));
  }
  batch[3].bytes = std::string("bin\0ary", 7);
  ASSERT_OK(store_->AppendAuditEvents(batch));

  AuditQuery q;
  ASSERT_OK_AND_ASSIGN(AuditPage all, store_->ListAuditEvents(q));
  ASSERT_EQ(all.records.size(), 7u);
  EXPECT_TRUE(all.next_page_token.empty());
  for (size_t i = 0; i < all.records.size(); ++i) {
    const AuditRecord& r = all.records[i];
    const AuditRecord& in = batch[6 - i];
    EXPECT_EQ(r.bytes, in.bytes);
    EXPECT_EQ(r.time, in.time);  // the caller's time, not the store clock
    EXPECT_EQ(r.principal, "alice");
    EXPECT_EQ(r.account, "lab");
    if (i > 0) {
      EXPECT_EQ(r.seq + 1, all.records[i - 1].seq);
    }
  }
  EXPECT_GT(all.records.back().seq, 0);

  // Paging: 3 + 3 + 1, no duplicates, and events appended between pages
  // (newer than the first page) do not show up in later pages.
  q.page_size = 3;
  ASSERT_OK_AND_ASSIGN(AuditPage p1, store_->ListAuditEvents(q));
  EXPECT_EQ(Bytes(p1.records), (std::vector<std::string>{"e6", "e5", "e4"}));
  ASSERT_OK(store_->AppendAuditEvents({Audit(2000, "bob", "lab", "late")}));
  q.page_token = p1.next_page_token;
  ASSERT_OK_AND_ASSIGN(AuditPage p2, store_->ListAuditEvents(q));
  EXPECT_EQ(Bytes(p2.records),
            (std::vector<std::string>{std::string("bin\0ary", 7), "e2", "e1"}));
  q.page_token = p2.next_page_token;
  ASSERT_OK_AND_ASSIGN(AuditPage p3, store_->ListAuditEvents(q));
  EXPECT_EQ(Bytes(p3.records), std::vector<std::string>{"e0"});
  EXPECT_TRUE(p3.next_page_token.empty());

  // Page size limits.
  q = AuditQuery();
  q.page_size = -1;
  EXPECT_EQ(store_->ListAuditEvents(q).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<AuditRecord> many;
  for (int i = 0; i < 1100; ++i) many.push_back(Audit(3000, "", "", "x"));
  ASSERT_OK(store_->AppendAuditEvents(many));
  q.page_size = 0;
  ASSERT_OK_AND_ASSIGN(AuditPage def, store_->ListAuditEvents(q));
  EXPECT_EQ(def.records.size(), 50u);
  q.page_size = 5000;
  ASSERT_OK_AND_ASSIGN(AuditPage max, store_->ListAuditEvents(q));
  EXPECT_EQ(max.records.size(), 1000u);
}

TEST_F(MemStoreTest, AuditEventFilters) {
  ASSERT_OK(store_->AppendAuditEvents({
      Audit(100, "alice", "lab", "1"),
      Audit(200, "bob", "lab", "2"),
      Audit(300, "alice", "prod", "3"),
      Audit(400, "", "", "4"),  // refused before authentication
      Audit(500, "bob", "prod", "5"),
      Audit(600, "alice", "lab", "6"),
  }));
  AuditQuery q;
  q.page_size = 2;  // every filter is checked across pages too
  q.account = "lab";
  EXPECT_EQ(ListAllAudit(*store_, q),
            (std::vector<std::string>{"6", "2", "1"}));
  q = AuditQuery();
  q.page_size = 2;
  q.principal = "alice";
  EXPECT_EQ(ListAllAudit(*store_, q),
            (std::vector<std::string>{"6", "3", "1"}));
  q.account = "lab";
  EXPECT_EQ(ListAllAudit(*store_, q), (std::vector<std::string>{"6", "1"}));

  // [start, end)
  q = AuditQuery();
  q.page_size = 2;
  q.start = absl::FromUnixSeconds(200);
  q.end = absl::FromUnixSeconds(500);
  EXPECT_EQ(ListAllAudit(*store_, q),
            (std::vector<std::string>{"4", "3", "2"}));
  q.end = absl::InfiniteFuture();
  EXPECT_EQ(ListAllAudit(*store_, q),
            (std::vector<std::string>{"6", "5", "4", "3", "2"}));
  q.start = absl::InfinitePast();
  q.end = absl::FromUnixSeconds(200);
  EXPECT_EQ(ListAllAudit(*store_, q), std::vector<std::string>{"1"});
  q.start = absl::FromUnixSeconds(300);
  EXPECT_EQ(store_->ListAuditEvents(q).status().code(),
            absl::StatusCode::kInvalidArgument);  // start after end

  // The accounts restriction: "" admits the events that name no account.
  q = AuditQuery();
  q.page_size = 2;
  q.accounts = {"prod"};
  int pages = 0;
  EXPECT_EQ(ListAllAudit(*store_, q, &pages),
            (std::vector<std::string>{"5", "3"}));
  EXPECT_EQ(pages, 1);
  q.accounts = {"prod", ""};
  EXPECT_EQ(ListAllAudit(*store_, q, &pages),
            (std::vector<std::string>{"5", "4", "3"}));
  EXPECT_EQ(pages, 2);
  q.accounts = {"prod"};
  q.account = "lab";  // AND-ed: nothing
  EXPECT_TRUE(ListAllAudit(*store_, q).empty());
  q.account = "prod";
  q.principal = "bob";
  EXPECT_EQ(ListAllAudit(*store_, q), std::vector<std::string>{"5"});
  q = AuditQuery();
  q.principal = "nobody";
  EXPECT_TRUE(ListAllAudit(*store_, q).empty());
}

TEST_F(MemStoreTest, AuditPageTokensAreBoundToTheQuery) {
  std::vector<AuditRecord> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(Audit(100 + i, "p", "a", "x"));
  ASSERT_OK(store_->AppendAuditEvents(batch));
  AuditQuery q;
  q.page_size = 1;
  q.accounts = {"a", "b"};
  q.principal = "p";
  q.start = absl::FromUnixSeconds(50);
  ASSERT_OK_AND_ASSIGN(AuditPage first, store_->ListAuditEvents(q));
  ASSERT_FALSE(first.next_page_token.empty());
  q.page_token = first.next_page_token;
  ASSERT_OK(store_->ListAuditEvents(q).status());
  q.accounts = {"b", "a"};  // the same set
  ASSERT_OK(store_->ListAuditEvents(q).status());

  std::vector<std::function<void(AuditQuery&)>> changes = {
      [](AuditQuery& c) { c.accounts = {"a"}; },
      [](AuditQuery& c) { c.accounts.clear(); },
      [](AuditQuery& c) { c.account = "a"; },
      [](AuditQuery& c) { c.principal = "q"; },
      [](AuditQuery& c) { c.start = absl::FromUnixSeconds(51); },
      [](AuditQuery& c) { c.end = absl::FromUnixSeconds(1000); },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    AuditQuery other = q;
    changes[i](other);
    absl::Status s = store_->ListAuditEvents(other).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << i << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("different query")) << i;
  }
  // An operations token is not an audit token, and garbage is refused.
  for (const std::string& bad :
       {std::string("!!!"), absl::WebSafeBase64Escape("3:au11:a"),
        absl::WebSafeBase64Escape("3:au10:1:p0:0:0:1:x")}) {
    AuditQuery other = q;
    other.page_token = bad;
    absl::Status s = store_->ListAuditEvents(other).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(MemStoreTest, TrimAuditEventsRemovesOnlyOlderOnes) {
  ASSERT_OK_AND_ASSIGN(int64_t none,
                       store_->TrimAuditEventsBefore(absl::FromUnixSeconds(1)));
  EXPECT_EQ(none, 0);  // empty table

  std::vector<AuditRecord> batch;
  for (int i = 0; i < 6; ++i) {
    batch.push_back(Audit(100 + i, "p", "lab", absl::StrCat("e", i)));
  }
  // Appended out of time order: the trim goes by time, not by seq.
  batch.push_back(Audit(50, "p", "lab", "old-late"));
  ASSERT_OK(store_->AppendAuditEvents(batch));

  // Strictly before: the event at exactly 103 s stays.
  ASSERT_OK_AND_ASSIGN(int64_t removed,
                       store_->TrimAuditEventsBefore(absl::FromUnixSeconds(103)));
  EXPECT_EQ(removed, 4);  // 50, 100, 101, 102
  EXPECT_EQ(ListAllAudit(*store_, AuditQuery()),
            (std::vector<std::string>{"e5", "e4", "e3"}));
  ASSERT_OK_AND_ASSIGN(removed,
                       store_->TrimAuditEventsBefore(absl::FromUnixSeconds(103)));
  EXPECT_EQ(removed, 0);  // nothing left to remove
  ASSERT_OK_AND_ASSIGN(removed,
                       store_->TrimAuditEventsBefore(absl::InfinitePast()));
  EXPECT_EQ(removed, 0);
  // Microsecond precision: 104 s + 1 us is not before 104 s + 1 us.
  ASSERT_OK(store_->AppendAuditEvents({[] {
    AuditRecord r = Audit(104, "p", "lab", "e4+1us");
    r.time += absl::Microseconds(1);
    return r;
  }()}));
  ASSERT_OK_AND_ASSIGN(removed, store_->TrimAuditEventsBefore(
                                    absl::FromUnixSeconds(104) +
                                    absl::Microseconds(1)));
  EXPECT_EQ(removed, 2);  // e3 and e4
  EXPECT_EQ(ListAllAudit(*store_, AuditQuery()),
            (std::vector<std::string>{"e4+1us", "e5"}));
}

TEST_F(MemStoreTest, TrimmedAuditSeqsAreNeverReused) {
  std::vector<AuditRecord> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(Audit(100 + i, "p", "a", "x"));
  ASSERT_OK(store_->AppendAuditEvents(batch));
  ASSERT_OK_AND_ASSIGN(AuditPage before, store_->ListAuditEvents(AuditQuery()));
  ASSERT_EQ(before.records.size(), 5u);
  const int64_t highest = before.records.front().seq;

  // Remove everything, newest included: a plain rowid table would hand the
  // next event the old highest seq again (max(rowid) + 1 of an empty table).
  ASSERT_OK_AND_ASSIGN(int64_t removed,
                       store_->TrimAuditEventsBefore(absl::InfiniteFuture()));
  EXPECT_EQ(removed, 5);
  ASSERT_OK_AND_ASSIGN(AuditPage empty, store_->ListAuditEvents(AuditQuery()));
  EXPECT_TRUE(empty.records.empty());

  ASSERT_OK(store_->AppendAuditEvents({Audit(200, "p", "a", "next")}));
  ASSERT_OK_AND_ASSIGN(AuditPage after, store_->ListAuditEvents(AuditQuery()));
  ASSERT_EQ(after.records.size(), 1u);
  EXPECT_GT(after.records[0].seq, highest);

  // Also when only the newest events were removed (times decreasing with
  // seq, so the trim takes the tail of the sequence).
  ASSERT_OK(store_->AppendAuditEvents(
      {Audit(300, "p", "a", "keep"), Audit(10, "p", "a", "gone")}));
  ASSERT_OK_AND_ASSIGN(AuditPage two, store_->ListAuditEvents(AuditQuery()));
  ASSERT_EQ(two.records.size(), 3u);
  const int64_t gone_seq = two.records[0].seq;
  ASSERT_OK_AND_ASSIGN(removed,
                       store_->TrimAuditEventsBefore(absl::FromUnixSeconds(100)));
  EXPECT_EQ(removed, 1);
  ASSERT_OK(store_->AppendAuditEvents({Audit(400, "p", "a", "newest")}));
  ASSERT_OK_AND_ASSIGN(AuditPage last, store_->ListAuditEvents(AuditQuery()));
  ASSERT_EQ(Bytes(last.records),
            (std::vector<std::string>{"newest", "keep", "next"}));
  EXPECT_GT(last.records[0].seq, gone_seq);
}

TEST_F(MemStoreTest, AuditPagingAcrossATrim) {
  std::vector<AuditRecord> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back(Audit(100 + i, "p", "lab", absl::StrCat("e", i)));
  }
  ASSERT_OK(store_->AppendAuditEvents(batch));
  AuditQuery q;
  q.page_size = 3;
  q.account = "lab";
  ASSERT_OK_AND_ASSIGN(AuditPage p1, store_->ListAuditEvents(q));
  EXPECT_EQ(Bytes(p1.records), (std::vector<std::string>{"e9", "e8", "e7"}));

  // A token issued before the trim stays valid; the rest of the listing
  // simply lacks the removed events.
  ASSERT_OK_AND_ASSIGN(int64_t removed,
                       store_->TrimAuditEventsBefore(absl::FromUnixSeconds(104)));
  EXPECT_EQ(removed, 4);
  q.page_token = p1.next_page_token;
  ASSERT_OK_AND_ASSIGN(AuditPage p2, store_->ListAuditEvents(q));
  EXPECT_EQ(Bytes(p2.records), (std::vector<std::string>{"e6", "e5", "e4"}));
  EXPECT_TRUE(p2.next_page_token.empty());  // e3..e0 are gone

  // A fresh listing pages over what is left, with every filter.
  q = AuditQuery();
  q.page_size = 2;
  q.principal = "p";
  q.start = absl::FromUnixSeconds(0);
  int pages = 0;
  EXPECT_EQ(ListAllAudit(*store_, q, &pages),
            (std::vector<std::string>{"e9", "e8", "e7", "e6", "e5", "e4"}));
  EXPECT_EQ(pages, 3);
}

TEST_F(MemStoreTest, AuditTrimInsideTransactionIsRefused) {
  absl::Status inner;
  ASSERT_OK(store_->RunInTransaction([&](TxnView&) {
    inner = store_->TrimAuditEventsBefore(absl::FromUnixSeconds(1)).status();
    return absl::OkStatus();
  }));
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MemStoreTest, AuditAppendInsideTransactionIsRefused) {
  absl::Status inner;
  ASSERT_OK(store_->RunInTransaction([&](TxnView&) {
    inner = store_->AppendAuditEvents({Audit(1, "p", "a", "x")});
    return absl::OkStatus();
  }));
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
}

// ---- Files ------------------------------------------------------------------

TEST(FileStoreTest, OpenCreatesDirectoriesAndConfiguresSqlite) {
  const std::string path = MakeTempDir() + "/a/b/c/store.db";
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
    ASSERT_OK(store->PutResource("a", "vms", "1", "x"));
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"),
            absl::StrCat(Store::kSchemaVersion));
  EXPECT_EQ(QueryOne(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryOne(path, "PRAGMA integrity_check"), "ok");
}

TEST(FileStoreTest, TheWalShrinksBackAfterABurst) {
  const std::string path = MakeTempDir() + "/store.db";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
  const std::string big(100 * 1024, 'x');
  ASSERT_OK(store->RunInTransaction([&](TxnView& txn) {
    for (int i = 0; i < 80; ++i) {
      RETURN_IF_ERROR(txn.PutResource("a", "blobs", absl::StrCat(i), big));
    }
    return absl::OkStatus();
  }));
  struct stat st;
  ASSERT_EQ(stat((path + "-wal").c_str(), &st), 0);
  EXPECT_GT(st.st_size, 6 << 20);  // the burst: about 8 MB of pages in one commit
  // Later small commits checkpoint and restart the log; the limit then cuts
  // the file back instead of keeping its largest size.
  for (int i = 0; i < 3000; ++i) ASSERT_OK(store->PutResource("a", "small", "k", "v"));
  ASSERT_EQ(stat((path + "-wal").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 5 << 20);
}

TEST(FileStoreTest, ReopenKeepsData) {
  const std::string path = MakeTempDir() + "/store.db";
  InsertResult inserted;
  int64_t seq = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
    ASSERT_OK_AND_ASSIGN(inserted, store->InsertOperation(MakeRecord(
                                       "operations/1", "a", "req-1")));
    ASSERT_OK(store->PutResource("a", "vms", "1", "payload"));
    ASSERT_OK_AND_ASSIGN(seq, store->AppendChange("a", "vm", "vms/1", 1, "p"));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
  ASSERT_OK_AND_ASSIGN(OperationRecord op, store->GetOperation("operations/1"));
  EXPECT_EQ(Describe(op), Describe(inserted.record));
  ASSERT_OK_AND_ASSIGN(InsertResult again, store->InsertOperation(MakeRecord(
                                               "operations/9", "a", "req-1")));
  EXPECT_TRUE(again.existed);
  ASSERT_OK_AND_ASSIGN(std::string bytes, store->GetResource("a", "vms", "1"));
  EXPECT_EQ(bytes, "payload");
  ASSERT_OK_AND_ASSIGN(auto changes, store->ListChangesSince(0, 10));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].seq, seq);
  // Times keep increasing across the restart (real clock here).
  ASSERT_OK_AND_ASSIGN(int64_t next,
                       store->AppendChange("a", "vm", "x", 1, ""));
  EXPECT_GT(next, seq);
}

TEST(FileStoreTest, OpenErrors) {
  const std::string dir = MakeTempDir();
  EXPECT_EQ(Store::Open("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Store::Open(":memory:").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status s = Store::Open(dir).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("is a directory"));

  const std::string text = dir + "/not_a_db";
  std::ofstream(text) << "this is not a database, just some text that is "
                         "long enough to look like a header..........\n";
  s = Store::Open(text).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not a SQLite database"));

  // A parent "directory" that is a file.
  s = Store::Open(text + "/store.db").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = Store::Open(text + "/sub/store.db").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

TEST(FileStoreTest, NewerSchemaIsRefused) {
  const std::string path = MakeTempDir() + "/store.db";
  { ASSERT_OK(Store::Open(path).status()); }
  QueryOne(path, absl::StrCat("PRAGMA user_version = ",
                              Store::kSchemaVersion + 1));
  absl::Status s = Store::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("newer"));
}

TEST(FileStoreTest, MigratesVersion1FileKeepingData) {
  const std::string path = MakeTempDir() + "/store.db";
  InsertResult inserted;
  int64_t seq = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
    ASSERT_OK_AND_ASSIGN(inserted, store->InsertOperation(MakeRecord(
                                       "operations/1", "a", "req-1")));
    ASSERT_OK(store->PutResource("a", "vms", "1", "payload"));
    ASSERT_OK_AND_ASSIGN(seq, store->AppendChange("a", "vm", "vms/1", 1, "p"));
  }
  // Turn the file back into what version 1 wrote: no audit table, no
  // index of finished operations.
  QueryOne(path, "DROP TABLE audit_events");
  QueryOne(path, "DROP INDEX operations_finished");
  QueryOne(path, "PRAGMA user_version = 1");
  ASSERT_EQ(QueryOne(path, "PRAGMA user_version"), "1");
  ASSERT_EQ(QueryOne(path, "SELECT count(*) FROM sqlite_master WHERE name = "
                           "'audit_events'"),
            "0");

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"),
            absl::StrCat(Store::kSchemaVersion));
  EXPECT_EQ(QueryOne(path, "SELECT count(*) FROM sqlite_master WHERE name = "
                           "'operations_finished'"),
            "1");
  ASSERT_OK_AND_ASSIGN(OperationRecord op, store->GetOperation("operations/1"));
  EXPECT_EQ(Describe(op), Describe(inserted.record));
  ASSERT_OK_AND_ASSIGN(std::string bytes, store->GetResource("a", "vms", "1"));
  EXPECT_EQ(bytes, "payload");
  ASSERT_OK_AND_ASSIGN(auto changes, store->ListChangesSince(0, 10));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].seq, seq);

  AuditRecord event;
  event.time = absl::FromUnixSeconds(42);
  event.principal = "alice";
  event.account = "a";
  event.bytes = "event";
  ASSERT_OK(store->AppendAuditEvents({event}));
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, Store::Open(path));
  ASSERT_OK_AND_ASSIGN(AuditPage page, store->ListAuditEvents(AuditQuery()));
  ASSERT_EQ(page.records.size(), 1u);
  EXPECT_EQ(page.records[0].bytes, "event");
  EXPECT_EQ(page.records[0].time, absl::FromUnixSeconds(42));
  EXPECT_EQ(QueryOne(path, "PRAGMA integrity_check"), "ok");
}

TEST(FileStoreTest, ConcurrentWritersFromEightThreads) {
  const std::string path = MakeTempDir() + "/store.db";
  // Two Store objects on one file: the threads contend on the mutex of each
  // and on SQLite's file lock between them.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> s1, Store::Open(path));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> s2, Store::Open(path));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  ASSERT_OK(s1->PutResource("a", "counters", "c", "0"));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& store = t % 2 == 0 ? *s1 : *s2;
      for (int i = 0; i < kPerThread; ++i) {
        std::string req = absl::StrCat("req-", t, "-", i);
        auto ins = store.InsertOperation(
            MakeRecord(absl::StrCat("operations/", t, "-", i), "a", req));
        // The same request_id again, racing with other threads.
        auto dup = store.InsertOperation(
            MakeRecord(absl::StrCat("operations/dup-", t, "-", i), "a", req));
        absl::Status txn = store.RunInTransaction([&](TxnView& v) {
          absl::StatusOr<std::string> c = v.GetResource("a", "counters", "c");
          if (!c.ok()) return c.status();
          int n = std::stoi(*c);
          RETURN_IF_ERROR(
              v.PutResource("a", "counters", "c", std::to_string(n + 1)));
          return v.AppendChange("a", "counter", "c", 0, "").status();
        });
        if (!ins.ok() || ins->existed || !dup.ok() || !dup->existed ||
            !txn.ok()) {
          ADD_FAILURE() << ins.status() << " " << dup.status() << " " << txn;
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  ASSERT_OK_AND_ASSIGN(std::string counter,
                       s2->GetResource("a", "counters", "c"));
  EXPECT_EQ(counter, std::to_string(kThreads * kPerThread));
  ListOperationsQuery q;
  q.page_size = 1000;
  EXPECT_EQ(ListAll(*s1, q).size(), static_cast<size_t>(kThreads * kPerThread));
  ASSERT_OK_AND_ASSIGN(auto changes, s1->ListChangesSince(0, 10000));
  ASSERT_EQ(changes.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i].seq, static_cast<int64_t>(i + 1));
  }
}

// ---- Crash durability -------------------------------------------------------
//
// A child process writes through its own Store (no connection crosses the
// fork) and reports each acknowledged commit over a pipe; the parent then
// kills it or lets it _exit() without cleanup, reopens the file and checks
// that every acknowledged write is there and nothing half-done is.

struct Child {
  pid_t pid;
  int read_fd;
};

Child StartChild(std::function<int(int write_fd)> body) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    _exit(body(fds[1]));  // Never returns into gtest.
  }
  close(fds[1]);
  return {pid, fds[0]};
}

void Report(int fd, int64_t value) {
  if (write(fd, &value, sizeof(value)) != sizeof(value)) _exit(3);
}

// Next reported value, or -1 on EOF (the child died).
int64_t NextReport(int fd) {
  int64_t value = 0;
  size_t got = 0;
  while (got < sizeof(value)) {
    ssize_t n = read(fd, reinterpret_cast<char*>(&value) + got,
                     sizeof(value) - got);
    if (n <= 0) return -1;
    got += n;
  }
  return value;
}

int KillAndWait(const Child& child) {
  kill(child.pid, SIGKILL);
  int status = 0;
  waitpid(child.pid, &status, 0);
  close(child.read_fd);
  return status;
}

TEST(CrashTest, ExitWithoutCloseKeepsCommittedWrites) {
  const std::string path = MakeTempDir() + "/store.db";
  { ASSERT_OK(Store::Open(path).status()); }
  Child child = StartChild([&](int fd) {
    auto store = Store::Open(path);
    if (!store.ok()) return 2;
    for (int i = 0; i < 20; ++i) {
      if (!(*store)->InsertOperation(MakeRecord(absl::StrCat("op/", i)))
               .ok() ||
          !(*store)->PutResource("a", "vms", absl::StrCat(i), "x").ok()) {
        return 2;
      }
    }
    Report(fd, 20);
    _exit(0);  // No destructors: the connection is never closed.
  });
  EXPECT_EQ(NextReport(child.read_fd), 20);
  int status = 0;
  waitpid(child.pid, &status, 0);
  close(child.read_fd);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK(store->GetOperation(absl::StrCat("op/", i)).status());
    ASSERT_OK(store->GetResource("a", "vms", absl::StrCat(i)).status());
  }
}

TEST(CrashTest, SigkillDuringWritesLosesNothingAcknowledged) {
  for (int64_t kill_after : {0, 1, 7, 40, 150}) {
    SCOPED_TRACE(kill_after);
    const std::string path = MakeTempDir() + "/store.db";
    Child child = StartChild([&](int fd) {
      auto store = Store::Open(path);
      if (!store.ok()) return 2;
      for (int64_t i = 0;; ++i) {
        // Each iteration is one transaction touching three tables.
        absl::Status s = (*store)->RunInTransaction([&](TxnView& txn) {
          RETURN_IF_ERROR(
              txn.PutResource("a", "vms", absl::StrFormat("%06d", i), "x"));
          return txn.AppendChange("a", "vm", absl::StrCat(i), 1, "").status();
        });
        if (!s.ok()) return 2;
        if (!(*store)->InsertOperation(MakeRecord(absl::StrCat("op/", i)))
                 .ok()) {
          return 2;
        }
        Report(fd, i);
      }
    });
    int64_t acked = -1;
    while (acked < kill_after) {
      int64_t v = NextReport(child.read_fd);
      ASSERT_NE(v, -1) << "child died";
      acked = v;
    }
    int status = KillAndWait(child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

    EXPECT_EQ(QueryOne(path, "PRAGMA integrity_check"), "ok");
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
    // Everything acknowledged is there...
    for (int64_t i = 0; i <= acked; ++i) {
      absl::Status s = store->GetOperation(absl::StrCat("op/", i)).status();
      ASSERT_TRUE(s.ok()) << i << ": " << s;
    }
    // ...and the committed prefix is gap-free: resources and changes agree.
    std::vector<std::string> ids;
    std::string token;
    do {
      ASSERT_OK_AND_ASSIGN(ResourcePage page,
                           store->ListResources("a", "vms", 1000, token));
      for (const auto& e : page.resources) ids.push_back(e.id);
      token = page.next_page_token;
    } while (!token.empty());
    ASSERT_GE(ids.size(), static_cast<size_t>(acked + 1));
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(ids[i], absl::StrFormat("%06d", i));
    }
    ASSERT_OK_AND_ASSIGN(auto changes, store->ListChangesSince(0, 10000));
    EXPECT_EQ(changes.size(), ids.size());
    ASSERT_OK_AND_ASSIGN(auto unfinished, store->ListUnfinishedOperations());
    EXPECT_GE(unfinished.size(), static_cast<size_t>(acked + 1));
    EXPECT_LE(unfinished.size(), ids.size());
  }
}

TEST(CrashTest, SigkillInsideTransactionRollsItBack) {
  const std::string path = MakeTempDir() + "/store.db";
  Child child = StartChild([&](int fd) {
    auto store = Store::Open(path);
    if (!store.ok()) return 2;
    if (!(*store)->PutResource("a", "vms", "before", "x").ok()) return 2;
    (void)(*store)->RunInTransaction([&](TxnView& txn) -> absl::Status {
      // Large enough that SQLite spills pages to the WAL before commit.
      std::string big(64 * 1024, 'z');
      for (int i = 0; i < 100; ++i) {
        RETURN_IF_ERROR(
            txn.PutResource("a", "vms", absl::StrCat("in-", i), big));
      }
      Report(fd, 1);
      pause();  // Killed here, mid-transaction.
      return absl::OkStatus();
    });
    return 0;
  });
  ASSERT_EQ(NextReport(child.read_fd), 1);
  int status = KillAndWait(child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::Open(path));
  ASSERT_OK(store->GetResource("a", "vms", "before").status());
  ASSERT_OK_AND_ASSIGN(ResourcePage page,
                       store->ListResources("a", "vms", 1000, ""));
  ASSERT_EQ(page.resources.size(), 1u);
  EXPECT_EQ(page.resources[0].id, "before");
  EXPECT_EQ(QueryOne(path, "PRAGMA integrity_check"), "ok");
}

// The store refuses to run on a transport thread (base/thread_role.h): a
// test build aborts, naming the thread, so any code path that reaches SQLite
// from the HTTP or websocket thread fails its test.
TEST(StoreThreadTest, TouchingSqliteFromATransportThreadAborts) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, Store::OpenInMemory());
  ASSERT_OK(store->PutResource("a", "c", "id", "x"));
  for (const char* name : {"http", "websocket"}) {
    EXPECT_DEATH(
        {
          std::thread t([&] {
            MarkTransportThread(name);
            (void)store->GetResource("a", "c", "id");
          });
          t.join();
        },
        absl::StrCat("store::Store called on the ", name, " transport thread"));
  }
  // Other threads are fine.
  std::thread worker([&] { EXPECT_TRUE(store->GetResource("a", "c", "id").ok()); });
  worker.join();
}

}  // namespace
}  // namespace cloudplane::store
