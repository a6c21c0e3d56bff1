// Every method of every service the server registers has exactly the
// permission the policy promises: reads of the method table VIEWER,
// mutations OPERATOR, and the server's own methods as listed here. A new RPC
// without a permission fails this test (and is refused by the server).
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "service/auth/policy.h"
#include "service/handlers.h"

namespace cloudplane::service {
namespace {

using auth::Role;

Role Expected(const std::string& full_method) {
  static const auto* const kOwn = new std::map<std::string, Role>{
      {"cloudplane.v1.AccountsService.ListProviders", Role::kViewer},
      {"cloudplane.v1.AccountsService.GetProvider", Role::kViewer},
      {"cloudplane.v1.AccountsService.ListAccounts", Role::kViewer},
      {"cloudplane.v1.AccountsService.GetAccount", Role::kViewer},
      {"cloudplane.v1.WatchService.Watch", Role::kViewer},
      {"cloudplane.v1.AuditService.ListAuditEvents", Role::kAdmin},
      {"google.longrunning.Operations.ListOperations", Role::kViewer},
      {"google.longrunning.Operations.GetOperation", Role::kViewer},
      {"google.longrunning.Operations.WaitOperation", Role::kViewer},
      {"google.longrunning.Operations.CancelOperation", Role::kOperator},
      {"google.longrunning.Operations.DeleteOperation", Role::kAdmin},
  };
  if (auto it = kOwn->find(full_method); it != kOwn->end()) return it->second;
  static const auto* const kTable = new std::map<std::string, Role>{
#define CP_READ(Service, Method, Request, Response) \
  {absl::StrCat("cloudplane.v1.", #Service, ".", #Method), Role::kViewer},
#define CP_MUTATION(Service, Method, Request, Result) \
  {absl::StrCat("cloudplane.v1.", #Service, ".", #Method), Role::kOperator},
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
  };
  auto it = kTable->find(full_method);
  return it == kTable->end() ? Role::kNone : it->second;
}

TEST(PermissionsTest, EveryServedMethodHasItsPermission) {
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  std::set<std::string> walked;
  for (const std::string& name : ServiceNames()) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string full = absl::StrCat(name, ".", service->method(i)->name());
      walked.insert(full);
      const auth::Permission* permission = auth::PermissionFor(full);
      ASSERT_NE(permission, nullptr) << full << " has no permission";
      EXPECT_EQ(permission->role, Expected(full)) << full;
      EXPECT_NE(Expected(full), Role::kNone) << full << " is in no table of this test";
      std::string short_service(service->name());
      if (short_service.size() > 7 && short_service.substr(short_service.size() - 7) == "Service") {
        short_service.resize(short_service.size() - 7);
      }
      for (char& c : short_service) c = static_cast<char>(std::tolower(c));
      EXPECT_EQ(permission->name, absl::StrCat(short_service, ".", service->method(i)->name()));
    }
  }
  // Nothing in the policy names a method the server does not serve.
  for (const auto& [method, permission] : auth::AllPermissions()) {
    EXPECT_TRUE(walked.contains(method)) << method << " is not served";
  }
  EXPECT_GT(walked.size(), 50u);
}

}  // namespace
}  // namespace cloudplane::service
