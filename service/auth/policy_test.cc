#include "service/auth/policy.h"

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace cloudplane::auth {
namespace {

config::v1::AuthConfig Parse(const std::string& text) {
  config::v1::AuthConfig auth;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &auth));
  return auth;
}

Caller Named(std::string principal, std::vector<std::string> groups = {}) {
  Caller caller;
  caller.principal = std::move(principal);
  caller.groups = std::move(groups);
  caller.credential = "api_key";
  return caller;
}

TEST(PermissionTest, AdapterReadsNeedViewerAndMutationsOperator) {
  const Permission* get = PermissionFor("cloudplane.v1.ComputeService.GetInstance");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->name, "compute.GetInstance");
  EXPECT_EQ(get->role, Role::kViewer);
  const Permission* create = PermissionFor("cloudplane.v1.VolumesService.CreateVolume");
  ASSERT_NE(create, nullptr);
  EXPECT_EQ(create->name, "volumes.CreateVolume");
  EXPECT_EQ(create->role, Role::kOperator);
}

TEST(PermissionTest, ServerOwnMethods) {
  EXPECT_EQ(PermissionFor("google.longrunning.Operations.DeleteOperation")->role, Role::kAdmin);
  EXPECT_EQ(PermissionFor("google.longrunning.Operations.CancelOperation")->role,
            Role::kOperator);
  EXPECT_EQ(PermissionFor("google.longrunning.Operations.WaitOperation")->name,
            "operations.WaitOperation");
  EXPECT_EQ(PermissionFor("cloudplane.v1.AuditService.ListAuditEvents")->name,
            "audit.ListAuditEvents");
  EXPECT_EQ(PermissionFor("cloudplane.v1.WatchService.Watch")->role, Role::kViewer);
  EXPECT_EQ(ListProviderOperationsPermission().role, Role::kAdmin);
  EXPECT_EQ(PermissionFor("cloudplane.v1.ComputeService.NoSuchMethod"), nullptr);
  EXPECT_EQ(PermissionFor("grpc.health.v1.Health.Check"), nullptr);
}

TEST(BindingsTest, HighestRoleOfPrincipalAndGroupsPerAccount) {
  Bindings bindings(Parse(R"pb(
    bindings { role: VIEWER principals: "alice" accounts: "lab" accounts: "prod" }
    bindings { role: OPERATOR groups: "ops" accounts: "lab" }
    bindings { role: ADMIN principals: "root" accounts: "*" }
  )pb"));
  EXPECT_EQ(bindings.RoleOn(Named("alice"), "lab"), Role::kViewer);
  EXPECT_EQ(bindings.RoleOn(Named("alice", {"ops"}), "lab"), Role::kOperator);
  EXPECT_EQ(bindings.RoleOn(Named("alice", {"ops"}), "prod"), Role::kViewer);
  EXPECT_EQ(bindings.RoleOn(Named("alice"), "other"), Role::kNone);
  EXPECT_EQ(bindings.RoleOn(Named("bob", {"ops"}), "prod"), Role::kNone);
  EXPECT_EQ(bindings.RoleOn(Named("root"), "anything"), Role::kAdmin);
  // A principal and a group of the same name are different subjects.
  EXPECT_EQ(bindings.RoleOn(Named("ops"), "lab"), Role::kNone);
  EXPECT_EQ(bindings.RoleOn(Named("nobody"), "lab"), Role::kNone);
}

TEST(BindingsTest, AccountsWithRole) {
  Bindings bindings(Parse(R"pb(
    bindings { role: VIEWER principals: "alice" accounts: "lab" accounts: "prod" }
    bindings { role: ADMIN principals: "alice" accounts: "lab" }
    bindings { role: VIEWER principals: "root" accounts: "*" }
  )pb"));
  AccountSet viewer = bindings.AccountsWith(Named("alice"), Role::kViewer);
  EXPECT_FALSE(viewer.all);
  EXPECT_TRUE(viewer.Contains("lab"));
  EXPECT_TRUE(viewer.Contains("prod"));
  EXPECT_FALSE(viewer.Contains("other"));
  AccountSet admin = bindings.AccountsWith(Named("alice"), Role::kAdmin);
  EXPECT_TRUE(admin.Contains("lab"));
  EXPECT_FALSE(admin.Contains("prod"));
  EXPECT_TRUE(bindings.AccountsWith(Named("root"), Role::kViewer).all);
  EXPECT_TRUE(bindings.AccountsWith(Named("root"), Role::kOperator).empty());
  EXPECT_TRUE(bindings.AccountsWith(Named("nobody"), Role::kViewer).empty());
}

TEST(BindingsTest, UnrestrictedCallerIsAdminEverywhere) {
  Bindings none;
  Caller anyone;
  anyone.unrestricted = true;
  EXPECT_EQ(none.RoleOn(anyone, "lab"), Role::kAdmin);
  EXPECT_TRUE(none.AccountsWith(anyone, Role::kAdmin).all);
  EXPECT_EQ(none.RoleOn(Named("alice"), "lab"), Role::kNone);  // deny by default
}

}  // namespace
}  // namespace cloudplane::auth
