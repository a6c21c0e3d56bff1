// The OpenNebula Provider on the fake HTTP transport: what it sends (the
// XML-RPC method and parameters, session first), how it reads oned's
// answers (recorded documents of @shared_fixtures), how errors map, and what
// validate_only and an expired deadline leave unsent.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/http/fake_http_transport.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/testing/await.h"
#include "adapters/common/testing/field_contract_check.h"
#include "adapters/common/testing/fixtures.h"
#include "adapters/common/xml/xml.h"
#include "adapters/common/xmlrpc/xmlrpc.h"
#include "adapters/opennebula/opennebula_adapter.h"
#include "adapters/opennebula/opennebula_tokens.pb.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::opennebula {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using testutil::Await;
using xmlrpc::Value;

constexpr char kSession[] = "oneadmin:s3cret";

// An XML-RPC response as oned writes it: [true, result, 0].
http::HttpResponse Success(Value result) {
  http::HttpResponse r;
  r.status = 200;
  r.body = *xmlrpc::EncodeResponse(Value::Array({Value::Bool(true), std::move(result),
                                                 Value::Int(0)}));
  return r;
}

// A 6.x failure array: [false, message, code, object id, -1].
http::HttpResponse Failure(int64_t code, std::string message) {
  http::HttpResponse r;
  r.status = 200;
  r.body = *xmlrpc::EncodeResponse(Value::Array({Value::Bool(false),
                                                 Value::String(std::move(message)),
                                                 Value::Int(code), Value::Int(42),
                                                 Value::Int(-1)}));
  return r;
}

std::string VmXml(int id, absl::string_view name, int state, int lcm) {
  return absl::StrCat("<VM><ID>", id, "</ID><NAME>", name, "</NAME><STATE>", state,
                      "</STATE><LCM_STATE>", lcm, "</LCM_STATE></VM>");
}

// A <methodCall> as sent: the method name and every parameter.
struct SentCall {
  std::string method;
  std::vector<Value> params;
};

SentCall Decode(const http::FakeHttpTransport::SentRequest& sent) {
  SentCall call;
  absl::StatusOr<xml::Document> doc = xml::Parse(sent.request.body);
  EXPECT_TRUE(doc.ok()) << doc.status();
  if (!doc.ok()) return call;
  EXPECT_EQ(doc->Root().Name(), "methodCall");
  call.method = std::string(doc->Root().ChildText("methodName"));
  if (const xml::Node* params = doc->Root().Child("params"); params != nullptr) {
    for (const xml::Node* param : params->ChildrenNamed("param")) {
      const xml::Node* value = param->Child("value");
      EXPECT_NE(value, nullptr);
      if (value == nullptr) continue;
      absl::StatusOr<Value> v = xmlrpc::DecodeValue(*value);
      EXPECT_TRUE(v.ok()) << v.status();
      if (v.ok()) call.params.push_back(*std::move(v));
    }
  }
  return call;
}

class OpenNebulaAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = http::FakeHttpTransport::Create();
    AccountSetup setup;
    setup.account = "one";
    setup.endpoint = "http://one.test:2633";  // no path: /RPC2 is added
    setup.secret = kSession;
    auto provider = CreateOpenNebulaProvider(setup, fake_);
    ASSERT_TRUE(provider.ok()) << provider.status();
    provider_ = *std::move(provider);
    ctx_.account = "one";
    ctx_.deadline = absl::Now() + absl::Seconds(30);
    ctx_.operation = "operations/op-1";
  }

  std::vector<SentCall> SentCalls() const {
    std::vector<SentCall> calls;
    for (const auto& sent : fake_->Sent()) calls.push_back(Decode(sent));
    return calls;
  }

  absl::StatusOr<v1::Instance> GetInstance(const std::string& name) {
    v1::GetInstanceRequest request;
    request.set_name(name);
    return Await<v1::Instance>(
        [&](auto cb) { provider_->GetInstance(ctx_, request, std::move(cb)); });
  }

  absl::StatusOr<MutationProgress> Poll(const std::string& token) {
    return Await<MutationProgress>(
        [&](auto cb) { provider_->PollOperation(ctx_, token, std::move(cb)); });
  }

  std::shared_ptr<http::FakeHttpTransport> fake_;
  std::unique_ptr<Provider> provider_;
  CallContext ctx_;
};

TEST_F(OpenNebulaAdapterTest, GetInstanceSendsOneVmInfoWithTheSessionFirst) {
  fake_->Expect("POST", "/RPC2", Success(Value::String(VmXml(6, "web", 3, 3))));
  ASSERT_TRUE(GetInstance("accounts/one/instances/6").ok());
  const auto sent = fake_->Sent();
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].base_url, "http://one.test:2633");
  EXPECT_EQ(sent[0].request.method, "POST");
  EXPECT_EQ(sent[0].request.path_and_query, "/RPC2");
  EXPECT_THAT(sent[0].request.headers,
              ElementsAre(std::make_pair(std::string("Content-Type"), std::string("text/xml"))));
  const SentCall call = Decode(sent[0]);
  EXPECT_EQ(call.method, "one.vm.info");
  EXPECT_THAT(call.params, ElementsAre(Value::String(kSession), Value::Int(6)));
}

TEST_F(OpenNebulaAdapterTest, GetInstanceDecodesARecordedVm) {
  fake_->Expect("POST", "/RPC2",
                Success(Value::String(
                    testutil::ReadFixture("opennebula/legacy-ruby-oca-fixtures/vm.xml"))));
  absl::StatusOr<v1::Instance> vm = GetInstance("accounts/one/instances/6");
  ASSERT_TRUE(vm.ok()) << vm.status();
  // NAME vm-example is a valid id, so it names the instance.
  EXPECT_EQ(vm->name(), "accounts/one/instances/vm-example");
  EXPECT_EQ(vm->display_name(), "vm-example");
  EXPECT_EQ(vm->state(), v1::Instance::RUNNING);
  EXPECT_EQ(vm->provider_state(), "ACTIVE/RUNNING");
  EXPECT_EQ(vm->cpu_count(), 1);
  EXPECT_EQ(vm->memory_bytes(), int64_t{512} << 20);
  EXPECT_EQ(vm->create_time().seconds(), 1277375180);
  EXPECT_EQ(vm->provider_details().fields().at("deployId").string_value(), "dummy");
  EXPECT_EQ(vm->etag(), "3-3-1277729095");
}

TEST_F(OpenNebulaAdapterTest, ListInstancesReadsTheExtendedPoolAndPagesByName) {
  fake_->Expect("POST", "/RPC2",
                Success(Value::String(
                    testutil::ReadFixture("opennebula/legacy-ruby-oca-fixtures/vmpool.xml"))));
  v1::ListInstancesRequest request;
  request.set_page_size(2);
  absl::StatusOr<v1::ListInstancesResponse> page = Await<v1::ListInstancesResponse>(
      [&](auto cb) { provider_->ListInstances(ctx_, request, std::move(cb)); });
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->instances_size(), 2);
  EXPECT_EQ(page->instances(0).name(), "accounts/one/instances/vm-example");
  EXPECT_EQ(page->instances(1).name(), "accounts/one/instances/vm-in");
  EXPECT_FALSE(page->next_page_token().empty());
  // One short page: the whole pool in one call, in pagination mode (offset
  // 0, page size 100 given negative, all states but DONE).
  const std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].method, "one.vmpool.infoextended");
  EXPECT_THAT(calls[0].params, ElementsAre(Value::String(kSession), Value::Int(-2), Value::Int(0),
                                           Value::Int(-100), Value::Int(-1)));
}

TEST_F(OpenNebulaAdapterTest, AFullPoolPageAsksForTheNextOffset) {
  std::string first = "<VM_POOL>";
  for (int i = 0; i < 100; ++i) absl::StrAppend(&first, VmXml(i, absl::StrCat("vm-", i), 3, 3));
  first += "</VM_POOL>";
  fake_->Expect("POST", "/RPC2", Success(Value::String(first)));
  fake_->Expect("POST", "/RPC2",
                Success(Value::String(absl::StrCat("<VM_POOL>", VmXml(100, "last", 8, 0),
                                                   "</VM_POOL>"))));
  v1::ListInstancesRequest request;
  request.set_page_size(500);
  absl::StatusOr<v1::ListInstancesResponse> page = Await<v1::ListInstancesResponse>(
      [&](auto cb) { provider_->ListInstances(ctx_, request, std::move(cb)); });
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->instances_size(), 101);
  const std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[0].params[2], Value::Int(0));
  EXPECT_EQ(calls[1].params[2], Value::Int(100));
}

TEST_F(OpenNebulaAdapterTest, NoExistsIsNotFoundNamingTheInstance) {
  fake_->Expect("POST", "/RPC2",
                Failure(0x400, "[one.vm.info] Error getting virtual machine [42]."));
  absl::StatusOr<v1::Instance> vm = GetInstance("accounts/one/instances/42");
  ASSERT_EQ(vm.status().code(), absl::StatusCode::kNotFound) << vm.status();
  EXPECT_EQ(vm.status().message(), "instance accounts/one/instances/42 does not exist");
  auto info = GetErrorInfo(vm.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "RESOURCE_NOT_FOUND");
  EXPECT_EQ(info->metadata().at("resource"), "accounts/one/instances/42");
}

TEST_F(OpenNebulaAdapterTest, TransportErrorsArePrefixedWithTheMethod) {
  fake_->Expect("POST", "/RPC2", absl::UnavailableError("connection refused"));
  absl::StatusOr<v1::Instance> vm = GetInstance("accounts/one/instances/6");
  ASSERT_EQ(vm.status().code(), absl::StatusCode::kUnavailable) << vm.status();
  EXPECT_EQ(vm.status().message(), "one.vm.info: connection refused");
  EXPECT_EQ(GetErrorInfo(vm.status())->reason(), "PROVIDER_UNAVAILABLE");
  // An HTTP error status is the provider's answer, mapped by the wire layer.
  http::HttpResponse busy;
  busy.status = 503;
  fake_->Expect("POST", "/RPC2", busy);
  EXPECT_EQ(GetInstance("accounts/one/instances/6").status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(OpenNebulaAdapterTest, AnExpiredDeadlineSendsNothing) {
  ctx_.deadline = absl::Now() - absl::Seconds(1);
  absl::StatusOr<v1::Instance> vm = GetInstance("accounts/one/instances/6");
  ASSERT_EQ(vm.status().code(), absl::StatusCode::kDeadlineExceeded) << vm.status();
  EXPECT_THAT(std::string(vm.status().message()), StartsWith("one.vm.info: "));
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

TEST_F(OpenNebulaAdapterTest, ValidateOnlyChecksLocallyAndSendsNothing) {
  ctx_.validate_only = true;
  v1::CreateFirewallRequest create;
  create.set_firewall_id("web");
  v1::FirewallRule* rule = create.mutable_firewall()->add_rules();
  rule->set_protocol("tcp");
  rule->set_port_range_start(443);
  absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewall(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->done);
  EXPECT_TRUE(created->result.Is<v1::Firewall>());

  v1::StopInstanceRequest stop;
  stop.set_name("accounts/one/instances/web");
  absl::StatusOr<MutationProgress> stopped = Await<MutationProgress>(
      [&](auto cb) { provider_->StopInstance(ctx_, stop, std::move(cb)); });
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->done);
  EXPECT_TRUE(stopped->result.Is<v1::Instance>());
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

TEST_F(OpenNebulaAdapterTest, ValidateOnlyRefusesWhatTheRealCallRefuses) {
  v1::CreateFirewallRequest create;
  create.set_firewall_id("web");
  create.mutable_firewall()->add_rules()->set_protocol("gre");  // not an OpenNebula protocol
  v1::StopInstanceRequest stop;
  stop.set_name("accounts/one/instances/web");
  stop.set_force(true);  // suspend has no hard variant
  (*stop.mutable_provider_options()->mutable_fields())["action"].set_string_value("suspend");
  for (bool validate_only : {true, false}) {
    SCOPED_TRACE(validate_only);
    ctx_.validate_only = validate_only;
    absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
        [&](auto cb) { provider_->CreateFirewall(ctx_, create, std::move(cb)); });
    ASSERT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(GetBadRequest(created.status())->field_violations(0).field(),
              "firewall.rules[0].protocol");
    absl::StatusOr<MutationProgress> stopped = Await<MutationProgress>(
        [&](auto cb) { provider_->StopInstance(ctx_, stop, std::move(cb)); });
    ASSERT_EQ(stopped.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(GetBadRequest(stopped.status())->field_violations(0).field(), "force");
  }
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

TEST_F(OpenNebulaAdapterTest, StartAnswersATypedTokenThatPollingFollows) {
  fake_->Expect("POST", "/RPC2", Success(Value::String(VmXml(6, "web", 8, 0))));  // POWEROFF
  fake_->Expect("POST", "/RPC2", Success(Value::Int(6)));
  v1::StartInstanceRequest start;
  start.set_name("accounts/one/instances/6");
  absl::StatusOr<MutationProgress> started = Await<MutationProgress>(
      [&](auto cb) { provider_->StartInstance(ctx_, start, std::move(cb)); });
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_FALSE(started->done);
  EXPECT_EQ(started->provider_operation, "6");
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[1].method, "one.vm.action");
  EXPECT_THAT(calls[1].params,
              ElementsAre(Value::String(kSession), Value::String("resume"), Value::Int(6)));

  absl::StatusOr<VmToken> token = kit::UnpackToken<VmToken>(started->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->version(), 1u);
  EXPECT_EQ(token->vm_id(), 6);
  EXPECT_EQ(token->instance_id(), "web");
  EXPECT_EQ(token->target(), VM_TARGET_RUNNING);

  // Still booting: the same token again.
  fake_->Expect("POST", "/RPC2", Success(Value::String(VmXml(6, "web", 3, 2))));
  absl::StatusOr<MutationProgress> booting = Poll(started->poll_token);
  ASSERT_TRUE(booting.ok()) << booting.status();
  EXPECT_FALSE(booting->done);
  EXPECT_EQ(booting->poll_token, started->poll_token);
  // Running: done, with the Instance.
  fake_->Expect("POST", "/RPC2", Success(Value::String(VmXml(6, "web", 3, 3))));
  absl::StatusOr<MutationProgress> running = Poll(started->poll_token);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_TRUE(running->done);
  v1::Instance instance;
  ASSERT_TRUE(running->result.UnpackTo(&instance));
  EXPECT_EQ(instance.name(), "accounts/one/instances/web");
  EXPECT_EQ(instance.state(), v1::Instance::RUNNING);
  calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(4));
  EXPECT_EQ(calls[3].method, "one.vm.info");
  EXPECT_THAT(calls[3].params, ElementsAre(Value::String(kSession), Value::Int(6)));
}

// Every XML-RPC call is a POST: the `info` calls are marked as reads, which
// the kit may send again (kit/guard.h), and their answer must parse; the
// actions are sent once.
TEST_F(OpenNebulaAdapterTest, InfoCallsAreReadsTheKitMayRepeatActionsAreNot) {
  fake_->Expect("POST", "/RPC2", Success(Value::String(VmXml(6, "web", 8, 0))));  // POWEROFF
  fake_->Expect("POST", "/RPC2", Success(Value::Int(6)));
  v1::StartInstanceRequest start;
  start.set_name("accounts/one/instances/6");
  ASSERT_TRUE(Await<MutationProgress>([&](auto cb) {
                provider_->StartInstance(ctx_, start, std::move(cb));
              }).ok());
  const auto sent = fake_->Sent();
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_EQ(Decode(sent[0]).method, "one.vm.info");
  EXPECT_TRUE(http::IsIdempotent(sent[0].request));
  ASSERT_TRUE(sent[0].request.validate != nullptr);
  EXPECT_TRUE(sent[0].request.validate(Success(Value::Int(1))).ok());
  EXPECT_TRUE(sent[0].request.validate(Failure(0x400, "[one.vm.info] Error")).ok());
  EXPECT_FALSE(sent[0].request.validate(http::HttpResponse{200, {}, "<methodResponse><par"}).ok());
  EXPECT_EQ(Decode(sent[1]).method, "one.vm.action");
  EXPECT_FALSE(http::IsIdempotent(sent[1].request));
}

// With the account's event loop, the kit sends a garbled read again.
TEST_F(OpenNebulaAdapterTest, AGarbledReadIsSentAgain) {
  EventLoop loop;
  AccountSetup setup;
  setup.account = "one";
  setup.endpoint = "http://one.test:2633";
  setup.secret = kSession;
  setup.loop = &loop;
  setup.limits.initial_backoff = absl::Milliseconds(1);
  auto provider = CreateOpenNebulaProvider(setup, fake_);
  ASSERT_TRUE(provider.ok()) << provider.status();
  fake_->Expect("POST", "/RPC2", http::HttpResponse{200, {}, "<methodResponse><params><par"});
  fake_->Expect("POST", "/RPC2", Success(Value::String(VmXml(6, "web", 3, 3))));
  v1::GetInstanceRequest request;
  request.set_name("accounts/one/instances/6");
  absl::StatusOr<v1::Instance> instance = Await<v1::Instance>(
      [&](auto cb) { (*provider)->GetInstance(ctx_, request, std::move(cb)); });
  ASSERT_TRUE(instance.ok()) << instance.status();
  EXPECT_EQ(instance->state(), v1::Instance::RUNNING);
  EXPECT_THAT(fake_->Sent(), SizeIs(2));
}

// A create whose answer was lost (oned made the VM, the connection reset
// before the answer came back) is called again by the runner with the same
// operation: it finds the VM by the CLOUDPLANE_OPERATION attribute the first
// call wrote and resumes it; nothing is instantiated twice.
TEST_F(OpenNebulaAdapterTest, ACreateWhoseAnswerWasLostIsFoundByItsOperationTag) {
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/one");
  create.mutable_instance()->set_image("accounts/one/images/0");
  fake_->Expect("POST", "/RPC2", Success(Value::String("<VM_POOL></VM_POOL>")));
  fake_->Expect("POST", "/RPC2", absl::UnavailableError("connection reset by peer"));
  absl::StatusOr<MutationProgress> lost = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(ctx_, create, std::move(cb)); });
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[0].method, "one.vmpool.infoextended");
  EXPECT_EQ(calls[1].method, "one.template.instantiate");
  ASSERT_THAT(calls[1].params, SizeIs(6));
  EXPECT_THAT(calls[1].params[4].AsString(), HasSubstr("CLOUDPLANE_OPERATION=\"operations/op-1\""));

  // oned made VM 7 from it; its USER_TEMPLATE carries the tag.
  fake_->Expect("POST", "/RPC2",
                Success(Value::String(
                    "<VM_POOL><VM><ID>7</ID><NAME>web-7</NAME><STATE>3</STATE>"
                    "<LCM_STATE>2</LCM_STATE><TEMPLATE/><USER_TEMPLATE><CLOUDPLANE_OPERATION>"
                    "<![CDATA[operations/op-1]]></CLOUDPLANE_OPERATION></USER_TEMPLATE></VM>"
                    "</VM_POOL>")));
  absl::StatusOr<MutationProgress> again = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->done);
  EXPECT_EQ(again->provider_operation, "7");
  absl::StatusOr<VmToken> token = kit::UnpackToken<VmToken>(again->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->vm_id(), 7);
  EXPECT_EQ(token->target(), VM_TARGET_RUNNING);
  calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(3));  // one pool read more, no second instantiate
  EXPECT_EQ(calls[2].method, "one.vmpool.infoextended");

  // Another operation with that VM's tag elsewhere launches its own.
  CallContext other = ctx_;
  other.operation = "operations/op-2";
  fake_->Expect("POST", "/RPC2",
                Success(Value::String(
                    "<VM_POOL><VM><ID>7</ID><NAME>web-7</NAME><STATE>3</STATE>"
                    "<LCM_STATE>3</LCM_STATE><USER_TEMPLATE><CLOUDPLANE_OPERATION>"
                    "operations/op-1</CLOUDPLANE_OPERATION></USER_TEMPLATE></VM></VM_POOL>")));
  fake_->Expect("POST", "/RPC2", Success(Value::Int(8)));
  absl::StatusOr<MutationProgress> second = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(other, create, std::move(cb)); });
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->provider_operation, "8");
  EXPECT_EQ(SentCalls().back().method, "one.template.instantiate");
}

// The same for a security group: the re-driven create finds the group by its
// tag and sends no second one.secgroup.allocate.
TEST_F(OpenNebulaAdapterTest, AFirewallCreateWhoseAnswerWasLostIsFoundByItsOperationTag) {
  v1::CreateFirewallRequest create;
  create.set_parent("accounts/one");
  create.set_firewall_id("web");
  fake_->Expect("POST", "/RPC2",
                Success(Value::String("<SECURITY_GROUP_POOL></SECURITY_GROUP_POOL>")));
  fake_->Expect("POST", "/RPC2", absl::UnavailableError("connection reset by peer"));
  absl::StatusOr<MutationProgress> lost = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewall(ctx_, create, std::move(cb)); });
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();

  const std::string made =
      "<SECURITY_GROUP_POOL><SECURITY_GROUP><ID>100</ID><NAME>web</NAME><TEMPLATE>"
      "<CLOUDPLANE_OPERATION>operations/op-1</CLOUDPLANE_OPERATION></TEMPLATE>"
      "</SECURITY_GROUP></SECURITY_GROUP_POOL>";
  fake_->Expect("POST", "/RPC2", Success(Value::String(made)));
  absl::StatusOr<MutationProgress> again = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewall(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->done);
  v1::Firewall firewall;
  ASSERT_TRUE(again->result.UnpackTo(&firewall));
  EXPECT_EQ(firewall.name(), "accounts/one/firewalls/web");
  int allocates = 0;
  for (const SentCall& call : SentCalls()) allocates += call.method == "one.secgroup.allocate";
  EXPECT_EQ(allocates, 1);

  // Another operation finds the NAME taken before it sends anything.
  CallContext other = ctx_;
  other.operation = "operations/op-2";
  fake_->Expect("POST", "/RPC2", Success(Value::String(made)));
  absl::StatusOr<MutationProgress> clash = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewall(other, create, std::move(cb)); });
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(SentCalls().back().method, "one.secgrouppool.info");
}

TEST_F(OpenNebulaAdapterTest, APollTokenOfAnotherKindIsUnreadable) {
  EXPECT_EQ(Poll("vm:6:web:running").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Poll(kit::PackToken(google::protobuf::Empty())).status().code(),
            absl::StatusCode::kDataLoss);
  VmToken future;
  future.set_version(2);
  EXPECT_EQ(Poll(kit::PackToken(future)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

// Judging a pending VM operation from the observer's ListInstances: no
// request is made; a listed state that may be the target is confirmed by
// one targeted poll (the API state folds several VM states).

std::string VmTokenFor(VmTarget target, std::string instance_id = "web") {
  VmToken token;
  token.set_version(1);
  token.set_vm_id(42);
  token.set_instance_id(std::move(instance_id));
  token.set_target(target);
  return kit::PackToken(token);
}

v1::Instance ListedInstance(v1::Instance::State state) {
  v1::Instance instance;
  instance.set_name("accounts/one/instances/web");
  instance.set_state(state);
  instance.set_provider_state("ACTIVE/RUNNING");
  return instance;
}

TEST_F(OpenNebulaAdapterTest, AVmOperationIsObservedAsItsInstance) {
  std::optional<ObservedTarget> target =
      provider_->ObservationTarget(VmTokenFor(VM_TARGET_RUNNING));
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->kind, "Instance");
  EXPECT_EQ(target->name, "accounts/one/instances/web");
  // A disk hotplug (the list has no disks) and an unreadable token are
  // left to polling.
  DiskToken disk;
  disk.set_version(1);
  disk.set_vm_id(42);
  disk.set_target(VM_TARGET_RUNNING);
  EXPECT_FALSE(provider_->ObservationTarget(kit::PackToken(disk)).has_value());
  EXPECT_FALSE(provider_->ProgressFromObservation(kit::PackToken(disk), nullptr).has_value());
  EXPECT_FALSE(provider_->ObservationTarget("garbage").has_value());
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

TEST_F(OpenNebulaAdapterTest, AListedStateThatMayBeTheTargetIsConfirmedByOnePoll) {
  const std::string running = VmTokenFor(VM_TARGET_RUNNING);
  v1::Instance instance = ListedInstance(v1::Instance::RUNNING);
  auto judged = provider_->ProgressFromObservation(running, &instance);
  ASSERT_TRUE(judged.has_value());
  ASSERT_TRUE(judged->ok()) << judged->status();
  EXPECT_FALSE((*judged)->done);
  EXPECT_EQ((*judged)->poll_token, running);
  EXPECT_THAT((*judged)->detail, HasSubstr("confirming"));
  // STOPPED is HOLD, POWEROFF, STOPPED or UNDEPLOYED: each may be there.
  for (VmTarget target : {VM_TARGET_POWEROFF, VM_TARGET_HOLD, VM_TARGET_STOPPED,
                          VM_TARGET_UNDEPLOYED}) {
    v1::Instance stopped = ListedInstance(v1::Instance::STOPPED);
    auto j = provider_->ProgressFromObservation(VmTokenFor(target), &stopped);
    ASSERT_TRUE(j.has_value()) << target;
    ASSERT_TRUE(j->ok());
    EXPECT_FALSE((*j)->done);
  }
  v1::Instance suspended = ListedInstance(v1::Instance::SUSPENDED);
  auto j = provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_SUSPENDED), &suspended);
  ASSERT_TRUE(j.has_value());
  EXPECT_FALSE((*j)->done);
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

TEST_F(OpenNebulaAdapterTest, AListedStateShortOfTheTargetIsNotYet) {
  v1::Instance pending = ListedInstance(v1::Instance::PROVISIONING);
  EXPECT_FALSE(
      provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_RUNNING), &pending).has_value());
  v1::Instance running = ListedInstance(v1::Instance::RUNNING);
  EXPECT_FALSE(
      provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_POWEROFF), &running).has_value());
  EXPECT_FALSE(
      provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_DONE), &running).has_value());
}

TEST_F(OpenNebulaAdapterTest, AVmGoneFromTheListFinishesADeleteAndIsPolledOtherwise) {
  auto gone = provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_DONE), nullptr);
  ASSERT_TRUE(gone.has_value());
  ASSERT_TRUE(gone->ok()) << gone->status();
  EXPECT_TRUE((*gone)->done);
  v1::Instance terminated = ListedInstance(v1::Instance::TERMINATED);
  auto done = provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_DONE), &terminated);
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->ok());
  EXPECT_TRUE((*done)->done);
  // Missing while it should run, or listed in a failure state: one poll
  // says what happened (NOT_FOUND, or the failure with its LCM state).
  for (const v1::Instance* observed :
       std::vector<const v1::Instance*>{nullptr, &terminated}) {
    auto j = provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_RUNNING), observed);
    ASSERT_TRUE(j.has_value());
    ASSERT_TRUE(j->ok());
    EXPECT_FALSE((*j)->done);
    EXPECT_THAT((*j)->detail, HasSubstr("not listed"));
  }
  v1::Instance failed = ListedInstance(v1::Instance::ERROR);
  auto j = provider_->ProgressFromObservation(VmTokenFor(VM_TARGET_RUNNING), &failed);
  ASSERT_TRUE(j.has_value());
  ASSERT_TRUE(j->ok());
  EXPECT_FALSE((*j)->done);
  EXPECT_THAT((*j)->detail, HasSubstr("failure state"));
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

// The strict field contract (ProviderInfo::honoured_fields): the
// declaration covers every mutation and names real fields, and the fields it
// lists reach oned.
class FieldContract : public OpenNebulaAdapterTest {};

TEST_F(FieldContract, EveryMutationDeclaresRealFields) {
  testutil::ExpectFieldContractDeclared(*provider_);
}

// instance_id, image, labels and start of a create from a VM template are
// one.template.instantiate's NAME, template id, CLOUDPLANE_LABEL_*
// attributes and hold flag.
TEST_F(FieldContract, HonouredCreateFieldsReachTheInstantiate) {
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/one");
  create.set_instance_id("web-1");
  create.set_start(false);
  create.mutable_instance()->set_image("accounts/one/images/3");
  (*create.mutable_instance()->mutable_labels())["team"] = "db";
  fake_->Expect("POST", "/RPC2", Success(Value::String("<VM_POOL></VM_POOL>")));
  fake_->Expect("POST", "/RPC2", Success(Value::Int(9)));
  absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(created.ok()) << created.status();
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[1].method, "one.template.instantiate");
  ASSERT_THAT(calls[1].params, SizeIs(6));
  EXPECT_EQ(calls[1].params[1], Value::Int(3));           // instance.image
  EXPECT_EQ(calls[1].params[2], Value::String("web-1"));  // instance_id
  EXPECT_EQ(calls[1].params[3], Value::Bool(true));       // start=false: on hold
  EXPECT_THAT(calls[1].params[4].AsString(), HasSubstr("CLOUDPLANE_LABEL_TEAM=\"db\""));
  absl::StatusOr<VmToken> token = kit::UnpackToken<VmToken>(created->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->target(), VM_TARGET_HOLD);
}

// cpu_count, memory_bytes, network_interfaces and key_name are VCPU, MEMORY
// (MiB), NIC vectors (the network looked up by name) and a CONTEXT with the
// key's line in one.template.instantiate's extra template.
TEST_F(FieldContract, OverridesReachTheInstantiate) {
  constexpr char kKey[] =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDSbfAres4q5GPY9XXG1GzUFuHBBAFv5BEBUvOMCMoma ops";
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/one");
  create.set_instance_id("web-2");
  v1::Instance* in = create.mutable_instance();
  in->set_image("accounts/one/images/0");
  in->set_cpu_count(2);
  in->set_memory_bytes(int64_t{512} << 20);
  in->set_key_name("accounts/one/keyPairs/ops");
  v1::NetworkInterface* nic = in->add_network_interfaces();
  nic->set_network("accounts/one/networks/lab-net");
  nic->set_address("192.168.5.11");
  nic->set_model("virtio");
  fake_->Expect("POST", "/RPC2",
                Success(Value::String("<VNET_POOL><VNET><ID>5</ID><NAME>lab-net</NAME>"
                                      "</VNET></VNET_POOL>")));
  fake_->Expect("POST", "/RPC2",
                Success(Value::String(absl::StrCat(
                    "<USER><ID>0</ID><NAME>oneadmin</NAME><TEMPLATE><SSH_PUBLIC_KEY>", kKey,
                    "</SSH_PUBLIC_KEY></TEMPLATE></USER>"))));
  fake_->Expect("POST", "/RPC2", Success(Value::String("<VM_POOL></VM_POOL>")));
  fake_->Expect("POST", "/RPC2", Success(Value::Int(11)));
  absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(created.ok()) << created.status();
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(4));
  EXPECT_EQ(calls[0].method, "one.vnpool.info");
  EXPECT_EQ(calls[1].method, "one.user.info");
  EXPECT_EQ(calls[1].params[1], Value::Int(-1));  // the calling user
  EXPECT_EQ(calls[3].method, "one.template.instantiate");
  EXPECT_EQ(calls[3].params[1], Value::Int(0));
  const std::string extra = calls[3].params[4].AsString();
  EXPECT_THAT(extra, HasSubstr("VCPU=\"2\"\n"));
  EXPECT_THAT(extra, HasSubstr("MEMORY=\"512\"\n"));
  EXPECT_THAT(extra, HasSubstr(
      "NIC=[NETWORK_ID=\"5\",IP=\"192.168.5.11\",MODEL=\"virtio\"]\n"));
  EXPECT_THAT(extra, HasSubstr(absl::StrCat("CONTEXT=[NETWORK=\"YES\",SSH_PUBLIC_KEY=\"", kKey,
                                            "\"]\n")));
}

// user_data alone is the CONTEXT's USER_DATA in base64 with
// USERDATA_ENCODING="base64", the stock NETWORK and owner's keys kept; no
// network lookup (there are no NICs), no key lookup.
TEST_F(FieldContract, UserDataReachesTheInstantiateContext) {
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/one");
  create.set_instance_id("web-3");
  create.mutable_instance()->set_image("accounts/one/images/0");
  create.mutable_instance()->set_user_data("#cloud-config\n");
  fake_->Expect("POST", "/RPC2", Success(Value::String("<VM_POOL></VM_POOL>")));
  fake_->Expect("POST", "/RPC2", Success(Value::Int(12)));
  absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(created.ok()) << created.status();
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[1].method, "one.template.instantiate");
  EXPECT_THAT(calls[1].params[4].AsString(),
              HasSubstr("CONTEXT=[NETWORK=\"YES\",SSH_PUBLIC_KEY=\"$USER[SSH_PUBLIC_KEY]\","
                        "USER_DATA=\"I2Nsb3VkLWNvbmZpZwo=\",USERDATA_ENCODING=\"base64\"]\n"));
}

// With a raw template the overrides belong inside it: refused by field,
// nothing sent.
TEST_F(FieldContract, OverridesWithARawTemplateAreRefused) {
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/one");
  (*create.mutable_instance()->mutable_provider_options()->mutable_fields())["template"]
      .set_string_value("CPU=\"1\"\n");
  create.mutable_instance()->set_cpu_count(2);
  create.mutable_instance()->add_network_interfaces()->set_network(
      "accounts/one/networks/lab-net");
  create.mutable_instance()->set_user_data("#cloud-config\n");
  absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(ctx_, create, std::move(cb)); });
  ASSERT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  const auto bad = GetBadRequest(created.status());
  ASSERT_TRUE(bad.has_value());
  std::vector<std::string> fields;
  for (const auto& v : bad->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ElementsAre("instance.cpu_count", "instance.network_interfaces",
                                  "instance.user_data"));
  EXPECT_THAT(SentCalls(), IsEmpty());
}

// AttachNetworkInterface sends one NIC vector to one.vm.attachnic and polls
// until the VM is RUNNING again with a new NIC_ID.
TEST_F(FieldContract, AttachNicSendsTheNicAndWaitsForIt) {
  v1::AttachNetworkInterfaceRequest attach;
  attach.set_name("accounts/one/instances/7");
  attach.mutable_network_interface()->set_network("accounts/one/networks/5");
  attach.mutable_network_interface()->set_mac_address("02:00:C0:A8:05:0C");
  const std::string vm_with = [](absl::string_view nics) {
    return absl::StrCat("<VM><ID>7</ID><NAME>web</NAME><STATE>3</STATE><LCM_STATE>3"
                        "</LCM_STATE><TEMPLATE>", nics, "</TEMPLATE></VM>");
  }("<NIC><NIC_ID>0</NIC_ID><NETWORK_ID>5</NETWORK_ID></NIC>");
  fake_->Expect("POST", "/RPC2",
                Success(Value::String("<VNET_POOL><VNET><ID>5</ID><NAME>Lab</NAME>"
                                      "</VNET></VNET_POOL>")));
  fake_->Expect("POST", "/RPC2", Success(Value::String(vm_with)));
  fake_->Expect("POST", "/RPC2", Success(Value::Int(7)));
  absl::StatusOr<MutationProgress> started = Await<MutationProgress>(
      [&](auto cb) { provider_->AttachNetworkInterface(ctx_, attach, std::move(cb)); });
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_FALSE(started->done);
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(3));
  EXPECT_EQ(calls[2].method, "one.vm.attachnic");
  EXPECT_EQ(calls[2].params[1], Value::Int(7));
  EXPECT_EQ(calls[2].params[2],
            Value::String("NIC=[NETWORK_ID=\"5\",MAC=\"02:00:c0:a8:05:0c\"]\n"));
  // Still hot-plugging (HOTPLUG_NIC), then back in RUNNING with NIC 1.
  fake_->Expect("POST", "/RPC2",
                Success(Value::String("<VM><ID>7</ID><NAME>web</NAME><STATE>3</STATE>"
                                      "<LCM_STATE>25</LCM_STATE></VM>")));
  absl::StatusOr<MutationProgress> polled = Await<MutationProgress>(
      [&](auto cb) { provider_->PollOperation(ctx_, started->poll_token, std::move(cb)); });
  ASSERT_TRUE(polled.ok()) << polled.status();
  EXPECT_FALSE(polled->done);
  fake_->Expect("POST", "/RPC2",
                Success(Value::String(absl::StrCat(
                    "<VM><ID>7</ID><NAME>web</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE>"
                    "<TEMPLATE><NIC><NIC_ID>0</NIC_ID><NETWORK_ID>5</NETWORK_ID></NIC>"
                    "<NIC><NIC_ID>1</NIC_ID><NETWORK_ID>5</NETWORK_ID><IP>192.168.5.12</IP>"
                    "</NIC></TEMPLATE></VM>"))));
  polled = Await<MutationProgress>(
      [&](auto cb) { provider_->PollOperation(ctx_, polled->poll_token, std::move(cb)); });
  ASSERT_TRUE(polled.ok()) << polled.status();
  ASSERT_TRUE(polled->done);
  v1::Instance instance;
  ASSERT_TRUE(polled->result.UnpackTo(&instance));
  ASSERT_EQ(instance.network_interfaces_size(), 2);
  EXPECT_EQ(instance.network_interfaces(1).address(), "192.168.5.12");
}

// DeleteNetwork maps oned's "leases in use" (ACTION) to FAILED_PRECONDITION.
TEST_F(FieldContract, DeleteNetworkWithLeasesIsFailedPrecondition) {
  v1::DeleteNetworkRequest del;
  del.set_name("accounts/one/networks/lab-net");
  fake_->Expect("POST", "/RPC2",
                Success(Value::String("<VNET_POOL><VNET><ID>5</ID><NAME>lab-net</NAME>"
                                      "</VNET></VNET_POOL>")));
  fake_->Expect("POST", "/RPC2",
                Failure(0x800, "[one.vn.delete] Can not remove a virtual network with leases "
                               "in use"));
  absl::StatusOr<MutationProgress> deleted = Await<MutationProgress>(
      [&](auto cb) { provider_->DeleteNetwork(ctx_, del, std::move(cb)); });
  EXPECT_EQ(deleted.status().code(), absl::StatusCode::kFailedPrecondition) << deleted.status();
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[1].method, "one.vn.delete");
  EXPECT_EQ(calls[1].params[1], Value::Int(5));
}

// provider_options {"template": T} is one.vm.allocate's template, with the
// instance_id as its NAME; start (default true) is hold=false.
TEST_F(FieldContract, ARawTemplateAndTheIdReachTheAllocate) {
  v1::CreateInstanceRequest create;
  create.set_parent("accounts/one");
  create.set_instance_id("raw-1");
  (*create.mutable_instance()->mutable_provider_options()->mutable_fields())["template"]
      .set_string_value("CPU=\"0.5\"\nMEMORY=\"128\"\n");
  fake_->Expect("POST", "/RPC2", Success(Value::String("<VM_POOL></VM_POOL>")));
  fake_->Expect("POST", "/RPC2", Success(Value::Int(10)));
  absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateInstance(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(created.ok()) << created.status();
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_EQ(calls[1].method, "one.vm.allocate");
  ASSERT_THAT(calls[1].params, SizeIs(3));
  EXPECT_THAT(calls[1].params[1].AsString(), HasSubstr("MEMORY=\"128\""));
  EXPECT_THAT(calls[1].params[1].AsString(), HasSubstr("NAME=\"raw-1\""));
  EXPECT_EQ(calls[1].params[2], Value::Bool(false));
}

// A RULE holds one range, at the far end of its direction: a range at the
// VM's end is refused, not dropped.
TEST_F(FieldContract, ARangeAtTheVmsEndIsRefused) {
  v1::CreateFirewallRuleRequest create;
  create.set_parent("accounts/one/firewalls/web");
  create.mutable_rule()->set_protocol("tcp");
  create.mutable_rule()->set_port_range_start(22);
  create.mutable_rule()->add_destination_ranges("10.0.0.0/8");  // INGRESS by default
  absl::StatusOr<MutationProgress> refused = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewallRule(ctx_, create, std::move(cb)); });
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(refused.status())->field_violations(0).field(),
            "rule.destination_ranges");
  create.mutable_rule()->set_direction(v1::FirewallRule::EGRESS);
  create.mutable_rule()->add_source_ranges("10.0.0.0/8");
  refused = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewallRule(ctx_, create, std::move(cb)); });
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(refused.status())->field_violations(0).field(), "rule.source_ranges");
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

// A rule's source network is looked up in the VNET pool (by its name here)
// and sent as NETWORK_ID; a network the pool lacks is NOT_FOUND, nothing
// written.
TEST_F(FieldContract, ARuleSourceNetworkIsSentAsItsVnetId) {
  v1::CreateFirewallRuleRequest create;
  create.set_parent("accounts/one/firewalls/web");
  create.mutable_rule()->set_protocol("tcp");
  create.mutable_rule()->set_port_range_start(22);
  create.mutable_rule()->add_source_networks("accounts/one/networks/lab-net");
  const std::string pool =
      "<VNET_POOL><VNET><ID>5</ID><NAME>lab-net</NAME></VNET></VNET_POOL>";
  const std::string group = "<SECURITY_GROUP_POOL><SECURITY_GROUP><ID>100</ID><NAME>web</NAME>"
                            "<TEMPLATE></TEMPLATE></SECURITY_GROUP></SECURITY_GROUP_POOL>";
  const std::string with_rule =
      "<SECURITY_GROUP_POOL><SECURITY_GROUP><ID>100</ID><NAME>web</NAME><TEMPLATE><RULE>"
      "<PROTOCOL>TCP</PROTOCOL><RULE_TYPE>INBOUND</RULE_TYPE><RANGE>22</RANGE>"
      "<NETWORK_ID>5</NETWORK_ID></RULE></TEMPLATE></SECURITY_GROUP></SECURITY_GROUP_POOL>";
  fake_->Expect("POST", "/RPC2", Success(Value::String(pool)));
  fake_->Expect("POST", "/RPC2", Success(Value::String(group)));
  fake_->Expect("POST", "/RPC2", Success(Value::Int(100)));
  fake_->Expect("POST", "/RPC2", Success(Value::String(with_rule)));
  absl::StatusOr<MutationProgress> created = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewallRule(ctx_, create, std::move(cb)); });
  ASSERT_TRUE(created.ok()) << created.status();
  v1::FirewallRule rule;
  ASSERT_TRUE(created->result.UnpackTo(&rule));
  EXPECT_THAT(rule.source_networks(), ElementsAre("accounts/one/networks/5"));
  EXPECT_THAT(rule.source_ranges(), IsEmpty());
  std::vector<SentCall> calls = SentCalls();
  ASSERT_THAT(calls, SizeIs(4));
  EXPECT_EQ(calls[0].method, "one.vnpool.info");
  EXPECT_EQ(calls[2].method, "one.secgroup.update");
  EXPECT_EQ(calls[2].params[2].AsString(),
            "RULE=[PROTOCOL=\"TCP\",RULE_TYPE=\"INBOUND\",RANGE=\"22\",NETWORK_ID=\"5\"]\n");

  create.mutable_rule()->set_source_networks(0, "accounts/one/networks/nope");
  fake_->Expect("POST", "/RPC2", Success(Value::String(pool)));
  absl::StatusOr<MutationProgress> missing = Await<MutationProgress>(
      [&](auto cb) { provider_->CreateFirewallRule(ctx_, create, std::move(cb)); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_THAT(SentCalls(), SizeIs(5));  // the pool read only
}

}  // namespace
}  // namespace cloudplane::adapters::opennebula
