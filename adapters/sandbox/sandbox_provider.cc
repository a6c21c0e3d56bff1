// The sandbox provider's lifecycle and machinery: transactions and their
// effects, timers, the operation journal, settled reads, ids and
// references, and the catalog reads. Records and Txn are in
// sandbox_records.cc, polling in sandbox_poll.cc; the services live in
// sandbox_compute.cc, sandbox_volumes.cc, sandbox_firewalls.cc,
// sandbox_autoscaling.cc, sandbox_units.cc, sandbox_networks.cc,
// sandbox_addresses.cc and sandbox_keys.cc.
#include "adapters/sandbox/sandbox_provider.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/sandbox/sandbox_adapter.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sha1.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::sandbox {
namespace {

// A timer whose transaction failed (e.g. the database was locked by another
// process) tries again after this long.
constexpr absl::Duration kTimerRetry = absl::Seconds(1);
// The collections whose records can carry transitions.
constexpr absl::string_view kTimedCollections[] = {kInstances, kVolumes, kUnits, kScalingGroups,
                                                   kNetworks};

}  // namespace

// ---- SandboxProvider: lifecycle ---------------------------------------------

SandboxProvider::SandboxProvider(const AccountSetup& setup, Options options)
    : account_(setup.account),
      store_(setup.store),
      loop_(setup.loop),
      changes_(setup.changes),
      options_(options),
      catalog_(BuildCatalog(setup.account)),
      journal_retention_(setup.operation_retention),
      alive_(std::make_shared<Alive>()) {
  absl::MutexLock lock(&alive_->mu);
  alive_->self = this;
}

SandboxProvider::~SandboxProvider() {
  // Waits for a running timer callback; later ones find `self` null.
  absl::MutexLock lock(&alive_->mu);
  alive_->self = nullptr;
  if (alive_->prune_timer != 0 && loop_ != nullptr) loop_->Cancel(alive_->prune_timer);
}

absl::StatusOr<std::unique_ptr<SandboxProvider>> SandboxProvider::Create(
    const AccountSetup& setup, Options options) {
  std::unique_ptr<SandboxProvider> provider(new SandboxProvider(setup, options));
  RETURN_IF_ERROR(provider->ScheduleStoredTransitions());
  {
    // The first journal round, on the loop at once. Held so that the timer
    // cannot run before its id is noted.
    absl::MutexLock lock(&provider->alive_->mu);
    provider->SchedulePruneJournal(absl::ZeroDuration());
  }
  return provider;
}

const ProviderInfo& SandboxProvider::Info() const {
  static const auto* const kInfo = new ProviderInfo(SandboxProviderInfo());
  return *kInfo;
}

absl::Status SandboxProvider::CheckCall(const CallContext& ctx) const {
  if (ctx.account != account_) {
    return absl::InternalError(absl::StrCat("a call for account \"", ctx.account,
                                            "\" reached the sandbox of account \"", account_,
                                            "\""));
  }
  return absl::OkStatus();
}

std::string SandboxProvider::Name(absl::string_view collection, absl::string_view id) const {
  return ResourceName(account_, collection, id);
}

absl::Duration JournalPruneInterval(absl::Duration retention) {
  return std::clamp(retention / 10, absl::Seconds(1), absl::Minutes(10));
}

void SandboxProvider::SchedulePruneJournal(absl::Duration delay) {
  if (loop_ == nullptr || journal_retention_ <= absl::ZeroDuration() ||
      journal_retention_ == absl::InfiniteDuration()) {
    return;
  }
  alive_->prune_timer = loop_->RunAfter(delay, [alive = alive_] {
    absl::MutexLock lock(&alive->mu);
    alive->prune_timer = 0;
    if (alive->self != nullptr) alive->self->PruneJournalBatch();
  });
}

void SandboxProvider::PruneJournalBatch() {
  if (prune_cursor_.empty()) {
    // A new round: its cut-off is fixed now, so a round that takes several
    // batches does not chase the entries written meanwhile.
    prune_cutoff_ = absl::Now() - journal_retention_;
    prune_removed_ = 0;
  }
  std::string next;
  int64_t removed = 0;
  absl::Status status = store_->RunInTransaction([&](store::TxnView& view) -> absl::Status {
    removed = 0;
    ASSIGN_OR_RETURN(store::ResourcePage page,
                     view.ListResources(account_, kJournal, kJournalPruneBatch, prune_cursor_));
    for (const store::ResourceEntry& entry : page.resources) {
      ::cloudplane::sandbox::JournalEntry journal;
      // An entry that does not decode is useless to a re-drive (which would
      // answer DATA_LOSS): it goes as if it were old.
      if (journal.ParseFromString(entry.bytes) &&
          absl::FromUnixMicros(journal.time_unix_micros()) >= prune_cutoff_) {
        continue;
      }
      // Ids are `<operation>` or `<operation>:cancel`; operation names have
      // no colon. The entry stays while its operation is unfinished: only
      // then may the server re-drive or cancel it.
      absl::string_view operation = entry.id;
      operation = operation.substr(0, operation.find(':'));
      absl::StatusOr<store::OperationRecord> record = view.GetOperation(operation);
      if (record.ok() && !record->op.done()) continue;
      if (!record.ok() && !absl::IsNotFound(record.status())) return record.status();
      ASSIGN_OR_RETURN(bool existed, view.DeleteResource(account_, kJournal, entry.id));
      removed += existed;
    }
    next = std::move(page.next_page_token);
    return absl::OkStatus();
  });
  if (!status.ok()) {
    std::cerr << "sandbox " << account_ << ": pruning the operation journal failed (" << status
              << "); next round in " << JournalPruneInterval(journal_retention_) << "\n";
    prune_cursor_.clear();
    SchedulePruneJournal(JournalPruneInterval(journal_retention_));
    return;
  }
  prune_removed_ += removed;
  prune_cursor_ = std::move(next);
  if (!prune_cursor_.empty()) {
    SchedulePruneJournal(absl::ZeroDuration());  // the next batch, after queued work
    return;
  }
  if (prune_removed_ > 0) {
    std::cerr << "sandbox " << account_ << ": removed " << prune_removed_
              << " operation journal entries older than "
              << absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", prune_cutoff_, absl::UTCTimeZone())
              << "\n";
  }
  SchedulePruneJournal(JournalPruneInterval(journal_retention_));
}

absl::Status SandboxProvider::ScheduleStoredTransitions() {
  for (absl::string_view collection : kTimedCollections) {
    std::string token;
    do {
      ASSIGN_OR_RETURN(store::ResourcePage page,
                       store_->ListResources(account_, collection, 1000, token));
      for (const store::ResourceEntry& entry : page.resources) {
        ASSIGN_OR_RETURN(Record record, DecodeRecord(entry.bytes));
        if (record.has_transition()) {
          ScheduleTimer(std::string(collection), entry.id,
                        absl::FromUnixMicros(record.transition().due_unix_micros()));
        }
      }
      token = page.next_page_token;
    } while (!token.empty());
  }
  return absl::OkStatus();
}

// ---- Transactions, effects and timers -----------------------------------------

absl::Status SandboxProvider::RunTxn(absl::FunctionRef<absl::Status(Txn&)> fn) {
  Effects effects;
  absl::Status status = store_->RunInTransaction([&](store::TxnView& view) -> absl::Status {
    Txn txn(view, account_, absl::Now());
    RETURN_IF_ERROR(fn(txn));
    effects = std::move(txn.effects());
    return absl::OkStatus();
  });
  // Publishing waits for the commit: a rolled-back change never reaches a
  // watcher, and the hub writes its change log outside our transaction.
  if (status.ok()) ApplyEffects(std::move(effects));
  return status;
}

void SandboxProvider::ApplyEffects(Effects effects) {
  if (changes_ != nullptr) {
    for (const Effects::Change& change : effects.changes) {
      changes_->Publish(account_, change.type, change.name, *change.resource, WatchSource::kLocal);
    }
  }
  for (const Effects::Timer& timer : effects.timers) {
    ScheduleTimer(timer.collection, timer.id, timer.due);
  }
}

void SandboxProvider::ScheduleTimer(const std::string& collection, const std::string& id,
                                    absl::Time due) {
  if (loop_ == nullptr) return;  // Reads still settle lazily.
  loop_->RunAt(due, [alive = alive_, collection, id] {
    absl::MutexLock lock(&alive->mu);
    if (alive->self != nullptr) alive->self->OnTimer(collection, id);
  });
}

void SandboxProvider::OnTimer(const std::string& collection, const std::string& id) {
  absl::Status status = RunTxn([&](Txn& txn) { return txn.Load(collection, id).status(); });
  if (!status.ok()) {
    std::cerr << "sandbox " << account_ << ": applying the transition of " << collection << "/"
              << id << " failed (" << status << "); retrying\n";
    ScheduleTimer(collection, id, absl::Now() + kTimerRetry);
  }
}

void SandboxProvider::Mutate(const CallContext& ctx,
                             absl::FunctionRef<absl::StatusOr<PollToken>(Txn&)> fn,
                             Callback<MutationProgress> done) {
  if (absl::Status status = CheckCall(ctx); !status.ok()) {
    std::move(done)(status);
    return;
  }
  PollToken token;
  bool validated = false;
  absl::Status status = RunTxn([&](Txn& txn) -> absl::Status {
    if (ctx.validate_only) {
      // Every check of the real call, then a rollback: nothing is stored,
      // published or scheduled (RunTxn applies effects after a commit only).
      ASSIGN_OR_RETURN(token, fn(txn));
      validated = true;
      return absl::AbortedError("validate_only: rolled back");
    }
    if (!ctx.operation.empty()) {
      absl::StatusOr<std::string> journaled =
          txn.view().GetResource(account_, kJournal, ctx.operation);
      if (journaled.ok()) {
        // A re-drive of work already done: report it, change nothing.
        ::cloudplane::sandbox::JournalEntry entry;
        if (!entry.ParseFromString(*journaled) || !entry.has_token()) {
          return WithErrorInfo(absl::DataLossError(absl::StrCat(
                                   "sandbox: the journal entry of ", ctx.operation,
                                   " does not decode (or was written by an older version)")),
                               reasons::kOperationStateUnreadable);
        }
        token = entry.token();
        return absl::OkStatus();
      }
      if (!absl::IsNotFound(journaled.status())) return journaled.status();
    }
    ASSIGN_OR_RETURN(token, fn(txn));
    if (!ctx.operation.empty()) {
      ::cloudplane::sandbox::JournalEntry entry;
      *entry.mutable_token() = token;
      entry.set_time_unix_micros(absl::ToUnixMicros(txn.now()));
      RETURN_IF_ERROR(txn.view().PutResource(account_, kJournal, ctx.operation,
                                             entry.SerializeAsString()));
    }
    return absl::OkStatus();
  });
  if (validated) {
    std::move(done)(ValidatedProgress(token));
    return;
  }
  if (!status.ok()) {
    std::move(done)(status);
    return;
  }
  std::move(done)(Evaluate(token));
}

// ---- Reads -----------------------------------------------------------------------

absl::StatusOr<std::optional<Record>> SandboxProvider::ReadSettled(absl::string_view collection,
                                                                   absl::string_view id) const {
  absl::StatusOr<std::string> bytes = store_->GetResource(account_, collection, id);
  if (absl::IsNotFound(bytes.status())) return std::nullopt;
  if (!bytes.ok()) return bytes.status();
  records_read_.fetch_add(1, std::memory_order_relaxed);
  ASSIGN_OR_RETURN(Record record, DecodeRecord(*bytes));
  std::shared_ptr<google::protobuf::Message> after;
  ASSIGN_OR_RETURN(Settled settled, Settle(collection, record, absl::Now(), &after));
  if (settled == Settled::kRemoved) return std::nullopt;
  return record;
}

absl::StatusOr<std::vector<Record>> SandboxProvider::ReadAllSettled(
    absl::string_view collection) const {
  std::vector<Record> out;
  absl::Time now = absl::Now();
  std::string token;
  do {
    ASSIGN_OR_RETURN(store::ResourcePage page,
                     store_->ListResources(account_, collection, 1000, token));
    records_read_.fetch_add(static_cast<int64_t>(page.resources.size()),
                            std::memory_order_relaxed);
    for (const store::ResourceEntry& entry : page.resources) {
      ASSIGN_OR_RETURN(Record record, DecodeRecord(entry.bytes));
      std::shared_ptr<google::protobuf::Message> after;
      ASSIGN_OR_RETURN(Settled settled, Settle(collection, record, now, &after));
      if (settled != Settled::kRemoved) out.push_back(std::move(record));
    }
    token = page.next_page_token;
  } while (!token.empty());
  return out;
}

absl::StatusOr<SandboxProvider::SettledPage> SandboxProvider::ReadPageSettled(
    absl::string_view collection, int32_t page_size, absl::string_view page_token) const {
  ASSIGN_OR_RETURN(int size, paging::EffectivePageSize(page_size));
  ASSIGN_OR_RETURN(std::string after_key, paging::DecodeToken(page_token));
  // The token holds the last name returned; names are `prefix + id`, so the
  // page starts after that id. A key outside the prefix (a token of another
  // list) compares with every name the same way as with the prefix itself:
  // below it, the page starts at the first record; above it, there is none.
  const std::string prefix = Name(collection, "");
  std::string after_id;
  if (absl::StartsWith(after_key, prefix)) {
    after_id = after_key.substr(prefix.size());
  } else if (after_key > prefix) {
    return SettledPage();
  }
  SettledPage page;
  std::vector<std::string> ids;  // Of page.records.
  const absl::Time now = absl::Now();
  // page_size + 1 visible records: the last one only shows that a next page
  // exists. Records that settle as removed do not count, so read on (in
  // batches of what is still missing) until the page is full or the
  // collection ends.
  const int want = size + 1;
  while (static_cast<int>(page.records.size()) < want) {
    const int missing = want - static_cast<int>(page.records.size());
    ASSIGN_OR_RETURN(std::vector<store::ResourceEntry> entries,
                     store_->ListResourcesAfter(account_, collection, after_id, missing));
    records_read_.fetch_add(static_cast<int64_t>(entries.size()), std::memory_order_relaxed);
    const bool more = static_cast<int>(entries.size()) == missing;
    if (more) after_id = entries.back().id;
    for (store::ResourceEntry& entry : entries) {
      ASSIGN_OR_RETURN(Record record, DecodeRecord(entry.bytes));
      std::shared_ptr<google::protobuf::Message> gone;
      ASSIGN_OR_RETURN(Settled settled, Settle(collection, record, now, &gone));
      if (settled == Settled::kRemoved) continue;
      page.records.push_back(std::move(record));
      ids.push_back(std::move(entry.id));
    }
    if (!more) break;  // The collection ends.
  }
  if (static_cast<int>(page.records.size()) > size) {
    page.records.resize(size);
    page.next_page_token = paging::MakeToken(Name(collection, ids[size - 1]));
  }
  return page;
}

absl::StatusOr<v1::InstanceMetadata> SandboxProvider::ReadMetadata(
    absl::string_view instance_id) const {
  ASSIGN_OR_RETURN(std::optional<Record> instance, ReadSettled(kInstances, instance_id));
  if (!instance.has_value()) return NotFound(kInstances, Name(kInstances, instance_id));
  ASSIGN_OR_RETURN(std::optional<Record> record, ReadSettled(kMetadata, instance_id));
  if (record.has_value()) return Decode<v1::InstanceMetadata>(*record);
  // Never written: empty items, with an etag tied to the instance's life.
  v1::InstanceMetadata metadata;
  metadata.set_name(MetadataName(account_, instance_id));
  Record fresh;
  fresh.set_created_unix_micros(instance->created_unix_micros());
  metadata.set_etag(Etag(metadata.name(), fresh));
  return metadata;
}

// ---- Ids and references ----------------------------------------------------------

absl::StatusOr<std::string> SandboxProvider::NewId(Txn& txn, absl::string_view collection,
                                                   absl::string_view prefix) const {
  absl::BitGen random;
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string bytes(6, '\0');
    for (char& c : bytes) c = static_cast<char>(absl::Uniform<int>(random, 0, 256));
    std::string id = absl::StrCat(prefix, "-", absl::BytesToHexString(bytes));
    ASSIGN_OR_RETURN(std::optional<Record> existing, txn.Load(collection, id));
    if (!existing.has_value()) return id;
  }
  return absl::InternalError("sandbox: no free id found");
}

absl::StatusOr<std::string> SandboxProvider::ChooseId(Txn& txn, absl::string_view collection,
                                                      absl::string_view requested,
                                                      absl::string_view field,
                                                      absl::string_view prefix) const {
  if (requested.empty()) return NewId(txn, collection, prefix);
  if (!IsValidId(requested)) {
    return InvalidField(field, "must match [a-z]([-a-z0-9]{0,61}[a-z0-9])?");
  }
  ASSIGN_OR_RETURN(std::optional<Record> existing, txn.Load(collection, requested));
  if (existing.has_value()) return AlreadyExists(collection, Name(collection, requested));
  return std::string(requested);
}

absl::StatusOr<std::string> SandboxProvider::CheckCatalogRef(absl::string_view name,
                                                             absl::string_view collection,
                                                             absl::string_view field) const {
  ASSIGN_OR_RETURN(std::string id, ParseName(name, account_, collection, field));
  bool found = false;
  if (collection == kImages) found = catalog_.FindImage(id) != nullptr;
  if (collection == kMachineTypes) found = catalog_.FindMachineType(id) != nullptr;
  if (collection == kLocations) found = catalog_.FindLocation(id) != nullptr;
  if (collection == kHosts) found = catalog_.FindHost(id) != nullptr;
  if (collection == kBillingCodes) found = catalog_.FindBillingCode(id) != nullptr;
  if (collection == kMachines) found = catalog_.FindMachine(id) != nullptr;
  if (!found) return NotFound(collection, name);
  return id;
}

absl::StatusOr<std::string> SandboxProvider::CheckStoredRef(Txn& txn, absl::string_view name,
                                                            absl::string_view collection,
                                                            absl::string_view field) const {
  ASSIGN_OR_RETURN(std::string id, ParseName(name, account_, collection, field));
  ASSIGN_OR_RETURN(std::optional<Record> record, txn.Load(collection, id));
  if (!record.has_value()) return NotFound(collection, name);
  return id;
}

// ---- Catalog reads ---------------------------------------------------------------

namespace {

template <typename T>
absl::StatusOr<T> FindInCatalog(const std::vector<T>& items, absl::string_view collection,
                                absl::string_view account, absl::string_view name) {
  ASSIGN_OR_RETURN(std::string id, ParseName(name, account, collection, "name"));
  for (const T& item : items) {
    if (LastSegment(item.name()) == id) return item;
  }
  return NotFound(collection, name);
}

}  // namespace

#define CP_SANDBOX_CATALOG(Method, ListReq, ListResp, Field, GetMethod, GetReq, Type, Coll) \
  void SandboxProvider::Method(const CallContext& ctx, const v1::ListReq& request,          \
                               Callback<v1::ListResp> done) {                              \
    std::move(done)([&]() -> absl::StatusOr<v1::ListResp> {                                \
      RETURN_IF_ERROR(CheckCall(ctx));                                                     \
      RETURN_IF_ERROR(CheckParent(request.parent(), account_));                            \
      v1::ListResp response;                                                               \
      RETURN_IF_ERROR(PageInto(catalog_.Field, ByName<v1::Type>, request.page_size(),      \
                               request.page_token(), response.mutable_##Field(),           \
                               response.mutable_next_page_token()));                       \
      return response;                                                                     \
    }());                                                                                  \
  }                                                                                        \
  void SandboxProvider::GetMethod(const CallContext& ctx, const v1::GetReq& request,        \
                                  Callback<v1::Type> done) {                               \
    std::move(done)([&]() -> absl::StatusOr<v1::Type> {                                    \
      RETURN_IF_ERROR(CheckCall(ctx));                                                     \
      return FindInCatalog(catalog_.Field, Coll, account_, request.name());                \
    }());                                                                                  \
  }

CP_SANDBOX_CATALOG(ListImages, ListImagesRequest, ListImagesResponse, images, GetImage,
                   GetImageRequest, Image, kImages)
CP_SANDBOX_CATALOG(ListMachineTypes, ListMachineTypesRequest, ListMachineTypesResponse,
                   machine_types, GetMachineType, GetMachineTypeRequest, MachineType,
                   kMachineTypes)
CP_SANDBOX_CATALOG(ListLocations, ListLocationsRequest, ListLocationsResponse, locations,
                   GetLocation, GetLocationRequest, Location, kLocations)
CP_SANDBOX_CATALOG(ListHosts, ListHostsRequest, ListHostsResponse, hosts, GetHost,
                   GetHostRequest, Host, kHosts)
CP_SANDBOX_CATALOG(ListBillingCodes, ListBillingCodesRequest, ListBillingCodesResponse,
                   billing_codes, GetBillingCode, GetBillingCodeRequest, BillingCode,
                   kBillingCodes)
CP_SANDBOX_CATALOG(ListMachines, ListMachinesRequest, ListMachinesResponse, machines,
                   GetMachine, GetMachineRequest, Machine, kMachines)

#undef CP_SANDBOX_CATALOG

}  // namespace cloudplane::adapters::sandbox

namespace cloudplane::adapters::sandbox {

// ---- Request checks shared by the services -------------------------------------

absl::StatusOr<std::vector<std::string>> CheckUpdateMask(
    const google::protobuf::FieldMask& mask, const std::vector<absl::string_view>& mutable_paths,
    const std::vector<absl::string_view>& map_paths,
    const std::vector<absl::string_view>& immutable_paths) {
  if (mask.paths().empty()) {
    return InvalidField("update_mask", "required: name the fields to change");
  }
  std::vector<std::string> out;
  for (const std::string& path : mask.paths()) {
    bool ok = false;
    for (absl::string_view p : mutable_paths) ok = ok || path == p;
    for (absl::string_view p : map_paths) {
      ok = ok || (absl::StartsWith(path, absl::StrCat(p, ".")) && path.size() > p.size() + 1);
    }
    if (!ok) {
      for (absl::string_view p : immutable_paths) {
        if (path == p) return InvalidField("update_mask", absl::StrCat(path, " is immutable"));
      }
      return InvalidField("update_mask",
                          absl::StrCat(path, " is not a field that can be updated"));
    }
    out.push_back(path);
  }
  return out;
}

absl::Status CheckNoProviderOptions(const google::protobuf::Struct& options,
                                    absl::string_view field) {
  for (const auto& [key, value] : options.fields()) {
    return InvalidField(absl::StrCat(field, ".", key),
                        "unknown provider option; the sandbox reads none");
  }
  return absl::OkStatus();
}

absl::Status CheckLabels(const google::protobuf::Map<std::string, std::string>& labels,
                         absl::string_view field) {
  for (const auto& [key, value] : labels) {
    if (key.empty()) return InvalidField(field, "label keys must not be empty");
  }
  return absl::OkStatus();
}

}  // namespace cloudplane::adapters::sandbox
