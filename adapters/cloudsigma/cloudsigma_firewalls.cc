// FirewallsService on CloudSigma firewall policies (/fwpolicies/; shapes in
// cloudsigma_wire.h, "Firewall policies"). Every mutation answers its
// finished result: CloudSigma creates, edits and deletes a policy at once.
//
// Rules have no endpoint of their own: a rule is added or removed by reading
// the policy, editing its rule list and PUTting the whole policy back
// (fwpolicies.rst, editing). CloudSigma has no compare-and-swap, so two
// writers editing one policy at the same moment can lose a rule.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;
using Empty = google::protobuf::Empty;

constexpr char kCollection[] = "fwpolicies";
constexpr char kWhat[] = "firewall";

// `accounts/<a>/firewalls/<id>/rules/<rule>`: the firewall's name and id, and
// the rule's id. INVALID_ARGUMENT naming `field` for another shape.
struct RuleName {
  std::string firewall;
  std::string firewall_id;
  std::string rule_id;
};
absl::StatusOr<RuleName> SplitRuleName(absl::string_view account, absl::string_view field,
                                       const std::string& name) {
  const size_t cut = name.rfind("/rules/");
  if (cut != std::string::npos && cut + 7 < name.size()) {
    RuleName out;
    out.firewall = name.substr(0, cut);
    out.rule_id = name.substr(cut + 7);
    if (auto id = IdFromName(field, account, "firewalls", out.firewall); id.ok()) {
      out.firewall_id = *std::move(id);
      return out;
    }
  }
  return InvalidField(field, absl::StrCat("must be accounts/", account,
                                          "/firewalls/{id}/rules/{rule}"));
}

std::vector<FwRule> RulesOf(const std::vector<FwRuleEntry>& entries) {
  std::vector<FwRule> out;
  out.reserve(entries.size());
  for (const FwRuleEntry& e : entries) out.push_back(e.rule);
  return out;
}

// PUTs `policy` with its rules replaced by `rules`; answers the updated
// policy.
void PutRules(const AccountPtr& account, absl::Time deadline, const WireObject& policy,
              const std::vector<FwRule>& rules, Callback<WireObject> done) {
  absl::StatusOr<std::string> body = EditPolicyRules(policy.json, rules);
  if (!body.ok()) return std::move(done)(body.status());
  Call(account, deadline, "PUT", ObjectPath(kCollection, policy.uuid), *std::move(body),
       absl::StrCat("PUT fwpolicies ", policy.uuid),
       [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         std::move(done)(ParseObject(r->body));
       });
}

void DoneWithPolicy(const AccountPtr& account, const WireObject& policy,
                    Callback<MutationProgress> done) {
  absl::StatusOr<v1::Firewall> f = PolicyToFirewall(policy.json, account->id);
  if (!f.ok()) return std::move(done)(f.status());
  std::move(done)(kit::Finished(*f));
}

// The rule `rule_id` of the policy as a FirewallRule, or nullopt.
absl::StatusOr<std::optional<v1::FirewallRule>> RuleOf(const AccountPtr& account,
                                                       const WireObject& policy,
                                                       absl::string_view rule_id) {
  absl::StatusOr<v1::Firewall> f = PolicyToFirewall(policy.json, account->id);
  if (!f.ok()) return f.status();
  const std::string suffix = absl::StrCat("/rules/", rule_id);
  for (const v1::FirewallRule& rule : f->rules()) {
    if (absl::EndsWith(rule.name(), suffix)) return rule;
  }
  return std::nullopt;
}

}  // namespace

void CloudSigmaProvider::ListFirewalls(const CallContext& ctx,
                                       const v1::ListFirewallsRequest& request,
                                       Callback<v1::ListFirewallsResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  ListAll(account_, ctx.deadline, "/fwpolicies/detail/",
          [account = account_, page_size = request.page_size(), token = request.page_token(),
           done = std::move(done)](absl::StatusOr<std::vector<WireObject>> policies) mutable {
            if (!policies.ok()) return std::move(done)(policies.status());
            std::vector<v1::Firewall> all;
            for (const WireObject& p : *policies) {
              absl::StatusOr<v1::Firewall> f = PolicyToFirewall(p.json, account->id);
              if (!f.ok()) return std::move(done)(f.status());
              all.push_back(*std::move(f));
            }
            std::move(done)(
                kit::AnswerPage<v1::ListFirewallsResponse>(std::move(all), page_size, token));
          });
}

void CloudSigmaProvider::GetFirewall(const CallContext& ctx,
                                     const v1::GetFirewallRequest& request,
                                     Callback<v1::Firewall> done) {
  auto id = IdFromName("name", account_->id, "firewalls", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  FindObject(account_, ctx.deadline, kCollection, *id, request.name(), kWhat,
             [account = account_, done = std::move(done)](absl::StatusOr<WireObject> p) mutable {
               if (!p.ok()) return std::move(done)(p.status());
               std::move(done)(PolicyToFirewall(p->json, account->id));
             });
}

void CloudSigmaProvider::ListFirewallRules(const CallContext& ctx,
                                           const v1::ListFirewallRulesRequest& request,
                                           Callback<v1::ListFirewallRulesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  auto id = IdFromName("parent", account_->id, "firewalls", request.parent());
  if (!id.ok()) return std::move(done)(id.status());
  FindObject(account_, ctx.deadline, kCollection, *id, request.parent(), kWhat,
             [account = account_, page_size = request.page_size(), token = request.page_token(),
              done = std::move(done)](absl::StatusOr<WireObject> p) mutable {
               if (!p.ok()) return std::move(done)(p.status());
               absl::StatusOr<v1::Firewall> f = PolicyToFirewall(p->json, account->id);
               if (!f.ok()) return std::move(done)(f.status());
               // Pages go by name; GetFirewall shows the rules in the order
               // CloudSigma applies them.
               std::vector<v1::FirewallRule> rules(f->rules().begin(), f->rules().end());
               std::move(done)(kit::AnswerPage<v1::ListFirewallRulesResponse>(
                   std::move(rules), page_size, token));
             });
}

void CloudSigmaProvider::GetFirewallRule(const CallContext& ctx,
                                         const v1::GetFirewallRuleRequest& request,
                                         Callback<v1::FirewallRule> done) {
  auto name = SplitRuleName(account_->id, "name", request.name());
  if (!name.ok()) return std::move(done)(name.status());
  FindObject(account_, ctx.deadline, kCollection, name->firewall_id, name->firewall, kWhat,
             [account = account_, rule_id = name->rule_id, resource = request.name(),
              done = std::move(done)](absl::StatusOr<WireObject> p) mutable {
               if (!p.ok()) return std::move(done)(p.status());
               absl::StatusOr<std::optional<v1::FirewallRule>> rule =
                   RuleOf(account, *p, rule_id);
               if (!rule.ok()) return std::move(done)(rule.status());
               if (!rule->has_value()) {
                 return std::move(done)(kit::NotFound("firewall rule", resource));
               }
               std::move(done)(**std::move(rule));
             });
}

void CloudSigmaProvider::CreateFirewall(const CallContext& ctx,
                                        const v1::CreateFirewallRequest& request,
                                        Callback<MutationProgress> done) {
  absl::Status status;
  if (!request.firewall_id().empty()) {
    if (absl::Status s = ValidateChosenId("firewall_id", request.firewall_id()); !s.ok()) {
      AddFieldViolation(status, "firewall_id", s.message());
    }
  }
  if (absl::Status s = ValidateLabels("firewall.labels", request.firewall().labels()); !s.ok()) {
    AddFieldViolation(status, "firewall.labels", s.message());
  }
  if (!status.ok()) return std::move(done)(status);
  std::vector<FwRule> rules;
  for (int i = 0; i < request.firewall().rules_size(); ++i) {
    absl::StatusOr<FwRule> rule = FwRuleFromFirewallRule(
        request.firewall().rules(i), absl::StrCat("firewall.rules[", i, "]"));
    if (!rule.ok()) return std::move(done)(rule.status());
    rules.push_back(*std::move(rule));
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Firewall()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  std::string body =
      PolicyCreateBody(request.firewall(), rules, request.firewall_id(), ctx.operation);
  const std::string resource_name = ResourceName(
      account->id, "firewalls", request.firewall_id().empty() ? "-" : request.firewall_id());
  // A re-driven create adopts the policy its first attempt made (its
  // operation is in the policy's meta); a chosen id in use is ALREADY_EXISTS.
  CreateObject(account, deadline, kCollection, request.firewall_id(), ctx.operation,
               resource_name, kWhat, std::move(body), "firewall.",
               [account, done = std::move(done)](absl::StatusOr<WireObject> p) mutable {
                 if (!p.ok()) return std::move(done)(p.status());
                 DoneWithPolicy(account, *p, std::move(done));
               });
}

void CloudSigmaProvider::DeleteFirewall(const CallContext& ctx,
                                        const v1::DeleteFirewallRequest& request,
                                        Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "firewalls", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(Empty()));
  // CloudSigma refuses while a server that is not stopped uses the policy
  // (fwpolicies.rst, delete); that refusal is the answer.
  DeleteObject(account_, ctx.deadline, kCollection, *id, request.name(), kWhat, "fwpolicies",
               request.allow_missing(), nullptr, nullptr, std::move(done));
}

void CloudSigmaProvider::CreateFirewallRule(const CallContext& ctx,
                                            const v1::CreateFirewallRuleRequest& request,
                                            Callback<MutationProgress> done) {
  auto id = IdFromName("parent", account_->id, "firewalls", request.parent());
  if (!id.ok()) return std::move(done)(id.status());
  absl::StatusOr<FwRule> rule = FwRuleFromFirewallRule(request.rule(), "rule");
  if (!rule.ok()) return std::move(done)(rule.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::FirewallRule()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  FindObject(
      account, deadline, kCollection, *id, request.parent(), kWhat,
      [account, deadline, rule = *std::move(rule),
       done = std::move(done)](absl::StatusOr<WireObject> p) mutable {
        if (!p.ok()) return std::move(done)(p.status());
        absl::StatusOr<std::vector<FwRuleEntry>> entries = PolicyRules(p->json);
        if (!entries.ok()) return std::move(done)(entries.status());
        const std::string rule_id = FwRuleId(rule);
        // The same rule is there already (or a re-driven create added it):
        // nothing to add, that rule is the result.
        for (const FwRuleEntry& e : *entries) {
          if (e.id != rule_id) continue;
          absl::StatusOr<std::optional<v1::FirewallRule>> same = RuleOf(account, *p, rule_id);
          if (!same.ok()) return std::move(done)(same.status());
          if (same->has_value()) return std::move(done)(kit::Finished(**same));
        }
        std::vector<FwRule> rules = RulesOf(*entries);
        rules.push_back(rule);  // last: CloudSigma applies rules in order
        PutRules(account, deadline, *p, rules,
                 [account, rule_id, done = std::move(done)](absl::StatusOr<WireObject> p) mutable {
                   if (!p.ok()) return std::move(done)(p.status());
                   absl::StatusOr<std::optional<v1::FirewallRule>> added =
                       RuleOf(account, *p, rule_id);
                   if (!added.ok()) return std::move(done)(added.status());
                   if (!added->has_value()) {
                     return std::move(done)(WithErrorInfo(
                         absl::InternalError("CloudSigma accepted the rule but the firewall "
                                             "policy does not show it"),
                         reasons::kProviderMalformedResponse));
                   }
                   std::move(done)(kit::Finished(**added));
                 });
      });
}

void CloudSigmaProvider::DeleteFirewallRule(const CallContext& ctx,
                                            const v1::DeleteFirewallRuleRequest& request,
                                            Callback<MutationProgress> done) {
  auto name = SplitRuleName(account_->id, "name", request.name());
  if (!name.ok()) return std::move(done)(name.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(Empty()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  FindObject(
      account, deadline, kCollection, name->firewall_id, name->firewall, kWhat,
      ForDelete(request.allow_missing(), std::move(done),
                [account, deadline, rule_id = name->rule_id, resource = request.name(),
                 allow_missing = request.allow_missing()](
                    WireObject p, Callback<MutationProgress> done) mutable {
                  absl::StatusOr<std::vector<FwRuleEntry>> entries = PolicyRules(p.json);
                  if (!entries.ok()) return std::move(done)(entries.status());
                  std::vector<FwRuleEntry> kept;
                  for (FwRuleEntry& e : *entries) {
                    if (e.id != rule_id) kept.push_back(std::move(e));
                  }
                  if (kept.size() == entries->size()) {
                    if (allow_missing) return std::move(done)(kit::Finished(Empty()));
                    return std::move(done)(kit::NotFound("firewall rule", resource));
                  }
                  PutRules(account, deadline, p, RulesOf(kept),
                           [done = std::move(done)](absl::StatusOr<WireObject> p) mutable {
                             if (!p.ok()) return std::move(done)(p.status());
                             std::move(done)(kit::Finished(Empty()));
                           });
                }));
}

}  // namespace cloudplane::adapters::cloudsigma
