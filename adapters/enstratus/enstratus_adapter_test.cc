// The enStratus adapter against the real enStratus emulator
// (tests/emulators/enstratus/enstratus_emulator.py, a child process per
// test suite): signed requests, jobs as operations, failures and auth.
#include "adapters/enstratus/enstratus_adapter.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/common/http/fake_http_transport.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/scratch/in_memory_scratch.h"
#include "adapters/common/testing/await.h"
#include "adapters/common/testing/emulator_process.h"
#include "adapters/common/testing/field_contract_check.h"
#include "adapters/enstratus/enstratus_aliases.pb.h"
#include "adapters/enstratus/enstratus_tokens.pb.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "cloudplane/v1/common.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::enstratus {
namespace {

using ::testing::HasSubstr;

constexpr char kKeys[] = "abcdefg:gfedcba";

// The emulator as a child process (adapters/common/testing), with the API
// URL of its READY line.
class Emulator {
 public:
  static absl::StatusOr<std::unique_ptr<Emulator>> Start() {
    absl::StatusOr<std::unique_ptr<testutil::EmulatorProcess>> process =
        testutil::EmulatorProcess::Start("tests/emulators/enstratus/enstratus_emulator.py",
                                         {"--listen", "127.0.0.1:0", "--job-seconds", "0.1",
                                          "--boot-seconds", "0.1", "--keys", kKeys});
    if (!process.ok()) return process.status();
    auto emu = std::unique_ptr<Emulator>(new Emulator());
    emu->process_ = *std::move(process);
    emu->url_ = emu->process_->Field("url");
    if (emu->url_.empty()) return absl::InternalError("no url= in the READY line");
    return emu;
  }

  const std::string& url() const { return url_; }

 private:
  Emulator() = default;
  std::unique_ptr<testutil::EmulatorProcess> process_;
  std::string url_;
};

using testutil::Await;

class EnstratusAdapterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto emu = Emulator::Start();
    ASSERT_TRUE(emu.ok()) << emu.status();
    emulator_ = emu->release();
  }
  static void TearDownTestSuite() {
    delete emulator_;
    emulator_ = nullptr;
  }

  void SetUp() override {
    auto scratch = NewInMemoryScratch(&loop_, "dcm");
    ASSERT_TRUE(scratch.ok()) << scratch.status();
    scratch_ = *std::move(scratch);
    provider_ = Make(kKeys);
  }

  std::unique_ptr<Provider> Make(const std::string& secret) {
    AccountSetup setup;
    setup.account = "dcm";
    setup.endpoint = emulator_->url();
    setup.secret = secret;
    setup.options["budget"] = "10287";
    setup.scratch = scratch_.get();
    setup.loop = &loop_;
    auto p = CreateEnstratusProvider(setup);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  CallContext Ctx(const std::string& operation = "") {
    CallContext ctx;
    ctx.account = "dcm";
    ctx.deadline = absl::Now() + absl::Seconds(10);
    ctx.operation = operation;
    return ctx;
  }

  // Polls like the server's runner until done or an error (the runner names
  // the operation in every poll; most tests leave it out).
  absl::StatusOr<MutationProgress> Drive(absl::StatusOr<MutationProgress> p,
                                         const std::string& operation = "") {
    for (int i = 0; i < 200 && p.ok() && !p->done; ++i) {
      absl::SleepFor(absl::Milliseconds(50));
      const std::string token = p->poll_token;
      p = Await<MutationProgress>(
          [&](auto cb) { provider_->PollOperation(Ctx(operation), token, std::move(cb)); });
    }
    return p;
  }

  v1::CreateInstanceRequest Launch(const std::string& id, const std::string& display) {
    v1::CreateInstanceRequest req;
    req.set_parent("accounts/dcm");
    req.set_instance_id(id);
    auto* in = req.mutable_instance();
    in->set_display_name(display);
    in->set_image("accounts/dcm/images/284542");
    in->set_machine_type("accounts/dcm/machineTypes/652");
    in->set_location("accounts/dcm/locations/dc-64351");
    return req;
  }

  static Emulator* emulator_;
  // Destroyed bottom-up: the provider, then the loop (which runs the alias
  // writes still posted to it), then the scratch store they write to.
  std::unique_ptr<ScratchStore> scratch_;
  EventLoop loop_;
  std::unique_ptr<Provider> provider_;
};

Emulator* EnstratusAdapterTest::emulator_ = nullptr;

TEST_F(EnstratusAdapterTest, SignedReadsWork) {
  v1::ListLocationsRequest req;
  req.set_parent("accounts/dcm");
  auto r = Await<v1::ListLocationsResponse>(
      [&](auto cb) { provider_->ListLocations(Ctx(), req, std::move(cb)); });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->locations_size(), 5);  // 2 regions + 3 data centers
  v1::GetImageRequest get;
  get.set_name("accounts/dcm/images/999");
  auto missing = Await<v1::Image>([&](auto cb) { provider_->GetImage(Ctx(), get, std::move(cb)); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EnstratusAdapterTest, LaunchIsAJobThenTheServerBoots) {
  auto first = Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx("operations/a1"), Launch("web-1", "web one"), std::move(cb));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->done);
  EXPECT_FALSE(first->provider_operation.empty());
  auto token = kit::UnpackToken<JobToken>(first->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->phase(), JobToken::JOB);
  EXPECT_EQ(token->kind(), JobToken::LAUNCH);
  EXPECT_EQ(token->alias(), "web-1");
  auto done = Drive(first);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_TRUE(done->done);
  v1::Instance inst;
  ASSERT_TRUE(done->result.UnpackTo(&inst));
  EXPECT_EQ(inst.name(), "accounts/dcm/instances/web-1");
  EXPECT_EQ(inst.state(), v1::Instance::RUNNING);
  // The alias is taken by that operation now.
  auto again = Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx("operations/other"), Launch("web-1", "x"), std::move(cb));
  });
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(EnstratusAdapterTest, FailingJobFailsWithTheProvidersMessage) {
  auto first = Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx("operations/f1"), Launch("bad-1", "fail-me"), std::move(cb));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  auto done = Drive(first);
  EXPECT_EQ(done.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(done.status().message()), HasSubstr("emulated failure"));
  ASSERT_TRUE(GetErrorInfo(done.status()).has_value());
  EXPECT_EQ(GetErrorInfo(done.status())->reason(), "PROVIDER_JOB_FAILED");
}

TEST_F(EnstratusAdapterTest, BadInputIsRefusedBeforeAnyRequest) {
  v1::CreateInstanceRequest req = Launch("1bad", "x");
  req.mutable_instance()->set_location("accounts/dcm/locations/region-19344");
  auto r = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(Ctx("operations/b1"), req, std::move(cb)); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = GetBadRequest(r.status());
  ASSERT_TRUE(bad.has_value());
  std::vector<std::string> fields;
  for (const auto& v : bad->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("instance_id", "instance.location"));
}

TEST_F(EnstratusAdapterTest, WrongSecretIsUnauthenticated) {
  provider_ = Make("abcdefg:wrong-secret-value");
  v1::ListInstancesRequest req;
  req.set_parent("accounts/dcm");
  auto r = Await<v1::ListInstancesResponse>(
      [&](auto cb) { provider_->ListInstances(Ctx(), req, std::move(cb)); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(r.status().message()), ::testing::Not(HasSubstr("wrong-secret")));
}

TEST_F(EnstratusAdapterTest, JobsAreListedAndReadAsProviderOperations) {
  auto first = Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx("operations/j1"), Launch("", "jobs one"), std::move(cb));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string job = first->provider_operation;
  ASSERT_FALSE(job.empty());
  const std::string name = "accounts/dcm/providerOperations/" + job;

  auto running = Await<google::longrunning::Operation>(
      [&](auto cb) { provider_->GetProviderOperation(Ctx(), job, std::move(cb)); });
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->name(), name);

  // Page by one through every job: each once, in job id order, ours among them.
  std::vector<std::string> names;
  std::string token;
  for (int i = 0; i < 100; ++i) {
    auto page = Await<google::longrunning::ListOperationsResponse>([&](auto cb) {
      provider_->ListProviderOperations(Ctx(), 1, token, std::move(cb));
    });
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_LE(page->operations_size(), 1);
    for (const auto& op : page->operations()) names.push_back(op.name());
    token = page->next_page_token();
    if (token.empty()) break;
  }
  EXPECT_TRUE(token.empty());
  EXPECT_THAT(names, ::testing::Contains(name));
  std::vector<int64_t> ids;
  for (const std::string& n : names) {
    int64_t id = 0;
    ASSERT_TRUE(absl::SimpleAtoi(n.substr(n.rfind('/') + 1), &id)) << n;
    ids.push_back(id);
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());

  auto done = Drive(first);
  ASSERT_TRUE(done.ok()) << done.status();
  v1::Instance inst;
  ASSERT_TRUE(done->result.UnpackTo(&inst));
  auto finished = Await<google::longrunning::Operation>(
      [&](auto cb) { provider_->GetProviderOperation(Ctx(), job, std::move(cb)); });
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_TRUE(finished->done());
  EXPECT_FALSE(finished->has_error());
  v1::OperationMetadata md;
  ASSERT_TRUE(finished->metadata().UnpackTo(&md));
  EXPECT_EQ(md.provider_operation(), job);
  EXPECT_EQ(md.account(), "accounts/dcm");
  // The new server's id is the job's message.
  EXPECT_THAT(md.status_detail(),
              HasSubstr("message: " + inst.name().substr(inst.name().rfind('/') + 1)));
  EXPECT_TRUE(md.has_end_time());

  for (const char* unknown : {"999999", "not-a-job"}) {
    auto missing = Await<google::longrunning::Operation>(
        [&](auto cb) { provider_->GetProviderOperation(Ctx(), unknown, std::move(cb)); });
    EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << unknown;
  }
  auto bad_token = Await<google::longrunning::ListOperationsResponse>([&](auto cb) {
    provider_->ListProviderOperations(Ctx(), 0, "garbage", std::move(cb));
  });
  EXPECT_EQ(bad_token.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EnstratusAdapterTest, VolumeCreateAttachDetachDelete) {
  auto launched = Drive(Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx("operations/v0"), Launch("host-1", "volume host"),
                              std::move(cb));
  }));
  ASSERT_TRUE(launched.ok()) << launched.status();

  v1::CreateVolumeRequest create;
  create.set_parent("accounts/dcm");
  create.set_volume_id("data-1");
  create.mutable_volume()->set_display_name("data one");
  create.mutable_volume()->set_size_bytes(int64_t{2} << 30);
  create.mutable_volume()->set_location("accounts/dcm/locations/dc-64351");
  auto first = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateVolume(Ctx("operations/v1"), create, std::move(cb)); });
  ASSERT_TRUE(first.ok()) << first.status();
  auto token = kit::UnpackToken<JobToken>(first->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->phase(), JobToken::JOB);
  EXPECT_EQ(token->kind(), JobToken::VOLUME_CREATE);
  EXPECT_EQ(token->alias(), "data-1");
  EXPECT_FALSE(first->provider_operation.empty());
  auto created = Drive(first);
  ASSERT_TRUE(created.ok()) << created.status();
  v1::Volume volume;
  ASSERT_TRUE(created->result.UnpackTo(&volume));
  EXPECT_EQ(volume.name(), "accounts/dcm/volumes/data-1");
  EXPECT_EQ(volume.state(), v1::Volume::AVAILABLE);
  EXPECT_EQ(volume.size_bytes(), int64_t{2} << 30);

  v1::AttachVolumeRequest attach;
  attach.set_name(volume.name());
  attach.set_instance("accounts/dcm/instances/host-1");
  attach.set_device("/dev/sdg");
  auto attached = Drive(Await<MutationProgress>(
      [&](auto cb) { provider_->AttachVolume(Ctx("operations/v2"), attach, std::move(cb)); }));
  ASSERT_TRUE(attached.ok()) << attached.status();
  ASSERT_TRUE(attached->result.UnpackTo(&volume));
  EXPECT_EQ(volume.state(), v1::Volume::ATTACHED);
  EXPECT_THAT(volume.attached_to(), ::testing::ElementsAre("accounts/dcm/instances/host-1"));
  // Attaching again to the same server is done at once (a re-drive).
  auto again = Await<MutationProgress>(
      [&](auto cb) { provider_->AttachVolume(Ctx("operations/v2"), attach, std::move(cb)); });
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->done);

  v1::DeleteVolumeRequest del;
  del.set_name(volume.name());
  auto refused = Await<MutationProgress>(
      [&](auto cb) { provider_->DeleteVolume(Ctx("operations/v3"), del, std::move(cb)); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);

  v1::DetachVolumeRequest detach;
  detach.set_name(volume.name());
  detach.set_instance("accounts/dcm/instances/host-1");
  auto detached = Drive(Await<MutationProgress>(
      [&](auto cb) { provider_->DetachVolume(Ctx("operations/v4"), detach, std::move(cb)); }));
  ASSERT_TRUE(detached.ok()) << detached.status();
  ASSERT_TRUE(detached->result.UnpackTo(&volume));
  EXPECT_EQ(volume.state(), v1::Volume::AVAILABLE);
  EXPECT_TRUE(volume.attached_to().empty());
  auto not_attached = Await<MutationProgress>(
      [&](auto cb) { provider_->DetachVolume(Ctx("operations/v5"), detach, std::move(cb)); });
  EXPECT_EQ(not_attached.status().code(), absl::StatusCode::kFailedPrecondition);

  auto deleted = Drive(Await<MutationProgress>(
      [&](auto cb) { provider_->DeleteVolume(Ctx("operations/v6"), del, std::move(cb)); }));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->done);
  v1::GetVolumeRequest get;
  get.set_name(volume.name());
  auto gone = Await<v1::Volume>([&](auto cb) { provider_->GetVolume(Ctx(), get, std::move(cb)); });
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  del.set_allow_missing(true);
  auto missing_ok = Await<MutationProgress>(
      [&](auto cb) { provider_->DeleteVolume(Ctx("operations/v7"), del, std::move(cb)); });
  ASSERT_TRUE(missing_ok.ok()) << missing_ok.status();
  EXPECT_TRUE(missing_ok->done);
}

TEST_F(EnstratusAdapterTest, VolumeInputIsRefusedBeforeAnyRequest) {
  v1::CreateVolumeRequest create;
  create.set_parent("accounts/dcm");
  create.set_volume_id("9bad");
  create.mutable_volume()->set_size_bytes((int64_t{3} << 30) / 2);
  create.mutable_volume()->set_location("accounts/dcm/locations/region-19344");
  (*create.mutable_volume()->mutable_provider_options()->mutable_fields())["iops"]
      .set_number_value(100);
  auto r = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateVolume(Ctx("operations/vb"), create, std::move(cb)); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = GetBadRequest(r.status());
  ASSERT_TRUE(bad.has_value());
  std::vector<std::string> fields;
  for (const auto& v : bad->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("volume_id", "volume.size_bytes",
                                                      "volume.location",
                                                      "volume.provider_options.iops"));
  v1::AttachVolumeRequest attach;
  attach.set_name("accounts/dcm/volumes/211309");
  attach.set_instance("accounts/dcm/instances/1");
  attach.set_channel("0:1");
  auto a = Await<MutationProgress>(
      [&](auto cb) { provider_->AttachVolume(Ctx("operations/va"), attach, std::move(cb)); });
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  // A volume id DCM does not know.
  attach.clear_channel();
  attach.set_name("accounts/dcm/volumes/999999");
  auto missing = Await<MutationProgress>(
      [&](auto cb) { provider_->AttachVolume(Ctx("operations/vm"), attach, std::move(cb)); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EnstratusAdapterTest, SetupIsValidated) {
  AccountSetup setup;
  setup.account = "dcm";
  setup.endpoint = emulator_->url();
  setup.secret = "no-colon-secret";
  setup.options["colour"] = "blue";
  setup.scratch = scratch_.get();
  setup.loop = &loop_;
  auto p = CreateEnstratusProvider(setup);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), ::testing::Not(HasSubstr("no-colon-secret")));
  auto bad = GetBadRequest(p.status());
  ASSERT_TRUE(bad.has_value());
  std::vector<std::string> fields;
  for (const auto& v : bad->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("options.colour", "credentials"));
}

TEST_F(EnstratusAdapterTest, TheFactoryNeedsTheScratchStoreAndTheLoop) {
  AccountSetup setup;
  setup.account = "dcm";
  setup.endpoint = emulator_->url();
  setup.secret = kKeys;
  setup.loop = &loop_;
  EXPECT_EQ(CreateEnstratusProvider(setup).status().code(),
            absl::StatusCode::kFailedPrecondition);
  setup.scratch = scratch_.get();
  setup.loop = nullptr;
  EXPECT_EQ(CreateEnstratusProvider(setup).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Capabilities follow the account: without the option `budget` nothing can
// pay for a firewall, so CreateFirewall is not offered; with it, it is.
TEST_F(EnstratusAdapterTest, NetworkCreateListGetDelete) {
  v1::CreateNetworkRequest create;
  create.set_parent("accounts/dcm");
  v1::Network* in = create.mutable_network();
  in->set_display_name("backend");
  in->add_cidr_ranges("10.40.0.0/16");
  in->add_dns_servers("10.40.0.2");
  in->set_location("accounts/dcm/locations/region-19344");
  (*in->mutable_labels())["label"] = "green";
  auto first = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateNetwork(Ctx("operations/n1"), create, std::move(cb)); });
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->done);
  EXPECT_FALSE(first->provider_operation.empty());
  auto token = kit::UnpackToken<JobToken>(first->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->kind(), JobToken::NETWORK_CREATE);
  auto created = Drive(first, "operations/n1");
  ASSERT_TRUE(created.ok()) << created.status();
  v1::Network network;
  ASSERT_TRUE(created->result.UnpackTo(&network));
  EXPECT_THAT(network.name(), ::testing::StartsWith("accounts/dcm/networks/"));
  EXPECT_EQ(network.display_name(), "backend");
  EXPECT_EQ(network.state(), v1::Network::READY);
  EXPECT_EQ(network.provider_state(), "ACTIVE");
  EXPECT_THAT(network.cidr_ranges(), ::testing::ElementsAre("10.40.0.0/16"));
  EXPECT_THAT(network.dns_servers(), ::testing::ElementsAre("10.40.0.2"));
  EXPECT_EQ(network.location(), "accounts/dcm/locations/region-19344");
  EXPECT_EQ(network.labels().at("label"), "green");
  // The raw record, without the tag a create adds to the description.
  EXPECT_EQ(network.provider_details().fields().at("description").string_value(), "backend");
  EXPECT_EQ(network.provider_details().fields().at("networkType").string_value(), "STANDARD");

  v1::ListNetworksRequest list;
  list.set_parent("accounts/dcm");
  auto listed = Await<v1::ListNetworksResponse>(
      [&](auto cb) { provider_->ListNetworks(Ctx(), list, std::move(cb)); });
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->networks_size(), 1);
  EXPECT_EQ(listed->networks(0).name(), network.name());
  v1::GetNetworkRequest get;
  get.set_name(network.name());
  auto got =
      Await<v1::Network>([&](auto cb) { provider_->GetNetwork(Ctx(), get, std::move(cb)); });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->cidr_ranges(0), "10.40.0.0/16");

  v1::DeleteNetworkRequest del;
  del.set_name(network.name());
  auto deleted = Drive(Await<MutationProgress>(
      [&](auto cb) { provider_->DeleteNetwork(Ctx("operations/n2"), del, std::move(cb)); }));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->done);
  auto gone =
      Await<v1::Network>([&](auto cb) { provider_->GetNetwork(Ctx(), get, std::move(cb)); });
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  auto again = Await<MutationProgress>(
      [&](auto cb) { provider_->DeleteNetwork(Ctx("operations/n3"), del, std::move(cb)); });
  EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);
  del.set_allow_missing(true);
  auto missing_ok = Await<MutationProgress>(
      [&](auto cb) { provider_->DeleteNetwork(Ctx("operations/n4"), del, std::move(cb)); });
  ASSERT_TRUE(missing_ok.ok()) << missing_ok.status();
  EXPECT_TRUE(missing_ok->done);
  listed = Await<v1::ListNetworksResponse>(
      [&](auto cb) { provider_->ListNetworks(Ctx(), list, std::move(cb)); });
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->networks_size(), 0);
}

TEST_F(EnstratusAdapterTest, NetworkInputIsRefusedNamingTheField) {
  struct Case {
    std::function<void(v1::Network&)> change;
    const char* field;
  };
  const std::vector<Case> cases = {
      {[](v1::Network& n) { n.clear_cidr_ranges(); }, "network.cidr_ranges"},
      {[](v1::Network& n) { n.set_cidr_ranges(0, "10.40.0.1/16"); }, "network.cidr_ranges"},
      {[](v1::Network& n) { n.add_cidr_ranges("10.41.0.0/16"); }, "network.cidr_ranges"},
      {[](v1::Network& n) { n.set_location("accounts/dcm/locations/dc-64351"); },
       "network.location"},
      {[](v1::Network& n) { n.add_dns_servers("dns.example"); }, "network.dns_servers[0]"},
      {[](v1::Network& n) { (*n.mutable_labels())["team"] = "x"; }, "network.labels.team"},
  };
  for (const Case& c : cases) {
    v1::CreateNetworkRequest create;
    create.set_parent("accounts/dcm");
    v1::Network* in = create.mutable_network();
    in->add_cidr_ranges("10.40.0.0/16");
    in->set_location("accounts/dcm/locations/region-19344");
    c.change(*in);
    auto r = Await<MutationProgress>(
        [&](auto cb) { provider_->CreateNetwork(Ctx("operations/nx"), create, std::move(cb)); });
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    auto bad = GetBadRequest(r.status());
    ASSERT_TRUE(bad.has_value());
    std::vector<std::string> fields;
    for (const auto& v : bad->field_violations()) fields.push_back(v.field());
    EXPECT_THAT(fields, ::testing::ElementsAre(c.field));
  }
  v1::GetNetworkRequest get;
  get.set_name("accounts/dcm/networks/not-a-number");
  auto missing =
      Await<v1::Network>([&](auto cb) { provider_->GetNetwork(Ctx(), get, std::move(cb)); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EnstratusAdapterTest, CreateFirewallIsSupportedOnlyWithABudget) {
  const std::string create_firewall = FullMethodName("FirewallsService", "CreateFirewall");
  const std::vector<std::string> all = provider_->Info().supported_methods;
  EXPECT_EQ(provider_->SupportedMethods(), all);  // budget 10287
  AccountSetup setup;
  setup.account = "dcm";
  setup.endpoint = emulator_->url();
  setup.secret = kKeys;
  setup.scratch = scratch_.get();
  setup.loop = &loop_;
  auto no_budget = CreateEnstratusProvider(setup);
  ASSERT_TRUE(no_budget.ok()) << no_budget.status();
  const std::string create_network = FullMethodName("NetworksService", "CreateNetwork");
  std::vector<std::string> expected = all;
  expected.erase(std::find(expected.begin(), expected.end(), create_firewall));
  expected.erase(std::find(expected.begin(), expected.end(), create_network));
  EXPECT_EQ((*no_budget)->SupportedMethods(), expected);
  EXPECT_EQ(expected.size() + 2, all.size());
  EXPECT_THAT((*no_budget)->HonouredFields(create_network), ::testing::IsEmpty());
  EXPECT_TRUE((*no_budget)->CancellableMethods().empty());
}

// validate_only runs the local checks and sends nothing: a provider whose
// endpoint answers nobody passes it, and refuses what the real call refuses.
TEST_F(EnstratusAdapterTest, ValidateOnlyChecksLocallyAndSendsNothing) {
  AccountSetup setup;
  setup.account = "dcm";
  setup.endpoint = "http://127.0.0.1:9/api/enstratus/2015-05-25";
  setup.secret = kKeys;
  setup.options["budget"] = "10287";
  setup.scratch = scratch_.get();
  setup.loop = &loop_;
  auto offline = CreateEnstratusProvider(setup);
  ASSERT_TRUE(offline.ok()) << offline.status();
  CallContext ctx = Ctx("operations/vo");
  ctx.validate_only = true;

  auto created = Await<MutationProgress>(
      [&](auto cb) { (*offline)->CreateInstance(ctx, Launch("web-vo", "x"), std::move(cb)); });
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->done);
  v1::StopInstanceRequest stop;
  stop.set_name("accounts/dcm/instances/339452");
  auto stopped = Await<MutationProgress>(
      [&](auto cb) { (*offline)->StopInstance(ctx, stop, std::move(cb)); });
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->done);

  // Nothing was reserved: the alias names nothing yet.
  v1::GetInstanceRequest get;
  get.set_name("accounts/dcm/instances/web-vo");
  auto missing =
      Await<v1::Instance>([&](auto cb) { provider_->GetInstance(Ctx(), get, std::move(cb)); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  v1::CreateVolumeRequest volume;
  volume.set_parent("accounts/dcm");
  volume.mutable_volume()->set_size_bytes(int64_t{1} << 20);
  volume.mutable_volume()->set_location("accounts/dcm/locations/dc-64351");
  auto refused = Await<MutationProgress>(
      [&](auto cb) { (*offline)->CreateVolume(ctx, volume, std::move(cb)); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
}

// A create re-driven by the same Operation (the server restarted before it
// stored the first progress) resumes the job its alias records.
TEST_F(EnstratusAdapterTest, ARedrivenCreateResumesItsJob) {
  auto first = Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx("operations/r1"), Launch("again-1", "again"), std::move(cb));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(first->done);
  provider_ = Make(kKeys);
  auto again = Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx("operations/r1"), Launch("again-1", "again"), std::move(cb));
  });
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->provider_operation, first->provider_operation);
  auto done = Drive(again);
  ASSERT_TRUE(done.ok()) << done.status();
  v1::Instance inst;
  ASSERT_TRUE(done->result.UnpackTo(&inst));
  EXPECT_EQ(inst.name(), "accounts/dcm/instances/again-1");
}

// The launch's 202 was lost (the job runs at DCM; the adapter never learnt its
// id), as if the answer had been cut off: only the create mark, written
// before the request, remains. The runner calls the create again with the
// same operation. Against the emulator: while the launch job runs the
// create waits (UNAVAILABLE), then it finds the server by the tag in its
// description and adopts it; DCM ran one launch, and there is one server.
TEST_F(EnstratusAdapterTest, ALaunchWhoseAnswerWasLostIsFoundNotLaunchedAgain) {
  const std::string op = "operations/lost-e1";
  auto first = Await<MutationProgress>([&](auto cb) {
    provider_->CreateInstance(Ctx(op), Launch("", "lost answer one"), std::move(cb));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string job = first->provider_operation;
  // Forget the job, as a lost answer would have: a mark without a job.
  ASSERT_TRUE(scratch_->Put("enstratus-creates", op, CreateMark().SerializeAsString()).ok());
  provider_ = Make(kKeys);

  absl::StatusOr<MutationProgress> again = absl::UnknownError("not called");
  for (int i = 0; i < 100; ++i) {
    again = Await<MutationProgress>([&](auto cb) {
      provider_->CreateInstance(Ctx(op), Launch("", "lost answer one"), std::move(cb));
    });
    if (again.ok() || again.status().code() != absl::StatusCode::kUnavailable) break;
    // The launch job still runs: nothing was sent, the runner calls again.
    EXPECT_EQ(GetErrorInfo(again.status())->reason(), "RESOURCE_NOT_READY");
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(again.ok()) << again.status();
  auto token = kit::UnpackToken<JobToken>(again->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->phase(), JobToken::CONVERGE);
  auto done = Drive(again, op);
  ASSERT_TRUE(done.ok()) << done.status();
  v1::Instance inst;
  ASSERT_TRUE(done->result.UnpackTo(&inst));
  EXPECT_EQ(inst.display_name(), "lost answer one");
  // The job's message names the adopted server.
  auto finished = Await<google::longrunning::Operation>(
      [&](auto cb) { provider_->GetProviderOperation(Ctx(), job, std::move(cb)); });
  ASSERT_TRUE(finished.ok()) << finished.status();
  v1::OperationMetadata md;
  ASSERT_TRUE(finished->metadata().UnpackTo(&md));
  EXPECT_THAT(md.status_detail(),
              HasSubstr("message: " + inst.name().substr(inst.name().rfind('/') + 1)));

  // Counted at the emulator: one launch job and one server of that name.
  int launches = 0;
  std::string page_token;
  do {
    auto page = Await<google::longrunning::ListOperationsResponse>([&](auto cb) {
      provider_->ListProviderOperations(Ctx(), 100, page_token, std::move(cb));
    });
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& op : page->operations()) {
      v1::OperationMetadata m;
      ASSERT_TRUE(op.metadata().UnpackTo(&m));
      launches += absl::StrContains(m.status_detail(), "Launch Server lost answer one");
    }
    page_token = page->next_page_token();
  } while (!page_token.empty());
  EXPECT_EQ(launches, 1);
  v1::ListInstancesRequest list;
  list.set_parent("accounts/dcm");
  auto servers = Await<v1::ListInstancesResponse>(
      [&](auto cb) { provider_->ListInstances(Ctx(), list, std::move(cb)); });
  ASSERT_TRUE(servers.ok()) << servers.status();
  int named = 0;
  for (const v1::Instance& i : servers->instances()) named += i.display_name() == "lost answer one";
  EXPECT_EQ(named, 1);
  // Polled: the mark is gone.
  EXPECT_EQ(scratch_->Get("enstratus-creates", op).status().code(), absl::StatusCode::kNotFound);
}

// The same window on the fake transport, step by step: the launch POST is
// applied but its answer is a connection reset. The re-drive sends no
// second POST: while DCM's job "Launch Server <name>" runs it answers
// UNAVAILABLE; once the server exists it adopts the one whose description
// carries the operation, and the alias names it.
class EnstratusRedriveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto scratch = NewInMemoryScratch(&loop_, "dcm");
    ASSERT_TRUE(scratch.ok()) << scratch.status();
    scratch_ = *std::move(scratch);
    AccountSetup setup;
    setup.account = "dcm";
    setup.endpoint = "https://dcm.example.org/api/enstratus/2015-05-25";
    setup.secret = kKeys;
    setup.options["budget"] = "10287";
    setup.scratch = scratch_.get();
    setup.loop = &loop_;
    auto p = CreateEnstratusProvider(setup, fake_);
    ASSERT_TRUE(p.ok()) << p.status();
    provider_ = *std::move(p);
  }

  CallContext Ctx() {
    CallContext ctx;
    ctx.account = "dcm";
    ctx.deadline = absl::Now() + absl::Seconds(10);
    ctx.operation = "operations/fake-1";
    return ctx;
  }
  static http::HttpResponse Json(int status, std::string body) {
    return http::HttpResponse{status, {{"content-type", "application/json"}}, std::move(body)};
  }
  int Posts() const {
    int n = 0;
    for (const auto& sent : fake_->Sent()) n += sent.request.method == "POST";
    return n;
  }
  absl::StatusOr<MutationProgress> Create(const v1::CreateInstanceRequest& req) {
    return Await<MutationProgress>(
        [&](auto cb) { provider_->CreateInstance(Ctx(), req, std::move(cb)); });
  }

  std::shared_ptr<http::FakeHttpTransport> fake_ = http::FakeHttpTransport::Create();
  std::unique_ptr<ScratchStore> scratch_;
  EventLoop loop_;
  std::unique_ptr<Provider> provider_;
};

TEST_F(EnstratusRedriveTest, ALostLaunchAnswerIsNeverFollowedByASecondLaunch) {
  v1::CreateInstanceRequest req;
  req.set_parent("accounts/dcm");
  req.set_instance_id("web-9");
  req.mutable_instance()->set_display_name("web nine");
  req.mutable_instance()->set_image("accounts/dcm/images/284542");
  req.mutable_instance()->set_machine_type("accounts/dcm/machineTypes/652");
  req.mutable_instance()->set_location("accounts/dcm/locations/dc-64351");
  fake_->Expect("GET", "/infrastructure/ServerProduct/652",
                Json(200, R"({"serverProducts":[{"productId":652,)"
                          R"("providerProductId":"m1.large"}]})"));
  fake_->Expect("POST", "/infrastructure/Server",
                absl::UnavailableError("connection reset by peer"));
  auto lost = Create(req);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  ASSERT_EQ(Posts(), 1);
  EXPECT_THAT(fake_->Sent().back().request.body,
              HasSubstr(R"("description":"web nine [cloudplane operations/fake-1]")"));

  // DCM's launch job runs; no server yet: wait, send nothing.
  fake_->Expect("GET", "/admin/Job",
                Json(200, R"({"jobs":[{"jobId":84322,"status":"RUNNING",)"
                          R"("description":"Launch Server web nine"}]})"));
  fake_->Expect("GET", "/infrastructure/Server", Json(200, R"({"servers":[]})"));
  auto waiting = Create(req);
  EXPECT_EQ(waiting.status().code(), absl::StatusCode::kUnavailable) << waiting.status();
  EXPECT_EQ(GetErrorInfo(waiting.status())->reason(), "RESOURCE_NOT_READY");
  EXPECT_EQ(Posts(), 1);

  // The job completed: the server carries the operation's tag.
  fake_->Expect("GET", "/admin/Job",
                Json(200, R"({"jobs":[{"jobId":84322,"status":"COMPLETE","message":"339452",)"
                          R"("description":"Launch Server web nine"}]})"));
  fake_->Expect("GET", "/infrastructure/Server",
                Json(200, R"({"servers":[{"serverId":339400,"name":"web nine",)"
                          R"("description":"web nine","status":"RUNNING"},)"
                          R"({"serverId":339452,"name":"web nine","status":"PENDING",)"
                          R"("description":"web nine [cloudplane operations/fake-1]"}]})"));
  auto adopted = Create(req);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  auto token = kit::UnpackToken<JobToken>(adopted->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->phase(), JobToken::CONVERGE);
  EXPECT_EQ(token->dcm_id(), 339452);
  EXPECT_EQ(token->alias(), "web-9");
  EXPECT_EQ(Posts(), 1);

  // Polling converges on it, under the caller's alias.
  fake_->Expect("GET", "/infrastructure/Server/339452",
                Json(200, R"({"servers":[{"serverId":339452,"name":"web nine",)"
                          R"("status":"RUNNING"}]})"));
  auto done = Await<MutationProgress>([&](auto cb) {
    provider_->PollOperation(Ctx(), adopted->poll_token, std::move(cb));
  });
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_TRUE(done->done);
  v1::Instance inst;
  ASSERT_TRUE(done->result.UnpackTo(&inst));
  EXPECT_EQ(inst.name(), "accounts/dcm/instances/web-9");
  EXPECT_EQ(Posts(), 1);
  EXPECT_EQ(fake_->PendingExpectations(), 0u);
}

// A refused launch (DCM's 400) frees the alias and drops the mark: the next
// create of that alias is a first drive again.
TEST_F(EnstratusRedriveTest, ARefusedLaunchLeavesNothingBehind) {
  v1::CreateInstanceRequest req;
  req.set_parent("accounts/dcm");
  req.set_instance_id("web-10");
  req.mutable_instance()->set_image("accounts/dcm/images/284542");
  req.mutable_instance()->set_machine_type("accounts/dcm/machineTypes/652");
  req.mutable_instance()->set_location("accounts/dcm/locations/dc-64351");
  fake_->Expect("GET", "/infrastructure/ServerProduct/652",
                Json(200, R"({"serverProducts":[{"productId":652,)"
                          R"("providerProductId":"m1.large"}]})"));
  fake_->Expect("POST", "/infrastructure/Server",
                Json(400, R"({"error":{"message":"No such machine image: 284542"}})"));
  auto refused = Create(req);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(scratch_->Get("enstratus-creates", "operations/fake-1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(scratch_->Get("enstratus-instances", "web-10").status().code(),
            absl::StatusCode::kNotFound);
}

// The strict field contract (ProviderInfo::honoured_fields): the
// declaration covers every mutation, with and without the option budget,
// and names real fields; the fields of a launch reach DCM's launch body; a
// rule field addRule would drop is refused.
class FieldContract : public EnstratusRedriveTest {};

TEST_F(FieldContract, EveryMutationDeclaresRealFields) {
  const std::string create_firewall = FullMethodName("FirewallsService", "CreateFirewall");
  testutil::ExpectFieldContractDeclared(*provider_);
  EXPECT_THAT(provider_->HonouredFields(create_firewall), ::testing::Not(::testing::IsEmpty()));
  AccountSetup setup;
  setup.account = "dcm";
  setup.endpoint = "https://dcm.example.org/api/enstratus/2015-05-25";
  setup.secret = kKeys;
  setup.scratch = scratch_.get();
  setup.loop = &loop_;
  auto no_budget = CreateEnstratusProvider(setup, fake_);
  ASSERT_TRUE(no_budget.ok()) << no_budget.status();
  testutil::ExpectFieldContractDeclared(**no_budget);
  // Not supported without a budget: nothing honoured either.
  EXPECT_THAT((*no_budget)->HonouredFields(create_firewall), ::testing::IsEmpty());
}

TEST_F(FieldContract, HonouredLaunchFieldsReachTheLaunchBody) {
  v1::CreateInstanceRequest req;
  req.set_parent("accounts/dcm");
  req.set_instance_id("web-11");
  req.set_start(true);
  v1::Instance* in = req.mutable_instance();
  in->set_display_name("web eleven");
  in->set_image("accounts/dcm/images/284542");
  in->set_machine_type("accounts/dcm/machineTypes/652");
  in->set_location("accounts/dcm/locations/dc-64351");
  in->set_billing_code("accounts/dcm/billingCodes/10300");
  in->add_firewalls("accounts/dcm/firewalls/116387");
  in->set_key_name("ops-key");
  in->set_user_data("echo hi");
  (*in->mutable_labels())["label"] = "orange";
  (*in->mutable_provider_options()->mutable_fields())["description"].set_string_value("web tier");
  in->add_network_interfaces()->set_network("accounts/dcm/networks/42001");
  fake_->Expect("GET", "/infrastructure/ServerProduct/652",
                Json(200, R"({"serverProducts":[{"productId":652,)"
                          R"("providerProductId":"m1.large"}]})"));
  fake_->Expect("POST", "/infrastructure/Server",
                Json(202, R"({"jobs":[{"jobId":84400,"status":"RUNNING",)"
                          R"("description":"Launch Server web eleven"}]})"));
  auto launched = Create(req);
  ASSERT_TRUE(launched.ok()) << launched.status();
  EXPECT_FALSE(launched->done);
  EXPECT_EQ(launched->provider_operation, "84400");
  const std::string body = fake_->Sent().back().request.body;
  for (const char* sent : {R"("name":"web eleven")",
                           R"("description":"web tier [cloudplane operations/fake-1]")",
                           R"("product":{"productId":"m1.large"})",
                           R"("machineImage":{"machineImageId":284542})",
                           R"("dataCenter":{"dataCenterId":64351})", R"("budget":10300)",
                           R"("keypair":"ops-key")", R"("firewalls":[{"firewallId":116387}])",
                           R"("label":"orange")", R"("userData":"echo hi")",
                           R"("network":{"networkId":42001})"}) {
    EXPECT_THAT(body, HasSubstr(sent));
  }
  EXPECT_EQ(fake_->PendingExpectations(), 0u);
}

// The server's contract refuses interface fields other than the network;
// the adapter refuses them too (naming the interface by index), and a second
// interface or a network that is not a DCM id, before anything is sent.
TEST_F(FieldContract, InterfacesBeyondOneNetworkAreRefusedBeforeAnyRequest) {
  auto launch = [] {
    v1::CreateInstanceRequest req;
    req.set_parent("accounts/dcm");
    v1::Instance* in = req.mutable_instance();
    in->set_image("accounts/dcm/images/284542");
    in->set_machine_type("accounts/dcm/machineTypes/652");
    in->set_location("accounts/dcm/locations/dc-64351");
    return req;
  };
  struct Case {
    std::function<void(v1::Instance&)> set;
    std::vector<std::string> fields;
  };
  const std::string net = "accounts/dcm/networks/42001";
  const std::vector<Case> cases = {
      {[&](v1::Instance& in) {
         in.add_network_interfaces()->set_network(net);
         in.add_network_interfaces()->set_network(net);
       },
       {"instance.network_interfaces[1]"}},
      {[&](v1::Instance& in) {
         v1::NetworkInterface* nic = in.add_network_interfaces();
         nic->set_network(net);
         nic->set_address("10.0.0.9");
         nic->set_mac_address("02:00:00:00:00:01");
         nic->set_model("virtio");
         nic->set_firewall("accounts/dcm/firewalls/116387");
       },
       {"instance.network_interfaces[0].address", "instance.network_interfaces[0].mac_address",
        "instance.network_interfaces[0].model", "instance.network_interfaces[0].firewall"}},
      {[&](v1::Instance& in) { in.add_network_interfaces()->set_model("virtio"); },
       {"instance.network_interfaces[0].model", "instance.network_interfaces[0].network"}},
      {[&](v1::Instance& in) {
         in.add_network_interfaces()->set_network("accounts/dcm/networks/x");
       },
       {"instance.network_interfaces[0].network"}},
      {[&](v1::Instance& in) {
         in.add_network_interfaces()->set_network("accounts/other/networks/42001");
       },
       {"instance.network_interfaces[0].network"}},
  };
  for (const Case& c : cases) {
    v1::CreateInstanceRequest req = launch();
    c.set(*req.mutable_instance());
    auto refused = Create(req);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
    auto bad = GetBadRequest(refused.status());
    ASSERT_TRUE(bad.has_value()) << refused.status();
    std::vector<std::string> fields;
    for (const auto& v : bad->field_violations()) fields.push_back(v.field());
    EXPECT_THAT(fields, ::testing::UnorderedElementsAreArray(c.fields));
  }
  EXPECT_TRUE(fake_->Sent().empty());
}

// addRule sends no ports for icmp: ports on an icmp rule are refused, not
// dropped.
TEST_F(FieldContract, PortsOnAnIcmpRuleAreRefused) {
  v1::CreateFirewallRuleRequest req;
  req.set_parent("accounts/dcm/firewalls/116387");
  req.mutable_rule()->set_protocol("icmp");
  req.mutable_rule()->set_port_range_start(8);
  req.mutable_rule()->add_source_ranges("0.0.0.0/0");
  auto refused = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewallRule(Ctx(), req, std::move(cb)); });
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(refused.status())->field_violations(0).field(),
            "rule.port_range_start");
  EXPECT_TRUE(fake_->Sent().empty());
}

}  // namespace
}  // namespace cloudplane::adapters::enstratus
