#include "adapters/common/testing/field_contract_check.h"

#include <string>
#include <vector>

#include "cloudplane/v1/compute.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::testutil {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class InfoOnly : public Provider {
 public:
  explicit InfoOnly(ProviderInfo info) : info_(std::move(info)) {}
  const ProviderInfo& Info() const override { return info_; }

 private:
  ProviderInfo info_;
};

ProviderInfo Base() {
  ProviderInfo info;
  info.kind = "test";
  for (const char* m : {"GetInstance", "CreateInstance", "StartInstance"}) {
    info.supported_methods.push_back(FullMethodName("ComputeService", m));
  }
  return info;
}

void Honour(ProviderInfo& info, const char* method, std::vector<std::string> paths) {
  info.honoured_fields[FullMethodName("ComputeService", method)] = std::move(paths);
}

TEST(MutationRequestType, MutationsOnly) {
  EXPECT_EQ(MutationRequestType("cloudplane.v1.ComputeService.CreateInstance"),
            v1::CreateInstanceRequest::descriptor());
  EXPECT_EQ(MutationRequestType("cloudplane.v1.ComputeService.GetInstance"), nullptr);
  EXPECT_EQ(MutationRequestType("cloudplane.v1.ComputeService.Nope"), nullptr);
}

TEST(HonouredPathProblem, WalksMessagesAndStopsAtLeaves) {
  const auto& d = *v1::CreateInstanceRequest::descriptor();
  EXPECT_EQ(HonouredPathProblem(d, "instance_id"), "");
  EXPECT_EQ(HonouredPathProblem(d, "start"), "");
  EXPECT_EQ(HonouredPathProblem(d, "instance.image"), "");
  EXPECT_EQ(HonouredPathProblem(d, "instance.labels"), "");
  EXPECT_EQ(HonouredPathProblem(d, "instance.provider_options"), "");
  EXPECT_THAT(HonouredPathProblem(d, "instance.imag"), HasSubstr("no field \"imag\""));
  EXPECT_THAT(HonouredPathProblem(d, "instance.labels.team"), HasSubstr("past the leaf"));
  EXPECT_THAT(HonouredPathProblem(d, "instance.provider_options.x"), HasSubstr("past the leaf"));
  EXPECT_THAT(HonouredPathProblem(d, "instance_id.x"), HasSubstr("past the leaf"));
  EXPECT_THAT(HonouredPathProblem(d, "request_id"), HasSubstr("server's"));
  EXPECT_THAT(HonouredPathProblem(d, "instance.name"), HasSubstr("IDENTIFIER"));
  EXPECT_THAT(HonouredPathProblem(d, "instance.state"), HasSubstr("OUTPUT_ONLY"));
}

TEST(FieldContractProblems, EveryMutationNeedsAnEntryEvenAnEmptyOne) {
  ProviderInfo info = Base();
  Honour(info, "CreateInstance", {"instance.image"});
  EXPECT_THAT(FieldContractProblems(InfoOnly(info)),
              ElementsAre("cloudplane.v1.ComputeService.StartInstance: supported mutation "
                          "without an entry"));
  Honour(info, "StartInstance", {});
  EXPECT_THAT(FieldContractProblems(InfoOnly(info)), IsEmpty());
}

TEST(FieldContractProblems, BadPathsAndStrayEntries) {
  ProviderInfo info = Base();
  Honour(info, "CreateInstance", {"instance.image", "instance.image", "instance.colour"});
  Honour(info, "StartInstance", {});
  Honour(info, "StopInstance", {});
  Honour(info, "GetInstance", {});
  EXPECT_THAT(
      FieldContractProblems(InfoOnly(info)),
      ElementsAre(
          "cloudplane.v1.ComputeService.CreateInstance: instance.colour: "
          "cloudplane.v1.Instance has no field \"colour\"",
          "cloudplane.v1.ComputeService.CreateInstance: instance.image listed twice",
          "cloudplane.v1.ComputeService.GetInstance: has an entry but is not a mutation",
          "cloudplane.v1.ComputeService.StopInstance: has an entry but is not supported"));
}

// A Provider whose list depends on its configuration: its own answer counts.
class Configured : public InfoOnly {
 public:
  using InfoOnly::InfoOnly;
  std::vector<std::string> HonouredFields(const std::string& method) const override {
    if (method == "cloudplane.v1.ComputeService.StartInstance") return {"instance.colour"};
    return InfoOnly::HonouredFields(method);
  }
};

TEST(FieldContractProblems, AnOverriddenListIsCheckedToo) {
  ProviderInfo info = Base();
  Honour(info, "CreateInstance", {"instance.image"});
  EXPECT_THAT(FieldContractProblems(Configured(info)),
              ElementsAre("cloudplane.v1.ComputeService.StartInstance: instance.colour: "
                          "cloudplane.v1.StartInstanceRequest has no field \"instance\""));
}

}  // namespace
}  // namespace cloudplane::adapters::testutil
