// The sandbox's lists: pages read through the store's id index
// (sandbox_provider.h, "Lists"), so a page costs O(page) records whatever
// the size of the account, and every item is listed once, in name order.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/paging/paging.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "adapters/sandbox/sandbox_test_fixture.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::sandbox {
namespace {

using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::string Id(int i) { return absl::StrFormat("vm-%04d", i); }

class SandboxListsTest : public SandboxTest {
 protected:
  // Transitions of 0 ms: a created instance is RUNNING and a deleted one
  // gone for every read after the call.
  void SetUp() override {
    SandboxTest::SetUp();
    provider_ = MakeProvider(store_.get(), 0);
  }

  absl::StatusOr<v1::ListInstancesResponse> ListInstances(int page_size, const std::string& token,
                                                          Provider* provider = nullptr) {
    v1::ListInstancesRequest request;
    request.set_parent(kParent);
    request.set_page_size(page_size);
    request.set_page_token(token);
    return Call(&Provider::ListInstances, request, Ctx(), provider);
  }

  absl::Status DeleteInstance(const std::string& id, Provider* provider = nullptr) {
    v1::DeleteInstanceRequest request;
    request.set_name(Res("instances", id));
    return Call(&Provider::DeleteInstance, request, Ctx(), provider).status();
  }

  // Creates instances Id(0) .. Id(n - 1) through `provider`.
  void CreateInstances(int n, Provider* provider = nullptr) {
    for (int i = 0; i < n; ++i) {
      v1::CreateInstanceRequest request;
      request.set_parent(kParent);
      request.set_instance_id(Id(i));
      request.mutable_instance()->set_image(Res("images", "debian-12"));
      auto progress = Call(&Provider::CreateInstance, request, Ctx(), provider);
      ASSERT_TRUE(progress.ok()) << progress.status();
    }
  }

  int64_t RecordsRead(Provider* provider = nullptr) {
    auto* sandbox =
        dynamic_cast<SandboxProvider*>(provider != nullptr ? provider : provider_.get());
    EXPECT_NE(sandbox, nullptr);
    return sandbox != nullptr ? sandbox->records_read() : 0;
  }
};

TEST_F(SandboxListsTest, EveryInstanceOnceInNameOrderWithChangesBetweenPages) {
  CreateInstances(250);
  std::set<std::string> expected;
  for (int i = 0; i < 250; ++i) expected.insert(Res("instances", Id(i)));

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = ListInstances(40, token);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const v1::Instance& instance : page->instances()) seen.push_back(instance.name());
    if (pages == 2) {
      // The cursor is after Id(79). Before it: a new instance appears
      // nowhere, a deleted one was listed already. After it: a new one
      // appears once, a deleted one never.
      ASSERT_EQ(seen.back(), Res("instances", Id(79)));
      ASSERT_TRUE(CreateInstance("vm-0010a").ok());
      ASSERT_TRUE(DeleteInstance(Id(20)).ok());
      ASSERT_TRUE(CreateInstance("vm-0200a").ok());
      ASSERT_TRUE(DeleteInstance(Id(150)).ok());
      expected.insert(Res("instances", "vm-0200a"));
      expected.erase(Res("instances", Id(150)));
    }
    token = page->next_page_token();
  } while (!token.empty());

  EXPECT_EQ(pages, 7);  // 250 instances in pages of 40.
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());
  EXPECT_THAT(seen, ElementsAreArray(expected));
}

TEST_F(SandboxListsTest, InstancesGoneByTheirTransitionAreSkippedAndThePageStillFills) {
  // No loop: transitions are applied by reads only, so removed instances
  // stay in the store and the page read must settle them away itself.
  AccountSetup setup;
  setup.account = kAccount;
  setup.options["transition_ms"] = "20";
  setup.store = store_.get();
  auto provider = NewSandboxProvider(setup);
  ASSERT_TRUE(provider.ok()) << provider.status();
  Provider* p = provider->get();

  CreateInstances(30, p);
  for (int i = 9; i <= 20; ++i) ASSERT_TRUE(DeleteInstance(Id(i), p).ok());
  for (int i = 25; i <= 29; ++i) ASSERT_TRUE(DeleteInstance(Id(i), p).ok());
  absl::SleepFor(absl::Milliseconds(40));  // The deletions are due.

  auto first = ListInstances(10, "", p);
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<std::string> names;
  for (const v1::Instance& instance : first->instances()) {
    names.push_back(instance.name());
    EXPECT_EQ(instance.state(), v1::Instance::RUNNING) << instance.name();
  }
  std::vector<std::string> want;
  for (int i = 0; i <= 8; ++i) want.push_back(Res("instances", Id(i)));
  want.push_back(Res("instances", Id(21)));
  EXPECT_THAT(names, ElementsAreArray(want));
  ASSERT_FALSE(first->next_page_token().empty());

  // The rest: 22..24; the removed 25..29 after them make no next page.
  auto second = ListInstances(10, first->next_page_token(), p);
  ASSERT_TRUE(second.ok()) << second.status();
  names.clear();
  for (const v1::Instance& instance : second->instances()) names.push_back(instance.name());
  EXPECT_THAT(names, ElementsAreArray({Res("instances", Id(22)), Res("instances", Id(23)),
                                       Res("instances", Id(24))}));
  EXPECT_THAT(second->next_page_token(), IsEmpty());
}

TEST_F(SandboxListsTest, APageReadsOnlyItsOwnRecords) {
  constexpr int kAccountSize = 1500;
  CreateInstances(kAccountSize);

  int64_t before = RecordsRead();
  auto first = ListInstances(100, "");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_THAT(first->instances(), SizeIs(100));
  // The page and the one record that shows a next page exists.
  EXPECT_EQ(RecordsRead() - before, 101);

  // A page deep in the list costs the same.
  auto deep = paging::MakeToken(Res("instances", Id(1199)));
  before = RecordsRead();
  auto page = ListInstances(100, deep);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(page->instances(), SizeIs(100));
  EXPECT_EQ(page->instances(0).name(), Res("instances", Id(1200)));
  EXPECT_EQ(RecordsRead() - before, 101);

  // The last page reads what is left, and the whole walk each record once
  // (plus one look-ahead per page).
  before = RecordsRead();
  std::string token;
  int pages = 0;
  do {
    auto p = ListInstances(100, token);
    ASSERT_TRUE(p.ok()) << p.status();
    ++pages;
    token = p->next_page_token();
  } while (!token.empty());
  EXPECT_EQ(pages, 15);
  EXPECT_EQ(RecordsRead() - before, kAccountSize + 14);
}

TEST_F(SandboxListsTest, ARecordBeyondThePageIsNeverDecoded) {
  CreateInstances(300);
  // A record that does not decode, after the look-ahead of the first page:
  // reading the whole account (as lists did) would fail on it.
  ASSERT_TRUE(store_->PutResource(kAccount, "instances", "vm-9999", "\x0f\x0f").ok());
  auto first = ListInstances(100, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(first->instances(), SizeIs(100));
  auto last = ListInstances(100, paging::MakeToken(Res("instances", Id(199))));
  EXPECT_EQ(last.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(SandboxListsTest, BadPageTokenAndPageSize) {
  CreateInstances(3);
  auto bad = ListInstances(2, "garbage");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(bad.status()), "page_token");
  // Refused before any read, also on an empty list.
  v1::ListVolumesRequest volumes;
  volumes.set_parent(kParent);
  volumes.set_page_token("garbage");
  EXPECT_EQ(BadField(Call(&Provider::ListVolumes, volumes).status()), "page_token");

  auto negative = ListInstances(-1, "");
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(negative.status()), "page_size");

  // A token keyed outside the collection (another list's) compares with
  // the names as a key would: one below them starts at the first, one
  // above them gives an empty last page.
  auto below = ListInstances(2, paging::MakeToken(Res("firewalls", "fw")));
  ASSERT_TRUE(below.ok()) << below.status();
  EXPECT_EQ(below->instances(0).name(), Res("instances", Id(0)));
  auto above = ListInstances(2, paging::MakeToken(Res("volumes", "v")));
  ASSERT_TRUE(above.ok()) << above.status();
  EXPECT_THAT(above->instances(), IsEmpty());
  EXPECT_THAT(above->next_page_token(), IsEmpty());
}

TEST_F(SandboxListsTest, OtherCollectionsPageTheSameWay) {
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(CreateVolume(absl::StrFormat("vol-%02d", i)).ok());
    ASSERT_TRUE(CreateFirewall(absl::StrFormat("fw-%02d", i)).ok());
  }
  std::vector<std::string> volumes, firewalls;
  std::string token;
  do {
    v1::ListVolumesRequest request;
    request.set_parent(kParent);
    request.set_page_size(5);
    request.set_page_token(token);
    auto page = Call(&Provider::ListVolumes, request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Volume& v : page->volumes()) volumes.push_back(v.name());
    token = page->next_page_token();
  } while (!token.empty());
  do {
    v1::ListFirewallsRequest request;
    request.set_parent(kParent);
    request.set_page_size(5);
    request.set_page_token(token);
    auto page = Call(&Provider::ListFirewalls, request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Firewall& f : page->firewalls()) firewalls.push_back(f.name());
    token = page->next_page_token();
  } while (!token.empty());
  ASSERT_THAT(volumes, SizeIs(12));
  ASSERT_THAT(firewalls, SizeIs(12));
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(volumes[i], Res("volumes", absl::StrFormat("vol-%02d", i)));
    EXPECT_EQ(firewalls[i], Res("firewalls", absl::StrFormat("fw-%02d", i)));
  }
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
