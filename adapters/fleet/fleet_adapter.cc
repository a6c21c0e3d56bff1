#include "adapters/fleet/fleet_adapter.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/kit/account.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/kit/send.h"
#include "adapters/common/paging/paging.h"
#include "adapters/fleet/fleet_wire.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"

namespace cloudplane::adapters::fleet {
namespace {

using http::HttpResponse;

// What the requests of one account need. Callbacks hold a shared_ptr to it,
// so a Provider destroyed with requests in flight leaves them intact.
struct Account {
  std::string id;
  std::unique_ptr<http::HttpClient> client;
};
using AccountPtr = std::shared_ptr<const Account>;

// Sends one request to fleet (kit::Send: transport errors carry `context`,
// e.g. "GET unit hello.service", which holds names only, never a body).
// `done` gets every HTTP answer; StatusFromResponse maps fleet's errors.
void Send(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, absl::string_view context,
          kit::ResponseCallback done) {
  http::HttpRequest request;
  request.method = std::string(method);
  request.path_and_query = std::move(path);
  request.deadline = deadline;
  request.headers.emplace_back("Accept", "application/json");
  if (!body.empty()) {
    // fleet answers 415 unless there is exactly one Content-Type whose media
    // type is application/json (§5).
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = std::move(body);
  }
  // A read whose answer is cut short or garbled is sent again (kit/guard.h).
  if (request.method == "GET") request.validate = kit::CheckJsonAnswer;
  // fleet's own 500 for one unit (a broken unit: IsUnitOnly5xx) is its
  // lasting word: retried, it would count max_attempts failures per call
  // towards the account's circuit breaker, which then refuses the probe that
  // tells a broken unit from a broken fleet (and every other call of the
  // account). Any other 5xx on the way is retried as usual.
  if (absl::StartsWith(request.path_and_query, "/fleet/v1/units/")) {
    request.lasting_error = [](const HttpResponse& r) {
      return r.status == 500 && IsFleetErrorEnvelope(r.status, r.body);
    };
  }
  kit::Send(*account->client, std::move(request), context, std::move(done));
}

// One page of a fleet list: GET `path`, then `parse` the body into the
// items and fleet's next page token.
template <typename Item, typename Parse>
void FetchFleetPage(const AccountPtr& account, absl::Time deadline, std::string path,
                    const std::string& context, Parse parse,
                    Callback<kit::ProviderPage<Item>> done) {
  Send(account, deadline, "GET", std::move(path), "", context,
       [context, parse = std::move(parse),
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         std::move(done)(parse(r->body));
       });
}

// Every page of a fleet list (fleet pages by offset with its own tokens):
// `path_for` makes the path of the page at a fleet token.
template <typename Item, typename PathFor, typename Parse>
void FetchAll(const AccountPtr& account, absl::Time deadline, std::string context,
              PathFor path_for, Parse parse, Callback<std::vector<Item>> done) {
  kit::FetchAllPages<Item>(
      context,
      [account, deadline, context, path_for = std::move(path_for), parse = std::move(parse)](
          const std::string& cursor, Callback<kit::ProviderPage<Item>> page_done) {
        FetchFleetPage<Item>(account, deadline, path_for(cursor), context, parse,
                             std::move(page_done));
      },
      std::move(done));
}

// Unit states have no name of their own: they are ordered (and paged) by
// unit, then machine. '\n' sorts below every character a resource name can
// hold, so the joined key orders the same way. Repeats are dropped: fleet
// pages by offset, so an item may arrive twice when the list shifts between
// two page requests (kit::PageByName does the same for named items).
std::string UnitStateKey(const v1::UnitState& s) {
  return absl::StrCat(s.unit(), "\n", s.machine());
}

absl::StatusOr<std::vector<v1::UnitState>> PageOfUnitStates(std::vector<v1::UnitState> states,
                                                            int32_t page_size,
                                                            absl::string_view page_token,
                                                            std::string* next_page_token) {
  std::sort(states.begin(), states.end(), [](const v1::UnitState& a, const v1::UnitState& b) {
    return UnitStateKey(a) < UnitStateKey(b);
  });
  states.erase(std::unique(states.begin(), states.end(),
                           [](const v1::UnitState& a, const v1::UnitState& b) {
                             return UnitStateKey(a) == UnitStateKey(b);
                           }),
               states.end());
  return paging::Paginate(std::move(states), UnitStateKey, page_size, page_token,
                          next_page_token);
}

// ---------------------------------------------------------------------------
// A broken unit: fleet answers 500 for one unit for good (a desired state
// set to an invalid value in fleet directly: its registry cannot read the
// unit back), while the rest of its API works. fleet's 500 envelope alone cannot tell
// from a failing registry, so the unit's states are read as a probe: fleet
// answering that (200) means the error belongs to the unit.

// `done` gets true when fleet answers the probe with 200.
void ProbeProvider(const AccountPtr& account, absl::Time deadline, const std::string& unit_name,
                   Callback<bool> done) {
  Send(account, deadline, "GET", ListUnitStatesPath("", unit_name, ""),
       "", absl::StrCat("GET unit states of ", unit_name),
       [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         std::move(done)(r.ok() && r->status == 200);
       });
}

// An answer that may be the unit's own error: fleet's 500 envelope (503 is
// fleet's "unable to communicate with etcd", an outage of everything; a 500
// without fleet's envelope came from something in between).
bool IsUnitOnly5xx(const HttpResponse& r) {
  return r.status == 500 && IsFleetErrorEnvelope(r.status, r.body);
}

// ---------------------------------------------------------------------------
// Convergence: after a PUT, and on every poll, read the unit and compare.
//
// Done means done at fleet's machines, not in fleet's registry: fleet says
// `launched` as soon as its agent has triggered the start (even for a unit
// whose program does not exist, ~0.5 s before systemd reports anything), so
// a LAUNCHED target is confirmed by the unit's UnitState on its machine.

void CheckLaunched(const AccountPtr& account, absl::Time deadline, v1::Unit unit,
                   const std::string& unit_name, const std::string& desired,
                   Callback<MutationProgress> done) {
  // GET /state?unitName= rather than /state/<name>: fleetd v1.0.0 drops the
  // connection for a unit without a state there (a nil dereference), which
  // a client cannot tell from a network fault.
  const std::string context = absl::StrCat("GET unit states of ", unit_name);
  Send(account, deadline, "GET", ListUnitStatesPath("", unit_name, ""), "", context,
       [account, unit = std::move(unit), unit_name, desired, context,
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         absl::StatusOr<UnitStatePage> page = ParseUnitStatePage(r->body, account->id);
         if (!page.ok()) return std::move(done)(page.status());
         std::string seen = "no unit state yet";
         for (const v1::UnitState& st : page->states) {
           if (st.machine() != unit.machine()) continue;
           const std::string triple = absl::StrCat(st.systemd_load_state(), "/",
                                                   st.systemd_active_state(), "/",
                                                   st.systemd_sub_state());
           switch (VerdictOf(st)) {
             case SystemdVerdict::kRunning:
               return std::move(done)(kit::Finished(unit));
             case SystemdVerdict::kFailed:
               // systemd's own word: final, not retried (kit::IsAmbiguous).
               return std::move(done)(WithErrorInfo(
                   absl::FailedPreconditionError(absl::StrCat(
                       "unit ", unit_name, " failed to start on machine ",
                       st.machine().substr(st.machine().rfind('/') + 1),
                       ": systemd reports ", triple, " (fleet says launched)")),
                   reasons::kProviderFailureState,
                   {{"unit", unit_name},
                    {"machine", st.machine()},
                    {"providerState", triple},
                    {"systemdLoadState", st.systemd_load_state()},
                    {"systemdActiveState", st.systemd_active_state()},
                    {"systemdSubState", st.systemd_sub_state()}}));
             case SystemdVerdict::kStarting:
               seen = absl::StrCat("systemd reports ", triple);
               break;
           }
         }
         std::move(done)(kit::Pending(
             MakePollToken(unit_name, desired),
             absl::StrFormat("waiting for unit %s to run (fleet says launched, %s)", unit_name,
                             seen)));
       });
}

// What a read of the unit (GET /units/<name>, or the observer's ListUnits)
// says about its reaching `desired`: ABORTED when someone set another
// target meanwhile, a finished or pending MutationProgress, or nullopt when
// fleet says launched and systemd must confirm it (CheckLaunched).
std::optional<absl::StatusOr<MutationProgress>> JudgeUnit(const v1::Unit& unit,
                                                          const std::string& unit_name,
                                                          const std::string& desired) {
  const v1::Unit::State want = StateFromWire(desired);
  if (unit.desired_state() != want) {
    // Someone else set another target meanwhile; this operation's
    // target will never be reached.
    const auto now = StateToWire(unit.desired_state());
    return WithErrorInfo(
        absl::AbortedError(absl::StrCat(
            "unit ", unit_name, ": its desired state was changed to ",
            now.has_value() ? *now : "an unknown state", " while waiting for ", desired)),
        reasons::kConcurrentModification, {{"unit", unit_name}});
  }
  // fleet reports no current state for a global unit (it runs on
  // many machines), so there is nothing to wait for (§3).
  if (IsGlobalUnit(unit.options())) return kit::Finished(unit);
  if (unit.current_state() == want) {
    if (want != v1::Unit::LAUNCHED) return kit::Finished(unit);
    return std::nullopt;
  }
  const auto now = StateToWire(unit.current_state());
  return kit::Pending(MakePollToken(unit_name, desired),
                      absl::StrFormat("waiting for unit %s to reach %s (now %s)", unit_name,
                                      desired, now.has_value() ? *now : "unknown"));
}

void ReadProgress(const AccountPtr& account, absl::Time deadline, const std::string& unit_name,
                  const std::string& desired, Callback<MutationProgress> done) {
  const std::string context = absl::StrCat("GET unit ", unit_name);
  Send(account, deadline, "GET", UnitPath(unit_name), "", context,
       [account, deadline, unit_name, desired, context,
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           if (!IsUnitOnly5xx(*r)) return std::move(done)(s);
           // A unit fleet cannot read will never converge: fail the
           // operation now rather than poll until its timeout.
           return ProbeProvider(account, deadline, unit_name,
                                [s, unit_name, status = r->status, body = r->body,
                                 done = std::move(done)](absl::StatusOr<bool> up) mutable {
                                  if (up.ok() && *up) {
                                    return std::move(done)(
                                        BrokenUnitError(unit_name, status, body));
                                  }
                                  std::move(done)(s);
                                });
         }
         absl::StatusOr<v1::Unit> unit = ParseUnit(r->body, account->id);
         if (!unit.ok()) return std::move(done)(unit.status());
         std::optional<absl::StatusOr<MutationProgress>> judged =
             JudgeUnit(*unit, unit_name, desired);
         if (!judged.has_value()) {
           return CheckLaunched(account, deadline, *std::move(unit), unit_name, desired,
                                std::move(done));
         }
         std::move(done)(*std::move(judged));
       });
}

// PUT /units/<name> with `body`, then ReadProgress. `field_for_400`, when
// set, is the request field a 400 from fleet is about (its option checks).
void PutAndConverge(const AccountPtr& account, absl::Time deadline, const std::string& unit_name,
                    const std::string& desired, std::string body,
                    absl::string_view field_for_400, Callback<MutationProgress> done) {
  const std::string context = absl::StrCat("PUT unit ", unit_name);
  Send(account, deadline, "PUT", UnitPath(unit_name), std::move(body), context,
       [account, deadline, unit_name, desired, context, field = std::string(field_for_400),
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         // 201: created or replaced; 204: same unit file, desired state set.
         // Both are success, so re-driving a create is harmless.
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           if (IsUnitOnly5xx(*r)) {
             // fleet looks the unit up before it sets anything: a broken
             // unit answers 500 to every PUT (see ReadProgress).
             return ProbeProvider(account, deadline, unit_name,
                                  [s, unit_name, status = r->status, body = r->body,
                                   done = std::move(done)](absl::StatusOr<bool> up) mutable {
                                    if (up.ok() && *up) {
                                      return std::move(done)(
                                          BrokenUnitError(unit_name, status, body));
                                    }
                                    std::move(done)(s);
                                  });
           }
           if (r->status == 400 && !field.empty()) {
             const auto info = GetErrorInfo(s);
             AddFieldViolation(s, field,
                               info.has_value() ? info->metadata().at("providerMessage") : "");
           }
           return std::move(done)(s);
         }
         ReadProgress(account, deadline, unit_name, desired, std::move(done));
       });
}

// fleet's unit list leaves out a unit its registry cannot read (it logs and
// skips it), yet that unit's agent still reports its states. So ListUnits
// also lists the unit states, and asks for each unit named there and missing
// from the list: one answering 500 is added in state ERROR (BrokenUnit), one
// answering 200 (created in between) is added as it is, 404 (deleted in
// between) is left out. A broken unit that has no state on any machine
// cannot be seen this way and stays out of the list.
struct BrokenScan {
  AccountPtr account;
  absl::Time deadline;
  std::vector<v1::Unit> units;
  std::vector<std::string> missing;
  size_t next = 0;
  Callback<std::vector<v1::Unit>> done;
};

void ScanNext(std::shared_ptr<BrokenScan> scan) {
  if (scan->next == scan->missing.size()) {
    return std::move(scan->done)(std::move(scan->units));
  }
  const std::string unit_name = scan->missing[scan->next++];
  const std::string context = absl::StrCat("GET unit ", unit_name);
  Send(scan->account, scan->deadline, "GET", UnitPath(unit_name), "", context,
       [scan, unit_name, context](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(scan->done)(r.status());
         if (r->status == 200) {
           absl::StatusOr<v1::Unit> unit = ParseUnit(r->body, scan->account->id);
           if (!unit.ok()) return std::move(scan->done)(unit.status());
           scan->units.push_back(*std::move(unit));
         } else if (IsUnitOnly5xx(*r)) {
           // The lists just answered: the error is this unit's own.
           scan->units.push_back(BrokenUnit(scan->account->id, unit_name, r->status, r->body));
         } else if (r->status != 404) {
           return std::move(scan->done)(StatusFromResponse(r->status, r->body, context));
         }
         ScanNext(std::move(scan));
       });
}

void AddBrokenUnits(const AccountPtr& account, absl::Time deadline, std::vector<v1::Unit> units,
                    Callback<std::vector<v1::Unit>> done) {
  const std::string id = account->id;
  FetchAll<v1::UnitState>(
      account, deadline, "GET unit states",
      [](absl::string_view token) { return ListUnitStatesPath("", "", token); },
      [id](absl::string_view body) -> absl::StatusOr<kit::ProviderPage<v1::UnitState>> {
        ASSIGN_OR_RETURN(UnitStatePage page, ParseUnitStatePage(body, id));
        return kit::ProviderPage<v1::UnitState>{std::move(page.states),
                                                std::move(page.next_page_token)};
      },
      [account, deadline, units = std::move(units), done = std::move(done)](
          absl::StatusOr<std::vector<v1::UnitState>> states) mutable {
        if (!states.ok()) return std::move(done)(states.status());
        absl::flat_hash_set<std::string> listed;
        for (const v1::Unit& u : units) listed.insert(u.name());
        auto scan = std::make_shared<BrokenScan>();
        absl::flat_hash_set<std::string> queued;
        for (const v1::UnitState& st : *states) {
          if (listed.contains(st.unit()) || !queued.insert(st.unit()).second) continue;
          scan->missing.push_back(st.unit().substr(st.unit().rfind('/') + 1));
        }
        scan->account = account;
        scan->deadline = deadline;
        scan->units = std::move(units);
        scan->done = std::move(done);
        ScanNext(std::move(scan));
      });
}

// ---------------------------------------------------------------------------

class FleetProvider final : public Provider {
 public:
  explicit FleetProvider(AccountPtr account) : account_(std::move(account)) {}

  const ProviderInfo& Info() const override {
    static const auto* const kInfo = new ProviderInfo(FleetProviderInfo());
    return *kInfo;
  }

  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override {
    absl::StatusOr<PollTarget> target = ParsePollToken(poll_token);
    if (!target.ok()) return std::move(done)(target.status());
    ReadProgress(account_, ctx.deadline, target->unit_name, target->desired_state,
                 std::move(done));
  }

  // Operations on units are judged from the observer's ListUnits with the
  // same JudgeUnit as a poll. What a list cannot show is left to one
  // targeted poll: systemd's word on a launched unit (its UnitState), a
  // unit missing from the list (NOT_FOUND, or its broken-unit error), a
  // unit in ERROR (PROVIDER_ERROR with fleet's answer).
  std::optional<ObservedTarget> ObservationTarget(const std::string& poll_token) const override {
    absl::StatusOr<PollTarget> target = ParsePollToken(poll_token);
    if (!target.ok()) return std::nullopt;
    return ObservedTarget{"Unit", UnitResourceName(account_->id, target->unit_name)};
  }

  std::optional<absl::StatusOr<MutationProgress>> ProgressFromObservation(
      const std::string& poll_token, const google::protobuf::Message* observed) const override {
    absl::StatusOr<PollTarget> target = ParsePollToken(poll_token);
    if (!target.ok()) return std::nullopt;
    auto ask = [&](absl::string_view why) -> absl::StatusOr<MutationProgress> {
      return kit::Pending(poll_token, absl::StrCat("unit ", target->unit_name, " ", why));
    };
    const auto* unit = dynamic_cast<const v1::Unit*>(observed);
    if (unit == nullptr) return ask("is not listed");
    if (unit->current_state() == v1::Unit::ERROR) return ask("is listed in ERROR");
    std::optional<absl::StatusOr<MutationProgress>> judged =
        JudgeUnit(*unit, target->unit_name, target->desired_state);
    if (!judged.has_value()) return ask("is launched; asking systemd");
    if (judged->ok() && !(*judged)->done) return std::nullopt;  // not yet
    return judged;
  }

  void ListUnits(const CallContext& ctx, const v1::ListUnitsRequest& request,
                 Callback<v1::ListUnitsResponse> done) override {
    if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    const std::string id = account_->id;
    FetchAll<v1::Unit>(
        account_, ctx.deadline, "GET units", ListUnitsPath,
        [id](absl::string_view body) -> absl::StatusOr<kit::ProviderPage<v1::Unit>> {
          ASSIGN_OR_RETURN(UnitPage page, ParseUnitPage(body, id));
          return kit::ProviderPage<v1::Unit>{std::move(page.units),
                                             std::move(page.next_page_token)};
        },
        [account = account_, deadline = ctx.deadline, page_size = request.page_size(),
         page_token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::Unit>> units) mutable {
          if (!units.ok()) return std::move(done)(units.status());
          AddBrokenUnits(account, deadline, *std::move(units),
                         [page_size, page_token, done = std::move(done)](
                             absl::StatusOr<std::vector<v1::Unit>> all) mutable {
                           if (!all.ok()) return std::move(done)(all.status());
                           std::move(done)(kit::AnswerPage<v1::ListUnitsResponse>(
                               *std::move(all), page_size, page_token));
                         });
        });
  }

  void GetUnit(const CallContext& ctx, const v1::GetUnitRequest& request,
               Callback<v1::Unit> done) override {
    absl::StatusOr<std::string> name = UnitNameFromResource("name", account_->id, request.name());
    if (!name.ok()) return std::move(done)(name.status());
    const std::string context = absl::StrCat("GET unit ", *name);
    Send(account_, ctx.deadline, "GET", UnitPath(*name), "", context,
         [account = account_, deadline = ctx.deadline, unit_name = *name, context,
          done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
           if (!r.ok()) return std::move(done)(r.status());
           if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
             if (!IsUnitOnly5xx(*r)) return std::move(done)(s);
             // The unit, not fleet, is broken when fleet answers the rest:
             // the unit in state ERROR, as ListUnits lists it.
             return ProbeProvider(
                 account, deadline, unit_name,
                 [s, account, unit_name, status = r->status, body = r->body,
                  done = std::move(done)](absl::StatusOr<bool> up) mutable {
                   if (up.ok() && *up) {
                     return std::move(done)(BrokenUnit(account->id, unit_name, status, body));
                   }
                   std::move(done)(s);
                 });
           }
           std::move(done)(ParseUnit(r->body, account->id));
         });
  }

  void CreateUnit(const CallContext& ctx, const v1::CreateUnitRequest& request,
                  Callback<MutationProgress> done) override {
    // Everything fleet would refuse with a fixed answer is refused here,
    // before any request, with the field named.
    if (absl::Status s = ValidateUnitName("unit_id", request.unit_id()); !s.ok()) {
      return std::move(done)(s);
    }
    if (absl::Status s = ValidateOptions("unit.options", request.unit().options()); !s.ok()) {
      return std::move(done)(s);
    }
    v1::Unit::State state = request.unit().desired_state();
    if (state == v1::Unit::STATE_UNSPECIFIED) state = v1::Unit::INACTIVE;
    const std::optional<absl::string_view> desired = StateToWire(state);
    if (!desired.has_value()) {
      return std::move(done)(
          InvalidField("unit.desired_state", "must be INACTIVE, LOADED or LAUNCHED"));
    }
    // fleet accepts an active template on create (and never schedules it, so
    // the operation would wait forever); refuse it as fleet does on update.
    if (IsTemplateUnitName(request.unit_id()) && state != v1::Unit::INACTIVE) {
      return std::move(done)(InvalidField(
          "unit.desired_state", absl::StrCat("cannot activate template \"", request.unit_id(),
                                             "\" (a template unit can only be INACTIVE)")));
    }
    if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Unit()));
    // Sent as fleet stores them (TrimOptionValues), so a re-driven create
    // finds the same unit file (204) instead of replacing and restarting it.
    PutAndConverge(account_, ctx.deadline, request.unit_id(), std::string(*desired),
                   UnitPutBody(TrimOptionValues(request.unit().options()), *desired),
                   "unit.options",
                   std::move(done));
  }

  void SetUnitDesiredState(const CallContext& ctx, const v1::SetUnitDesiredStateRequest& request,
                           Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> name = UnitNameFromResource("name", account_->id, request.name());
    if (!name.ok()) return std::move(done)(name.status());
    const std::optional<absl::string_view> desired = StateToWire(request.desired_state());
    if (!desired.has_value()) {
      return std::move(done)(
          InvalidField("desired_state", "must be INACTIVE, LOADED or LAUNCHED"));
    }
    if (IsTemplateUnitName(*name) && request.desired_state() != v1::Unit::INACTIVE) {
      // fleet's own check (400 `cannot activate template`, §5 step 6); the
      // API calls it a wrong state of the unit.
      return std::move(done)(WithErrorInfo(
          absl::FailedPreconditionError(
              absl::StrCat("cannot activate template \"", *name, "\"")),
          reasons::kWrongState, {{"unit", *name}}));
    }
    if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Unit()));
    // Options left out: fleet then only sets the target (204); a missing
    // unit is its 409 "unit does not exist and options field empty".
    PutAndConverge(account_, ctx.deadline, *name, std::string(*desired),
                   UnitPutBody({}, *desired), "", std::move(done));
  }

  void DeleteUnit(const CallContext& ctx, const v1::DeleteUnitRequest& request,
                  Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> name = UnitNameFromResource("name", account_->id, request.name());
    if (!name.ok()) return std::move(done)(name.status());
    if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
    const std::string context = absl::StrCat("DELETE unit ", *name);
    Send(account_, ctx.deadline, "DELETE", UnitPath(*name), "", context,
         [context, allow_missing = request.allow_missing(),
          done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
           if (!r.ok()) return std::move(done)(r.status());
           absl::Status s = StatusFromResponse(r->status, r->body, context);
           if (s.ok() || (allow_missing && r->status == 404)) {
             // fleet removes the unit from its registry at once (GET gives
             // 404 right after); agents stop it in the background.
             return std::move(done)(kit::Finished(google::protobuf::Empty()));
           }
           std::move(done)(s);
         });
  }

  void ListUnitStates(const CallContext& ctx, const v1::ListUnitStatesRequest& request,
                      Callback<v1::ListUnitStatesResponse> done) override {
    if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    std::string machine_id, unit_name;
    if (!request.machine().empty()) {
      absl::StatusOr<std::string> id =
          MachineIdFromResource("machine", account_->id, request.machine());
      if (!id.ok()) return std::move(done)(id.status());
      machine_id = *std::move(id);
    }
    if (!request.unit().empty()) {
      absl::StatusOr<std::string> name =
          UnitNameFromResource("unit", account_->id, request.unit());
      if (!name.ok()) return std::move(done)(name.status());
      unit_name = *std::move(name);
    }
    const std::string id = account_->id;
    FetchAll<v1::UnitState>(
        account_, ctx.deadline, "GET unit states",
        [machine_id, unit_name](absl::string_view token) {
          return ListUnitStatesPath(machine_id, unit_name, token);
        },
        [id](absl::string_view body) -> absl::StatusOr<kit::ProviderPage<v1::UnitState>> {
          ASSIGN_OR_RETURN(UnitStatePage page, ParseUnitStatePage(body, id));
          return kit::ProviderPage<v1::UnitState>{std::move(page.states),
                                                  std::move(page.next_page_token)};
        },
        [page_size = request.page_size(), page_token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::UnitState>> states) mutable {
          if (!states.ok()) return std::move(done)(states.status());
          v1::ListUnitStatesResponse response;
          absl::StatusOr<std::vector<v1::UnitState>> page = PageOfUnitStates(
              *std::move(states), page_size, page_token, response.mutable_next_page_token());
          if (!page.ok()) return std::move(done)(page.status());
          for (v1::UnitState& s : *page) *response.add_unit_states() = std::move(s);
          std::move(done)(std::move(response));
        });
  }

  void ListMachines(const CallContext& ctx, const v1::ListMachinesRequest& request,
                    Callback<v1::ListMachinesResponse> done) override {
    if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    FetchMachines(ctx, [page_size = request.page_size(), page_token = request.page_token(),
                        done = std::move(done)](
                           absl::StatusOr<std::vector<v1::Machine>> machines) mutable {
      if (!machines.ok()) return std::move(done)(machines.status());
      std::move(done)(kit::AnswerPage<v1::ListMachinesResponse>(*std::move(machines), page_size,
                                                                page_token));
    });
  }

  void GetMachine(const CallContext& ctx, const v1::GetMachineRequest& request,
                  Callback<v1::Machine> done) override {
    absl::StatusOr<std::string> id = MachineIdFromResource("name", account_->id, request.name());
    if (!id.ok()) return std::move(done)(id.status());
    // fleet has no GET /machines/{id}: list them all and pick.
    FetchMachines(ctx, [wanted = MachineResourceName(account_->id, *id),
                        done = std::move(done)](
                           absl::StatusOr<std::vector<v1::Machine>> machines) mutable {
      if (!machines.ok()) return std::move(done)(machines.status());
      for (v1::Machine& m : *machines) {
        if (m.name() == wanted) return std::move(done)(std::move(m));
      }
      std::move(done)(kit::NotFound("machine", wanted));
    });
  }

 private:
  void FetchMachines(const CallContext& ctx, Callback<std::vector<v1::Machine>> done) {
    const std::string id = account_->id;
    FetchAll<v1::Machine>(
        account_, ctx.deadline, "GET machines", ListMachinesPath,
        [id](absl::string_view body) -> absl::StatusOr<kit::ProviderPage<v1::Machine>> {
          ASSIGN_OR_RETURN(MachinePage page, ParseMachinePage(body, id));
          return kit::ProviderPage<v1::Machine>{std::move(page.machines),
                                                std::move(page.next_page_token)};
        },
        std::move(done));
  }

  const AccountPtr account_;
};

}  // namespace

ProviderInfo FleetProviderInfo() {
  ProviderInfo info;
  info.kind = "fleet";
  info.display_name = "CoreOS fleet v1";
  info.protocol = "REST/JSON over TCP or a unix socket";
  // fleet has no change feed; whatever the server learns, it learns by
  // reading again.
  info.watch_source = WatchSource::kPoll;
  kit::AddMethods(info.supported_methods, "UnitsService",
                  {"ListUnits", "GetUnit", "CreateUnit", "SetUnitDesiredState", "DeleteUnit",
                   "ListUnitStates", "ListMachines", "GetMachine"});
  // The strict field contract: each of these reaches fleet's PUT or DELETE
  // (UnitPutBody: options and desiredState; the unit name from unit_id).
  kit::Honour(info, "UnitsService", "CreateUnit",
              {"unit_id", "unit.options.section", "unit.options.name", "unit.options.value",
               "unit.desired_state"});
  kit::Honour(info, "UnitsService", "SetUnitDesiredState", {"desired_state"});
  kit::Honour(info, "UnitsService", "DeleteUnit", {"allow_missing"});
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateFleetProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  RETURN_IF_ERROR(kit::CheckOptions(setup, {}, "fleet"));
  ASSIGN_OR_RETURN(std::unique_ptr<http::HttpClient> client,
                   kit::MakeHttpClient(setup, std::move(transport)));
  auto account = std::make_shared<Account>();
  account->id = setup.account;
  account->client = std::move(client);
  return std::make_unique<FleetProvider>(std::move(account));
}

absl::Status RegisterFleet(AdapterRegistry& registry) {
  return registry.Register(FleetProviderInfo(), [](const AccountSetup& setup) {
    return CreateFleetProvider(setup);
  });
}

}  // namespace cloudplane::adapters::fleet
