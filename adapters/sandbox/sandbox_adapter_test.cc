// The sandbox provider as a whole: registration and factory, the catalog,
// paging, poll tokens, validate_only, durability and idempotency.
#include "adapters/sandbox/sandbox_adapter.h"

#include <stdlib.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/testing/field_contract_check.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_test_fixture.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::sandbox {
namespace {

using ::testing::AnyOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;

// ---- Factory and registration -------------------------------------------------

TEST_F(SandboxTest, RegistersWithInfo) {
  AdapterRegistry registry;
  ASSERT_TRUE(RegisterSandbox(registry).ok());
  EXPECT_EQ(RegisterSandbox(registry).code(), absl::StatusCode::kAlreadyExists);
  const ProviderInfo* info = registry.Find("sandbox");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->display_name, "Built-in sandbox");
  EXPECT_EQ(info->protocol, "in-process");
  EXPECT_EQ(info->watch_source, WatchSource::kLocal);
  EXPECT_EQ(info->supported_methods, AllAdapterMethods());

  AccountSetup setup;
  setup.account = kAccount;
  setup.store = store_.get();
  auto provider = registry.Create("sandbox", setup);
  ASSERT_TRUE(provider.ok()) << provider.status();
  EXPECT_EQ((*provider)->Info().kind, "sandbox");
}

TEST_F(SandboxTest, FactoryRejectsBadSetup) {
  AccountSetup setup;
  setup.account = kAccount;
  setup.store = store_.get();

  setup.endpoint = "https://example.com";
  EXPECT_EQ(BadField(NewSandboxProvider(setup).status()), "endpoint");
  setup.endpoint.clear();

  setup.options["colour"] = "blue";
  auto unknown = NewSandboxProvider(setup);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(unknown.status()), "options.colour");
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("colour"));
  setup.options.clear();

  for (const char* bad : {"abc", "-1", "1.5", "99999999999"}) {
    setup.options["transition_ms"] = bad;
    auto status = NewSandboxProvider(setup).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(BadField(status), "options.transition_ms") << bad;
  }
  setup.options["transition_ms"] = "0";
  EXPECT_TRUE(NewSandboxProvider(setup).ok());

  setup.store = nullptr;
  EXPECT_EQ(NewSandboxProvider(setup).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SandboxTest, CallForAnotherAccountIsInternal) {
  v1::GetInstanceRequest request;
  request.set_name("accounts/other/instances/x");
  CallContext ctx = Ctx();
  ctx.account = "other";
  EXPECT_EQ(Call(&Provider::GetInstance, request, ctx).status().code(),
            absl::StatusCode::kInternal);
}

// ---- Catalog ------------------------------------------------------------------

TEST_F(SandboxTest, CatalogIsSeeded) {
  v1::ListLocationsRequest locations;
  locations.set_parent(kParent);
  auto location_list = Call(&Provider::ListLocations, locations);
  ASSERT_TRUE(location_list.ok()) << location_list.status();
  std::vector<std::string> names;
  for (const auto& l : location_list->locations()) names.push_back(l.name());
  EXPECT_THAT(names, ElementsAre(Res("locations", "sandbox-1"), Res("locations", "sandbox-1a"),
                                 Res("locations", "sandbox-1b")));
  EXPECT_EQ(location_list->locations(1).parent_location(), Res("locations", "sandbox-1"));
  EXPECT_EQ(location_list->locations(1).kind(), v1::Location::ZONE);

  v1::GetImageRequest image;
  image.set_name(Res("images", "debian-12"));
  auto debian = Call(&Provider::GetImage, image);
  ASSERT_TRUE(debian.ok());
  EXPECT_EQ(debian->state(), v1::Image::READY);
  image.set_name(Res("images", "windows-95"));
  EXPECT_EQ(Call(&Provider::GetImage, image).status().code(), absl::StatusCode::kNotFound);
  image.set_name("accounts/other/images/debian-12");
  auto wrong = Call(&Provider::GetImage, image);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(wrong.status()), "name");

  v1::ListMachineTypesRequest types;
  types.set_parent(kParent);
  auto type_list = Call(&Provider::ListMachineTypes, types);
  ASSERT_TRUE(type_list.ok());
  ASSERT_THAT(type_list->machine_types(), SizeIs(3));
  EXPECT_EQ(type_list->machine_types(2).name(), Res("machineTypes", "small"));
  EXPECT_EQ(type_list->machine_types(2).cpu_count(), 1);

  v1::ListHostsRequest hosts;
  hosts.set_parent(kParent);
  auto host_list = Call(&Provider::ListHosts, hosts);
  ASSERT_TRUE(host_list.ok());
  EXPECT_THAT(host_list->hosts(), SizeIs(3));

  v1::GetBillingCodeRequest code;
  code.set_name(Res("billingCodes", "default"));
  EXPECT_TRUE(Call(&Provider::GetBillingCode, code).ok());

  v1::ListMachinesRequest machines;
  machines.set_parent(kParent);
  auto machine_list = Call(&Provider::ListMachines, machines);
  ASSERT_TRUE(machine_list.ok());
  ASSERT_THAT(machine_list->machines(), SizeIs(3));
  for (const auto& m : machine_list->machines()) {
    EXPECT_THAT(m.name(), MatchesRegex("accounts/lab/machines/[0-9a-f]{32}"));
    EXPECT_FALSE(m.primary_ip().empty());
  }

  v1::ListImagesRequest bad_parent;
  bad_parent.set_parent("accounts/other");
  auto bad = Call(&Provider::ListImages, bad_parent);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(bad.status()), "parent");
}

// ---- Lists --------------------------------------------------------------------

TEST_F(SandboxTest, PaginationReturnsEveryItemOnce) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(CreateFirewall(absl::StrCat("fw-", i < 10 ? "0" : "", i)).ok());
  }
  std::vector<std::string> seen;
  v1::ListFirewallsRequest list;
  list.set_parent(kParent);
  list.set_page_size(7);
  int pages = 0;
  do {
    auto page = Call(&Provider::ListFirewalls, list);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const auto& f : page->firewalls()) seen.push_back(f.name());
    if (pages == 2) {
      // Changes between pages move nothing twice or out of sight: one item
      // before the cursor appears nowhere, one after appears once.
      ASSERT_TRUE(CreateFirewall("fw-00a").ok());
      ASSERT_TRUE(CreateFirewall("fw-99").ok());
    }
    list.set_page_token(page->next_page_token());
  } while (!list.page_token().empty());
  EXPECT_EQ(pages, 4);
  ASSERT_THAT(seen, SizeIs(26));
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());
  EXPECT_EQ(seen.back(), Res("firewalls", "fw-99"));

  list.set_page_token("garbage");
  EXPECT_EQ(BadField(Call(&Provider::ListFirewalls, list).status()), "page_token");
  list.clear_page_token();
  list.set_page_size(-1);
  EXPECT_EQ(BadField(Call(&Provider::ListFirewalls, list).status()), "page_size");
}

// ---- Durability and idempotency -------------------------------------------------

std::string TempDbPath() {
  std::string dir = ::testing::TempDir() + "/sandbox_XXXXXX";
  char* made = mkdtemp(dir.data());
  EXPECT_NE(made, nullptr);
  return dir + "/state.db";
}

TEST_F(SandboxTest, StateSurvivesReopeningTheStore) {
  const std::string path = TempDbPath();
  {
    auto store = store::Store::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    std::unique_ptr<Provider> provider = MakeProvider(store->get(), 20);
    v1::CreateVolumeRequest volume;
    volume.set_parent(kParent);
    volume.set_volume_id("kept");
    volume.mutable_volume()->set_size_bytes(4096);
    ASSERT_TRUE(Finish<v1::Volume>(Call(&Provider::CreateVolume, volume, Ctx(), provider.get()),
                                   provider.get())
                    .ok());
    // This transition is still pending when the "server" stops.
    AccountSetup setup;
    setup.account = kAccount;
    setup.options["transition_ms"] = "300";
    setup.store = store->get();
    auto slow = NewSandboxProvider(setup);
    ASSERT_TRUE(slow.ok());
    v1::CreateInstanceRequest create;
    create.set_parent(kParent);
    create.set_instance_id("survivor");
    create.mutable_instance()->set_image(Res("images", "debian-12"));
    ASSERT_TRUE(Call(&Provider::CreateInstance, create, Ctx(), slow->get()).ok());
  }
  auto store = store::Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  RecordingSink sink;
  std::unique_ptr<Provider> provider = MakeProvider(store->get(), 20, &sink);
  v1::GetVolumeRequest get_volume;
  get_volume.set_name(Res("volumes", "kept"));
  auto volume = Call(&Provider::GetVolume, get_volume, Ctx(), provider.get());
  ASSERT_TRUE(volume.ok()) << volume.status();
  EXPECT_EQ(volume->state(), v1::Volume::AVAILABLE);
  EXPECT_EQ(volume->size_bytes(), 4096);
  // The new provider picked up the pending transition and its timer
  // announces it.
  ASSERT_TRUE(sink.WaitFor(v1::WatchResponse::UPDATED, Res("instances", "survivor"), "RUNNING"));
  provider.reset();
}

TEST_F(SandboxTest, RedrivenMutationsDoTheWorkOnce) {
  // An operation that generated its id: the re-drive reports the same one.
  v1::CreateInstanceRequest create;
  create.set_parent(kParent);
  create.mutable_instance()->set_image(Res("images", "debian-12"));
  auto first = Call(&Provider::CreateInstance, create, Ctx("operations/op-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = Call(&Provider::CreateInstance, create, Ctx("operations/op-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->poll_token, first->poll_token);
  v1::ListInstancesRequest list;
  list.set_parent(kParent);
  EXPECT_THAT(Call(&Provider::ListInstances, list)->instances(), SizeIs(1));

  // A chosen id: the re-drive is not ALREADY_EXISTS.
  auto named = CreateInstance("web-1", std::nullopt, "operations/op-2");
  ASSERT_TRUE(named.ok());
  auto named_again = CreateInstance("web-1", std::nullopt, "operations/op-2");
  ASSERT_TRUE(named_again.ok()) << named_again.status();
  ASSERT_TRUE(Finish<v1::Instance>(named_again).ok());
  EXPECT_EQ(CreateInstance("web-1", std::nullopt, "operations/op-3").status().code(),
            absl::StatusCode::kAlreadyExists);

  // A delete re-driven after the instance is gone still succeeds.
  v1::DeleteInstanceRequest del;
  del.set_name(Res("instances", "web-1"));
  ASSERT_TRUE(
      Finish<google::protobuf::Empty>(Call(&Provider::DeleteInstance, del, Ctx("operations/op-4")))
          .ok());
  auto redriven = Call(&Provider::DeleteInstance, del, Ctx("operations/op-4"));
  ASSERT_TRUE(redriven.ok()) << redriven.status();
  EXPECT_TRUE(redriven->done);

  // A firewall rule added once, however often the call is repeated.
  ASSERT_TRUE(CreateFirewall("web").ok());
  v1::CreateFirewallRuleRequest rule;
  rule.set_parent(Res("firewalls", "web"));
  rule.mutable_rule()->set_protocol("tcp");
  rule.mutable_rule()->set_port_range_start(80);
  rule.mutable_rule()->add_source_ranges("0.0.0.0/0");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Call(&Provider::CreateFirewallRule, rule, Ctx("operations/op-5")).ok());
  }
  v1::GetFirewallRequest get_fw;
  get_fw.set_name(Res("firewalls", "web"));
  EXPECT_THAT(Call(&Provider::GetFirewall, get_fw)->rules(), SizeIs(1));
}

// ---- Journal retention ----------------------------------------------------------

TEST(SandboxJournalTest, PruneIntervalIsATenthWithinOneSecondAndTenMinutes) {
  EXPECT_EQ(JournalPruneInterval(absl::Hours(24 * 7)), absl::Minutes(10));
  EXPECT_EQ(JournalPruneInterval(absl::Minutes(30)), absl::Minutes(3));
  EXPECT_EQ(JournalPruneInterval(absl::Seconds(60)), absl::Seconds(6));
  EXPECT_EQ(JournalPruneInterval(absl::Seconds(5)), absl::Seconds(1));
}

class SandboxJournalRetentionTest : public SandboxTest {
 protected:
  std::unique_ptr<Provider> WithRetention(absl::Duration retention) {
    AccountSetup setup;
    setup.account = kAccount;
    setup.options["transition_ms"] = "50";
    setup.store = store_.get();
    setup.loop = &loop_;
    setup.changes = &sink_;
    setup.operation_retention = retention;
    auto provider = NewSandboxProvider(setup);
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  void PutEntry(const std::string& id, absl::Duration age) {
    ::cloudplane::sandbox::JournalEntry entry;
    *entry.mutable_token() = CurrentToken(kInstances, "x");
    entry.set_time_unix_micros(absl::ToUnixMicros(absl::Now() - age));
    ASSERT_TRUE(store_->PutResource(kAccount, kJournal, id, entry.SerializeAsString()).ok());
  }

  void PutOperation(const std::string& name, bool done) {
    store::OperationRecord record;
    record.op.set_name(name);
    record.op.set_done(done);
    record.account = kAccount;
    record.method = "/cloudplane.v1.Compute/CreateInstance";
    record.phase = "submitted";
    ASSERT_TRUE(store_->InsertOperation(record).ok());
  }

  std::vector<std::string> JournalIds() {
    std::vector<std::string> ids;
    std::string token;
    do {
      auto page = store_->ListResources(kAccount, kJournal, 1000, token);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const auto& entry : page->resources) ids.push_back(entry.id);
      token = page->next_page_token;
    } while (!token.empty());
    return ids;
  }

  // Waits (up to 5 s) until the journal holds `n` entries.
  bool WaitForJournalSize(size_t n) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (JournalIds().size() != n) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }
};

TEST_F(SandboxJournalRetentionTest, OldEntriesGoUnlessTheirOperationIsUnfinished) {
  const absl::Duration old = absl::Hours(2);
  PutEntry("operations/old-gone", old);        // operation already pruned
  PutEntry("operations/old-done", old);        // operation finished
  PutOperation("operations/old-done", true);
  PutEntry("operations/old-running", old);     // may still be re-driven
  PutEntry("operations/old-running:cancel", old);
  PutOperation("operations/old-running", false);
  PutEntry("operations/recent", absl::Minutes(1));
  ASSERT_TRUE(store_->PutResource(kAccount, kJournal, "operations/garbage", "\xff\xff").ok());
  // Enough for several batches: each is its own transaction and loop task.
  for (int i = 0; i < 2 * kJournalPruneBatch + 100; ++i) {
    PutEntry(absl::StrCat("operations/filler-", 10000 + i), old);
  }

  // Retention 1 h: the round the provider starts on the loop at once.
  std::unique_ptr<Provider> provider = WithRetention(absl::Hours(1));
  ASSERT_TRUE(WaitForJournalSize(3)) << JournalIds().size();
  EXPECT_THAT(JournalIds(), ElementsAre("operations/old-running", "operations/old-running:cancel",
                                        "operations/recent"));

  // Once the operation is done, the next round (due after 6 min) would take
  // its entries; a new provider starts a round at once.
  provider.reset();
  store::OperationRecord record = *store_->GetOperation("operations/old-running");
  record.op.set_done(true);
  ASSERT_TRUE(store_->UpdateOperation(record).ok());
  provider = WithRetention(absl::Hours(1));
  ASSERT_TRUE(WaitForJournalSize(1)) << JournalIds().size();
  EXPECT_THAT(JournalIds(), ElementsAre("operations/recent"));
}

TEST_F(SandboxJournalRetentionTest, RoundsRepeatAndAPrunedOperationNameIsNewWork) {
  // Retention 1 s: rounds every second. The fixture's calls go to it.
  provider_ = WithRetention(absl::Seconds(1));
  auto first = CreateInstance("web-1", std::nullopt, "operations/op-1");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(Finish<v1::Instance>(*first).ok());
  // While journaled, a re-drive reports the same work.
  ASSERT_TRUE(CreateInstance("web-1", std::nullopt, "operations/op-1").ok());
  EXPECT_THAT(JournalIds(), ElementsAre("operations/op-1"));

  // A later round (no operation in this store: as if the server had pruned
  // it) removes the entry; the same name is then a new request.
  ASSERT_TRUE(WaitForJournalSize(0));
  EXPECT_EQ(CreateInstance("web-1", std::nullopt, "operations/op-1").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(SandboxTest, PollReportsVanishedAndConflictingWork) {
  std::unique_ptr<Provider> slow = MakeProvider(store_.get(), 60000);
  v1::CreateInstanceRequest create;
  create.set_parent(kParent);
  create.set_instance_id("doomed");
  create.mutable_instance()->set_image(Res("images", "debian-12"));
  auto created = Call(&Provider::CreateInstance, create, Ctx(), slow.get());
  ASSERT_TRUE(created.ok());
  auto pending = Poll(created->poll_token, slow.get());
  ASSERT_TRUE(pending.ok());
  EXPECT_FALSE(pending->done);
  EXPECT_THAT(pending->detail, HasSubstr("PROVISIONING"));

  // Deleted meanwhile: the create can never finish.
  v1::DeleteInstanceRequest del;
  del.set_name(Res("instances", "doomed"));
  ASSERT_TRUE(Call(&Provider::DeleteInstance, del, Ctx(), slow.get()).ok());
  EXPECT_EQ(Poll(created->poll_token, slow.get()).status().code(), absl::StatusCode::kAborted);

  EXPECT_EQ(Poll(kit::PackToken(StateToken(kInstances, "never-was", "RUNNING"))).status().code(),
            absl::StatusCode::kNotFound);
  const absl::Status nonsense = Poll("nonsense").status();
  EXPECT_EQ(nonsense.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(GetErrorInfo(nonsense)->reason(), "OPERATION_STATE_UNREADABLE");
}

// ---- Poll tokens and validate_only ------------------------------------------------

TEST_F(SandboxTest, PollTokensAreTypedAndVersioned) {
  auto created = CreateInstance("web-1");
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<PollToken> token = kit::UnpackToken<PollToken>(created->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->version(), 1u);
  EXPECT_EQ(token->collection(), "instances");
  EXPECT_EQ(token->id(), "web-1");
  EXPECT_EQ(token->want_case(), PollToken::kState);
  EXPECT_EQ(token->state(), "RUNNING");

  // What the sandbox did not make is unreadable, never misread.
  PollToken newer = *token;
  newer.set_version(2);
  PollToken no_want = *token;
  no_want.clear_want();
  PollToken unknown_state = *token;
  unknown_state.set_state("FLYING");
  PollToken no_collection = *token;
  no_collection.set_collection("");
  for (const std::string& bad :
       {std::string(), std::string("instances:web-1:RUNNING"), kit::PackToken(v1::Instance()),
        kit::PackToken(newer), kit::PackToken(no_want), kit::PackToken(unknown_state),
        kit::PackToken(no_collection)}) {
    const absl::Status status = Poll(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_EQ(GetErrorInfo(status)->reason(), "OPERATION_STATE_UNREADABLE") << status;
  }
  // A token of each kind the services make reads back.
  for (const PollToken& made :
       {GoneToken(kVolumes, "v"), CurrentToken(kFirewalls, "f"), SettledToken(kVolumes, "v"),
        SizeToken("g", 3), RuleToken("f", 7, /*gone=*/true)}) {
    absl::StatusOr<PollToken> read = ReadPollToken(kit::PackToken(made));
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->SerializeAsString(), made.SerializeAsString());
  }
}

TEST_F(SandboxTest, ValidateOnlyChecksLikeTheRealCallAndChangesNothing) {
  CallContext validate = Ctx("operations/validate");
  validate.validate_only = true;
  const size_t events = sink_.events().size();

  // Refusals are those of the real call, local or against the stored state.
  v1::CreateInstanceRequest bad;
  bad.set_parent(kParent);
  bad.set_instance_id("Not_An_Id");
  bad.mutable_instance()->set_image(Res("images", "debian-12"));
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, bad, validate).status()), "instance_id");
  bad.set_instance_id("web-1");
  bad.mutable_instance()->set_image(Res("images", "nope"));
  EXPECT_EQ(Call(&Provider::CreateInstance, bad, validate).status().code(),
            absl::StatusCode::kNotFound);
  v1::DeleteVolumeRequest missing;
  missing.set_name(Res("volumes", "nope"));
  EXPECT_EQ(Call(&Provider::DeleteVolume, missing, validate).status().code(),
            absl::StatusCode::kNotFound);

  // A request that passes is finished at once with an empty result of the
  // method's type, and leaves no trace: no resource, no event, no journal.
  v1::CreateInstanceRequest create;
  create.set_parent(kParent);
  create.set_instance_id("web-1");
  create.mutable_instance()->set_image(Res("images", "debian-12"));
  auto checked = Call(&Provider::CreateInstance, create, validate);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_TRUE(checked->done);
  EXPECT_TRUE(checked->result.Is<v1::Instance>());
  EXPECT_EQ(GetInstance("web-1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Finish<v1::Instance>(CreateInstance("web-1")).ok());
  v1::DeleteInstanceRequest del;
  del.set_name(Res("instances", "web-1"));
  auto deleted = Call(&Provider::DeleteInstance, del, validate);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->done);
  EXPECT_TRUE(deleted->result.Is<google::protobuf::Empty>());
  auto still = GetInstance("web-1");
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->state(), v1::Instance::RUNNING);
  // Only the real create published anything.
  for (const RecordingSink::Event& e : sink_.events()) {
    EXPECT_EQ(e.name, Res("instances", "web-1"));
    EXPECT_NE(e.type, v1::WatchResponse::DELETED);
  }
  EXPECT_GT(sink_.events().size(), events);
  // The operation name was not journaled: the real call does the work.
  // (Checked by its effect, not by `done`: with 50 ms transitions a loaded
  // machine may see the deletion finish before the answer is computed.)
  auto real = Call(&Provider::DeleteInstance, del, Ctx("operations/validate"));
  ASSERT_TRUE(real.ok()) << real.status();
  auto after = GetInstance("web-1");
  if (after.ok()) {
    EXPECT_EQ(after->state(), v1::Instance::TERMINATING);
  } else {
    EXPECT_EQ(after.status().code(), absl::StatusCode::kNotFound);
  }
}

// ---- The strict field contract ---------------------------------------------

class FieldContract : public SandboxTest {
 protected:
  std::vector<std::string> Honoured(absl::string_view service, absl::string_view method) {
    return provider_->HonouredFields(FullMethodName(service, method));
  }
};

TEST_F(FieldContract, EveryMutationDeclaresRealFields) {
  testutil::ExpectFieldContractDeclared(*provider_);
}

// What the sandbox has nowhere to put or reads nothing of is left out, so
// the server refuses it instead of the sandbox dropping it.
TEST_F(FieldContract, FieldsTheSandboxDropsAreNotListed) {
  EXPECT_THAT(Honoured("ComputeService", "CreateInstance"),
              Not(Contains("instance.provider_options")));
  EXPECT_THAT(Honoured("AutoscalingService", "CreateLaunchTemplate"),
              Not(Contains("launch_template.user_data")));
  EXPECT_THAT(Honoured("ComputeService", "RebootInstance"), IsEmpty());
  EXPECT_THAT(Honoured("ComputeService", "UpdateInstance"),
              Not(AnyOf(Contains("instance.image"), Contains("instance.location"))));
}

// Every field CreateInstance honours is in the stored instance afterwards.
TEST_F(FieldContract, CreateInstanceKeepsEveryHonouredField) {
  ASSERT_TRUE(CreateFirewall("web").ok());
  v1::CreateInstanceRequest request;
  request.set_parent(kParent);
  request.set_instance_id("web-1");
  request.set_start(false);
  v1::Instance& in = *request.mutable_instance();
  in.set_display_name("Web one");
  in.set_image(Res("images", "ubuntu-24-04"));
  in.set_machine_type(Res("machineTypes", "medium"));
  in.set_cpu_mhz(2400);
  in.set_location(Res("locations", "sandbox-1b"));
  in.add_firewalls(Res("firewalls", "web"));
  (*in.mutable_labels())["team"] = "db";
  in.set_billing_code(Res("billingCodes", "research"));
  auto made = Finish<v1::Instance>(Call(&Provider::CreateInstance, request));
  ASSERT_TRUE(made.ok()) << made.status();
  auto got = GetInstance("web-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state(), v1::Instance::STOPPED);  // start=false
  EXPECT_EQ(got->display_name(), "Web one");
  EXPECT_EQ(got->image(), Res("images", "ubuntu-24-04"));
  EXPECT_EQ(got->machine_type(), Res("machineTypes", "medium"));
  EXPECT_EQ(got->cpu_count(), 2);
  EXPECT_EQ(got->cpu_mhz(), 2400);
  EXPECT_EQ(got->location(), Res("locations", "sandbox-1b"));
  EXPECT_THAT(got->firewalls(), ElementsAre(Res("firewalls", "web")));
  EXPECT_EQ(got->labels().at("team"), "db");
  EXPECT_EQ(got->billing_code(), Res("billingCodes", "research"));

  // A custom size: cpu_count and memory_bytes without a machine type.
  request.set_instance_id("web-2");
  in.clear_machine_type();
  in.set_cpu_count(3);
  in.set_memory_bytes(int64_t{6} << 30);
  ASSERT_TRUE(Finish<v1::Instance>(Call(&Provider::CreateInstance, request)).ok());
  got = GetInstance("web-2");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->cpu_count(), 3);
  EXPECT_EQ(got->memory_bytes(), int64_t{6} << 30);
  EXPECT_TRUE(got->machine_type().empty());
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
