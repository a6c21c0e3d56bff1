// Polling the sandbox: the typed poll tokens (PollToken in
// sandbox_state.proto) and what the work a token names has come to.
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/kit/progress.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::sandbox {

namespace {

// Not a token of this adapter's making.
absl::Status Unreadable(absl::string_view why) { return kit::UnreadableToken(why); }

PollToken NewToken(absl::string_view collection, absl::string_view id) {
  PollToken token;
  token.set_version(kPollTokenVersion);
  token.set_collection(std::string(collection));
  token.set_id(std::string(id));
  return token;
}

// The progress reports carry the token even when done, so that a re-driven
// mutation reports the very token of the first run.
MutationProgress Done(const google::protobuf::Message& result, const std::string& token) {
  MutationProgress progress = kit::Finished(result);
  progress.poll_token = token;
  return progress;
}

absl::Status Conflict(absl::string_view name, absl::string_view message) {
  return WithErrorInfo(absl::AbortedError(absl::StrCat(name, ": ", message)),
                       reasons::kConcurrentModification, {{"resource", std::string(name)}});
}

}  // namespace

// ---- Tokens ------------------------------------------------------------------

PollToken StateToken(absl::string_view collection, absl::string_view id,
                     absl::string_view state) {
  PollToken token = NewToken(collection, id);
  token.set_state(std::string(state));
  return token;
}

PollToken GoneToken(absl::string_view collection, absl::string_view id) {
  PollToken token = NewToken(collection, id);
  token.set_gone(true);
  return token;
}

PollToken CurrentToken(absl::string_view collection, absl::string_view id) {
  PollToken token = NewToken(collection, id);
  token.set_current(true);
  return token;
}

PollToken SettledToken(absl::string_view collection, absl::string_view id) {
  PollToken token = NewToken(collection, id);
  token.set_settled(true);
  return token;
}

PollToken SizeToken(absl::string_view group_id, int size) {
  PollToken token = NewToken(kScalingGroups, group_id);
  token.set_size(size);
  return token;
}

PollToken RuleToken(absl::string_view firewall_id, int64_t number, bool gone) {
  PollToken token = NewToken(kRules, firewall_id);
  token.set_rule_number(number);
  if (gone) {
    token.set_gone(true);
  } else {
    token.set_current(true);
  }
  return token;
}

absl::StatusOr<PollToken> ReadPollToken(absl::string_view bytes) {
  absl::StatusOr<PollToken> token = kit::UnpackToken<PollToken>(bytes, kPollTokenVersion);
  if (!token.ok()) return token.status();
  if (token->collection().empty() || token->id().empty() ||
      token->want_case() == PollToken::WANT_NOT_SET) {
    return Unreadable("not a sandbox poll token");
  }
  return token;
}

MutationProgress ValidatedProgress(const PollToken& token) {
  if (token.want_case() == PollToken::kGone) return kit::Finished(google::protobuf::Empty());
  if (token.collection() == kRules) return kit::Finished(v1::FirewallRule());
  std::shared_ptr<google::protobuf::Message> result = NewResource(token.collection());
  if (result == nullptr) return kit::Finished(google::protobuf::Empty());
  return kit::Finished(*result);
}

// ---- Polling -----------------------------------------------------------------

absl::StatusOr<MutationProgress> SandboxProvider::Evaluate(const PollToken& target) const {
  const std::string token = kit::PackToken(target);
  const bool gone = target.want_case() == PollToken::kGone;

  if (target.collection() == kMetadata) {
    ASSIGN_OR_RETURN(v1::InstanceMetadata metadata, ReadMetadata(target.id()));
    return Done(metadata, token);
  }
  if (target.collection() == kRules) {
    const std::string rule_name = RuleName(account_, target.id(), target.rule_number());
    ASSIGN_OR_RETURN(std::optional<Record> record, ReadSettled(kFirewalls, target.id()));
    const v1::FirewallRule* rule = nullptr;
    v1::Firewall firewall;
    if (record.has_value()) {
      ASSIGN_OR_RETURN(firewall, Decode<v1::Firewall>(*record));
      for (const v1::FirewallRule& r : firewall.rules()) {
        if (r.name() == rule_name) rule = &r;
      }
    }
    if (gone) {
      if (rule == nullptr) return Done(google::protobuf::Empty(), token);
      return Conflict(rule_name, "exists again");
    }
    if (rule == nullptr) return NotFound(kRules, rule_name);
    return Done(*rule, token);
  }

  ASSIGN_OR_RETURN(std::optional<Record> record, ReadSettled(target.collection(), target.id()));
  const std::string name = Name(target.collection(), target.id());
  const std::string kind = KindOf(target.collection());
  if (gone) {
    if (!record.has_value()) return Done(google::protobuf::Empty(), token);
    if (record->has_transition() && record->transition().remove()) {
      return kit::Pending(token, absl::StrCat("waiting for ", kind, " ", name, " to be deleted"));
    }
    return Conflict(name, "was created again before its deletion was reported");
  }
  if (!record.has_value()) {
    return WithErrorInfo(absl::NotFoundError(absl::StrCat(
                             kind, " ", name, " was deleted before the operation finished")),
                         reasons::kResourceNotFound, {{"resource", name}});
  }

  // The resource, its state and the state its transition leads to.
  std::unique_ptr<google::protobuf::Message> resource;
  const google::protobuf::EnumDescriptor* states = nullptr;
  int state = 0;
  if (target.collection() == kInstances) {
    ASSIGN_OR_RETURN(v1::Instance instance, Decode<v1::Instance>(*record));
    state = instance.state();
    states = v1::Instance::State_descriptor();
    resource = std::make_unique<v1::Instance>(std::move(instance));
  } else if (target.collection() == kVolumes) {
    ASSIGN_OR_RETURN(v1::Volume volume, Decode<v1::Volume>(*record));
    state = volume.state();
    states = v1::Volume::State_descriptor();
    resource = std::make_unique<v1::Volume>(std::move(volume));
  } else if (target.collection() == kUnits) {
    ASSIGN_OR_RETURN(v1::Unit unit, Decode<v1::Unit>(*record));
    state = unit.current_state();
    states = v1::Unit::State_descriptor();
    resource = std::make_unique<v1::Unit>(std::move(unit));
  } else if (target.collection() == kScalingGroups) {
    ASSIGN_OR_RETURN(v1::ScalingGroup group, Decode<v1::ScalingGroup>(*record));
    state = group.state();
    states = v1::ScalingGroup::State_descriptor();
    resource = std::make_unique<v1::ScalingGroup>(std::move(group));
  } else if (target.collection() == kNetworks) {
    ASSIGN_OR_RETURN(v1::Network network, Decode<v1::Network>(*record));
    state = network.state();
    states = v1::Network::State_descriptor();
    resource = std::make_unique<v1::Network>(std::move(network));
  } else if (target.collection() == kAddresses) {
    ASSIGN_OR_RETURN(v1::Address address, Decode<v1::Address>(*record));
    resource = std::make_unique<v1::Address>(std::move(address));
  } else if (target.collection() == kKeyPairs) {
    ASSIGN_OR_RETURN(v1::KeyPair key_pair, Decode<v1::KeyPair>(*record));
    resource = std::make_unique<v1::KeyPair>(std::move(key_pair));
  } else if (target.collection() == kFirewalls) {
    ASSIGN_OR_RETURN(v1::Firewall firewall, Decode<v1::Firewall>(*record));
    resource = std::make_unique<v1::Firewall>(std::move(firewall));
  } else if (target.collection() == kLaunchTemplates) {
    ASSIGN_OR_RETURN(v1::LaunchTemplate templ, Decode<v1::LaunchTemplate>(*record));
    resource = std::make_unique<v1::LaunchTemplate>(std::move(templ));
  } else {
    return Unreadable(absl::StrCat("no sandbox collection \"", target.collection(), "\""));
  }

  if (target.want_case() == PollToken::kCurrent) return Done(*resource, token);
  const bool moving = record->has_transition();
  auto state_name = [&](int value) {
    const google::protobuf::EnumValueDescriptor* v =
        states == nullptr ? nullptr : states->FindValueByNumber(value);
    return v == nullptr ? absl::StrCat(value) : v->name();
  };
  if (target.want_case() == PollToken::kSettled) {
    if (!moving) return Done(*resource, token);
    return kit::Pending(token,
                        absl::StrCat("waiting for ", name, " (now ", state_name(state), ")"));
  }
  if (target.want_case() == PollToken::kSize) {
    // Scaling groups: done when stable at the size the operation asked for.
    const int size = target.size();
    if (target.collection() != kScalingGroups) {
      return Unreadable("a size is awaited of scaling groups only");
    }
    const auto& group = static_cast<const v1::ScalingGroup&>(*resource);
    if (group.target_size() != size) {
      return Conflict(name, absl::StrCat("was resized to ", group.target_size(),
                                         " by another operation"));
    }
    if (!moving && group.instances_size() == size) return Done(*resource, token);
    if (moving && record->transition().remove()) {
      return Conflict(name, "is being deleted");
    }
    return kit::Pending(token, absl::StrCat("waiting for ", name, " to have ", size,
                                            " healthy instances (now ", group.instances_size(),
                                            ", ", state_name(state), ")"));
  }
  const std::string& want = target.state();
  const google::protobuf::EnumValueDescriptor* wanted =
      states == nullptr ? nullptr : states->FindValueByName(want);
  if (wanted == nullptr) {
    return Unreadable(absl::StrCat(kind, " has no state \"", want, "\""));
  }
  if (!moving && state == wanted->number()) return Done(*resource, token);
  if (moving && !record->transition().remove() &&
      record->transition().target_state() == wanted->number()) {
    return kit::Pending(token, absl::StrCat("waiting for ", kind, " ", name, " to reach ", want,
                                            " (now ", state_name(state), ")"));
  }
  // Another operation took the resource elsewhere meanwhile.
  return Conflict(name, absl::StrCat("is ", state_name(state),
                                     moving && record->transition().remove()
                                         ? " and being deleted"
                                         : "",
                                     "; it will not reach ", want));
}

void SandboxProvider::PollOperation(const CallContext& ctx, const std::string& poll_token,
                                    Callback<MutationProgress> done) {
  if (absl::Status status = CheckCall(ctx); !status.ok()) {
    std::move(done)(status);
    return;
  }
  absl::StatusOr<PollToken> token = ReadPollToken(poll_token);
  if (!token.ok()) {
    std::move(done)(token.status());
    return;
  }
  std::move(done)(Evaluate(*token));
}

}  // namespace cloudplane::adapters::sandbox
