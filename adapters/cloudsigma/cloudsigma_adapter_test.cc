// The CloudSigma adapter against the real CloudSigma emulator
// (tests/emulators/cloudsigma/cloudsigma_emulator.py, a child process):
// REST flows, error mapping, and the websocket feed including a reconnect.
#include "adapters/cloudsigma/cloudsigma_adapter.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "adapters/cloudsigma/cloudsigma_tokens.h"
#include "adapters/common/http/fake_http_transport.h"
#include "adapters/common/testing/emulator_process.h"
#include "adapters/common/testing/field_contract_check.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

// The emulator as a child process (adapters/common/testing), with the API
// and websocket URLs of its READY line.
class Emulator {
 public:
  Emulator() {
    absl::StatusOr<std::unique_ptr<testutil::EmulatorProcess>> process =
        testutil::EmulatorProcess::Start(
            "tests/emulators/cloudsigma/cloudsigma_emulator.py",
            {"--password", "pw", "--transition-delay", "0.1", "--delete-delay", "0.1"});
    if (!process.ok()) {
      ADD_FAILURE() << "the CloudSigma emulator did not start: " << process.status();
      return;
    }
    process_ = *std::move(process);
    api_ = std::string(absl::StripSuffix(process_->Field("api"), "/"));
    ws_ = process_->Field("ws");
  }
  const std::string& api() const { return api_; }
  const std::string& ws() const { return ws_; }
  // POST /emulator/drop-websockets with curl-free plain sockets: use python.
  void DropWebsockets() const {
    std::string base = api_.substr(0, api_.find("/api/2.0"));
    std::string cmd = absl::StrCat(
        "python3 -c \"import urllib.request as u; u.urlopen(u.Request('", base,
        "/emulator/drop-websockets', data=b'', method='POST'))\"");
    ASSERT_EQ(system(cmd.c_str()), 0);
  }

 private:
  std::unique_ptr<testutil::EmulatorProcess> process_;
  std::string api_, ws_;
};

struct Change {
  v1::WatchResponse::ChangeType type;
  std::string name;
  std::string source;
  std::string state;
};

class RecordingSink : public ChangeSink {
 public:
  void Publish(absl::string_view account, v1::WatchResponse::ChangeType type,
               absl::string_view resource_name, const google::protobuf::Message& resource,
               WatchSource source) override {
    std::string state;
    if (auto* v = dynamic_cast<const v1::Volume*>(&resource)) state = v->provider_state();
    absl::MutexLock lock(&mu_);
    changes_.push_back({type, std::string(resource_name), std::string(WatchSourceName(source)), state});
  }
  // Waits until some change matches.
  bool WaitFor(std::function<bool(const Change&)> pred, absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      {
        absl::MutexLock lock(&mu_);
        for (const Change& c : changes_) {
          if (pred(c)) return true;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }
  void Clear() {
    absl::MutexLock lock(&mu_);
    changes_.clear();
  }

 private:
  absl::Mutex mu_;
  std::vector<Change> changes_;
};

template <typename T>
absl::StatusOr<T> Await(absl::AnyInvocable<void(Callback<T>)> start) {
  absl::Notification done;
  absl::StatusOr<T> result = absl::UnknownError("no answer");
  start([&](absl::StatusOr<T> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotificationWithTimeout(absl::Seconds(30));
  return result;
}

CallContext Ctx(std::string operation = "") {
  return {.account = "cs", .deadline = absl::Now() + absl::Seconds(10),
          .operation = std::move(operation)};
}

// Runs a mutation to the end, polling like the server does.
absl::StatusOr<MutationProgress> RunToEnd(Provider& p, absl::StatusOr<MutationProgress> first) {
  for (int i = 0; i < 200 && first.ok() && !first->done; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    const std::string token = first->poll_token;
    first = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
      p.PollOperation(Ctx(), token, std::move(cb));
    });
  }
  return first;
}

class CloudSigmaAdapterTest : public testing::Test {
 protected:
  std::unique_ptr<Provider> Make(std::string secret = "user@example.com:pw") {
    AccountSetup setup;
    setup.account = "cs";
    setup.endpoint = emu_.api();
    setup.secret = std::move(secret);
    setup.options["ws_endpoint"] = emu_.ws();
    setup.loop = &loop_;
    setup.changes = &sink_;
    auto p = CreateCloudSigmaProvider(setup);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }
  Emulator emu_;
  EventLoop loop_;
  RecordingSink sink_;
};

TEST_F(CloudSigmaAdapterTest, FactoryRefusesBadSetups) {
  AccountSetup setup{.account = "cs", .endpoint = emu_.api(), .secret = "no-colon"};
  auto p = CreateCloudSigmaProvider(setup);
  ASSERT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(p.status())->field_violations(0).field(), "credentials");
  EXPECT_THAT(std::string(p.status().message()), testing::Not(testing::HasSubstr("no-colon")));
  setup.secret = "u:p";
  setup.options["nope"] = "1";
  setup.options["ws_endpoint"] = "http://not-a-websocket";
  p = CreateCloudSigmaProvider(setup);
  ASSERT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(p.status())->field_violations_size(), 2);
}

TEST_F(CloudSigmaAdapterTest, VolumeLifecycleWithPushEvents) {
  auto p = Make();
  v1::CreateVolumeRequest create;
  create.set_parent("accounts/cs");
  create.set_volume_id("data-1");
  create.mutable_volume()->set_size_bytes(1 << 30);
  auto first = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p->CreateVolume(Ctx("operations/a"), create, std::move(cb));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->done);
  absl::StatusOr<PollToken> token = ReadPollToken(first->poll_token);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->kind(), PollToken::DRIVE);
  auto end = RunToEnd(*p, first);
  ASSERT_TRUE(end.ok()) << end.status();
  v1::Volume volume;
  ASSERT_TRUE(end->result.UnpackTo(&volume));
  EXPECT_EQ(volume.name(), "accounts/cs/volumes/data-1");
  EXPECT_EQ(volume.state(), v1::Volume::AVAILABLE);
  // The websocket told us too.
  EXPECT_TRUE(sink_.WaitFor([](const Change& c) {
    return c.name == "accounts/cs/volumes/data-1" && c.source == "push" &&
           c.state == "unmounted";
  }));
  // A re-driven create of the same operation adopts its drive.
  auto again = RunToEnd(*p, Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p->CreateVolume(Ctx("operations/a"), create, std::move(cb));
  }));
  ASSERT_TRUE(again.ok()) << again.status();
  // Another operation with the same id clashes.
  auto clash = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p->CreateVolume(Ctx("operations/b"), create, std::move(cb));
  });
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  auto list = Await<v1::ListVolumesResponse>([&](Callback<v1::ListVolumesResponse> cb) {
    v1::ListVolumesRequest r;
    r.set_parent("accounts/cs");
    p->ListVolumes(Ctx(), r, std::move(cb));
  });
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->volumes_size(), 1);

  // The websocket goes away: the feed reconnects and later changes arrive.
  emu_.DropWebsockets();
  absl::SleepFor(absl::Seconds(1));
  sink_.Clear();
  v1::DeleteVolumeRequest del;
  del.set_name("accounts/cs/volumes/data-1");
  auto gone = RunToEnd(*p, Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p->DeleteVolume(Ctx(), del, std::move(cb));
  }));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_TRUE(sink_.WaitFor([](const Change& c) {
    return c.type == v1::WatchResponse::DELETED && c.name == "accounts/cs/volumes/data-1" &&
           c.source == "push";
  }));
  auto get = Await<v1::Volume>([&](Callback<v1::Volume> cb) {
    v1::GetVolumeRequest r;
    r.set_name("accounts/cs/volumes/data-1");
    p->GetVolume(Ctx(), r, std::move(cb));
  });
  EXPECT_EQ(get.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CloudSigmaAdapterTest, ErrorsMapToTheDocumentedCodes) {
  auto wrong = Make("user@example.com:wr0ngpass");
  auto list = Await<v1::ListVolumesResponse>([&](Callback<v1::ListVolumesResponse> cb) {
    v1::ListVolumesRequest r;
    r.set_parent("accounts/cs");
    wrong->ListVolumes(Ctx(), r, std::move(cb));
  });
  EXPECT_EQ(list.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(list.status().message()), testing::Not(testing::HasSubstr("wr0ngpass")));

  auto p = Make();
  v1::CreateVolumeRequest create;
  create.set_parent("accounts/cs");
  create.mutable_volume()->set_size_bytes(-1);
  auto bad = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p->CreateVolume(Ctx(), create, std::move(cb));
  });
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);

  v1::StartInstanceRequest start;
  start.set_name("accounts/cs/instances/nope");
  auto missing = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p->StartInstance(Ctx(), start, std::move(cb));
  });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  CallContext past = Ctx();
  past.deadline = absl::Now() - absl::Seconds(1);
  auto late = Await<v1::ListInstancesResponse>([&](Callback<v1::ListInstancesResponse> cb) {
    v1::ListInstancesRequest r;
    r.set_parent("accounts/cs");
    p->ListInstances(past, r, std::move(cb));
  });
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
}

// Re-drives after a lost answer, on the fake transport: CloudSigma applied
// the request, the connection reset before its answer came back, and the
// runner calls the mutation again with the same operation.
class CloudSigmaRedriveTest : public testing::Test {
 protected:
  static constexpr char kDrives[] = "/drives/detail/?fields=uuid,meta&limit=100&offset=0";
  static constexpr char kServers[] = "/servers/detail/?fields=uuid,meta&limit=100&offset=0";
  static constexpr char kUuid[] = "3b8b3d0a-6a1f-4d3c-9a8e-2f4c1e0d9b7a";

  void SetUp() override {
    AccountSetup setup;
    setup.account = "cs";
    setup.endpoint = "https://zrh.example.org/api/2.0";
    setup.secret = "user@example.com:pw";
    auto p = CreateCloudSigmaProvider(setup, fake_);
    ASSERT_TRUE(p.ok()) << p.status();
    provider_ = *std::move(p);
  }

  static http::HttpResponse Json(std::string body) {
    return http::HttpResponse{200, {{"content-type", "application/json"}}, std::move(body)};
  }
  // A `uuid,meta` list holding one object of `operation`, or nothing.
  static http::HttpResponse Listed(absl::string_view operation, absl::string_view chosen_id) {
    if (operation.empty()) return Json(R"({"meta":{"total_count":0},"objects":[]})");
    return Json(absl::StrCat(R"({"meta":{"total_count":1},"objects":[{"uuid":")", kUuid,
                             R"(","meta":{"cloudplane_id":")", chosen_id,
                             R"(","cloudplane_operation":")", operation, R"("}}]})"));
  }
  int Count(absl::string_view method, absl::string_view path_prefix) const {
    int n = 0;
    for (const auto& sent : fake_->Sent()) {
      n += sent.request.method == method &&
           absl::StartsWith(sent.request.path_and_query, path_prefix);
    }
    return n;
  }

  std::shared_ptr<http::FakeHttpTransport> fake_ = http::FakeHttpTransport::Create();
  std::unique_ptr<Provider> provider_;
};

TEST_F(CloudSigmaRedriveTest, ADriveWhoseCreateAnswerWasLostIsFoundByItsMeta) {
  v1::CreateVolumeRequest create;
  create.set_parent("accounts/cs");
  create.set_volume_id("data-1");
  create.mutable_volume()->set_size_bytes(1 << 30);
  fake_->Expect("GET", kDrives, Listed("", ""));
  fake_->Expect("POST", "/drives/", absl::UnavailableError("connection reset by peer"));
  auto lost = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    provider_->CreateVolume(Ctx("operations/a"), create, std::move(cb));
  });
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  ASSERT_EQ(Count("POST", "/drives/"), 1);
  // The POST carried the operation in the drive's meta.
  EXPECT_TRUE(absl::StrContains(fake_->Sent().back().request.body,
                                R"("cloudplane_operation":"operations/a")"))
      << fake_->Sent().back().request.body;

  // CloudSigma made the drive: the list shows it with the operation's meta.
  fake_->Expect("GET", kDrives, Listed("operations/a", "data-1"));
  fake_->Expect("GET", absl::StrCat("/drives/", kUuid, "/"),
                Json(absl::StrCat(R"({"uuid":")", kUuid,
                                  R"(","name":"data-1","size":1073741824,"media":"disk",)"
                                  R"("status":"unmounted","mounted_on":[],)"
                                  R"("meta":{"cloudplane_id":"data-1",)"
                                  R"("cloudplane_operation":"operations/a"}})")));
  auto again = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    provider_->CreateVolume(Ctx("operations/a"), create, std::move(cb));
  });
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->done);
  v1::Volume volume;
  ASSERT_TRUE(again->result.UnpackTo(&volume));
  EXPECT_EQ(volume.name(), "accounts/cs/volumes/data-1");
  EXPECT_EQ(volume.state(), v1::Volume::AVAILABLE);
  EXPECT_EQ(Count("POST", "/drives/"), 1);  // no second create
  EXPECT_EQ(fake_->PendingExpectations(), 0u);
}

TEST_F(CloudSigmaRedriveTest, AServerWhoseStartAnswerWasLostIsKeptAndConverges) {
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/cs");
  create.set_instance_id("web-1");
  create.mutable_instance()->set_cpu_mhz(1000);
  create.mutable_instance()->set_memory_bytes(int64_t{1} << 30);
  const std::string server = absl::StrCat(
      R"({"uuid":")", kUuid, R"(","name":"web-1","cpu":1000,"mem":1073741824,"smp":1,)"
      R"("status":"%s","drives":[],"nics":[],)"
      R"("meta":{"cloudplane_id":"web-1","cloudplane_operation":"operations/s"}})");
  fake_->Expect("GET", kServers, Listed("", ""));
  fake_->Expect("POST", "/servers/", Json(absl::StrReplaceAll(server, {{"%s", "stopped"}})));
  fake_->Expect("POST", absl::StrCat("/servers/", kUuid, "/action/?do=start"),
                absl::UnavailableError("connection reset by peer"));
  auto lost = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    provider_->CreateInstance(Ctx("operations/s"), create, std::move(cb));
  });
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  // The start may be under way: the server is not deleted.
  EXPECT_EQ(Count("DELETE", "/servers/"), 0);

  // Re-driven: the server is found by its meta; it is starting, so the
  // create polls it instead of creating or starting again.
  fake_->Expect("GET", kServers, Listed("operations/s", "web-1"));
  fake_->Expect("GET", absl::StrCat("/servers/", kUuid, "/"),
                Json(absl::StrReplaceAll(server, {{"%s", "starting"}})));
  fake_->Expect("GET", absl::StrCat("/servers/", kUuid, "/"),
                Json(absl::StrReplaceAll(server, {{"%s", "starting"}})));
  auto again = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    provider_->CreateInstance(Ctx("operations/s"), create, std::move(cb));
  });
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->done);
  EXPECT_EQ(Count("POST", "/servers/"), 2);  // one create and one start, no more
  EXPECT_EQ(Count("DELETE", "/servers/"), 0);
  EXPECT_EQ(fake_->PendingExpectations(), 0u);
}

// A VLAN is bought, then labelling it fails: nothing may go on renewing
// what the caller was told failed, so the subscription's auto-renewal is
// turned off (CloudSigma cannot take a VLAN back before its period ends).
TEST_F(CloudSigmaRedriveTest, ABoughtVlanThatCannotBeLabelledStopsRenewing) {
  v1::CreateNetworkRequest create;
  create.set_parent("accounts/cs");
  (*create.mutable_network()->mutable_labels())["tier"] = "db";
  fake_->Expect("GET", "/vlans/detail/?fields=uuid,meta&limit=100&offset=0", Listed("", ""));
  fake_->Expect("POST", "/subscriptions/",
                Json(absl::StrCat(R"({"objects":[{"id":"77","uuid":"5f0e7c1a-0000-4000-8000-)"
                                  R"(000000000077","resource":"vlan","auto_renew":true,)"
                                  R"("subscribed_object":")",
                                  kUuid, R"("}]})")));
  fake_->Expect("GET", absl::StrCat("/vlans/", kUuid, "/"),
                Json(absl::StrCat(R"({"uuid":")", kUuid, R"(","meta":{},"servers":[],)"
                                  R"("subscription":{"id":77}})")));
  fake_->Expect("PUT", absl::StrCat("/vlans/", kUuid, "/"),
                http::HttpResponse{400, {{"content-type", "application/json"}},
                                   R"([{"error_point":"meta","error_type":"validation",)"
                                   R"("error_message":"meta is invalid"}])"});
  fake_->Expect("POST", "/subscriptions/77/action/?do=auto_renew", Json(R"({"id":"77"})"));
  auto r = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    provider_->CreateNetwork(Ctx("operations/v"), create, std::move(cb));
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  // The undo is sent after the answer; wait for it.
  for (int i = 0; i < 100 && fake_->PendingExpectations() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(fake_->PendingExpectations(), 0u);
  ASSERT_EQ(Count("POST", "/subscriptions/77/action/"), 1);
  EXPECT_EQ(fake_->Sent().back().request.body, R"({"auto_renew":false})");
  // The PUT carried the labels and the operation.
  bool labelled = false;
  for (const auto& sent : fake_->Sent()) {
    labelled = labelled || (sent.request.method == "PUT" &&
                            absl::StrContains(sent.request.body,
                                              R"("meta":{"cloudplane_operation":"operations/v",)"
                                              R"("tier":"db"})"));
  }
  EXPECT_TRUE(labelled);
}

// The strict field contract (ProviderInfo::honoured_fields): the
// declaration covers every mutation and names real fields, and the fields of
// a create reach the emulator's server.
class FieldContract : public CloudSigmaAdapterTest {};

TEST_F(FieldContract, EveryMutationDeclaresRealFields) {
  auto p = Make();
  ASSERT_NE(p, nullptr);
  testutil::ExpectFieldContractDeclared(*p);
}

TEST_F(FieldContract, HonouredCreateFieldsReachTheServer) {
  auto p = Make();
  ASSERT_NE(p, nullptr);
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/cs");
  create.set_instance_id("fc-1");
  create.set_start(false);
  v1::Instance* in = create.mutable_instance();
  in->set_display_name("field contract");
  in->set_cpu_mhz(1500);
  in->set_memory_bytes(int64_t{2} << 30);
  in->set_cpu_count(2);
  (*in->mutable_labels())["role"] = "db";
  auto end = RunToEnd(*p, Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p->CreateInstance(Ctx("operations/fc"), create, std::move(cb));
  }));
  ASSERT_TRUE(end.ok()) << end.status();
  ASSERT_TRUE(end->done);
  auto got = Await<v1::Instance>([&](Callback<v1::Instance> cb) {
    v1::GetInstanceRequest r;
    r.set_name("accounts/cs/instances/fc-1");
    p->GetInstance(Ctx(), r, std::move(cb));
  });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->display_name(), "field contract");
  EXPECT_EQ(got->cpu_mhz(), 1500);
  EXPECT_EQ(got->memory_bytes(), int64_t{2} << 30);
  EXPECT_EQ(got->cpu_count(), 2);
  EXPECT_THAT(got->labels(), testing::UnorderedElementsAre(testing::Pair("role", "db")));
  EXPECT_EQ(got->state(), v1::Instance::STOPPED);  // start=false
}

// Networks, addresses, key pairs and NICs (issue 14) against the emulator.
class Networking : public CloudSigmaAdapterTest {
 protected:
  template <typename T>
  T Finish(absl::AnyInvocable<void(Callback<MutationProgress>)> start) {
    auto end = RunToEnd(*p_, Await<MutationProgress>(std::move(start)));
    EXPECT_TRUE(end.ok()) << end.status();
    T out;
    if (end.ok()) {
      EXPECT_TRUE(end->done);
      EXPECT_TRUE(end->result.UnpackTo(&out)) << end->result.DebugString();
    }
    return out;
  }
  v1::Instance GetServer(const std::string& name) {
    v1::GetInstanceRequest r;
    r.set_name(name);
    auto got = Await<v1::Instance>(
        [&](Callback<v1::Instance> cb) { p_->GetInstance(Ctx(), r, std::move(cb)); });
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : v1::Instance();
  }
  std::unique_ptr<Provider> p_ = Make();
};

TEST_F(Networking, InstanceWithVlanStaticIpAndKeyThenAttachDetach) {
  ASSERT_NE(p_, nullptr);
  v1::CreateNetworkRequest cn;
  cn.set_parent("accounts/cs");
  (*cn.mutable_network()->mutable_labels())["tier"] = "db";
  auto network = Finish<v1::Network>(
      [&](Callback<MutationProgress> cb) {
        p_->CreateNetwork(Ctx("operations/n"), cn, std::move(cb));
      });
  EXPECT_EQ(network.state(), v1::Network::READY);
  EXPECT_THAT(network.labels(), testing::UnorderedElementsAre(testing::Pair("tier", "db")));
  // Labels are the VLAN's meta; the creating operation's key stays.
  v1::UpdateNetworkRequest un;
  un.mutable_network()->set_name(network.name());
  (*un.mutable_network()->mutable_labels())["tier"] = "cache";
  un.mutable_update_mask()->add_paths("labels");
  auto relabelled = Finish<v1::Network>(
      [&](Callback<MutationProgress> cb) { p_->UpdateNetwork(Ctx(), un, std::move(cb)); });
  EXPECT_THAT(relabelled.labels(), testing::UnorderedElementsAre(testing::Pair("tier", "cache")));
  // A re-driven create adopts the VLAN its first attempt bought.
  auto again = Finish<v1::Network>(
      [&](Callback<MutationProgress> cb) {
        p_->CreateNetwork(Ctx("operations/n"), cn, std::move(cb));
      });
  EXPECT_EQ(again.name(), network.name());
  v1::ReserveAddressRequest ra;
  ra.set_parent("accounts/cs");
  auto address = Finish<v1::Address>(
      [&](Callback<MutationProgress> cb) { p_->ReserveAddress(Ctx(), ra, std::move(cb)); });
  EXPECT_EQ(address.state(), v1::Address::RESERVED);
  ASSERT_FALSE(address.address().empty());
  v1::CreateKeyPairRequest ck;
  ck.set_parent("accounts/cs");
  ck.set_key_pair_id("ops");
  ck.mutable_key_pair()->set_public_key(
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops");
  auto key = Finish<v1::KeyPair>(
      [&](Callback<MutationProgress> cb) { p_->CreateKeyPair(Ctx(), ck, std::move(cb)); });
  EXPECT_EQ(key.name(), "accounts/cs/keyPairs/ops");

  v1::CreateInstanceRequest ci;
  ci.set_parent("accounts/cs");
  ci.set_instance_id("net-1");
  ci.set_start(false);
  v1::Instance* in = ci.mutable_instance();
  in->set_cpu_mhz(1000);
  in->set_memory_bytes(int64_t{1} << 30);
  in->set_key_name("ops");
  in->add_network_interfaces()->set_network(network.name());
  in->add_network_interfaces()->set_address(address.address());
  auto created = Finish<v1::Instance>(
      [&](Callback<MutationProgress> cb) { p_->CreateInstance(Ctx(), ci, std::move(cb)); });
  v1::Instance got = GetServer("accounts/cs/instances/net-1");
  ASSERT_EQ(got.network_interfaces_size(), 2);
  EXPECT_EQ(got.network_interfaces(0).network(), network.name());
  EXPECT_EQ(got.network_interfaces(1).address(), address.address());
  EXPECT_EQ(got.provider_details().fields().at("pubkeys").list_value().values(0).string_value(),
            key.provider_details().fields().at("uuid").string_value());
  v1::GetAddressRequest ga;
  ga.set_name(address.name());
  auto used = Await<v1::Address>(
      [&](Callback<v1::Address> cb) { p_->GetAddress(Ctx(), ga, std::move(cb)); });
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(used->state(), v1::Address::IN_USE);
  EXPECT_EQ(used->instance(), "accounts/cs/instances/net-1");
  // In use: neither the VLAN nor the IP can go.
  v1::DeleteNetworkRequest dn;
  dn.set_name(network.name());
  auto refused = Await<MutationProgress>(
      [&](Callback<MutationProgress> cb) { p_->DeleteNetwork(Ctx(), dn, std::move(cb)); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);

  // Attach the same VLAN again: a re-driven attach converges, no new NIC.
  v1::AttachNetworkInterfaceRequest an;
  an.set_name("accounts/cs/instances/net-1");
  an.mutable_network_interface()->set_network(network.name());
  auto same = Finish<v1::Instance>([&](Callback<MutationProgress> cb) {
    p_->AttachNetworkInterface(Ctx(), an, std::move(cb));
  });
  EXPECT_EQ(same.network_interfaces_size(), 2);
  an.mutable_network_interface()->Clear();
  an.mutable_network_interface()->set_model("rtl8139");
  auto three = Finish<v1::Instance>([&](Callback<MutationProgress> cb) {
    p_->AttachNetworkInterface(Ctx(), an, std::move(cb));
  });
  ASSERT_EQ(three.network_interfaces_size(), 3);
  EXPECT_EQ(three.network_interfaces(2).model(), "rtl8139");
  EXPECT_EQ(three.network_interfaces(0).id(), got.network_interfaces(0).id());
  v1::DetachNetworkInterfaceRequest dt;
  dt.set_name("accounts/cs/instances/net-1");
  dt.set_network_interface_id(got.network_interfaces(1).id());
  auto two = Finish<v1::Instance>([&](Callback<MutationProgress> cb) {
    p_->DetachNetworkInterface(Ctx(), dt, std::move(cb));
  });
  ASSERT_EQ(two.network_interfaces_size(), 2);
  EXPECT_EQ(two.network_interfaces(1).model(), "rtl8139");
  // The static IP is free again: release it; it stays until its
  // subscription ends, no longer renewing.
  v1::ReleaseAddressRequest rel;
  rel.set_name(address.name());
  Finish<google::protobuf::Empty>(
      [&](Callback<MutationProgress> cb) { p_->ReleaseAddress(Ctx(), rel, std::move(cb)); });
  used = Await<v1::Address>(
      [&](Callback<v1::Address> cb) { p_->GetAddress(Ctx(), ga, std::move(cb)); });
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_FALSE(used->provider_details().fields().at("auto_renew").bool_value());
}

TEST_F(Networking, RefusalsLeaveNothingBehind) {
  ASSERT_NE(p_, nullptr);
  v1::CreateInstanceRequest ci;
  ci.set_parent("accounts/cs");
  ci.set_instance_id("nokey");
  ci.set_start(false);
  ci.mutable_instance()->set_cpu_mhz(1000);
  ci.mutable_instance()->set_memory_bytes(int64_t{1} << 30);
  ci.mutable_instance()->set_key_name("missing");
  auto r = Await<MutationProgress>(
      [&](Callback<MutationProgress> cb) { p_->CreateInstance(Ctx(), ci, std::move(cb)); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  // A VLAN NIC with an address, a network that is not a VLAN uuid, a model
  // CloudSigma lacks: INVALID_ARGUMENT naming each, before any request.
  ci.mutable_instance()->clear_key_name();
  auto* nic = ci.mutable_instance()->add_network_interfaces();
  nic->set_network("accounts/cs/networks/10619300-edda-42ba-91e0-7e3df0689d00");
  nic->set_address("10.0.0.5");
  nic = ci.mutable_instance()->add_network_interfaces();
  nic->set_network("accounts/cs/networks/private");
  nic->set_model("ne2000");
  r = Await<MutationProgress>(
      [&](Callback<MutationProgress> cb) { p_->CreateInstance(Ctx(), ci, std::move(cb)); });
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> fields;
  auto bad = GetBadRequest(r.status());
  ASSERT_TRUE(bad.has_value());
  for (const auto& v : bad->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, testing::ElementsAre("instance.network_interfaces[0].address",
                                           "instance.network_interfaces[1].network",
                                           "instance.network_interfaces[1].model"));
  // A static IP the account does not own: CloudSigma's validation error.
  ci.mutable_instance()->clear_network_interfaces();
  ci.mutable_instance()->add_network_interfaces()->set_address("192.0.2.1");
  r = Await<MutationProgress>(
      [&](Callback<MutationProgress> cb) { p_->CreateInstance(Ctx(), ci, std::move(cb)); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  v1::ListInstancesRequest li;
  li.set_parent("accounts/cs");
  auto list = Await<v1::ListInstancesResponse>(
      [&](Callback<v1::ListInstancesResponse> cb) { p_->ListInstances(Ctx(), li, std::move(cb)); });
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->instances_size(), 0);
  // Unknown network and address: NOT_FOUND.
  v1::GetNetworkRequest gn;
  gn.set_name("accounts/cs/networks/10619300-edda-42ba-91e0-7e3df0689d00");
  EXPECT_EQ(Await<v1::Network>([&](Callback<v1::Network> cb) {
              p_->GetNetwork(Ctx(), gn, std::move(cb));
            }).status().code(),
            absl::StatusCode::kNotFound);
  v1::ReleaseAddressRequest rel;
  rel.set_name("accounts/cs/addresses/192.0.2.1");
  EXPECT_EQ(Await<MutationProgress>([&](Callback<MutationProgress> cb) {
              p_->ReleaseAddress(Ctx(), rel, std::move(cb));
            }).status().code(),
            absl::StatusCode::kNotFound);
  rel.set_allow_missing(true);
  EXPECT_TRUE(Await<MutationProgress>([&](Callback<MutationProgress> cb) {
                p_->ReleaseAddress(Ctx(), rel, std::move(cb));
              }).ok());
}

// A running server's DHCP lease is among the addresses (IN_USE, no
// subscription) and cannot be released.
TEST_F(Networking, DynamicAddressesOfRunningServers) {
  ASSERT_NE(p_, nullptr);
  v1::CreateInstanceRequest ci;
  ci.set_parent("accounts/cs");
  ci.set_instance_id("dhcp");
  ci.mutable_instance()->set_cpu_mhz(1000);
  ci.mutable_instance()->set_memory_bytes(int64_t{1} << 30);
  auto running = Finish<v1::Instance>(
      [&](Callback<MutationProgress> cb) { p_->CreateInstance(Ctx(), ci, std::move(cb)); });
  ASSERT_EQ(running.network_interfaces_size(), 1);  // CloudSigma's default public DHCP NIC
  const std::string lease = running.network_interfaces(0).address();
  ASSERT_FALSE(lease.empty());
  EXPECT_TRUE(running.network_interfaces(0).network().empty());
  v1::ListAddressesRequest la;
  la.set_parent("accounts/cs");
  auto list = Await<v1::ListAddressesResponse>([&](Callback<v1::ListAddressesResponse> cb) {
    p_->ListAddresses(Ctx(), la, std::move(cb));
  });
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->addresses_size(), 1);
  EXPECT_EQ(list->addresses(0).address(), lease);
  EXPECT_EQ(list->addresses(0).state(), v1::Address::IN_USE);
  EXPECT_EQ(list->addresses(0).instance(), "accounts/cs/instances/dhcp");
  EXPECT_TRUE(list->addresses(0).provider_details().fields().at("dynamic").bool_value());
  v1::ReleaseAddressRequest rel;
  rel.set_name(list->addresses(0).name());
  auto refused = Await<MutationProgress>(
      [&](Callback<MutationProgress> cb) { p_->ReleaseAddress(Ctx(), rel, std::move(cb)); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Labels and metadata items never overwrite each other (both live in the
// server's meta, labels under cloudplane_label_).
TEST_F(Networking, LabelsAndMetadataStayApart) {
  ASSERT_NE(p_, nullptr);
  v1::CreateInstanceRequest ci;
  ci.set_parent("accounts/cs");
  ci.set_instance_id("apart");
  ci.set_start(false);
  ci.mutable_instance()->set_cpu_mhz(1000);
  ci.mutable_instance()->set_memory_bytes(int64_t{1} << 30);
  (*ci.mutable_instance()->mutable_labels())["role"] = "web";
  Finish<v1::Instance>(
      [&](Callback<MutationProgress> cb) { p_->CreateInstance(Ctx(), ci, std::move(cb)); });
  v1::UpdateInstanceMetadataRequest um;
  um.mutable_metadata()->set_name("accounts/cs/instances/apart/metadata");
  (*um.mutable_metadata()->mutable_items())["boot"] = "1";
  auto items = Finish<v1::InstanceMetadata>([&](Callback<MutationProgress> cb) {
    p_->UpdateInstanceMetadata(Ctx(), um, std::move(cb));
  });
  EXPECT_THAT(items.items(), testing::UnorderedElementsAre(testing::Pair("boot", "1")));
  EXPECT_THAT(GetServer("accounts/cs/instances/apart").labels(),
              testing::UnorderedElementsAre(testing::Pair("role", "web")));
  v1::UpdateInstanceRequest ui;
  ui.mutable_instance()->set_name("accounts/cs/instances/apart");
  ui.mutable_update_mask()->add_paths("labels");
  Finish<v1::Instance>(
      [&](Callback<MutationProgress> cb) { p_->UpdateInstance(Ctx(), ui, std::move(cb)); });
  EXPECT_TRUE(GetServer("accounts/cs/instances/apart").labels().empty());
  v1::GetInstanceMetadataRequest gm;
  gm.set_name("accounts/cs/instances/apart/metadata");
  auto after = Await<v1::InstanceMetadata>([&](Callback<v1::InstanceMetadata> cb) {
    p_->GetInstanceMetadata(Ctx(), gm, std::move(cb));
  });
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(after->items(), testing::UnorderedElementsAre(testing::Pair("boot", "1")));
}

// Boot from a library image (issue 14): clone, wait, create with the clone
// as boot drive, start; one operation.
class ImageBoot : public Networking {
 protected:
  std::vector<v1::Volume> Volumes() {
    v1::ListVolumesRequest lv;
    lv.set_parent("accounts/cs");
    auto list = Await<v1::ListVolumesResponse>(
        [&](Callback<v1::ListVolumesResponse> cb) { p_->ListVolumes(Ctx(), lv, std::move(cb)); });
    EXPECT_TRUE(list.ok()) << list.status();
    return list.ok() ? std::vector<v1::Volume>(list->volumes().begin(), list->volumes().end())
                     : std::vector<v1::Volume>{};
  }
  // The first disk image ListImages shows.
  std::string DiskImage() {
    v1::ListImagesRequest li;
    li.set_parent("accounts/cs");
    auto images = Await<v1::ListImagesResponse>(
        [&](Callback<v1::ListImagesResponse> cb) { p_->ListImages(Ctx(), li, std::move(cb)); });
    EXPECT_TRUE(images.ok()) << images.status();
    if (!images.ok() || images->images().empty()) return "";
    return images->images(0).name();  // the emulator's Debian 12 disk
  }
  v1::CreateInstanceRequest Create(const std::string& id, const std::string& image) {
    v1::CreateInstanceRequest ci;
    ci.set_parent("accounts/cs");
    ci.set_instance_id(id);
    ci.mutable_instance()->set_cpu_mhz(1000);
    ci.mutable_instance()->set_memory_bytes(int64_t{1} << 30);
    ci.mutable_instance()->set_image(image);
    return ci;
  }
  // Waits until the account has no drive (deletes end asynchronously).
  bool NoVolumesLeft() {
    for (int i = 0; i < 100; ++i) {
      if (Volumes().empty()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }
};

TEST_F(ImageBoot, CreateFromImageRunsWithTheCloneAsBootDrive) {
  ASSERT_NE(p_, nullptr);
  const std::string image = DiskImage();
  ASSERT_FALSE(image.empty());
  v1::CreateInstanceRequest ci = Create("boot-1", image);
  // The first answer is the clone, still settling; one operation goes on
  // through it to the server.
  auto first = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p_->CreateInstance(Ctx("operations/boot"), ci, std::move(cb));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(first->done);
  absl::StatusOr<PollToken> token = ReadPollToken(first->poll_token);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->kind(), PollToken::DRIVE);
  EXPECT_EQ(token->goal(), PollToken::BOOT_DRIVE_READY);
  EXPECT_TRUE(token->boot().vnc_password().empty());  // chosen at the POST, never stored
  // A re-drive before the server exists adopts the clone (no second one).
  auto instance = Finish<v1::Instance>([&](Callback<MutationProgress> cb) {
    p_->CreateInstance(Ctx("operations/boot"), ci, std::move(cb));
  });
  EXPECT_EQ(instance.name(), "accounts/cs/instances/boot-1");
  EXPECT_EQ(instance.state(), v1::Instance::RUNNING);
  EXPECT_EQ(instance.image(), image);
  std::vector<v1::Volume> volumes = Volumes();
  ASSERT_EQ(volumes.size(), 1u);
  ASSERT_EQ(instance.volumes_size(), 1);
  EXPECT_EQ(instance.volumes(0).volume(), volumes[0].name());
  EXPECT_EQ(instance.volumes(0).device(), "virtio");
  EXPECT_EQ(instance.volumes(0).channel(), "0:0");
  EXPECT_EQ(instance.volumes(0).boot_order(), 1);
  EXPECT_EQ(volumes[0].size_bytes(), int64_t{10} << 30);  // the image's size
  // A re-drive after the server exists converges on it.
  auto again = Finish<v1::Instance>([&](Callback<MutationProgress> cb) {
    p_->CreateInstance(Ctx("operations/boot"), ci, std::move(cb));
  });
  EXPECT_EQ(again.name(), instance.name());
  EXPECT_EQ(Volumes().size(), 1u);
  // DeleteInstance deletes the server only: the clone stays a volume of the
  // account (unattached) until DeleteVolume.
  v1::StopInstanceRequest stop;
  stop.set_name(instance.name());
  stop.set_force(true);
  Finish<v1::Instance>(
      [&](Callback<MutationProgress> cb) { p_->StopInstance(Ctx(), stop, std::move(cb)); });
  v1::DeleteInstanceRequest del;
  del.set_name(instance.name());
  Finish<google::protobuf::Empty>(
      [&](Callback<MutationProgress> cb) { p_->DeleteInstance(Ctx(), del, std::move(cb)); });
  volumes = Volumes();
  ASSERT_EQ(volumes.size(), 1u);
  EXPECT_EQ(volumes[0].name(), instance.volumes(0).volume());
  v1::DeleteVolumeRequest dv;
  dv.set_name(volumes[0].name());
  Finish<google::protobuf::Empty>(
      [&](Callback<MutationProgress> cb) { p_->DeleteVolume(Ctx(), dv, std::move(cb)); });
  EXPECT_TRUE(NoVolumesLeft());
}

TEST_F(ImageBoot, AServerCloudSigmaRefusesLeavesNoClone) {
  ASSERT_NE(p_, nullptr);
  const std::string image = DiskImage();
  ASSERT_FALSE(image.empty());
  // 100 MHz is below CloudSigma's minimum: the server POST is refused after
  // the clone was made, and the clone is deleted again.
  v1::CreateInstanceRequest ci = Create("too-slow", image);
  ci.mutable_instance()->set_cpu_mhz(100);
  auto end = RunToEnd(*p_, Await<MutationProgress>([&](Callback<MutationProgress> cb) {
                        p_->CreateInstance(Ctx("operations/slow"), ci, std::move(cb));
                      }));
  EXPECT_EQ(end.status().code(), absl::StatusCode::kInvalidArgument) << end.status();
  EXPECT_TRUE(NoVolumesLeft());
  v1::ListInstancesRequest li;
  li.set_parent("accounts/cs");
  auto list = Await<v1::ListInstancesResponse>(
      [&](Callback<v1::ListInstancesResponse> cb) { p_->ListInstances(Ctx(), li, std::move(cb)); });
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->instances_size(), 0);
}

TEST_F(ImageBoot, BadAndUnknownImagesMakeNothing) {
  ASSERT_NE(p_, nullptr);
  v1::CreateInstanceRequest ci = Create("bad", "accounts/cs/images/debian");
  auto r = Await<MutationProgress>(
      [&](Callback<MutationProgress> cb) { p_->CreateInstance(Ctx(), ci, std::move(cb)); });
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = GetBadRequest(r.status());
  ASSERT_TRUE(bad.has_value());
  ASSERT_EQ(bad->field_violations_size(), 1);
  EXPECT_EQ(bad->field_violations(0).field(), "instance.image");
  ci = Create("unknown", "accounts/cs/images/10619300-edda-42ba-91e0-7e3df0689d00");
  r = Await<MutationProgress>([&](Callback<MutationProgress> cb) {
    p_->CreateInstance(Ctx("operations/unknown"), ci, std::move(cb));
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_TRUE(Volumes().empty());
}

// Lists page with CloudSigma's limit/offset: one list request per API page
// (counted by the emulator, GET /emulator/list-requests), the page's drive
// references looked up by uuid, and the changes between pages that
// ListRendered (cloudsigma_provider.h) describes.
class Paging : public CloudSigmaAdapterTest {
 protected:
  // No ChangeSink, so no feed whose own lists would be counted.
  std::unique_ptr<Provider> MakeQuiet() {
    AccountSetup setup;
    setup.account = "cs";
    setup.endpoint = emu_.api();
    setup.secret = "user@example.com:pw";
    setup.loop = &loop_;
    auto p = CreateCloudSigmaProvider(setup);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  // Runs `body` (Python 3) with `rest(method, path, body=None)` talking to
  // the emulator; answers what it prints.
  std::string Python(const std::string& body) {
    const std::string file = absl::StrCat(testing::TempDir(), "/paging_", ++scripts_, ".py");
    FILE* f = fopen(file.c_str(), "w");
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return "";
    const std::string script = absl::StrCat(R"(import base64, json, time, urllib.request
API = ")", emu_.api(), R"("
def rest(method, path, body=None):
    url = path if path.startswith("http") else API + path
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(b"user@example.com:pw").decode())
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, None
)",
                                              body);
    fputs(script.c_str(), f);
    fclose(f);
    FILE* out = popen(absl::StrCat("python3 ", file).c_str(), "r");
    std::string text;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, out)) text.append(buf, n);
    EXPECT_EQ(pclose(out), 0) << text;
    return std::string(absl::StripAsciiWhitespace(text));
  }

  // `count` servers web-0… (meta cloudplane_id), each with its own drive
  // disk-0… attached; their uuids in creation order.
  std::vector<std::string> MakeServers(int count) {
    return absl::StrSplit(Python(absl::StrCat("n = ", count, R"(
_, made = rest("POST", "/drives/", {"objects": [
    {"name": f"d{i}", "size": 1 << 30, "media": "disk", "meta": {"cloudplane_id": f"disk-{i}"}}
    for i in range(n)]})
drives = [d["uuid"] for d in made["objects"]]
while any(rest("GET", f"/drives/{u}/")[1]["status"] != "unmounted" for u in drives):
    time.sleep(0.05)
_, made = rest("POST", "/servers/", {"objects": [
    {"name": f"s{i}", "cpu": 1000, "mem": 512 << 20, "vnc_password": "pw",
     "meta": {"cloudplane_id": f"web-{i}"},
     "drives": [{"drive": drives[i], "device": "virtio", "dev_channel": "0:0", "boot_order": 1}]}
    for i in range(n)]})
print(" ".join(s["uuid"] for s in made["objects"]))
)")),
                           ' ', absl::SkipEmpty());
  }

  void DeleteServer(const std::string& uuid) {
    Python(absl::StrCat("u = '", uuid, R"('
assert rest("DELETE", f"/servers/{u}/")[0] == 204
while rest("GET", f"/servers/{u}/")[0] != 404:
    time.sleep(0.05)
)"));
  }

  // The emulator's count of list requests of `collection` so far.
  int ListRequests(const std::string& collection) {
    int n = -1;
    EXPECT_TRUE(absl::SimpleAtoi(Python(absl::StrCat(R"(base = API.split("/api/2.0")[0]
_, counts = rest("GET", base + "/emulator/list-requests")
print(counts.get(")",
                                                     collection, R"(", 0))
)")),
                                 &n));
    return n;
  }

  absl::StatusOr<v1::ListInstancesResponse> Page(int size, const std::string& token) {
    v1::ListInstancesRequest r;
    r.set_parent("accounts/cs");
    r.set_page_size(size);
    r.set_page_token(token);
    return Await<v1::ListInstancesResponse>([&](Callback<v1::ListInstancesResponse> cb) {
      p_->ListInstances(Ctx(), r, std::move(cb));
    });
  }

  // Every page from the first: the names in order and the number of pages.
  std::vector<std::string> All(int size, int* pages) {
    std::vector<std::string> names;
    std::string token;
    *pages = 0;
    do {
      auto page = Page(size, token);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->instances_size(), size);
      for (const v1::Instance& i : page->instances()) names.push_back(i.name());
      token = page->next_page_token();
    } while (!token.empty() && ++*pages < 100);
    if (token.empty()) ++*pages;
    return names;
  }

  static std::vector<std::string> Names(std::vector<int> ids) {
    std::vector<std::string> out;
    for (int id : ids) out.push_back(absl::StrCat("accounts/cs/instances/web-", id));
    return out;
  }

  int scripts_ = 0;
  std::unique_ptr<Provider> p_ = MakeQuiet();
};

TEST_F(Paging, EachPageIsOneProviderPageAndEveryServerComesOnce) {
  ASSERT_NE(p_, nullptr);
  ASSERT_EQ(MakeServers(12).size(), 12u);
  const int servers_before = ListRequests("servers"), drives_before = ListRequests("drives");
  int pages = 0;
  std::vector<std::string> names = All(4, &pages);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, Names({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  // 3 pages of 4: 3 list requests of servers, and 3 of drives (each page's
  // 4 references by uuid), not a list of every drive per page.
  EXPECT_EQ(ListRequests("servers") - servers_before, 3);
  EXPECT_EQ(ListRequests("drives") - drives_before, 3);
  // Every instance shows its drive by its chosen id.
  auto page = Page(12, "");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->instances_size(), 12);
  EXPECT_TRUE(page->next_page_token().empty());
  for (int n = 0; n < 12; ++n) {
    ASSERT_EQ(page->instances(n).volumes_size(), 1);
    EXPECT_EQ(page->instances(n).volumes(0).volume(), absl::StrCat("accounts/cs/volumes/disk-", n));
  }
  // A page of 5 over 12: 5, 5, 2, and one list request each.
  const int before = ListRequests("servers");
  names = All(5, &pages);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), 12u);
  EXPECT_EQ(ListRequests("servers") - before, 3);
  // Volumes page the same way.
  v1::ListVolumesRequest lv;
  lv.set_parent("accounts/cs");
  lv.set_page_size(5);
  std::vector<std::string> volumes;
  for (int n = 0; n < 10; ++n) {
    auto vp = Await<v1::ListVolumesResponse>(
        [&](Callback<v1::ListVolumesResponse> cb) { p_->ListVolumes(Ctx(), lv, std::move(cb)); });
    ASSERT_TRUE(vp.ok()) << vp.status();
    for (const v1::Volume& v : vp->volumes()) volumes.push_back(v.name());
    if (vp->next_page_token().empty()) break;
    lv.set_page_token(vp->next_page_token());
  }
  EXPECT_EQ(volumes.size(), 12u);
  EXPECT_EQ(std::set<std::string>(volumes.begin(), volumes.end()).size(), 12u);
}

TEST_F(Paging, ChangesBetweenPages) {
  ASSERT_NE(p_, nullptr);
  std::vector<std::string> uuids = MakeServers(12);
  ASSERT_EQ(uuids.size(), 12u);
  auto first = Page(4, "");
  ASSERT_TRUE(first.ok()) << first.status();
  // A server created meanwhile comes last (CloudSigma lists in creation
  // order); one deleted after the page is not listed; nothing twice.
  Python(R"(rest("POST", "/servers/", {"objects": [{"name": "late", "cpu": 1000,
    "mem": 512 << 20, "vnc_password": "pw", "meta": {"cloudplane_id": "web-12"}}]}))");
  DeleteServer(uuids[9]);
  std::vector<std::string> names;
  for (const v1::Instance& i : first->instances()) names.push_back(i.name());
  std::string token = first->next_page_token();
  for (int n = 0; n < 10 && !token.empty(); ++n) {
    auto page = Page(4, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Instance& i : page->instances()) names.push_back(i.name());
    token = page->next_page_token();
  }
  EXPECT_EQ(names, Names({0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12}));
  // A server deleted before the last one answered moves the offsets back
  // past what the client has seen: ABORTED, list again.
  first = Page(4, "");
  ASSERT_TRUE(first.ok()) << first.status();
  DeleteServer(uuids[1]);
  auto next = Page(4, first->next_page_token());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kAborted) << next.status();
  auto info = GetErrorInfo(next.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "CONCURRENT_MODIFICATION");
  int pages = 0;
  EXPECT_EQ(All(4, &pages), Names({0, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12}));
}

TEST_F(Paging, ForeignAndGarbageTokensAreInvalidArgumentNamingPageToken) {
  ASSERT_NE(p_, nullptr);
  ASSERT_EQ(MakeServers(3).size(), 3u);
  v1::ListVolumesRequest lv;
  lv.set_parent("accounts/cs");
  lv.set_page_size(1);
  auto volumes = Await<v1::ListVolumesResponse>(
      [&](Callback<v1::ListVolumesResponse> cb) { p_->ListVolumes(Ctx(), lv, std::move(cb)); });
  ASSERT_TRUE(volumes.ok()) << volumes.status();
  ASSERT_FALSE(volumes->next_page_token().empty());
  const int before = ListRequests("servers");
  for (const std::string& token :
       {std::string("garbage"), std::string("AAAA"), volumes->next_page_token(),
        volumes->next_page_token().substr(0, volumes->next_page_token().size() - 4)}) {
    auto page = Page(2, token);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    auto bad = GetBadRequest(page.status());
    ASSERT_TRUE(bad.has_value()) << token;
    ASSERT_EQ(bad->field_violations_size(), 1);
    EXPECT_EQ(bad->field_violations(0).field(), "page_token");
  }
  EXPECT_EQ(Page(-1, "").status().code(), absl::StatusCode::kInvalidArgument);
  // Refused before anything is sent.
  EXPECT_EQ(ListRequests("servers"), before);
}

}  // namespace
}  // namespace cloudplane::adapters::cloudsigma
