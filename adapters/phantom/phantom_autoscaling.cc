// AutoscalingService on Phantom (and AWS Auto Scaling): launch templates as
// launch configurations, scaling groups as Auto Scaling groups, and the
// polls that wait for a group to settle or go.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/scratch/durable_put.h"
#include "adapters/phantom/phantom_provider.h"
#include "adapters/phantom/phantom_tokens.pb.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::phantom {
namespace {

using Goal = GroupWaitToken::Goal;

// The newest GroupWaitToken version this code writes and reads.
constexpr uint32_t kTokenVersion = 1;

std::vector<WireLaunchConfig> OfTemplate(Dialect dialect, const std::vector<WireLaunchConfig>& all,
                                         absl::string_view id) {
  std::vector<WireLaunchConfig> out;
  for (const WireLaunchConfig& lc : all) {
    if (TemplateIdOf(dialect, lc.name) == id) out.push_back(lc);
  }
  std::sort(out.begin(), out.end(), [](const WireLaunchConfig& a, const WireLaunchConfig& b) {
    return a.name < b.name;
  });
  return out;
}

absl::Status AlreadyExists(absl::string_view what, absl::string_view id,
                           absl::string_view resource) {
  return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat(what, " ", id, " already exists")),
                       reasons::kResourceAlreadyExists, {{"resource", std::string(resource)}});
}

void GetTemplate(const AccountPtr& account, absl::Time deadline, const std::string& id,
                 Callback<v1::LaunchTemplate> done) {
  DescribeLaunchConfigs(
      account, deadline,
      [account, id, done = std::move(done)](
          absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
        if (!lcs.ok()) return std::move(done)(lcs.status());
        std::vector<WireLaunchConfig> mine = OfTemplate(account->dialect, *lcs, id);
        if (mine.empty()) {
          return std::move(done)(
              kit::NotFound("launch template", ResourceName(account->id, "launchTemplates", id)));
        }
        std::move(done)(TemplateFromWire(account->dialect, account->id, id, mine));
      });
}

// ---------------------------------------------------------------------------
// Creation marks (idempotent re-drive after a crash), in the account's
// ScratchStore: reads are memory, so they are safe in HTTP completions.

std::string MarkId(absl::string_view kind, absl::string_view id) {
  return absl::StrCat(kind, "/", id);
}

bool MarkedBy(const AccountPtr& account, absl::string_view kind, absl::string_view id,
              absl::string_view operation) {
  if (account->scratch == nullptr || operation.empty()) return false;
  absl::StatusOr<std::string> op = account->scratch->Get(kCreatesCollection, MarkId(kind, id));
  return op.ok() && *op == operation;
}

// Marks `kind/id` as created by `operation`, then runs `then`. The mark is
// durable before `then` runs (PutDurably), so the provider is asked only once
// it is: a crash in between would otherwise make the re-driven create refuse
// its own resource with ALREADY_EXISTS. A failed write reaches `then`
// (nothing was created yet). `then` runs on the EventLoop, or inline.
void Mark(const AccountPtr& account, absl::string_view kind, absl::string_view id,
          absl::string_view operation, absl::AnyInvocable<void(absl::Status)> then) {
  if (account->scratch == nullptr || operation.empty()) return then(absl::OkStatus());
  PutDurably(*account->scratch, kCreatesCollection, MarkId(kind, id), std::string(operation),
             MarkId(kind, id), std::move(then));
}

// Removes the mark once the resource is gone or was never made. Its failure
// changes no outcome, so nothing waits for it: a mark only matters to a
// re-drive of the operation it names, and that operation has finished.
void Unmark(const AccountPtr& account, absl::string_view kind, absl::string_view id) {
  if (account->scratch == nullptr) return;
  account->scratch->Delete(kCreatesCollection, MarkId(kind, id)).IgnoreError();
}

// ---------------------------------------------------------------------------
// Launch configurations, one after another.

struct LcBatch {
  AccountPtr account;
  absl::Time deadline;
  std::vector<LaunchConfigSpec> specs;
  size_t next = 0;
  std::vector<std::string> created;
  absl::AnyInvocable<void(absl::Status, std::vector<std::string> created)> done;
};

void CreateNextLc(std::shared_ptr<LcBatch> st) {
  if (st->next == st->specs.size()) return st->done(absl::OkStatus(), std::move(st->created));
  const LaunchConfigSpec spec = st->specs[st->next++];
  const AccountPtr account = st->account;
  Query(account, st->deadline, "CreateLaunchConfiguration", CreateLaunchConfigParams(spec),
        [st, name = spec.name](absl::StatusOr<aws::QueryResponse> r) mutable {
          if (!r.ok()) return st->done(r.status(), std::move(st->created));
          st->created.push_back(name);
          CreateNextLc(std::move(st));
        });
}

void DeleteLcs(const AccountPtr& account, absl::Time deadline, std::vector<std::string> names,
               absl::AnyInvocable<void(absl::Status)> done) {
  if (names.empty()) return done(absl::OkStatus());
  const std::string name = names.back();
  names.pop_back();
  Query(account, deadline, "DeleteLaunchConfiguration", {{"LaunchConfigurationName", name}},
        [account, deadline, names = std::move(names),
         done = std::move(done)](absl::StatusOr<aws::QueryResponse> r) mutable {
          if (!r.ok()) return done(r.status());
          DeleteLcs(account, deadline, std::move(names), std::move(done));
        });
}

// ---------------------------------------------------------------------------
// Group convergence and its poll tokens.

GroupWaitToken WaitFor(Goal goal, absl::string_view group, int size) {
  GroupWaitToken token;
  token.set_version(kTokenVersion);
  token.set_goal(goal);
  token.set_group(std::string(group));
  token.set_size(size);
  return token;
}

absl::StatusOr<GroupWaitToken> ReadToken(absl::string_view bytes) {
  absl::StatusOr<GroupWaitToken> token = kit::UnpackToken<GroupWaitToken>(bytes, kTokenVersion);
  if (!token.ok()) return token.status();
  if (token->goal() == GroupWaitToken::GOAL_UNSPECIFIED || token->size() < 0 ||
      !ValidateId("", token->group()).ok()) {
    return kit::UnreadableToken("a phantom GroupWaitToken without goal, group or size");
  }
  return token;
}

void ReadGroupProgress(const AccountPtr& account, absl::Time deadline, GroupWaitToken target,
                       Callback<MutationProgress> done) {
  const std::string group = target.group();
  DescribeGroups(
      account, deadline, group,
      [account, target = std::move(target),
       done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
        if (!groups.ok()) return std::move(done)(groups.status());
        const std::string& group = target.group();
        if (target.goal() == GroupWaitToken::GONE) {
          if (groups->empty()) return std::move(done)(kit::Finished(google::protobuf::Empty()));
          return std::move(done)(kit::Pending(kit::PackToken(target),
                                              absl::StrCat("waiting for group ", group,
                                                           " to go away")));
        }
        if (groups->empty()) {
          return std::move(done)(WithErrorInfo(
              absl::AbortedError(
                  absl::StrCat("scaling group ", group, " was deleted while waiting for it")),
              reasons::kConcurrentModification, {{"group", group}}));
        }
        const WireGroup& g = groups->front();
        if (GroupSettled(g, target.size())) {
          return std::move(done)(kit::Finished(GroupFromWire(account->dialect, account->id, g)));
        }
        int healthy = 0;
        for (const WireInstance& i : g.instances) {
          if (InstanceRunning(i) && absl::StartsWith(i.health_status, "Healthy")) ++healthy;
        }
        std::move(done)(kit::Pending(
            kit::PackToken(target),
            absl::StrCat("group ", group, ": ", g.instances.size(), " instances, ", healthy,
                         " running and healthy; want ", target.size())));
      });
}

}  // namespace

void PhantomProvider::PollOperation(const CallContext& ctx, const std::string& poll_token,
                                    Callback<MutationProgress> done) {
  absl::StatusOr<GroupWaitToken> target = ReadToken(poll_token);
  if (!target.ok()) return std::move(done)(target.status());
  ReadGroupProgress(account_, ctx.deadline, *std::move(target), std::move(done));
}

// ---------------------------------------------------------------------------
// Launch templates.

void PhantomProvider::ListLaunchTemplates(const CallContext& ctx,
                                          const v1::ListLaunchTemplatesRequest& request,
                                          Callback<v1::ListLaunchTemplatesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  DescribeLaunchConfigs(
      account_, ctx.deadline,
      [account = account_, page_size = request.page_size(), page_token = request.page_token(),
       done = std::move(done)](absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
        if (!lcs.ok()) return std::move(done)(lcs.status());
        std::move(done)(kit::AnswerPage<v1::ListLaunchTemplatesResponse>(
            TemplatesFromWire(account->dialect, account->id, *lcs), page_size, page_token));
      });
}

void PhantomProvider::GetLaunchTemplate(const CallContext& ctx,
                                        const v1::GetLaunchTemplateRequest& request,
                                        Callback<v1::LaunchTemplate> done) {
  absl::StatusOr<std::string> id =
      IdFromName("name", account_->id, "launchTemplates", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  GetTemplate(account_, ctx.deadline, *id, std::move(done));
}

void PhantomProvider::CreateLaunchTemplate(const CallContext& ctx,
                                           const v1::CreateLaunchTemplateRequest& request,
                                           Callback<MutationProgress> done) {
  const std::string id = request.launch_template_id();
  if (absl::Status s = ValidateId("launch_template_id", id); !s.ok()) {
    return std::move(done)(s);
  }
  absl::StatusOr<std::vector<LaunchConfigSpec>> specs = LaunchConfigsFor(
      account_->dialect, id, request.launch_template(), account_->default_location);
  if (!specs.ok()) return std::move(done)(specs.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::LaunchTemplate()));
  const absl::Time deadline = ctx.deadline;
  const std::string operation = ctx.operation;
  DescribeLaunchConfigs(
      account_, deadline,
      [account = account_, deadline, id, operation, specs = *std::move(specs),
       done = std::move(done)](absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
        if (!lcs.ok()) return std::move(done)(lcs.status());
        const std::vector<WireLaunchConfig> existing = OfTemplate(account->dialect, *lcs, id);
        const std::string resource = ResourceName(account->id, "launchTemplates", id);
        std::vector<LaunchConfigSpec> todo;
        if (!existing.empty()) {
          // Ours when this very operation created it before a restart.
          if (!MarkedBy(account, "lt", id, operation)) {
            return std::move(done)(AlreadyExists("launch template", id, resource));
          }
          for (const LaunchConfigSpec& spec : specs) {
            if (std::none_of(existing.begin(), existing.end(),
                             [&](const WireLaunchConfig& lc) { return lc.name == spec.name; })) {
              todo.push_back(spec);
            }
          }
        } else {
          todo = specs;
        }
        auto st = std::make_shared<LcBatch>();
        st->account = account;
        st->deadline = deadline;
        st->specs = std::move(todo);
        st->done = [account, deadline, id, done = std::move(done)](
                       absl::Status s, std::vector<std::string> created) mutable {
          if (!s.ok() && kit::IsAmbiguous(s)) {
            // The last launch configuration may exist: keep the mark and what
            // was made. The runner calls again with this operation, and the
            // marked template then gets only the configurations it lacks.
            return std::move(done)(s);
          }
          if (!s.ok()) {
            // Refused: nothing half-created. Remove what this call made, then
            // fail. The rollback gets time of its own: the deadline may be
            // what failed.
            Unmark(account, "lt", id);
            DeleteLcs(account, absl::Now() + absl::Seconds(30), std::move(created),
                      [s, done = std::move(done)](absl::Status) mutable {
                        std::move(done)(s);
                      });
            return;
          }
          GetTemplate(account, deadline, id,
                      [done = std::move(done)](absl::StatusOr<v1::LaunchTemplate> t) mutable {
                        if (!t.ok()) return std::move(done)(t.status());
                        std::move(done)(kit::Finished(*t));
                      });
        };
        Mark(account, "lt", id, operation, [st = std::move(st)](absl::Status marked) mutable {
          if (!marked.ok()) return st->done(std::move(marked), {});
          CreateNextLc(std::move(st));
        });
      });
}

void PhantomProvider::DeleteLaunchTemplate(const CallContext& ctx,
                                           const v1::DeleteLaunchTemplateRequest& request,
                                           Callback<MutationProgress> done) {
  absl::StatusOr<std::string> id =
      IdFromName("name", account_->id, "launchTemplates", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  const absl::Time deadline = ctx.deadline;
  DescribeLaunchConfigs(
      account_, deadline,
      [account = account_, deadline, id = *id, name = request.name(),
       allow_missing = request.allow_missing(),
       done = std::move(done)](absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
        if (!lcs.ok()) return std::move(done)(lcs.status());
        std::vector<std::string> names;
        for (const WireLaunchConfig& lc : OfTemplate(account->dialect, *lcs, id)) {
          names.push_back(lc.name);
        }
        if (names.empty()) {
          if (allow_missing) return std::move(done)(kit::Finished(google::protobuf::Empty()));
          return std::move(done)(kit::NotFound("launch template", name));
        }
        // AWS refuses to delete a launch configuration in use
        // (ResourceInUse); Phantom and moto do not check. Check here.
        DescribeGroups(
            account, deadline, "",
            [account, deadline, id, names = std::move(names),
             done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
              if (!groups.ok()) return std::move(done)(groups.status());
              for (const WireGroup& g : *groups) {
                if (TemplateIdOf(account->dialect, g.launch_config) == id) {
                  return std::move(done)(WithErrorInfo(
                      absl::FailedPreconditionError(absl::StrCat(
                          "launch template ", id, " is used by scaling group ", g.name)),
                      reasons::kWrongState, {{"scalingGroup", g.name}}));
                }
              }
              DeleteLcs(account, deadline, std::move(names),
                        [account, id, done = std::move(done)](absl::Status s) mutable {
                          if (!s.ok()) return std::move(done)(s);
                          Unmark(account, "lt", id);
                          std::move(done)(kit::Finished(google::protobuf::Empty()));
                        });
            });
      });
}

// ---------------------------------------------------------------------------
// Scaling groups.

void PhantomProvider::ListScalingGroups(const CallContext& ctx,
                                        const v1::ListScalingGroupsRequest& request,
                                        Callback<v1::ListScalingGroupsResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  DescribeGroups(
      account_, ctx.deadline, "",
      [account = account_, page_size = request.page_size(), page_token = request.page_token(),
       done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
        if (!groups.ok()) return std::move(done)(groups.status());
        std::vector<v1::ScalingGroup> all;
        for (const WireGroup& g : *groups) {
          if (!ValidateId("", g.name).ok()) continue;  // not nameable here
          all.push_back(GroupFromWire(account->dialect, account->id, g));
        }
        std::move(done)(
            kit::AnswerPage<v1::ListScalingGroupsResponse>(std::move(all), page_size, page_token));
      });
}

void PhantomProvider::GetScalingGroup(const CallContext& ctx,
                                      const v1::GetScalingGroupRequest& request,
                                      Callback<v1::ScalingGroup> done) {
  absl::StatusOr<std::string> id =
      IdFromName("name", account_->id, "scalingGroups", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  DescribeGroups(account_, ctx.deadline, *id,
                 [account = account_, name = request.name(),
                  done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
                   if (!groups.ok()) return std::move(done)(groups.status());
                   if (groups->empty()) {
                     return std::move(done)(kit::NotFound("scaling group", name));
                   }
                   std::move(done)(GroupFromWire(account->dialect, account->id, groups->front()));
                 });
}

void PhantomProvider::CreateScalingGroup(const CallContext& ctx,
                                         const v1::CreateScalingGroupRequest& request,
                                         Callback<MutationProgress> done) {
  const std::string id = request.scaling_group_id();
  if (absl::Status s = ValidateId("scaling_group_id", id); !s.ok()) return std::move(done)(s);
  absl::StatusOr<GroupSpec> spec = GroupSpecFor(account_->dialect, id, account_->id,
                                                request.scaling_group(), account_->default_location);
  if (!spec.ok()) return std::move(done)(spec.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::ScalingGroup()));
  const absl::Time deadline = ctx.deadline;
  const std::string operation = ctx.operation;
  const GroupWaitToken target = WaitFor(GroupWaitToken::SETTLED, id, spec->desired);
  DescribeGroups(
      account_, deadline, id,
      [account = account_, deadline, id, operation, target, spec = *std::move(spec),
       template_name = request.scaling_group().launch_template(),
       done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
        if (!groups.ok()) return std::move(done)(groups.status());
        if (!groups->empty()) {
          if (MarkedBy(account, "sg", id, operation)) {
            return ReadGroupProgress(account, deadline, target, std::move(done));
          }
          return std::move(done)(AlreadyExists("scaling group", id,
                                               ResourceName(account->id, "scalingGroups", id)));
        }
        // The template must exist: Phantom would accept a group whose DT
        // is missing and never start anything.
        DescribeLaunchConfigs(
            account, deadline,
            [account, deadline, id, operation, target, spec = std::move(spec), template_name,
             done = std::move(done)](absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
              if (!lcs.ok()) return std::move(done)(lcs.status());
              if (OfTemplate(account->dialect, *lcs, spec.launch_config).empty()) {
                return std::move(done)(WithErrorInfo(
                    absl::NotFoundError(
                        absl::StrCat("launch template ", spec.launch_config, " does not exist")),
                    reasons::kResourceNotFound, {{"resource", template_name}}));
              }
              Mark(account, "sg", id, operation,
                   [account, deadline, id, target, spec = std::move(spec),
                    done = std::move(done)](absl::Status marked) mutable {
                     if (!marked.ok()) return std::move(done)(marked);
                     Query(account, deadline, "CreateAutoScalingGroup",
                           CreateGroupParams(account->dialect, spec),
                           [account, deadline, id, target, done = std::move(done)](
                               absl::StatusOr<aws::QueryResponse> r) mutable {
                             if (!r.ok()) {
                               // A refusal made nothing; after an ambiguous
                               // answer the group may exist, and the mark
                               // lets the re-driven create adopt it.
                               if (!kit::IsAmbiguous(r.status())) Unmark(account, "sg", id);
                               return std::move(done)(r.status());
                             }
                             ReadGroupProgress(account, deadline, target, std::move(done));
                           });
                   });
            });
      });
}

void PhantomProvider::ResizeScalingGroup(const CallContext& ctx,
                                         const v1::ResizeScalingGroupRequest& request,
                                         Callback<MutationProgress> done) {
  absl::StatusOr<std::string> id =
      IdFromName("name", account_->id, "scalingGroups", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  const int n = request.target_size();
  if (n < 0) return std::move(done)(InvalidField("target_size", "must be 0 or more"));
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::ScalingGroup()));
  const absl::Time deadline = ctx.deadline;
  DescribeGroups(
      account_, deadline, *id,
      [account = account_, deadline, id = *id, n, name = request.name(),
       done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
        if (!groups.ok()) return std::move(done)(groups.status());
        if (groups->empty()) return std::move(done)(kit::NotFound("scaling group", name));
        const WireGroup& g = groups->front();
        std::string action = "SetDesiredCapacity";
        aws::QueryParams params = {{"AutoScalingGroupName", id},
                                   {"DesiredCapacity", absl::StrCat(n)}};
        if (account->dialect == Dialect::kPhantom) {
          // Phantom sets min = max = n itself (pyhantom's SetDesiredCapacity); HonorCooldown is ignored.
        } else if (n < g.min_size || n > g.max_size) {
          // AWS refuses a desired capacity outside [min, max]: widen the
          // bound in the same call.
          action = "UpdateAutoScalingGroup";
          params.emplace_back("MinSize", absl::StrCat(std::min(n, g.min_size)));
          params.emplace_back("MaxSize", absl::StrCat(std::max(n, g.max_size)));
        }
        Query(account, deadline, action, std::move(params),
              [account, deadline, target = WaitFor(GroupWaitToken::SETTLED, id, n),
               done = std::move(done)](absl::StatusOr<aws::QueryResponse> r) mutable {
                if (!r.ok()) return std::move(done)(r.status());
                ReadGroupProgress(account, deadline, std::move(target), std::move(done));
              });
      });
}

void PhantomProvider::DeleteScalingGroup(const CallContext& ctx,
                                         const v1::DeleteScalingGroupRequest& request,
                                         Callback<MutationProgress> done) {
  absl::StatusOr<std::string> id =
      IdFromName("name", account_->id, "scalingGroups", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  const absl::Time deadline = ctx.deadline;
  DescribeGroups(
      account_, deadline, *id,
      [account = account_, deadline, id = *id, name = request.name(),
       allow_missing = request.allow_missing(),
       done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
        if (!groups.ok()) return std::move(done)(groups.status());
        if (groups->empty()) {
          // Phantom's EPU back-end answers a 500 for an unknown group
          // (pyhantom's EPU client), so absence is decided here.
          if (allow_missing) return std::move(done)(kit::Finished(google::protobuf::Empty()));
          return std::move(done)(kit::NotFound("scaling group", name));
        }
        Query(account, deadline, "DeleteAutoScalingGroup",
              {{"AutoScalingGroupName", id}, {"ForceDelete", "true"}},
              [account, deadline, id, done = std::move(done)](
                  absl::StatusOr<aws::QueryResponse> r) mutable {
                if (!r.ok()) return std::move(done)(r.status());
                Unmark(account, "sg", id);
                ReadGroupProgress(account, deadline, WaitFor(GroupWaitToken::GONE, id, 0),
                                  std::move(done));
              });
      });
}

}  // namespace cloudplane::adapters::phantom
