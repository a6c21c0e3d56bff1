#include "adapters/opennebula/opennebula_wire.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"
#include "adapters/common/xmlrpc/xmlrpc.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::opennebula {
namespace {

using ::testing::HasSubstr;

// A success array carrying `doc` as xmlrpc-c sends it (escaped string).
std::string Success(absl::string_view doc) {
  return *xmlrpc::EncodeResponse(xmlrpc::Value::Array(
      {xmlrpc::Value::Bool(true), xmlrpc::Value::String(std::string(doc)),
       xmlrpc::Value::Int(0)}));
}

absl::StatusOr<xml::Document> Doc(absl::string_view body, absl::string_view root) {
  absl::StatusOr<xmlrpc::Value> v = ResultFromResponse(200, body, "one.vm.info");
  if (!v.ok()) return v.status();
  return ParseObjectDocument(*v, root, "one.vm.info");
}

void ExpectMalformed(const absl::Status& s, absl::string_view what) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(s.message(), HasSubstr(what));
  auto info = GetErrorInfo(s);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "PROVIDER_MALFORMED_RESPONSE");
}

TEST(OpenNebulaWireTest, ErrorCodesMapAsTheTableSays) {
  struct Case {
    int code;
    absl::StatusCode status;
  } cases[] = {{0x100, absl::StatusCode::kUnauthenticated},
               {0x200, absl::StatusCode::kPermissionDenied},
               {0x400, absl::StatusCode::kNotFound},
               {0x800, absl::StatusCode::kFailedPrecondition},
               {0x1000, absl::StatusCode::kInvalidArgument},
               {0x2000, absl::StatusCode::kInternal},
               {0x4000, absl::StatusCode::kInternal},
               {0x8000, absl::StatusCode::kAborted},
               {0x10000, absl::StatusCode::kUnavailable},
               {7, absl::StatusCode::kUnknown}};
  for (const Case& c : cases) {
    // The 6.x five-item failure array, with <i8>-1 last.
    const std::string body =
        absl::StrCat("<methodResponse><params><param><value><array><data>",
                     "<value><boolean>0</boolean></value><value><string>[one.vm.info] Error "
                     "getting virtual machine [99].</string></value><value><i4>",
                     c.code, "</i4></value><value><i4>99</i4></value><value><i8>-1</i8></value>",
                     "</data></array></value></param></params></methodResponse>");
    absl::StatusOr<xmlrpc::Value> v = ResultFromResponse(200, body, "one.vm.info");
    EXPECT_EQ(v.status().code(), c.status) << c.code;
    auto info = GetErrorInfo(v.status());
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->metadata().at("providerCode"), absl::StrCat(c.code));
    EXPECT_EQ(info->metadata().at("providerMessage"),
              "[one.vm.info] Error getting virtual machine [99].");
  }
  // The 3-item array of 5.0-5.2 is understood as well.
  const std::string old = "<methodResponse><params><param><value><array><data><value><boolean>0"
                          "</boolean></value><value><string>x</string></value><value><i4>256"
                          "</i4></value></data></array></value></param></params>"
                          "</methodResponse>";
  EXPECT_EQ(ResultFromResponse(200, old, "m").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(OpenNebulaWireTest, FaultsAndHttpErrors) {
  absl::StatusOr<xmlrpc::Value> v =
      ResultFromResponse(200, xmlrpc::EncodeFault(-501, "Not enough parameters"), "one.vm.info");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(v.status().message(), HasSubstr("Not enough parameters"));
  EXPECT_EQ(GetErrorInfo(v.status())->metadata().at("faultCode"), "-501");
  EXPECT_EQ(ResultFromResponse(503, "", "m").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ResultFromResponse(401, "", "m").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(OpenNebulaWireTest, HostileAndMalformedProviderXmlIsInternalNeverACrash) {
  // Truncated envelope.
  const std::string good = Success("<VM><ID>1</ID><NAME>a</NAME><STATE>3</STATE>"
                                   "<LCM_STATE>3</LCM_STATE></VM>");
  ExpectMalformed(ResultFromResponse(200, good.substr(0, 90), "one.vm.info").status(),
                  "malformed");
  // Truncated inner document.
  ExpectMalformed(Doc(Success("<VM><ID>1</ID><NAME>a"), "VM").status(), "malformed");
  // Wrong types: a string where the array should be, an int where the
  // document should be, a wrong root.
  ExpectMalformed(ResultFromResponse(200, *xmlrpc::EncodeResponse(xmlrpc::Value::String("x")),
                                     "one.vm.info")
                      .status(),
                  "not an array");
  ExpectMalformed(
      Doc(*xmlrpc::EncodeResponse(xmlrpc::Value::Array(
              {xmlrpc::Value::Bool(true), xmlrpc::Value::Int(5), xmlrpc::Value::Int(0)})),
          "VM")
          .status(),
      "expected a string result");
  ExpectMalformed(Doc(Success("<HOST/>"), "VM").status(), "expected <VM>");
  // A non-numeric STATE in an otherwise fine document.
  absl::StatusOr<xml::Document> doc =
      Doc(Success("<VM><ID>1</ID><NAME>a</NAME><STATE>x</STATE><LCM_STATE>3</LCM_STATE></VM>"),
          "VM");
  ASSERT_TRUE(doc.ok());
  ExpectMalformed(InstanceFromVm(doc->Root(), "one", "a").status(), "not an integer");
  // External entity in the envelope and in the inner document.
  ExpectMalformed(
      ResultFromResponse(200,
                         "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY x SYSTEM "
                         "\"file:///etc/passwd\">]><methodResponse><params><param><value>&x;"
                         "</value></param></params></methodResponse>",
                         "one.vm.info")
          .status(),
      "DTD");
  ExpectMalformed(Doc(Success("<!DOCTYPE VM [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                              "<VM><NAME>&x;</NAME></VM>"),
                      "VM")
                      .status(),
                  "DTD");
  // Entity bomb (billion laughs) inside the document string.
  std::string bomb = "<!DOCTYPE VM [<!ENTITY a \"aaaaaaaaaa\">";
  for (char c = 'b'; c <= 'k'; ++c) {
    absl::StrAppend(&bomb, "<!ENTITY ", std::string(1, c), " \"",
                    absl::StrReplaceAll("&p;&p;&p;&p;&p;&p;&p;&p;&p;&p;",
                                        {{"p", std::string(1, c - 1)}}),
                    "\">");
  }
  bomb += "]><VM><NAME>&k;</NAME></VM>";
  ExpectMalformed(Doc(Success(bomb), "VM").status(), "DTD");
  // Excessive nesting.
  std::string deep;
  for (int i = 0; i < 500; ++i) deep += "<A>";
  ExpectMalformed(Doc(Success(deep), "VM").status(), "malformed");
}

TEST(OpenNebulaWireTest, VmStatesMapOntoInstanceStates) {
  using V = VmState;
  using L = LcmState;
  EXPECT_EQ(InstanceState(V::kPending, L::kLcmInit), v1::Instance::PROVISIONING);
  EXPECT_EQ(InstanceState(V::kActive, L::kProlog), v1::Instance::PROVISIONING);
  EXPECT_EQ(InstanceState(V::kActive, L::kRunning), v1::Instance::RUNNING);
  EXPECT_EQ(InstanceState(V::kActive, L::kShutdownPoweroff), v1::Instance::STOPPING);
  EXPECT_EQ(InstanceState(V::kPoweroff, L::kLcmInit), v1::Instance::STOPPED);
  EXPECT_EQ(InstanceState(V::kHold, L::kLcmInit), v1::Instance::STOPPED);
  EXPECT_EQ(InstanceState(V::kSuspended, L::kLcmInit), v1::Instance::SUSPENDED);
  EXPECT_EQ(InstanceState(V::kActive, L::kShutdown), v1::Instance::TERMINATING);
  EXPECT_EQ(InstanceState(V::kDone, L::kLcmInit), v1::Instance::TERMINATED);
  EXPECT_EQ(InstanceState(V::kActive, L::kBootFailure), v1::Instance::ERROR);
  EXPECT_EQ(ProviderState(V::kActive, L::kRunning), "ACTIVE/RUNNING");
  EXPECT_EQ(ProviderState(V::kPoweroff, L::kLcmInit), "POWEROFF");
  EXPECT_EQ(ProviderState(V::kActive, L::kRestore), "ACTIVE/RESTORE");
  // The enums are oned's numbers; numbers they do not name survive.
  EXPECT_EQ(StateNumber(V::kPoweroff), 8);
  EXPECT_EQ(StateNumber(L::kShutdownPoweroff), 18);
  EXPECT_EQ(ProviderState(V::kActive, static_cast<L>(99)), "ACTIVE/99");
  EXPECT_EQ(ProviderState(static_cast<V>(42), L::kLcmInit), "42");
  EXPECT_EQ(InstanceState(static_cast<V>(42), L::kLcmInit), v1::Instance::STATE_UNSPECIFIED);
}

// provider_details keeps the VM's own fields the Instance has no place
// for: the owner, the LCM state's name, the last host, the CONTEXT and the
// USER_TEMPLATE; never a password, token or the user data itself.
TEST(OpenNebulaWireTest, InstanceProviderDetailsKeepTheVmsFieldsButNoSecrets) {
  auto doc = xml::Parse(
      "<VM><ID>9</ID><UID>3</UID><GID>1</GID><UNAME>ana</UNAME><GNAME>users</GNAME>"
      "<NAME>db-1</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE><DEPLOY_ID>one-9</DEPLOY_ID>"
      "<TEMPLATE><CONTEXT><CRYPTED_PASSWORD><![CDATA[$6$x]]></CRYPTED_PASSWORD>"
      "<DISK_ID><![CDATA[1]]></DISK_ID><ETH0_IP><![CDATA[10.0.0.5]]></ETH0_IP>"
      "<NETWORK><![CDATA[YES]]></NETWORK><ONEGATE_TOKEN><![CDATA[tok-42]]></ONEGATE_TOKEN>"
      "<PASSWORD><![CDATA[hunter2]]></PASSWORD>"
      "<SSH_PUBLIC_KEY><![CDATA[ssh-ed25519 AAAA ops]]></SSH_PUBLIC_KEY>"
      "<START_SCRIPT><![CDATA[echo hunter2 | passwd]]></START_SCRIPT>"
      "<TARGET><![CDATA[hda]]></TARGET>"
      "<USERDATA_ENCODING><![CDATA[base64]]></USERDATA_ENCODING>"
      "<USER_DATA><![CDATA[I2Nsb3VkLWNvbmZpZwo=]]></USER_DATA></CONTEXT>"
      "<VCPU><![CDATA[1]]></VCPU></TEMPLATE>"
      "<USER_TEMPLATE><CLOUDPLANE_LABEL_ENV><![CDATA[prod]]></CLOUDPLANE_LABEL_ENV>"
      "<CLOUDPLANE_OPERATION><![CDATA[op-1]]></CLOUDPLANE_OPERATION>"
      "<DB_PASSWORD><![CDATA[hunter2]]></DB_PASSWORD><OWNER><![CDATA[ops]]></OWNER>"
      "</USER_TEMPLATE><HISTORY_RECORDS>"
      "<HISTORY><SEQ>0</SEQ><HOSTNAME>node-0</HOSTNAME><HID>0</HID><CID>0</CID></HISTORY>"
      "<HISTORY><SEQ>1</SEQ><HOSTNAME>node-1</HOSTNAME><HID>1</HID><CID>0</CID></HISTORY>"
      "</HISTORY_RECORDS></VM>");
  ASSERT_TRUE(doc.ok()) << doc.status();
  auto i = InstanceFromVm(doc->Root(), "one", "db-1");
  ASSERT_TRUE(i.ok()) << i.status();
  const auto& d = i->provider_details().fields();
  EXPECT_EQ(d.at("id").number_value(), 9);
  EXPECT_EQ(d.at("uid").number_value(), 3);
  EXPECT_EQ(d.at("gid").number_value(), 1);
  EXPECT_EQ(d.at("uname").string_value(), "ana");
  EXPECT_EQ(d.at("gname").string_value(), "users");
  EXPECT_EQ(d.at("lcmStateName").string_value(), "RUNNING");
  EXPECT_EQ(d.at("deployId").string_value(), "one-9");
  EXPECT_EQ(d.at("hostname").string_value(), "node-1");  // the last record's
  EXPECT_EQ(i->host(), "accounts/one/hosts/1");
  // The SHA-256 of the decoded user data ("#cloud-config\n").
  EXPECT_EQ(d.at("userDataSha256").string_value(),
            "88c95955b024402aa9572b663f7eeb134f01343bb92af27b50e97e72b22c565f");
  const auto& context = d.at("context").struct_value().fields();
  EXPECT_EQ(context.at("DISK_ID").string_value(), "1");
  EXPECT_EQ(context.at("ETH0_IP").string_value(), "10.0.0.5");
  EXPECT_EQ(context.at("NETWORK").string_value(), "YES");
  EXPECT_EQ(context.at("SSH_PUBLIC_KEY").string_value(), "ssh-ed25519 AAAA ops");
  EXPECT_EQ(context.at("TARGET").string_value(), "hda");
  EXPECT_EQ(context.at("USERDATA_ENCODING").string_value(), "base64");
  for (const char* hidden :
       {"PASSWORD", "CRYPTED_PASSWORD", "ONEGATE_TOKEN", "START_SCRIPT", "USER_DATA"}) {
    EXPECT_FALSE(context.contains(hidden)) << hidden;
  }
  const auto& user = d.at("userTemplate").struct_value().fields();
  EXPECT_EQ(user.at("OWNER").string_value(), "ops");
  EXPECT_EQ(user.at("CLOUDPLANE_OPERATION").string_value(), "op-1");
  EXPECT_FALSE(user.contains("CLOUDPLANE_LABEL_ENV"));  // a label, in labels
  EXPECT_FALSE(user.contains("DB_PASSWORD"));
  EXPECT_THAT(i->labels(), ::testing::ElementsAre(::testing::Pair("env", "prod")));
  // Nothing secret anywhere in the details.
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(i->provider_details(), &json).ok());
  for (const char* secret : {"hunter2", "tok-42", "$6$x", "I2Nsb3Vk"}) {
    EXPECT_THAT(json, ::testing::Not(HasSubstr(secret))) << json;
  }
}

// opennebula_wire_fuzz: a host's TOTAL_MEM (KiB) times 1024 overflowed
// int64; sizes and counts beyond their types are unknown (0), never wrapped.
TEST(OpenNebulaWireTest, QuantitiesBeyondTheirTypesAreUnknown) {
  auto host = xml::Parse(
      "<HOST><ID>0</ID><NAME>h</NAME><STATE>2</STATE><HOST_SHARE>"
      "<TOTAL_CPU>800</TOTAL_CPU><TOTAL_MEM>335521474836484432</TOTAL_MEM></HOST_SHARE></HOST>");
  ASSERT_TRUE(host.ok()) << host.status();
  auto h = HostFromXml(host->Root(), "one");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->memory_bytes(), 0);
  EXPECT_EQ(h->cpu_count(), 8);
  auto vm = xml::Parse(
      "<VM><ID>7</ID><NAME>x</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE><TEMPLATE>"
      "<VCPU>99999999999</VCPU><CPU>1e300</CPU><MEMORY>9223372036854775807</MEMORY></TEMPLATE></VM>");
  ASSERT_TRUE(vm.ok()) << vm.status();
  auto i = InstanceFromVm(vm->Root(), "one", "x");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->cpu_count(), 0);
  EXPECT_EQ(i->memory_bytes(), 0);
}

// opennebula_wire_fuzz: an STIME or REGTIME beyond a Timestamp's range
// reached protobuf's TimeUtil::SecondsToTimestamp, whose CHECK aborts the
// whole server. Such a time is left unset.
TEST(OpenNebulaWireTest, AnAbsurdStartTimeIsNotSetAndDoesNotAbort) {
  auto vm = xml::Parse(
      "<VM><ID>7</ID><NAME>x</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE>"
      "<STIME>1000000000000000</STIME></VM>");
  ASSERT_TRUE(vm.ok()) << vm.status();
  auto i = InstanceFromVm(vm->Root(), "one", "x");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_FALSE(i->has_create_time());
  auto ok = xml::Parse(
      "<VM><ID>7</ID><NAME>x</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE>"
      "<STIME>1700000000</STIME></VM>");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(InstanceFromVm(ok->Root(), "one", "x")->create_time().seconds(), 1700000000);
}

// User data kept as it is (USERDATA, no encoding, as cloud-init's examples
// write it) is hashed as it is; base64 that does not decode is too.
TEST(OpenNebulaWireTest, UserDataDigestOfPlainAndUndecodableContext) {
  auto plain = xml::Parse(
      "<VM><ID>1</ID><NAME>a</NAME><STATE>1</STATE><LCM_STATE>0</LCM_STATE><TEMPLATE><CONTEXT>"
      "<USERDATA><![CDATA[#!/bin/sh\necho hi\n]]></USERDATA></CONTEXT></TEMPLATE></VM>");
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto i = InstanceFromVm(plain->Root(), "one", "a");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->provider_details().fields().at("userDataSha256").string_value(),
            "299001868fb8c02fd431c336c6d058f5558c5dff5b5af5e6fe04b870a6a9cbba");
  EXPECT_EQ(i->provider_details().fields().at("lcmStateName").string_value(), "LCM_INIT");
  EXPECT_FALSE(i->provider_details().fields().contains("hostname"));  // never deployed
  auto bad = xml::Parse(
      "<VM><ID>1</ID><NAME>a</NAME><STATE>1</STATE><LCM_STATE>0</LCM_STATE><TEMPLATE><CONTEXT>"
      "<USER_DATA><![CDATA[#!/bin/sh\necho hi\n]]></USER_DATA>"
      "<USER_DATA_ENCODING><![CDATA[base64]]></USER_DATA_ENCODING></CONTEXT></TEMPLATE></VM>");
  ASSERT_TRUE(bad.ok()) << bad.status();
  i = InstanceFromVm(bad->Root(), "one", "a");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->provider_details().fields().at("userDataSha256").string_value(),
            "299001868fb8c02fd431c336c6d058f5558c5dff5b5af5e6fe04b870a6a9cbba");
}

TEST(OpenNebulaWireTest, SecretAttributeNames) {
  for (const char* name : {"PASSWORD", "CRYPTED_PASSWORD", "PASSWORD_BASE64", "ONEGATE_TOKEN",
                           "db_password", "VROUTER_KEEPALIVED_PASSWORD", "SECRET_KEY",
                           "AWS_ACCESS_KEY", "PRIVATE_KEY", "SSH_KEY", "CREDENTIALS", "PASSWD"}) {
    EXPECT_TRUE(IsSecretAttribute(name)) << name;
  }
  for (const char* name : {"SSH_PUBLIC_KEY", "NETWORK", "ETH0_IP", "USERDATA_ENCODING", "OWNER"}) {
    EXPECT_FALSE(IsSecretAttribute(name)) << name;
  }
}

// The CONTEXT a create merges: NETWORK, the key (or the owner's keys, as
// stock templates say), and user data base64-encoded, whatever its bytes.
TEST(OpenNebulaWireTest, ContextTemplateCarriesKeyAndBase64UserData) {
  EXPECT_EQ(*ContextTemplate("ssh-ed25519 AAAA ops", ""),
            "CONTEXT=[NETWORK=\"YES\",SSH_PUBLIC_KEY=\"ssh-ed25519 AAAA ops\"]\n");
  EXPECT_EQ(*ContextTemplate("", std::string("\0\xff]]>", 5)),
            "CONTEXT=[NETWORK=\"YES\",SSH_PUBLIC_KEY=\"$USER[SSH_PUBLIC_KEY]\","
            "USER_DATA=\"AP9dXT4=\",USERDATA_ENCODING=\"base64\"]\n");
}

TEST(OpenNebulaWireTest, InstanceFromAFullVmDocument) {
  auto doc = xml::Parse(
      "<VM><ID>7</ID><UID>0</UID><NAME>web-1</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE>"
      "<STIME>1700000000</STIME><DEPLOY_ID>one-7</DEPLOY_ID><TEMPLATE><CPU><![CDATA[0.5]]></CPU>"
      "<MEMORY><![CDATA[768]]></MEMORY><NIC><IP><![CDATA[10.0.0.9]]></IP></NIC>"
      "<TEMPLATE_ID><![CDATA[0]]></TEMPLATE_ID><VCPU><![CDATA[2]]></VCPU>"
      "<DISK><DISK_ID>0</DISK_ID><IMAGE>debian-12-disk</IMAGE><IMAGE_ID>0</IMAGE_ID>"
      "<TARGET>vda</TARGET></DISK><DISK><DISK_ID>1</DISK_ID><IMAGE>My Disk</IMAGE>"
      "<IMAGE_ID>3</IMAGE_ID><TARGET>vdb</TARGET></DISK><DISK><DISK_ID>2</DISK_ID>"
      "<TYPE>swap</TYPE></DISK></TEMPLATE>"
      "<USER_TEMPLATE><CLOUDPLANE_LABEL_ENV><![CDATA[prod]]></CLOUDPLANE_LABEL_ENV>"
      "<CLOUDPLANE_LABEL_TIER_2><![CDATA[]]></CLOUDPLANE_LABEL_TIER_2>"
      "<LABELS><![CDATA[web, prod]]></LABELS><OWNER>ops</OWNER></USER_TEMPLATE>"
      "<HISTORY_RECORDS><HISTORY><OID>7</OID><HID>1</HID><CID>0</CID></HISTORY>"
      "</HISTORY_RECORDS></VM>");
  ASSERT_TRUE(doc.ok());
  auto i = InstanceFromVm(doc->Root(), "one", "web-1");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->name(), "accounts/one/instances/web-1");
  EXPECT_EQ(i->state(), v1::Instance::RUNNING);
  EXPECT_EQ(i->provider_state(), "ACTIVE/RUNNING");
  EXPECT_EQ(i->cpu_count(), 2);
  EXPECT_EQ(i->memory_bytes(), int64_t{768} << 20);
  EXPECT_EQ(i->image(), "accounts/one/images/0");
  EXPECT_EQ(i->host(), "accounts/one/hosts/1");
  EXPECT_THAT(i->ip_addresses(), ::testing::ElementsAre("10.0.0.9"));
  // Labels are ours (CLOUDPLANE_LABEL_*); Sunstone's list stays raw.
  EXPECT_THAT(i->labels(), ::testing::UnorderedElementsAre(
                               ::testing::Pair("env", "prod"), ::testing::Pair("tier_2", "")));
  EXPECT_EQ(i->provider_details().fields().at("sunstoneLabels").string_value(), "web, prod");
  EXPECT_EQ(i->provider_details().fields().at("lcmState").number_value(), 3);
  // Disks from images are volumes (a volatile swap disk is not).
  ASSERT_EQ(i->volumes_size(), 2);
  EXPECT_EQ(i->volumes(0).volume(), "accounts/one/volumes/debian-12-disk");
  EXPECT_EQ(i->volumes(0).device(), "vda");
  EXPECT_EQ(i->volumes(1).volume(), "accounts/one/volumes/3");
  EXPECT_EQ(DiskOfImage(doc->Root(), 3), 1);
  EXPECT_EQ(DiskOfImage(doc->Root(), 9), std::nullopt);
}

TEST(OpenNebulaWireTest, HostsOfThe510AndThe612Shapes) {
  // 5.10: HOST_SHARE carries FREE_/USED_*; there is no MONITORING element.
  auto old = xml::Parse(
      "<HOST><ID>3</ID><NAME>n3</NAME><STATE>1</STATE><CLUSTER_ID>0</CLUSTER_ID><HOST_SHARE>"
      "<TOTAL_MEM>8388608</TOTAL_MEM><TOTAL_CPU>400</TOTAL_CPU><FREE_MEM>100</FREE_MEM>"
      "<USED_MEM>200</USED_MEM><FREE_CPU>300</FREE_CPU><USED_CPU>100</USED_CPU></HOST_SHARE>"
      "<TEMPLATE><LABELS><![CDATA[ssd]]></LABELS><ARCH><![CDATA[x86_64]]></ARCH></TEMPLATE>"
      "</HOST>");
  // 6.10: MONITORING/CAPACITY.
  auto now = xml::Parse(
      "<HOST><ID>4</ID><NAME>n4</NAME><STATE>2</STATE><PREV_STATE>2</PREV_STATE>"
      "<CLUSTER_ID>0</CLUSTER_ID><HOST_SHARE><TOTAL_MEM>8388608</TOTAL_MEM><TOTAL_CPU>400"
      "</TOTAL_CPU></HOST_SHARE><TEMPLATE/><MONITORING><CAPACITY><FREE_CPU>350</FREE_CPU>"
      "<FREE_MEMORY>1000</FREE_MEMORY><USED_CPU>50</USED_CPU><USED_MEMORY>2000</USED_MEMORY>"
      "</CAPACITY></MONITORING></HOST>");
  ASSERT_TRUE(old.ok() && now.ok());
  auto h5 = HostFromXml(old->Root(), "one");
  auto h6 = HostFromXml(now->Root(), "one");
  ASSERT_TRUE(h5.ok() && h6.ok());
  EXPECT_EQ(h5->state(), v1::Host::UP);
  EXPECT_EQ(h5->provider_state(), "MONITORING_MONITORED");
  EXPECT_EQ(h5->cpu_count(), 4);
  EXPECT_EQ(h5->memory_bytes(), int64_t{8} << 30);
  EXPECT_EQ(h5->labels().count("ssd"), 1u);
  EXPECT_EQ(h5->provider_details().fields().at("freeMemoryKib").number_value(), 100);
  EXPECT_EQ(h6->provider_state(), "MONITORED");
  EXPECT_EQ(h6->provider_details().fields().at("freeMemoryKib").number_value(), 1000);
  EXPECT_EQ(h6->location(), "accounts/one/locations/cluster-0");
}

TEST(OpenNebulaWireTest, TemplatesEscapeAsTheReferenceSays) {
  EXPECT_EQ(*QuoteTemplateValue("a \"b\" c\\d"), "\"a \\\"b\\\" c\\d\"");
  EXPECT_EQ(QuoteTemplateValue("x]]>y").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*FlatTemplate({{"OWNER", "ops"}, {"NOTE", "say \"hi\""}}, "m"),
            "OWNER=\"ops\"\nNOTE=\"say \\\"hi\\\"\"\n");
  absl::Status bad = FlatTemplate({{"1X", "v"}}, "metadata.items").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(bad)->field_violations(0).field(), "metadata.items.1X");
  EXPECT_EQ(*XmlTemplate("TEMPLATE", {{"A", "<&>", {}}, {"D", "", {{"IMAGE_ID", "3"}}}}),
            "<TEMPLATE><A>&lt;&amp;&gt;</A><D><IMAGE_ID>3</IMAGE_ID></D></TEMPLATE>");
}

TEST(OpenNebulaWireTest, FirewallRulesBothWays) {
  v1::FirewallRule rule;
  rule.set_protocol("tcp");
  rule.set_direction(v1::FirewallRule::INGRESS);
  rule.set_port_range_start(80);
  rule.set_port_range_end(90);
  rule.add_source_ranges("10.0.0.0/24");
  auto attrs = RuleToTemplate(rule, "firewall.rules[0]");
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_THAT(*attrs, ::testing::ElementsAre(
                          std::pair<std::string, std::string>("PROTOCOL", "TCP"),
                          std::pair<std::string, std::string>("RULE_TYPE", "INBOUND"),
                          std::pair<std::string, std::string>("RANGE", "80:90"),
                          std::pair<std::string, std::string>("IP", "10.0.0.0"),
                          std::pair<std::string, std::string>("SIZE", "256")));
  const v1::FirewallRule rule_allow = rule;
  rule.set_action(v1::FirewallRule::DENY);
  EXPECT_EQ(RuleToTemplate(rule, "r").status().code(), absl::StatusCode::kInvalidArgument);
  auto doc = xml::Parse(
      "<SECURITY_GROUP><ID>100</ID><NAME>web</NAME><TEMPLATE><DESCRIPTION>d</DESCRIPTION>"
      "<RULE><IP>10.0.0.0</IP><PROTOCOL>TCP</PROTOCOL><RANGE>80:90</RANGE>"
      "<RULE_TYPE>INBOUND</RULE_TYPE><SIZE>256</SIZE></RULE></TEMPLATE></SECURITY_GROUP>");
  ASSERT_TRUE(doc.ok());
  auto fw = FirewallFromSecurityGroup(doc->Root(), "one", "web");
  ASSERT_TRUE(fw.ok()) << fw.status();
  ASSERT_EQ(fw->rules_size(), 1);
  // The rule's id is its content's: the same as the rule we send.
  EXPECT_EQ(fw->rules(0).name(), absl::StrCat("accounts/one/firewalls/web/rules/",
                                              RuleId(*RuleToTemplate(rule_allow, "r"))));
  EXPECT_EQ(fw->rules(0).port_range_start(), 80);
  EXPECT_EQ(fw->rules(0).port_range_end(), 90);
  EXPECT_THAT(fw->rules(0).source_ranges(), ::testing::ElementsAre("10.0.0.0/24"));
}

TEST(OpenNebulaWireTest, RuleIdsAreStableAndSetsRoundTrip) {
  const std::vector<std::pair<std::string, std::string>> a = {
      {"PROTOCOL", "TCP"}, {"RULE_TYPE", "INBOUND"}, {"RANGE", "22"}};
  // Order of sub-attributes and the case of PROTOCOL/RULE_TYPE do not matter.
  const std::vector<std::pair<std::string, std::string>> same = {
      {"RANGE", "22"}, {"RULE_TYPE", "inbound"}, {"PROTOCOL", "tcp"}};
  EXPECT_EQ(RuleId(a), RuleId(same));
  EXPECT_THAT(RuleId(a), ::testing::MatchesRegex("[0-9a-f]{12}"));
  EXPECT_NE(RuleId(a), RuleId({{"PROTOCOL", "TCP"}, {"RULE_TYPE", "INBOUND"}, {"RANGE", "23"}}));
  // Pinned: an id must not change between builds (it names the rule).
  EXPECT_EQ(RuleId({}), "cbf29ce48422");
  auto doc = xml::Parse(
      "<SECURITY_GROUP><ID>5</ID><NAME>g</NAME><TEMPLATE>"
      "<RULE><PROTOCOL>TCP</PROTOCOL><RANGE>22</RANGE><RULE_TYPE>INBOUND</RULE_TYPE></RULE>"
      "<RULE><NETWORK_ID>3</NETWORK_ID><PROTOCOL>ALL</PROTOCOL><RULE_TYPE>OUTBOUND</RULE_TYPE>"
      "</RULE><RULE><PROTOCOL>tcp</PROTOCOL><RANGE>22</RANGE><RULE_TYPE>inbound</RULE_TYPE>"
      "</RULE></TEMPLATE></SECURITY_GROUP>");
  ASSERT_TRUE(doc.ok());
  std::vector<SgRule> rules = SecurityGroupRules(doc->Root());
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].id, RuleId(a));
  EXPECT_EQ(rules[2].id, RuleId(a) + "-2");  // identical rules stay apart
  // Sub-attributes the API cannot show (NETWORK_ID) are written back as they are.
  EXPECT_EQ(*RuleSetTemplate({rules[1].attrs}),
            "RULE=[NETWORK_ID=\"3\",PROTOCOL=\"ALL\",RULE_TYPE=\"OUTBOUND\"]\n");
  EXPECT_EQ(*RuleSetTemplate({}), "RULE=[]\n");
  auto fw = FirewallFromSecurityGroup(doc->Root(), "one", "g");
  ASSERT_TRUE(fw.ok());
  EXPECT_THAT(fw->rules(1).destination_networks(),
              ::testing::ElementsAre("accounts/one/networks/3"));
  EXPECT_EQ(fw->rules(1).direction(), v1::FirewallRule::EGRESS);
  EXPECT_EQ(*VectorTemplate("DISK", {{"IMAGE_ID", "3"}, {"TARGET", "vdc"}}),
            "DISK=[IMAGE_ID=\"3\",TARGET=\"vdc\"]\n");
  EXPECT_EQ(VectorTemplate("DISK", {{"BAD-NAME", "3"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// One RULE read back as a FirewallRule.
v1::FirewallRule ReadRule(absl::string_view rule_xml) {
  auto doc = xml::Parse(absl::StrCat("<SECURITY_GROUP><ID>7</ID><NAME>g</NAME><TEMPLATE>",
                                     rule_xml, "</TEMPLATE></SECURITY_GROUP>"));
  EXPECT_TRUE(doc.ok());
  auto fw = FirewallFromSecurityGroup(doc->Root(), "lab", "g");
  EXPECT_TRUE(fw.ok() && fw->rules_size() == 1);
  return fw.ok() && fw->rules_size() == 1 ? fw->rules(0) : v1::FirewallRule();
}

// The far end of a RULE is never reported wider than it is, and never as
// "anywhere" unless it is: NETWORK_ID is a network, IP + SIZE an exact range.
TEST(OpenNebulaWireFirewallTest, NetworkIdIsASourceNetwork) {
  v1::FirewallRule r = ReadRule(
      "<RULE><PROTOCOL>TCP</PROTOCOL><RULE_TYPE>INBOUND</RULE_TYPE><RANGE>22</RANGE>"
      "<NETWORK_ID>5</NETWORK_ID></RULE>");
  EXPECT_THAT(r.source_networks(), ::testing::ElementsAre("accounts/lab/networks/5"));
  EXPECT_THAT(r.source_ranges(), ::testing::IsEmpty());
  EXPECT_THAT(r.source_address_ranges(), ::testing::IsEmpty());
  EXPECT_THAT(r.destination_networks(), ::testing::IsEmpty());
  EXPECT_EQ(r.description(), "");
  // NETWORK_ID wins over an IP beside it (oned expands the network).
  r = ReadRule("<RULE><PROTOCOL>ALL</PROTOCOL><RULE_TYPE>OUTBOUND</RULE_TYPE>"
               "<NETWORK_ID>0</NETWORK_ID><IP>10.0.0.0</IP><SIZE>8</SIZE></RULE>");
  EXPECT_THAT(r.destination_networks(), ::testing::ElementsAre("accounts/lab/networks/0"));
  EXPECT_THAT(r.destination_ranges(), ::testing::IsEmpty());
  EXPECT_THAT(r.source_networks(), ::testing::IsEmpty());
}

TEST(OpenNebulaWireFirewallTest, IpAndSizeAreExact) {
  // 10.0.0.10 + 5 is 10.0.0.10-14: no CIDR is exactly that.
  v1::FirewallRule r = ReadRule(
      "<RULE><PROTOCOL>TCP</PROTOCOL><RULE_TYPE>INBOUND</RULE_TYPE>"
      "<IP>10.0.0.10</IP><SIZE>5</SIZE></RULE>");
  ASSERT_EQ(r.source_address_ranges_size(), 1);
  EXPECT_EQ(r.source_address_ranges(0).first_address(), "10.0.0.10");
  EXPECT_EQ(r.source_address_ranges(0).size(), 5);
  EXPECT_THAT(r.source_ranges(), ::testing::IsEmpty());
  // A power of two that is not aligned is not a CIDR either.
  r = ReadRule("<RULE><PROTOCOL>TCP</PROTOCOL><RULE_TYPE>INBOUND</RULE_TYPE>"
               "<IP>192.168.0.128</IP><SIZE>256</SIZE></RULE>");
  ASSERT_EQ(r.source_address_ranges_size(), 1);
  EXPECT_EQ(r.source_address_ranges(0).size(), 256);
  // Exactly one block is the CIDR; one address is a /32.
  r = ReadRule("<RULE><PROTOCOL>TCP</PROTOCOL><RULE_TYPE>INBOUND</RULE_TYPE>"
               "<IP>192.168.4.0</IP><SIZE>1024</SIZE></RULE>");
  EXPECT_THAT(r.source_ranges(), ::testing::ElementsAre("192.168.4.0/22"));
  EXPECT_THAT(r.source_address_ranges(), ::testing::IsEmpty());
  r = ReadRule("<RULE><PROTOCOL>UDP</PROTOCOL><RULE_TYPE>OUTBOUND</RULE_TYPE>"
               "<IP>10.1.2.3</IP><SIZE>1</SIZE></RULE>");
  EXPECT_THAT(r.destination_ranges(), ::testing::ElementsAre("10.1.2.3/32"));
  EXPECT_THAT(r.source_ranges(), ::testing::IsEmpty());
  // What no typed field can hold is said, and is not "anywhere".
  r = ReadRule("<RULE><PROTOCOL>TCP</PROTOCOL><RULE_TYPE>INBOUND</RULE_TYPE>"
               "<IP>2001:db8::5</IP><SIZE>3</SIZE></RULE>");
  EXPECT_THAT(r.source_ranges(), ::testing::IsEmpty());
  EXPECT_THAT(r.source_address_ranges(), ::testing::IsEmpty());
  EXPECT_EQ(r.description(), "addresses 2001:db8::5 + 3");
}

TEST(OpenNebulaWireFirewallTest, NoTargetIsAnywhereSaidExplicitly) {
  v1::FirewallRule r =
      ReadRule("<RULE><PROTOCOL>ALL</PROTOCOL><RULE_TYPE>INBOUND</RULE_TYPE></RULE>");
  EXPECT_THAT(r.source_ranges(), ::testing::ElementsAre("0.0.0.0/0", "::/0"));
  r = ReadRule("<RULE><PROTOCOL>ALL</PROTOCOL><RULE_TYPE>OUTBOUND</RULE_TYPE></RULE>");
  EXPECT_THAT(r.destination_ranges(), ::testing::ElementsAre("0.0.0.0/0", "::/0"));
  EXPECT_THAT(r.source_ranges(), ::testing::IsEmpty());
}

using Attrs = std::vector<std::pair<std::string, std::string>>;

TEST(OpenNebulaWireFirewallTest, WritesNetworksRangesAndAnywhere) {
  v1::FirewallRule rule;
  rule.set_protocol("tcp");
  rule.add_source_networks("accounts/lab/networks/lab-net");
  const VnetIds vnets = {{"accounts/lab/networks/lab-net", 5}};
  auto attrs = RuleToTemplate(rule, "rule", vnets);
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(*attrs, (Attrs{{"PROTOCOL", "TCP"}, {"RULE_TYPE", "INBOUND"}, {"NETWORK_ID", "5"}}));
  // A network the adapter did not resolve is not sent.
  EXPECT_EQ(GetBadRequest(RuleToTemplate(rule, "rule").status())->field_violations(0).field(),
            "rule.source_networks[0]");

  v1::FirewallRule exact;
  exact.set_protocol("udp");
  exact.set_direction(v1::FirewallRule::EGRESS);
  v1::AddressRange* range = exact.add_destination_address_ranges();
  range->set_first_address("10.0.0.10");
  range->set_size(5);
  attrs = RuleToTemplate(exact, "rule");
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(*attrs, (Attrs{{"PROTOCOL", "UDP"}, {"RULE_TYPE", "OUTBOUND"}, {"IP", "10.0.0.10"},
                           {"SIZE", "5"}}));
  // Read back, the same range (and the same rule id).
  std::string xml = "<RULE>";
  for (const auto& [k, v] : *attrs) absl::StrAppend(&xml, "<", k, ">", v, "</", k, ">");
  v1::FirewallRule back = ReadRule(xml + "</RULE>");
  ASSERT_EQ(back.destination_address_ranges_size(), 1);
  EXPECT_EQ(back.destination_address_ranges(0).first_address(), "10.0.0.10");
  EXPECT_EQ(back.destination_address_ranges(0).size(), 5);
  range->set_size(0);
  EXPECT_EQ(GetBadRequest(RuleToTemplate(exact, "rule").status())->field_violations(0).field(),
            "rule.destination_address_ranges[0].size");

  // Any address is both families: no target. One family alone would widen.
  v1::FirewallRule any;
  any.set_protocol("all");
  any.add_source_ranges("0.0.0.0/0");
  EXPECT_EQ(GetBadRequest(RuleToTemplate(any, "rule").status())->field_violations(0).field(),
            "rule.source_ranges");
  any.add_source_ranges("::/0");
  attrs = RuleToTemplate(any, "rule");
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(*attrs, (Attrs{{"PROTOCOL", "ALL"}, {"RULE_TYPE", "INBOUND"}}));

  // One target per RULE; a security group is no target; host bits would
  // shift IP/SIZE's block.
  v1::FirewallRule two = rule;
  two.add_source_ranges("10.0.0.0/8");
  EXPECT_EQ(RuleToTemplate(two, "rule", vnets).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::FirewallRule group;
  group.set_protocol("tcp");
  group.add_source_firewalls("accounts/lab/firewalls/db");
  EXPECT_EQ(GetBadRequest(RuleToTemplate(group, "rule").status())->field_violations(0).field(),
            "rule.source_firewalls");
  v1::FirewallRule host;
  host.set_protocol("tcp");
  host.add_source_ranges("10.0.0.5/24");
  EXPECT_EQ(GetBadRequest(RuleToTemplate(host, "rule").status())->field_violations(0).field(),
            "rule.source_ranges");
  // The VM's own end cannot be given.
  v1::FirewallRule near;
  near.set_protocol("tcp");
  near.add_destination_networks("accounts/lab/networks/lab-net");
  EXPECT_EQ(
      GetBadRequest(RuleToTemplate(near, "rule", vnets).status())->field_violations(0).field(),
      "rule.destination_networks");
}

google::protobuf::Value Parsed(absl::string_view json) {
  google::protobuf::Value v;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(json), &v).ok()) << json;
  return v;
}

TEST(OpenNebulaWireTest, VmTemplatesFromProviderOptions) {
  const std::vector<std::pair<std::string, std::string>> extra = {{"NAME", "web"}};
  const std::string field = "instance.provider_options.template";
  // A string is sent as it is, ours first (text form) ...
  EXPECT_EQ(*VmTemplateFromOption(Parsed("\"CPU = 1\\nMEMORY=64\""), extra, field),
            "NAME=\"web\"\nCPU = 1\nMEMORY=64");
  // ... or just before the root's closing tag (XML form).
  EXPECT_EQ(*VmTemplateFromOption(Parsed("\"<TEMPLATE><CPU>1</CPU></TEMPLATE>\\n\""),
                                  {{"NAME", "a&b"}}, field),
            "<TEMPLATE><CPU>1</CPU><NAME>a&amp;b</NAME></TEMPLATE>");
  EXPECT_EQ(VmTemplateFromOption(Parsed("\"<TEMPLATE><CPU>1</CPU>\""), extra, field)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // pyone's rules: one root key holding a map is XML; numbers lose ".0",
  // bools are YES/NO, lists repeat the attribute.
  EXPECT_EQ(*VmTemplateFromOption(
                Parsed(R"({"TEMPLATE": {"CPU": 0.5, "MEMORY": 64, "DISK": [{"IMAGE_ID": 1},
                          {"SIZE": 10, "TYPE": "fs"}], "CONTEXT": {"NETWORK": true}}})"),
                extra, field),
            "<TEMPLATE><NAME>web</NAME><CONTEXT><NETWORK>YES</NETWORK></CONTEXT><CPU>0.5</CPU>"
            "<DISK><IMAGE_ID>1</IMAGE_ID></DISK><DISK><SIZE>10</SIZE><TYPE>fs</TYPE></DISK>"
            "<MEMORY>64</MEMORY></TEMPLATE>");
  // Any other map is flat: KEY="value" lines, vectors as K=[...].
  EXPECT_EQ(*VmTemplateFromOption(
                Parsed(R"({"MEMORY": 64, "NOTE": "say \"hi\"", "NIC": {"NETWORK_ID": 0}})"),
                extra, field),
            "NAME=\"web\"\nMEMORY=\"64\"\nNIC=[NETWORK_ID=\"0\"]\nNOTE=\"say \\\"hi\\\"\"\n");
  // What a template cannot hold names the field.
  auto bad = [&](absl::string_view json) {
    absl::Status s = VmTemplateFromOption(Parsed(json), extra, field).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << json;
    return GetBadRequest(s)->field_violations(0).field();
  };
  EXPECT_EQ(bad(R"({"TEMPLATE": {"A": {"B": {"C": 1}}}})"), field + ".TEMPLATE.A.B");
  EXPECT_EQ(bad(R"({"1X": "v"})"), field + ".1X");
  EXPECT_EQ(bad(R"({"A": "x]]>y"})"), field + ".A");
  EXPECT_EQ(bad(R"({"A": [[1]]})"), field + ".A");
  EXPECT_EQ(bad("{}"), field);
  EXPECT_EQ(bad("\"  \""), field);
  EXPECT_EQ(bad("12"), field);
}

TEST(OpenNebulaWireTest, ActionOptionsAndLabels) {
  google::protobuf::Struct options;
  EXPECT_EQ(*ActionOption(options, {"poweroff", "suspend"}), "");
  (*options.mutable_fields())["action"].set_string_value("suspend");
  EXPECT_EQ(*ActionOption(options, {"poweroff", "suspend"}), "suspend");
  (*options.mutable_fields())["action"].set_string_value("explode");
  absl::Status s = ActionOption(options, {"poweroff", "suspend"}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(s)->field_violations(0).field(), "provider_options.action");
  EXPECT_THAT(GetBadRequest(s)->field_violations(0).description(),
              HasSubstr("poweroff, suspend"));
  (*options.mutable_fields())["action"].set_number_value(1);
  EXPECT_EQ(GetBadRequest(ActionOption(options, {"a"}).status())->field_violations(0).field(),
            "provider_options.action");
  options.clear_fields();
  (*options.mutable_fields())["mode"].set_string_value("x");
  EXPECT_EQ(GetBadRequest(ActionOption(options, {"a"}).status())->field_violations(0).field(),
            "provider_options.mode");

  google::protobuf::Map<std::string, std::string> labels;
  labels["env"] = "prod";
  labels["a_1"] = "";
  EXPECT_THAT(*LabelAttributes(labels, "instance.labels"),
              ::testing::ElementsAre(::testing::Pair("CLOUDPLANE_LABEL_A_1", ""),
                                     ::testing::Pair("CLOUDPLANE_LABEL_ENV", "prod")));
  labels["Bad-Key"] = "x";
  labels["1st"] = "x";
  absl::Status bad = LabelAttributes(labels, "instance.labels").status();
  ASSERT_EQ(GetBadRequest(bad)->field_violations_size(), 2);
  auto user = xml::Parse(
      "<USER_TEMPLATE><CLOUDPLANE_LABEL_ENV>prod</CLOUDPLANE_LABEL_ENV><CLOUDPLANE_LABEL_/>"
      "<CLOUDPLANE_OPERATION>x</CLOUDPLANE_OPERATION><LABELS>a,b</LABELS></USER_TEMPLATE>");
  ASSERT_TRUE(user.ok());
  EXPECT_THAT(LabelsFromUserTemplate(&user->Root()),
              ::testing::ElementsAre(::testing::Pair("env", "prod")));
  EXPECT_TRUE(LabelsFromUserTemplate(nullptr).empty());

  EXPECT_TRUE(CheckVmName("web 1 (test)", "n").ok());
  EXPECT_EQ(CheckVmName("", "n").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckVmName("a/b", "n").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckVmName("a\tb", "n").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckVmName(std::string(129, 'a'), "n").code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpenNebulaWireTest, ImagesAsVolumes) {
  auto doc = xml::Parse(
      "<IMAGE><ID>3</ID><UID>0</UID><UNAME>oneadmin</UNAME><NAME>data-1</NAME><TYPE>2</TYPE>"
      "<DISK_TYPE>0</DISK_TYPE><PERSISTENT>1</PERSISTENT><REGTIME>1700000000</REGTIME>"
      "<SIZE>10240</SIZE><STATE>8</STATE><RUNNING_VMS>1</RUNNING_VMS><DATASTORE_ID>1"
      "</DATASTORE_ID><DATASTORE>default</DATASTORE><VMS><ID>7</ID><ID>9</ID></VMS>"
      "<TEMPLATE><LABELS><![CDATA[db]]></LABELS></TEMPLATE></IMAGE>");
  ASSERT_TRUE(doc.ok());
  auto v = VolumeFromImage(doc->Root(), "one", "data-1", {{7, "web-1"}});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->name(), "accounts/one/volumes/data-1");
  EXPECT_EQ(v->state(), v1::Volume::ATTACHED);
  EXPECT_EQ(v->provider_state(), "USED_PERS");
  EXPECT_EQ(v->size_bytes(), int64_t{10240} << 20);
  EXPECT_EQ(v->media(), v1::Volume::DISK);
  EXPECT_THAT(v->attached_to(), ::testing::ElementsAre("accounts/one/instances/web-1",
                                                       "accounts/one/instances/9"));
  EXPECT_EQ(v->labels().count("db"), 1u);
  EXPECT_EQ(v->provider_details().fields().at("type").string_value(), "DATABLOCK");
  EXPECT_EQ(v->create_time().seconds(), 1700000000);
  struct Case {
    int state;
    v1::Volume::State want;
  } cases[] = {{0, v1::Volume::CREATING}, {1, v1::Volume::AVAILABLE},
               {2, v1::Volume::ATTACHED}, {3, v1::Volume::STATE_UNSPECIFIED},
               {5, v1::Volume::ERROR},    {6, v1::Volume::CREATING},
               {7, v1::Volume::DELETING}, {10, v1::Volume::ATTACHED}};
  for (const Case& c : cases) {
    auto d = xml::Parse(absl::StrCat("<IMAGE><ID>1</ID><NAME>x</NAME><TYPE>1</TYPE><STATE>",
                                     c.state, "</STATE></IMAGE>"));
    ASSERT_TRUE(d.ok());
    auto vol = VolumeFromImage(d->Root(), "one", "x", {});
    ASSERT_TRUE(vol.ok());
    EXPECT_EQ(vol->state(), c.want) << c.state;
    EXPECT_EQ(vol->media(), v1::Volume::CDROM);
  }
  auto broken = xml::Parse("<IMAGE><ID>1</ID><NAME>x</NAME><TYPE>x</TYPE></IMAGE>");
  ASSERT_TRUE(broken.ok());
  ExpectMalformed(VolumeFromImage(broken->Root(), "one", "x", {}).status(), "not an integer");
  EXPECT_TRUE(IsVolumeImageType(0) && IsVolumeImageType(2));
  EXPECT_FALSE(IsVolumeImageType(3) || IsVolumeImageType(5) || IsVolumeImageType(6));

  EXPECT_EQ(*DiskDeviceAttribute("vdc"), std::make_pair(std::string("TARGET"),
                                                        std::string("vdc")));
  EXPECT_EQ(*DiskDeviceAttribute("xvdb"), std::make_pair(std::string("TARGET"),
                                                         std::string("xvdb")));
  EXPECT_EQ(*DiskDeviceAttribute("virtio"), std::make_pair(std::string("DEV_PREFIX"),
                                                           std::string("vd")));
  EXPECT_EQ(*DiskDeviceAttribute("sd"), std::make_pair(std::string("DEV_PREFIX"),
                                                       std::string("sd")));
  EXPECT_EQ(*DiskDeviceAttribute("sata"), std::make_pair(std::string("DEV_PREFIX"),
                                                         std::string("sd")));
  EXPECT_EQ(DiskDeviceAttribute("floppy").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DiskDeviceAttribute("vd1").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpenNebulaWireTest, ResourceNames) {
  EXPECT_EQ(ResourceId(5, "web-1"), "web-1");
  EXPECT_EQ(ResourceId(5, "Web 1"), "5");
  auto a = ParseResourceName("name", "one", "instances", "accounts/one/instances/42");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a->oid, 42);
  auto b = ParseResourceName("name", "one", "instances", "accounts/one/instances/web-1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->name, "web-1");
  EXPECT_EQ(ParseResourceName("name", "one", "instances", "accounts/two/instances/x").status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::adapters::opennebula
