// FirewallsService: DCM firewalls (network/Firewall) and their rules
// (network/FirewallRule).
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/enstratus/enstratus_jobs.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_send.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::enstratus {
namespace {

// Everything DCM would refuse in addFirewall for a fixed reason (no I/O).
absl::Status CheckAddFirewall(const Account& a, const v1::CreateFirewallRequest& request,
                              FirewallSpec& spec) {
  const v1::Firewall& in = request.firewall();
  absl::Status status;
  const std::string& alias = request.firewall_id();
  if (!alias.empty() && !IsValidAlias(alias)) {
    AddFieldViolation(status, "firewall_id",
                      "must be 1-63 characters of [a-z0-9-] starting with a letter");
  }
  absl::StatusOr<std::string> seg =
      in.location().empty()
          ? absl::StatusOr<std::string>(absl::NotFoundError(""))
          : SegmentOf("firewall.location", a.id, "locations", in.location());
  std::optional<LocationRef> ref = seg.ok() ? ParseLocationSegment(*seg) : std::nullopt;
  if (!ref.has_value() || ref->kind != LocationRef::kRegion) {
    AddFieldViolation(status, "firewall.location",
                      "is required: a region, accounts/{account}/locations/region-{id}");
  } else {
    spec.region_id = ref->id;
  }
  if (in.rules_size() > 0) {
    AddFieldViolation(status, "firewall.rules",
                      "enStratus creates rules one by one: use CreateFirewallRule");
  }
  for (const auto& [key, value] : in.labels()) {
    if (key != "label") {
      AddFieldViolation(status, absl::StrCat("firewall.labels.", key),
                        "enStratus keeps one label per firewall: use the key \"label\"");
    }
  }
  if (!status.ok()) return status;
  if (a.budget <= 0) {
    return WithErrorInfo(
        absl::FailedPreconditionError("enStratus charges firewalls to a budget code: set the "
                                      "account option budget"),
        reasons::kAccountOptionMissing, {{"option", "budget"}});
  }
  spec.budget = a.budget;
  spec.name = !in.display_name().empty() ? in.display_name()
              : !alias.empty()           ? alias
                                         : "cloudplane";
  spec.description = in.description().empty() ? spec.name : in.description();
  if (auto it = in.labels().find("label"); it != in.labels().end()) spec.label = it->second;
  return absl::OkStatus();
}

// DCM creates rules synchronously: 201 with the rule (§4); a 202 job is
// followed like any other.
OtherAnswer RuleCreated(std::string account_id, Aliases aliases) {
  return [account_id = std::move(account_id), aliases = std::move(aliases)](
             absl::StatusOr<http::HttpResponse> r, Callback<MutationProgress> done) {
    if (!r.ok()) return std::move(done)(r.status());
    if (absl::Status s = StatusFromResponse(r->status, r->body, "POST addRule"); !s.ok()) {
      if (s.code() == absl::StatusCode::kInvalidArgument) {
        AddFieldViolation(s, "rule", GetErrorInfo(s)->metadata().at("providerMessage"));
      }
      return std::move(done)(s);
    }
    absl::StatusOr<std::vector<v1::FirewallRule>> rules =
        ParseFirewallRules(r->body, account_id, aliases);
    if (!rules.ok()) return std::move(done)(rules.status());
    if (rules->empty()) {
      return std::move(done)(WithErrorInfo(
          absl::InternalError("POST addRule: enStratus answered without the new rule"),
          reasons::kProviderMalformedResponse));
    }
    std::move(done)(kit::Finished(rules->front()));
  };
}

}  // namespace

void EnstratusProvider::ListFirewalls(const CallContext& ctx,
                                      const v1::ListFirewallsRequest& request,
                                      Callback<v1::ListFirewallsResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetAll<v1::Firewall>(
      *a_, ctx.deadline, "network/Firewall", "", "GET firewalls",
      [id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseFirewalls(body, id, aliases);
      },
      AnswerPage<v1::ListFirewallsResponse, v1::Firewall>(request.page_size(),
                                                          request.page_token(), std::move(done)));
}

void EnstratusProvider::GetFirewall(const CallContext& ctx, const v1::GetFirewallRequest& request,
                                    Callback<v1::Firewall> done) {
  absl::StatusOr<int64_t> id = Resolve(AliasKind::kFirewall, "name", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetOne<v1::Firewall>(
      *a_, ctx.deadline, absl::StrCat("network/Firewall/", *id), absl::StrCat("GET firewall ", *id),
      request.name(),
      [account_id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseFirewalls(body, account_id, aliases);
      },
      std::move(done));
}

void EnstratusProvider::CreateFirewall(const CallContext& ctx,
                                       const v1::CreateFirewallRequest& request,
                                       Callback<MutationProgress> done) {
  FirewallSpec spec;
  if (absl::Status s = CheckAddFirewall(*a_, request, spec); !s.ok()) return std::move(done)(s);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Firewall()));
  // The tag lets a re-drive find the firewall by its description (reads
  // strip it again).
  spec.description = TaggedDescription(spec.description, ctx.operation);
  StartCreate(CallOf(a_, ctx), NewJobToken(JobToken::FIREWALL_CREATE, 0, request.firewall_id()),
              "firewall", {"network/Firewall", "firewalls", "firewallId", spec.name},
              [body = AddFirewallBody(spec)](Callback<JobRequest> ready) mutable {
                std::move(ready)(JobRequest{"POST", "network/Firewall", "", std::move(body),
                                            "POST addFirewall"});
              },
              std::move(done));
}

void EnstratusProvider::DeleteFirewall(const CallContext& ctx,
                                       const v1::DeleteFirewallRequest& request,
                                       Callback<MutationProgress> done) {
  DeleteResource(ctx, AliasKind::kFirewall, JobToken::FIREWALL_DELETE, "network/Firewall/",
                 "firewall", request.name(), request.allow_missing(), std::move(done));
}

void EnstratusProvider::ListFirewallRules(const CallContext& ctx,
                                          const v1::ListFirewallRulesRequest& request,
                                          Callback<v1::ListFirewallRulesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  absl::StatusOr<int64_t> fw = Resolve(AliasKind::kFirewall, "parent", request.parent());
  if (!fw.ok()) return std::move(done)(fw.status());
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetAll<v1::FirewallRule>(
      *a_, ctx.deadline, "network/FirewallRule", absl::StrCat("?firewallId=", *fw),
      absl::StrCat("GET rules of firewall ", *fw),
      [id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseFirewallRules(body, id, aliases);
      },
      AnswerPage<v1::ListFirewallRulesResponse, v1::FirewallRule>(
          request.page_size(), request.page_token(), std::move(done)));
}

void EnstratusProvider::GetFirewallRule(const CallContext& ctx,
                                        const v1::GetFirewallRuleRequest& request,
                                        Callback<v1::FirewallRule> done) {
  absl::StatusOr<std::pair<std::string, int64_t>> ids = ResolveRule(request.name());
  if (!ids.ok()) return std::move(done)(ids.status());
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetOne<v1::FirewallRule>(
      *a_, ctx.deadline, absl::StrCat("network/FirewallRule/", ids->second),
      absl::StrCat("GET firewall rule ", ids->second), request.name(),
      [account_id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseFirewallRules(body, account_id, aliases);
      },
      [name = request.name(), done = std::move(done)](
          absl::StatusOr<v1::FirewallRule> rule) mutable {
        // A rule id under another firewall is not this name's rule.
        if (rule.ok() && rule->name() != name) {
          return std::move(done)(kit::NotFound("firewall rule", name));
        }
        std::move(done)(std::move(rule));
      });
}

void EnstratusProvider::CreateFirewallRule(const CallContext& ctx,
                                           const v1::CreateFirewallRuleRequest& request,
                                           Callback<MutationProgress> done) {
  absl::StatusOr<std::string> seg = SegmentOf("parent", a_->id, "firewalls", request.parent());
  if (!seg.ok()) return std::move(done)(seg.status());
  absl::StatusOr<int64_t> fw =
      a_->aliases->Resolve(AliasKind::kFirewall, "firewall", request.parent(), *seg);
  if (!fw.ok()) return std::move(done)(fw.status());
  // A firewall as the far end goes to DCM by its id.
  const v1::FirewallRule& rule = request.rule();
  const bool egress = rule.direction() == v1::FirewallRule::EGRESS;
  const auto& far_firewalls = egress ? rule.destination_firewalls() : rule.source_firewalls();
  std::optional<int64_t> far_fw;
  if (far_firewalls.size() == 1) {
    const std::string field =
        egress ? "rule.destination_firewalls[0]" : "rule.source_firewalls[0]";
    absl::StatusOr<std::string> far_seg =
        SegmentOf(field, a_->id, "firewalls", far_firewalls[0]);
    if (!far_seg.ok()) return std::move(done)(far_seg.status());
    absl::StatusOr<int64_t> id =
        a_->aliases->Resolve(AliasKind::kFirewall, "firewall", far_firewalls[0], *far_seg);
    if (!id.ok()) return std::move(done)(id.status());
    far_fw = *id;
  }
  absl::StatusOr<std::string> body = AddRuleBody(*fw, rule, far_fw);
  if (!body.ok()) return std::move(done)(body.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::FirewallRule()));
  const std::string alias = IsValidAlias(*seg) ? *seg : "";
  // Every alias, so a firewall at the far end reads back by the name the
  // account knows it by.
  absl::StatusOr<Aliases> all = a_->aliases->All();
  if (!all.ok()) return std::move(done)(all.status());
  Aliases aliases = *std::move(all);
  if (!alias.empty()) aliases.firewalls[*fw] = alias;
  v1::FirewallRule wanted = rule;
  if (far_fw.has_value()) {
    auto it = aliases.firewalls.find(*far_fw);
    *(egress ? wanted.mutable_destination_firewalls() : wanted.mutable_source_firewalls())
         ->Mutable(0) = absl::StrCat("accounts/", a_->id, "/firewalls/",
                                     it == aliases.firewalls.end() ? absl::StrCat(*far_fw)
                                                                   : it->second);
  }
  // DCM keeps no tag on a rule: the rule is looked for by its content first,
  // so a re-driven create (or the same rule asked for again) answers the
  // rule that exists instead of adding a second one.
  const std::string context = absl::StrCat("GET rules of firewall ", *fw);
  GetAll<v1::FirewallRule>(
      *a_, ctx.deadline, "network/FirewallRule", absl::StrCat("?firewallId=", *fw), context,
      [id = a_->id, aliases](absl::string_view body) {
        return ParseFirewallRules(body, id, aliases);
      },
      [call = CallOf(a_, ctx), body = *std::move(body), alias, fw = *fw, wanted, aliases,
       done = std::move(done)](absl::StatusOr<std::vector<v1::FirewallRule>> rules) mutable {
        if (!rules.ok()) return std::move(done)(rules.status());
        for (const v1::FirewallRule& rule : *rules) {
          if (SameRule(rule, wanted)) return std::move(done)(kit::Finished(rule));
        }
        const std::string account_id = call.account->id;
        StartJob(call, {"POST", "network/FirewallRule", "", std::move(body), "POST addRule"},
                 NewJobToken(JobToken::RULE_CREATE, fw, alias),
                 RuleCreated(account_id, std::move(aliases)), std::move(done));
      });
}

void EnstratusProvider::DeleteFirewallRule(const CallContext& ctx,
                                           const v1::DeleteFirewallRuleRequest& request,
                                           Callback<MutationProgress> done) {
  absl::StatusOr<std::pair<std::string, int64_t>> ids = ResolveRule(request.name());
  if (!ids.ok()) {
    if (ids.status().code() == absl::StatusCode::kNotFound && request.allow_missing()) {
      return std::move(done)(kit::Finished(google::protobuf::Empty()));
    }
    return std::move(done)(ids.status());
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  const JobCall call = CallOf(a_, ctx);
  const JobToken token = NewJobToken(JobToken::RULE_DELETE, ids->second, "");
  const std::string context = absl::StrCat("DELETE firewall rule ", ids->second);
  StartJob(call,
           {"DELETE", absl::StrCat("network/FirewallRule/", ids->second), kReasonQuery, "",
            context},
           token, SyncDelete(call, context, request.allow_missing(), token), std::move(done));
}

absl::StatusOr<std::pair<std::string, int64_t>> EnstratusProvider::ResolveRule(
    const std::string& name) const {
  ASSIGN_OR_RETURN(auto segs, RuleSegmentsOf("name", a_->id, name));
  // The firewall must exist (or be an alias of one) for the rule to.
  RETURN_IF_ERROR(a_->aliases
                      ->Resolve(AliasKind::kFirewall, "firewall",
                                name.substr(0, name.rfind("/rules/")), segs.first)
                      .status());
  std::optional<int64_t> rule = ParseDcmId(segs.second);
  if (!rule.has_value()) return kit::NotFound("firewall rule", name);
  return std::pair{segs.first, *rule};
}

}  // namespace cloudplane::adapters::enstratus
