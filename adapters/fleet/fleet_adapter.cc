#include "adapters/fleet/fleet_adapter.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/paging/paging.h"
#include "adapters/fleet/fleet_wire.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::fleet {
namespace {

using http::HttpResponse;

// A list that never ends (a provider bug) must not keep the callback chain
// going forever: 10,000 pages is a million units at fleet's default limit.
constexpr int kMaxPages = 10000;

std::string UnitsMethod(absl::string_view method) {
  return FullMethodName("UnitsService", method);
}

// What the requests of one account need. Callbacks hold a shared_ptr to it,
// so a Provider destroyed with requests in flight leaves them intact.
struct Account {
  std::string id;
  std::unique_ptr<http::HttpClient> client;
};
using AccountPtr = std::shared_ptr<const Account>;

using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<HttpResponse>)>;

// Sends one request to fleet. `context` ("GET unit hello.service") prefixes
// errors; it holds names only, never a body.
void Send(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, absl::string_view context,
          ResponseCallback done) {
  // An expired deadline is refused by the transport before anything is
  // sent (adapters/common/http), and reported below with `context`.
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
  account->client->Send(
      std::move(request), [context = std::string(context),
                           done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
        if (!r.ok()) {
          absl::Status s(r.status().code(), absl::StrCat(context, ": ", r.status().message()));
          done(GetErrorInfo(r.status()).has_value() ? r.status()
                                                    : WithErrorInfo(s, DefaultReason(s.code())));
          return;
        }
        done(std::move(r));
      });
}

// ---------------------------------------------------------------------------
// Lists: every page of fleet's list, fetched one after another (each page's
// callback asks for the next one).

template <typename Item>
struct FetchAll {
  AccountPtr account;
  absl::Time deadline;
  std::string context;
  absl::AnyInvocable<std::string(absl::string_view fleet_token) const> path_for;
  // Parses a page into its items and fleet's next token.
  absl::AnyInvocable<absl::StatusOr<std::pair<std::vector<Item>, std::string>>(
      absl::string_view body) const>
      parse;
  Callback<std::vector<Item>> done;
  std::vector<Item> items;
  int pages = 0;
};

template <typename Item>
void FetchPage(std::shared_ptr<FetchAll<Item>> st, std::string token) {
  std::string path = st->path_for(token);
  const AccountPtr account = st->account;
  const std::string context = st->context;
  Send(account, st->deadline, "GET", std::move(path), "", context,
       [st, token](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(st->done)(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, st->context); !s.ok()) {
           return std::move(st->done)(s);
         }
         auto page = st->parse(r->body);
         if (!page.ok()) return std::move(st->done)(page.status());
         for (Item& item : page->first) st->items.push_back(std::move(item));
         ++st->pages;
         std::string next = std::move(page->second);
         if (next.empty()) return std::move(st->done)(std::move(st->items));
         if (next == token || st->pages >= kMaxPages) {
           return std::move(st->done)(WithErrorInfo(
               absl::InternalError(absl::StrCat(st->context, ": fleet's page tokens never end")),
               "PROVIDER_MALFORMED_RESPONSE"));
         }
         FetchPage(std::move(st), std::move(next));
       });
}

template <typename Item, typename PathFor, typename Parse>
void FetchAllPages(AccountPtr account, absl::Time deadline, std::string context,
                   PathFor path_for, Parse parse, Callback<std::vector<Item>> done) {
  auto st = std::make_shared<FetchAll<Item>>();
  st->account = std::move(account);
  st->deadline = deadline;
  st->context = std::move(context);
  st->path_for = std::move(path_for);
  st->parse = std::move(parse);
  st->done = std::move(done);
  FetchPage(std::move(st), "");
}

// Sorts `items` by key, drops repeats, and cuts out the page the request
// asks for. fleet pages by offset, so an item created or deleted between two
// page requests shifts the window: an item may then arrive twice (dropped
// here) — or be missed, which no client of an offset-paged API can prevent.
template <typename Item, typename Key>
absl::StatusOr<std::vector<Item>> PageOf(std::vector<Item> items, Key key, int32_t page_size,
                                         absl::string_view page_token,
                                         std::string* next_page_token) {
  std::sort(items.begin(), items.end(),
            [&key](const Item& a, const Item& b) { return key(a) < key(b); });
  items.erase(std::unique(items.begin(), items.end(),
                          [&key](const Item& a, const Item& b) { return key(a) == key(b); }),
              items.end());
  return paging::Paginate(std::move(items), key, page_size, page_token, next_page_token);
}

// Checks page_size and page_token before anything is fetched.
absl::Status CheckPaging(int32_t page_size, absl::string_view page_token) {
  RETURN_IF_ERROR(paging::EffectivePageSize(page_size).status());
  return paging::DecodeToken(page_token).status();
}

template <typename T>
MutationProgress Done(const T& result) {
  MutationProgress progress;
  progress.done = true;
  progress.result.PackFrom(result);
  return progress;
}

// ---------------------------------------------------------------------------
// Convergence: after a PUT, and on every poll, read the unit and compare.

void ReadProgress(const AccountPtr& account, absl::Time deadline, const std::string& unit_name,
                  const std::string& desired, Callback<MutationProgress> done) {
  const std::string context = absl::StrCat("GET unit ", unit_name);
  Send(account, deadline, "GET", UnitPath(unit_name), "", context,
       [account, unit_name, desired, context,
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         absl::StatusOr<v1::Unit> unit = ParseUnit(r->body, account->id);
         if (!unit.ok()) return std::move(done)(unit.status());
         const v1::Unit::State want = StateFromWire(desired);
         if (unit->desired_state() != want) {
           // Someone else set another target meanwhile; this operation's
           // target will never be reached.
           const auto now = StateToWire(unit->desired_state());
           return std::move(done)(WithErrorInfo(
               absl::AbortedError(absl::StrCat(
                   "unit ", unit_name, ": its desired state was changed to ",
                   now.has_value() ? *now : "an unknown state", " while waiting for ", desired)),
               "CONCURRENT_MODIFICATION", {{"unit", unit_name}}));
         }
         // fleet reports no current state for a global unit (it runs on
         // many machines), so there is nothing to wait for (§3).
         if (IsGlobalUnit(unit->options()) || unit->current_state() == want) {
           return std::move(done)(Done(*unit));
         }
         MutationProgress progress;
         progress.poll_token = MakePollToken(unit_name, desired);
         const auto now = StateToWire(unit->current_state());
         progress.detail = absl::StrFormat("waiting for unit %s to reach %s (now %s)", unit_name,
                                           desired, now.has_value() ? *now : "unknown");
         std::move(done)(std::move(progress));
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

  void ListUnits(const CallContext& ctx, const v1::ListUnitsRequest& request,
                 Callback<v1::ListUnitsResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    const std::string id = account_->id;
    FetchAllPages<v1::Unit>(
        account_, ctx.deadline, "GET units",
        [](absl::string_view token) { return ListUnitsPath(token); },
        [id](absl::string_view body)
            -> absl::StatusOr<std::pair<std::vector<v1::Unit>, std::string>> {
          ASSIGN_OR_RETURN(UnitPage page, ParseUnitPage(body, id));
          return std::pair{std::move(page.units), std::move(page.next_page_token)};
        },
        [page_size = request.page_size(), page_token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::Unit>> units) mutable {
          if (!units.ok()) return std::move(done)(units.status());
          v1::ListUnitsResponse response;
          absl::StatusOr<std::vector<v1::Unit>> page =
              PageOf(std::move(*units), [](const v1::Unit& u) { return u.name(); }, page_size,
                     page_token, response.mutable_next_page_token());
          if (!page.ok()) return std::move(done)(page.status());
          for (v1::Unit& u : *page) *response.add_units() = std::move(u);
          std::move(done)(std::move(response));
        });
  }

  void GetUnit(const CallContext& ctx, const v1::GetUnitRequest& request,
               Callback<v1::Unit> done) override {
    absl::StatusOr<std::string> name = UnitNameFromResource("name", account_->id, request.name());
    if (!name.ok()) return std::move(done)(name.status());
    const std::string context = absl::StrCat("GET unit ", *name);
    Send(account_, ctx.deadline, "GET", UnitPath(*name), "", context,
         [account = account_, context,
          done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
           if (!r.ok()) return std::move(done)(r.status());
           if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
             return std::move(done)(s);
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
    if (request.validate_only()) return std::move(done)(Done(v1::Unit()));
    PutAndConverge(account_, ctx.deadline, request.unit_id(), std::string(*desired),
                   UnitPutBody(request.unit().options(), *desired), "unit.options",
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
          "FAILED_PRECONDITION", {{"unit", *name}}));
    }
    if (request.validate_only()) return std::move(done)(Done(v1::Unit()));
    // Options left out: fleet then only sets the target (204); a missing
    // unit is its 409 "unit does not exist and options field empty".
    PutAndConverge(account_, ctx.deadline, *name, std::string(*desired),
                   UnitPutBody({}, *desired), "", std::move(done));
  }

  void DeleteUnit(const CallContext& ctx, const v1::DeleteUnitRequest& request,
                  Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> name = UnitNameFromResource("name", account_->id, request.name());
    if (!name.ok()) return std::move(done)(name.status());
    if (request.validate_only()) return std::move(done)(Done(google::protobuf::Empty()));
    const std::string context = absl::StrCat("DELETE unit ", *name);
    Send(account_, ctx.deadline, "DELETE", UnitPath(*name), "", context,
         [context, allow_missing = request.allow_missing(),
          done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
           if (!r.ok()) return std::move(done)(r.status());
           absl::Status s = StatusFromResponse(r->status, r->body, context);
           if (s.ok() || (allow_missing && r->status == 404)) {
             // fleet removes the unit from its registry at once (GET gives
             // 404 right after); agents stop it in the background.
             return std::move(done)(Done(google::protobuf::Empty()));
           }
           std::move(done)(s);
         });
  }

  void ListUnitStates(const CallContext& ctx, const v1::ListUnitStatesRequest& request,
                      Callback<v1::ListUnitStatesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
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
    FetchAllPages<v1::UnitState>(
        account_, ctx.deadline, "GET unit states",
        [machine_id, unit_name](absl::string_view token) {
          return ListUnitStatesPath(machine_id, unit_name, token);
        },
        [id](absl::string_view body)
            -> absl::StatusOr<std::pair<std::vector<v1::UnitState>, std::string>> {
          ASSIGN_OR_RETURN(UnitStatePage page, ParseUnitStatePage(body, id));
          return std::pair{std::move(page.states), std::move(page.next_page_token)};
        },
        [page_size = request.page_size(), page_token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::UnitState>> states) mutable {
          if (!states.ok()) return std::move(done)(states.status());
          v1::ListUnitStatesResponse response;
          // Ordered by unit, then machine: '\n' sorts below every character
          // a resource name can hold, so the joined key orders the same way.
          absl::StatusOr<std::vector<v1::UnitState>> page = PageOf(
              std::move(*states),
              [](const v1::UnitState& s) { return absl::StrCat(s.unit(), "\n", s.machine()); },
              page_size, page_token, response.mutable_next_page_token());
          if (!page.ok()) return std::move(done)(page.status());
          for (v1::UnitState& s : *page) *response.add_unit_states() = std::move(s);
          std::move(done)(std::move(response));
        });
  }

  void ListMachines(const CallContext& ctx, const v1::ListMachinesRequest& request,
                    Callback<v1::ListMachinesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    FetchMachines(ctx, [page_size = request.page_size(), page_token = request.page_token(),
                        done = std::move(done)](
                           absl::StatusOr<std::vector<v1::Machine>> machines) mutable {
      if (!machines.ok()) return std::move(done)(machines.status());
      v1::ListMachinesResponse response;
      absl::StatusOr<std::vector<v1::Machine>> page =
          PageOf(std::move(*machines), [](const v1::Machine& m) { return m.name(); }, page_size,
                 page_token, response.mutable_next_page_token());
      if (!page.ok()) return std::move(done)(page.status());
      for (v1::Machine& m : *page) *response.add_machines() = std::move(m);
      std::move(done)(std::move(response));
    });
  }

  void GetMachine(const CallContext& ctx, const v1::GetMachineRequest& request,
                  Callback<v1::Machine> done) override {
    absl::StatusOr<std::string> id = MachineIdFromResource("name", account_->id, request.name());
    if (!id.ok()) return std::move(done)(id.status());
    // fleet has no GET /machines/{id}: list them all and pick.
    FetchMachines(ctx, [wanted = MachineResourceName(account_->id, *id), id = *id,
                        done = std::move(done)](
                           absl::StatusOr<std::vector<v1::Machine>> machines) mutable {
      if (!machines.ok()) return std::move(done)(machines.status());
      for (v1::Machine& m : *machines) {
        if (m.name() == wanted) return std::move(done)(std::move(m));
      }
      std::move(done)(WithErrorInfo(
          absl::NotFoundError(absl::StrCat("machine ", id, " is not in the fleet cluster")),
          "RESOURCE_NOT_FOUND", {{"resource", wanted}}));
    });
  }

 private:
  void FetchMachines(const CallContext& ctx, Callback<std::vector<v1::Machine>> done) {
    const std::string id = account_->id;
    FetchAllPages<v1::Machine>(
        account_, ctx.deadline, "GET machines",
        [](absl::string_view token) { return ListMachinesPath(token); },
        [id](absl::string_view body)
            -> absl::StatusOr<std::pair<std::vector<v1::Machine>, std::string>> {
          ASSIGN_OR_RETURN(MachinePage page, ParseMachinePage(body, id));
          return std::pair{std::move(page.machines), std::move(page.next_page_token)};
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
  for (absl::string_view method :
       {"ListUnits", "GetUnit", "CreateUnit", "SetUnitDesiredState", "DeleteUnit",
        "ListUnitStates", "ListMachines", "GetMachine"}) {
    info.supported_methods.push_back(UnitsMethod(method));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateFleetProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  absl::Status status;
  std::vector<std::string> keys;
  for (const auto& [key, value] : setup.options) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    AddFieldViolation(status, absl::StrCat("options.", key),
                      absl::StrCat("unknown option \"", key,
                                   "\": the fleet provider takes no options"));
  }
  if (!status.ok()) return status;

  absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(setup.endpoint);
  if (!endpoint.ok()) return InvalidField("endpoint", endpoint.status().message());
  http::HttpClientOptions options;
  options.verify_tls = setup.verify_tls;
  options.ca_file = setup.ca_file;
  options.transport = std::move(transport);
  absl::StatusOr<std::unique_ptr<http::HttpClient>> client =
      http::HttpClient::Create(*std::move(endpoint), std::move(options));
  if (!client.ok()) {
    if (client.status().code() == absl::StatusCode::kInvalidArgument) {
      return InvalidField("endpoint", client.status().message());
    }
    return client.status();
  }
  auto account = std::make_shared<Account>();
  account->id = setup.account;
  account->client = *std::move(client);
  return std::make_unique<FleetProvider>(std::move(account));
}

absl::Status RegisterFleet(AdapterRegistry& registry) {
  return registry.Register(FleetProviderInfo(), [](const AccountSetup& setup) {
    return CreateFleetProvider(setup);
  });
}

}  // namespace cloudplane::adapters::fleet
