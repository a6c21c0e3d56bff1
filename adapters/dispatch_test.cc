#include "adapters/dispatch.h"

#include <string>

#include "gtest/gtest.h"

namespace cloudplane::adapters {
namespace {

class RecordingProvider : public Provider {
 public:
  const ProviderInfo& Info() const override { return info_; }
  void CreateInstance(const CallContext& ctx, const v1::CreateInstanceRequest& request,
                      Callback<MutationProgress> done) override {
    seen_id = request.instance_id();
    seen_validate_only = ctx.validate_only;
    MutationProgress p;
    p.done = true;
    std::move(done)(p);
  }
  void ListUnits(const CallContext& ctx, const v1::ListUnitsRequest& request,
                 Callback<v1::ListUnitsResponse> done) override {
    seen_id = request.parent() + "|" + request.page_token();
    if (request.page_size() < 0) return std::move(done)(absl::UnavailableError("down"));
    v1::ListUnitsResponse response;
    response.add_units()->set_name(request.parent() + "/units/a.service");
    response.set_next_page_token("next");
    std::move(done)(response);
  }
  std::string seen_id;
  bool seen_validate_only = false;

 private:
  ProviderInfo info_;
};

TEST(DispatchTest, UnpacksAndCallsTheNamedMethod) {
  RecordingProvider provider;
  v1::CreateInstanceRequest request;
  request.set_instance_id("web-1");
  google::protobuf::Any packed;
  packed.PackFrom(request);
  CallContext ctx;
  ctx.validate_only = true;
  bool called = false;
  ASSERT_TRUE(DispatchMutation("cloudplane.v1.ComputeService.CreateInstance", provider, ctx,
                               packed,
                               [&](absl::StatusOr<MutationProgress> p) { called = p.ok(); })
                  .ok());
  EXPECT_TRUE(called);
  EXPECT_EQ(provider.seen_id, "web-1");
  EXPECT_TRUE(provider.seen_validate_only);
}

TEST(DispatchTest, UnknownMethodAndWrongTypeAreRefusedWithoutACall) {
  RecordingProvider provider;
  google::protobuf::Any packed;
  packed.PackFrom(v1::DeleteInstanceRequest());
  bool called = false;
  auto cb = [&](absl::StatusOr<MutationProgress>) { called = true; };
  EXPECT_EQ(DispatchMutation("cloudplane.v1.ComputeService.CreateInstance", provider, {}, packed,
                             cb)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DispatchMutation("cloudplane.v1.ComputeService.GetInstance", provider, {}, packed, cb)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(called);
}

TEST(DispatchTest, EveryMutationOfTheTableDispatches) {
  // Each mutation accepts its own request type and refuses another: the
  // table has one entry per CP_MUTATION row, none for a read.
  RecordingProvider provider;
  google::protobuf::Any wrong;
  wrong.PackFrom(google::protobuf::Empty());
  int mutations = 0;
  for (const std::string& m : AllAdapterMethods()) {
    absl::Status s = DispatchMutation(m, provider, {}, wrong, [](auto) {});
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << m;
    if (s.message().find("unknown mutation") == absl::string_view::npos) ++mutations;
  }
  EXPECT_GT(mutations, 20);
  EXPECT_LT(mutations, static_cast<int>(AllAdapterMethods().size()));
}

TEST(DispatchReadTest, UnpacksCallsAndPacksTheResponse) {
  RecordingProvider provider;
  v1::ListUnitsRequest request;
  request.set_parent("accounts/lab");
  request.set_page_token("t1");
  google::protobuf::Any packed;
  packed.PackFrom(request);
  absl::StatusOr<google::protobuf::Any> answer;
  ASSERT_TRUE(DispatchRead("cloudplane.v1.UnitsService.ListUnits", provider, {}, packed,
                           [&](absl::StatusOr<google::protobuf::Any> a) { answer = std::move(a); })
                  .ok());
  EXPECT_EQ(provider.seen_id, "accounts/lab|t1");
  ASSERT_TRUE(answer.ok()) << answer.status();
  v1::ListUnitsResponse response;
  ASSERT_TRUE(answer->UnpackTo(&response));
  ASSERT_EQ(response.units_size(), 1);
  EXPECT_EQ(response.units(0).name(), "accounts/lab/units/a.service");
  EXPECT_EQ(response.next_page_token(), "next");

  request.set_page_size(-1);
  packed.PackFrom(request);
  ASSERT_TRUE(DispatchRead("cloudplane.v1.UnitsService.ListUnits", provider, {}, packed,
                           [&](absl::StatusOr<google::protobuf::Any> a) { answer = std::move(a); })
                  .ok());
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
}

TEST(DispatchReadTest, EveryReadOfTheTableDispatchesAndNoMutation) {
  RecordingProvider provider;
  google::protobuf::Any wrong;
  wrong.PackFrom(google::protobuf::Empty());
  int reads = 0;
  bool called = false;
  for (const std::string& m : AllAdapterMethods()) {
    absl::Status s = DispatchRead(m, provider, {}, wrong, [&](auto) { called = true; });
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << m;
    if (s.message().find("unknown read") == absl::string_view::npos) ++reads;
  }
  EXPECT_FALSE(called);
  int mutations = 0;
  for (const std::string& m : AllAdapterMethods()) {
    if (DispatchMutation(m, provider, {}, wrong, [](auto) {}).message().find("unknown mutation") ==
        absl::string_view::npos) {
      ++mutations;
    }
  }
  EXPECT_EQ(reads + mutations, static_cast<int>(AllAdapterMethods().size()));
  EXPECT_EQ(reads, 34);
}

}  // namespace
}  // namespace cloudplane::adapters
