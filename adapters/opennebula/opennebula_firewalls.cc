// Firewalls: security groups, their rules the group's RULE vectors. All
// synchronous: every mutation answers the finished result.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::opennebula {
namespace {

using xmlrpc::Value;
using Rules = std::vector<std::vector<std::pair<std::string, std::string>>>;

// The rule `rule_id` of group `g`, or nullptr.
const v1::FirewallRule* RuleOf(const FoundGroup& g, const std::string& rule_id) {
  for (size_t i = 0; i < g.rules.size(); ++i) {
    if (g.rules[i].id == rule_id) return &g.firewall.rules(static_cast<int>(i));
  }
  return nullptr;
}

// one.secgroup.update of group `oid` with the whole rule set `rules`, merge
// mode: replaces every RULE and keeps NAME, DESCRIPTION and the rest ([api]
// one.secgroup.update). oned has no compare-and-swap, so two writers racing
// on one group can lose a rule.
void WriteRules(const AccountPtr& a, absl::Time deadline, int64_t oid, const Rules& rules,
                absl::string_view field, Done<Value> done) {
  absl::StatusOr<std::string> text = RuleSetTemplate(rules);
  if (!text.ok()) {
    return done(field.empty() ? text.status() : InvalidField(field, text.status().message()));
  }
  Call(a, deadline, "one.secgroup.update", {Value::Int(oid), Value::String(*text), Value::Int(1)},
       std::move(done));
}

absl::Status FirewallExists(const std::string& resource) {
  return WithErrorInfo(
      absl::AlreadyExistsError(absl::StrCat("firewall ", resource, " already exists")),
      reasons::kResourceAlreadyExists, {{"resource", resource}});
}

// one.secgroup.allocate of `text`, then the new group as the result.
void AllocateGroup(const AccountPtr& a, absl::Time deadline, const std::string& op,
                   const std::string& resource, const std::string& text,
                   Done<MutationProgress> done) {
  Call(a, deadline, "one.secgroup.allocate", {Value::String(text)},
       [a, deadline, op, resource, done = std::move(done)](absl::StatusOr<Value> v) mutable {
         if (!v.ok()) {
           // A duplicate NAME: ours (a re-driven create) or someone else's.
           if (absl::StrContains(v.status().message(), "NAME is already taken")) {
             return FindGroup(
                 a, deadline, resource,
                 [op, resource, done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                   if (g.ok() && !op.empty() && g->operation == op) {
                     return done(kit::Finished(g->firewall));
                   }
                   done(FirewallExists(resource));
                 });
           }
           return done(v.status());
         }
         FindGroup(a, deadline, resource,
                   [done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                     if (!g.ok()) return done(g.status());
                     done(kit::Finished(g->firewall));
                   });
       });
}

// The networks `rules` name as a rule's far end, each with its field
// (`<rule field>.source_networks[i]`).
std::vector<std::pair<std::string, std::string>> RuleNetworks(
    const std::vector<std::pair<const v1::FirewallRule*, std::string>>& rules) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [rule, field] : rules) {
    for (int i = 0; i < rule->source_networks_size(); ++i) {
      out.emplace_back(absl::StrCat(field, ".source_networks[", i, "]"), rule->source_networks(i));
    }
    for (int i = 0; i < rule->destination_networks_size(); ++i) {
      out.emplace_back(absl::StrCat(field, ".destination_networks[", i, "]"),
                       rule->destination_networks(i));
    }
  }
  return out;
}

// The VNET id of every network in `wanted` (field, name): one
// one.vnpool.info, none when no network is named or when only validating
// (no provider I/O; the ids are then placeholders). A name of another
// account is INVALID_ARGUMENT naming its field, one of no network NOT_FOUND:
// oned itself takes any NETWORK_ID, and a rule must not read back naming a
// network that is not there.
void ResolveNetworks(const AccountPtr& a, absl::Time deadline, bool validate_only,
                     std::vector<std::pair<std::string, std::string>> wanted, Done<VnetIds> done) {
  VnetIds ids;
  for (const auto& [field, name] : wanted) {
    absl::StatusOr<IdOrName> id = ParseResourceName(field, a->id, "networks", name);
    if (!id.ok()) return done(id.status());
    ids[name] = id->oid.value_or(0);
  }
  if (wanted.empty() || validate_only) return done(std::move(ids));
  FetchVnets(a, deadline,
             [a, wanted = std::move(wanted),
              done = std::move(done)](absl::StatusOr<std::vector<FoundVnet>> all) mutable {
               if (!all.ok()) return done(all.status());
               VnetIds ids;
               for (const auto& [field, name] : wanted) {
                 for (const FoundVnet& v : *all) {
                   if (v.network.name() == name ||
                       ResourceName(*a, "networks", absl::StrCat(v.oid)) == name) {
                     ids[name] = v.oid;
                   }
                 }
                 if (ids.find(name) == ids.end()) {
                   return done(kit::NotFound("network", name));
                 }
               }
               done(std::move(ids));
             });
}

// Adds the RULE `attrs` to the group `parent` (unless it is there already)
// and answers the rule as the group shows it.
void AddRule(const AccountPtr& a, absl::Time deadline, const std::string& parent,
             std::vector<std::pair<std::string, std::string>> attrs,
             Done<MutationProgress> done) {
  const std::string rule_id = RuleId(attrs);
  FindGroup(
      a, deadline, parent,
      [a, deadline, attrs = std::move(attrs), rule_id,
       done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
        if (!g.ok()) return done(g.status());
        // The same rule again (or a re-driven create): nothing to add.
        if (const v1::FirewallRule* same = RuleOf(*g, rule_id); same != nullptr) {
          return done(kit::Finished(*same));
        }
        Rules rules;
        for (const SgRule& rule : g->rules) rules.push_back(rule.attrs);
        rules.push_back(attrs);
        WriteRules(
            a, deadline, g->oid, rules, "rule",
            [a, deadline, group = g->firewall.name(), rule_id,
             done = std::move(done)](absl::StatusOr<Value> v) mutable {
              if (!v.ok()) return done(v.status());
              FindGroup(a, deadline, group,
                        [rule_id, done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                          if (!g.ok()) return done(g.status());
                          if (const v1::FirewallRule* added = RuleOf(*g, rule_id);
                              added != nullptr) {
                            return done(kit::Finished(*added));
                          }
                          done(WithErrorInfo(absl::InternalError(
                                                 "OpenNebula accepted the rule but the "
                                                 "security group does not show it"),
                                             reasons::kProviderMalformedResponse));
                        });
            });
      });
}

}  // namespace

absl::StatusOr<std::pair<std::string, std::string>> OpenNebulaProvider::SplitRuleName(
    const std::string& name) const {
  const size_t cut = name.rfind("/rules/");
  if (cut == std::string::npos || cut + 7 == name.size() ||
      !ParseResourceName("name", a_->id, "firewalls", name.substr(0, cut)).ok()) {
    return InvalidField("name", "must be accounts/<a>/firewalls/<id>/rules/<rule>");
  }
  return std::make_pair(name.substr(0, cut), name.substr(cut + 7));
}

void OpenNebulaProvider::ListFirewalls(const CallContext& ctx, const v1::ListFirewallsRequest& req,
                                       Callback<v1::ListFirewallsResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchGroups(a_, ctx.deadline,
              [size = req.page_size(), token = req.page_token(),
               done = std::move(done)](absl::StatusOr<std::vector<FoundGroup>> all) mutable {
                if (!all.ok()) return std::move(done)(all.status());
                std::vector<v1::Firewall> firewalls;
                for (FoundGroup& g : *all) firewalls.push_back(std::move(g.firewall));
                std::move(done)(
                    kit::AnswerPage<v1::ListFirewallsResponse>(std::move(firewalls), size, token));
              });
}

void OpenNebulaProvider::GetFirewall(const CallContext& ctx, const v1::GetFirewallRequest& req,
                                     Callback<v1::Firewall> done) {
  if (auto id = ParseResourceName("name", a_->id, "firewalls", req.name()); !id.ok()) {
    return std::move(done)(id.status());
  }
  FindGroup(a_, ctx.deadline, req.name(),
            [done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
              if (!g.ok()) return std::move(done)(g.status());
              std::move(done)(std::move(g->firewall));
            });
}

void OpenNebulaProvider::ListFirewallRules(const CallContext& ctx,
                                           const v1::ListFirewallRulesRequest& req,
                                           Callback<v1::ListFirewallRulesResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  if (auto id = ParseResourceName("parent", a_->id, "firewalls", req.parent()); !id.ok()) {
    return std::move(done)(id.status());
  }
  FindGroup(a_, ctx.deadline, req.parent(),
            [size = req.page_size(), token = req.page_token(),
             done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
              if (!g.ok()) return std::move(done)(g.status());
              std::vector<v1::FirewallRule> rules(g->firewall.rules().begin(),
                                                  g->firewall.rules().end());
              std::move(done)(
                  kit::AnswerPage<v1::ListFirewallRulesResponse>(std::move(rules), size, token));
            });
}

void OpenNebulaProvider::GetFirewallRule(const CallContext& ctx,
                                         const v1::GetFirewallRuleRequest& req,
                                         Callback<v1::FirewallRule> done) {
  auto name = SplitRuleName(req.name());
  if (!name.ok()) return std::move(done)(name.status());
  FindGroup(a_, ctx.deadline, name->first,
            [rule_id = name->second, name = req.name(),
             done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
              if (!g.ok()) return std::move(done)(g.status());
              if (const v1::FirewallRule* rule = RuleOf(*g, rule_id); rule != nullptr) {
                return std::move(done)(*rule);
              }
              std::move(done)(kit::NotFound("firewall rule", name));
            });
}

void OpenNebulaProvider::CreateFirewall(const CallContext& ctx,
                                        const v1::CreateFirewallRequest& req,
                                        Callback<MutationProgress> done) {
  if (!IsNameId(req.firewall_id())) {
    return std::move(done)(InvalidField("firewall_id", "must be [a-z][a-z0-9-]{0,62}"));
  }
  std::vector<std::pair<std::string, std::string>> single = {{"NAME", req.firewall_id()},
                                                             {kOperationTag, ctx.operation}};
  if (!req.firewall().description().empty()) {
    single.emplace_back("DESCRIPTION", req.firewall().description());
  }
  absl::StatusOr<std::string> head = FlatTemplate(single, "firewall");
  if (!head.ok()) return std::move(done)(head.status());
  std::vector<std::pair<const v1::FirewallRule*, std::string>> fields;
  for (int i = 0; i < req.firewall().rules_size(); ++i) {
    fields.emplace_back(&req.firewall().rules(i), absl::StrCat("firewall.rules[", i, "]"));
  }
  ResolveNetworks(
      a_, ctx.deadline, ctx.validate_only, RuleNetworks(fields),
      [a = a_, deadline = ctx.deadline, validate_only = ctx.validate_only, op = ctx.operation,
       req, head = *std::move(head),
       done = Wrap(std::move(done))](absl::StatusOr<VnetIds> vnets) mutable {
        if (!vnets.ok()) return done(vnets.status());
        Rules rules;
        for (int i = 0; i < req.firewall().rules_size(); ++i) {
          auto rule = RuleToTemplate(req.firewall().rules(i),
                                     absl::StrCat("firewall.rules[", i, "]"), *vnets);
          if (!rule.ok()) return done(rule.status());
          rules.push_back(*std::move(rule));
        }
        std::string text = head;
        if (!rules.empty()) {
          absl::StatusOr<std::string> body = RuleSetTemplate(rules);
          if (!body.ok()) return done(InvalidField("firewall.rules", body.status().message()));
          text += *body;
        }
        if (validate_only) return done(kit::Finished(v1::Firewall()));
        const std::string resource = ResourceName(*a, "firewalls", req.firewall_id());
        // Before the allocate: a group this operation made already (a
        // re-drive after a crash or a lost answer) carries its
        // CLOUDPLANE_OPERATION tag and is the result; a group of that NAME
        // made by anyone else is ALREADY_EXISTS.
        FetchGroups(a, deadline,
                    [a, deadline, op, resource, text = std::move(text),
                     done = std::move(done)](absl::StatusOr<std::vector<FoundGroup>> all) mutable {
                      if (!all.ok()) return done(all.status());
                      for (const FoundGroup& g : *all) {
                        if (!op.empty() && g.operation == op) {
                          return done(kit::Finished(g.firewall));
                        }
                      }
                      for (const FoundGroup& g : *all) {
                        if (g.firewall.name() == resource) return done(FirewallExists(resource));
                      }
                      AllocateGroup(a, deadline, op, resource, text, std::move(done));
                    });
      });
}

void OpenNebulaProvider::DeleteFirewall(const CallContext& ctx,
                                        const v1::DeleteFirewallRequest& req,
                                        Callback<MutationProgress> done) {
  if (auto id = ParseResourceName("name", a_->id, "firewalls", req.name()); !id.ok()) {
    return std::move(done)(id.status());
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  FindGroup(a_, ctx.deadline, req.name(),
            [a = a_, deadline = ctx.deadline, allow = req.allow_missing(),
             done = Wrap(std::move(done))](absl::StatusOr<FoundGroup> g) mutable {
              if (!g.ok()) {
                if (allow && g.status().code() == absl::StatusCode::kNotFound) {
                  return done(kit::Finished(google::protobuf::Empty()));
                }
                return done(g.status());
              }
              Call(a, deadline, "one.secgroup.delete", {Value::Int(g->oid)},
                   [allow, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                     if (v.ok() || (allow && v.status().code() == absl::StatusCode::kNotFound)) {
                       return done(kit::Finished(google::protobuf::Empty()));
                     }
                     done(v.status());
                   });
            });
}

void OpenNebulaProvider::CreateFirewallRule(const CallContext& ctx,
                                            const v1::CreateFirewallRuleRequest& req,
                                            Callback<MutationProgress> done) {
  if (auto id = ParseResourceName("parent", a_->id, "firewalls", req.parent()); !id.ok()) {
    return std::move(done)(id.status());
  }
  ResolveNetworks(
      a_, ctx.deadline, ctx.validate_only, RuleNetworks({{&req.rule(), "rule"}}),
      [a = a_, deadline = ctx.deadline, validate_only = ctx.validate_only, req,
       done = Wrap(std::move(done))](absl::StatusOr<VnetIds> vnets) mutable {
        if (!vnets.ok()) return done(vnets.status());
        auto attrs = RuleToTemplate(req.rule(), "rule", *vnets);
        if (!attrs.ok()) return done(attrs.status());
        if (validate_only) return done(kit::Finished(v1::FirewallRule()));
        AddRule(a, deadline, req.parent(), *std::move(attrs), std::move(done));
      });
}

void OpenNebulaProvider::DeleteFirewallRule(const CallContext& ctx,
                                            const v1::DeleteFirewallRuleRequest& req,
                                            Callback<MutationProgress> done) {
  auto name = SplitRuleName(req.name());
  if (!name.ok()) return std::move(done)(name.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  FindGroup(a_, ctx.deadline, name->first,
            [a = a_, deadline = ctx.deadline, rule_id = name->second, name = req.name(),
             allow = req.allow_missing(),
             done = Wrap(std::move(done))](absl::StatusOr<FoundGroup> g) mutable {
              if (!g.ok()) {
                if (allow && g.status().code() == absl::StatusCode::kNotFound) {
                  return done(kit::Finished(google::protobuf::Empty()));
                }
                return done(g.status());
              }
              Rules rules;
              bool found = false;
              for (const SgRule& rule : g->rules) {
                if (rule.id == rule_id) {
                  found = true;
                } else {
                  rules.push_back(rule.attrs);
                }
              }
              if (!found) {
                if (allow) return done(kit::Finished(google::protobuf::Empty()));
                return done(kit::NotFound("firewall rule", name));
              }
              WriteRules(a, deadline, g->oid, rules, "",
                         [done = std::move(done)](absl::StatusOr<Value> v) mutable {
                           if (!v.ok()) return done(v.status());
                           done(kit::Finished(google::protobuf::Empty()));
                         });
            });
}

}  // namespace cloudplane::adapters::opennebula
