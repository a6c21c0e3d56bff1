#include "service/observer.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "adapters/dispatch.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message.h"

namespace cloudplane::service {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// A runaway paging loop (a provider repeating its token) ends here.
constexpr int kMaxPages = 10000;
// The store collection of the baseline markers; snapshots are in
// kSnapshotPrefix + kind.
constexpr absl::string_view kMarkers = "observed";
constexpr absl::string_view kSnapshotPrefix = "observed.";

std::string Deterministic(const Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

std::string ShortName(absl::string_view method) {
  return std::string(method.substr(method.rfind('.') + 1));
}

}  // namespace

const std::vector<std::string>& Observer::ObservedMethods() {
  static const auto* const kMethods = new std::vector<std::string>{
      adapters::FullMethodName("ComputeService", "ListInstances"),
      adapters::FullMethodName("VolumesService", "ListVolumes"),
      adapters::FullMethodName("FirewallsService", "ListFirewalls"),
      adapters::FullMethodName("UnitsService", "ListUnits"),
      adapters::FullMethodName("UnitsService", "ListMachines"),
      adapters::FullMethodName("AutoscalingService", "ListLaunchTemplates"),
      adapters::FullMethodName("AutoscalingService", "ListScalingGroups"),
  };
  return *kMethods;
}

bool Observer::Eligible(const adapters::Provider& provider) {
  return provider.Info().watch_source != adapters::WatchSource::kLocal;
}

v1::Account::State Observer::Judge(const std::vector<absl::Status>& results) {
  int failed = 0, unreachable = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) continue;
    ++failed;
    if (s.code() == absl::StatusCode::kUnauthenticated ||
        s.code() == absl::StatusCode::kPermissionDenied) {
      return v1::Account::UNAUTHENTICATED;
    }
    if (s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kDeadlineExceeded) {
      ++unreachable;
    }
  }
  if (failed == 0) return v1::Account::READY;
  if (failed == static_cast<int>(results.size()) && unreachable == failed) {
    return v1::Account::UNREACHABLE;
  }
  return v1::Account::DEGRADED;
}

class Observer::Core : public std::enable_shared_from_this<Observer::Core> {
 public:
  Core(std::string account, adapters::Provider* provider, store::Store* store, EventLoop* loop,
       adapters::ChangeSink* sink, Options options)
      : account_(std::move(account)),
        provider_(provider),
        store_(store),
        loop_(loop),
        sink_(sink),
        options_(std::move(options)) {
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    // The account's own capabilities (its configuration may narrow the
    // provider kind's list).
    const std::vector<std::string> supported = provider_->SupportedMethods();
    for (const std::string& method : ObservedMethods()) {
      if (std::find(supported.begin(), supported.end(), method) == supported.end()) continue;
      const auto* descriptor = pool->FindMethodByName(method);
      if (descriptor == nullptr) continue;
      Collection c;
      c.method = method;
      c.request = descriptor->input_type();
      c.response = descriptor->output_type();
      for (int i = 0; i < c.response->field_count(); ++i) {
        const FieldDescriptor* f = c.response->field(i);
        if (f->is_repeated() && f->type() == FieldDescriptor::TYPE_MESSAGE) {
          c.items = f;
          break;
        }
      }
      if (c.items == nullptr) continue;
      c.item = c.items->message_type();
      c.kind = c.item->name();
      collections_.push_back(std::move(c));
    }
  }

  void Start() {
    auto self = shared_from_this();
    if (options_.subscribe) {
      std::weak_ptr<Core> weak = self;
      subscription_ = options_.subscribe([weak](const v1::WatchResponse& change) {
        if (change.source() == adapters::WatchSourceName(adapters::WatchSource::kPoll)) return;
        auto core = weak.lock();
        if (!core || core->stopped_.load()) return;
        core->loop_->Post([core, change] { core->OnOwnChange(change); });
      });
      subscribed_ = true;
    }
    loop_->Post([self] {
      if (self->stopped_.load()) return;
      self->Load();
      self->StartRound({});
    });
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    if (subscribed_ && options_.unsubscribe) options_.unsubscribe(subscription_);
    absl::Notification taken;
    auto self = shared_from_this();
    if (loop_->Post([self, &taken] {
          if (self->timer_ != 0) self->loop_->Cancel(self->timer_);
          self->timer_ = 0;
          taken.Notify();
        })) {
      taken.WaitForNotification();
    }
  }

  void ObserveNow(std::vector<std::string> kinds) {
    auto self = shared_from_this();
    loop_->Post([self, kinds = std::move(kinds)]() mutable {
      if (self->stopped_.load()) return;
      std::set<std::string> wanted(kinds.begin(), kinds.end());
      if (self->in_flight_) {
        if (wanted.empty()) {
          self->again_full_ = true;
        } else {
          self->again_kinds_.insert(wanted.begin(), wanted.end());
        }
        return;
      }
      self->StartRound(std::move(wanted));
    });
  }

  std::optional<google::protobuf::Any> LastObserved(absl::string_view name) const {
    absl::MutexLock lock(&mu_);
    for (const Collection& c : collections_) {
      auto kind = snapshot_.find(c.kind);
      if (kind == snapshot_.end()) continue;
      auto it = kind->second.find(name);
      if (it == kind->second.end()) continue;
      google::protobuf::Any any;
      any.set_type_url(absl::StrCat("type.googleapis.com/", c.item->full_name()));
      any.set_value(it->second);
      return any;
    }
    return std::nullopt;
  }

  std::vector<std::string> Kinds() const {
    std::vector<std::string> out;
    for (const Collection& c : collections_) out.push_back(c.kind);
    return out;
  }

  int64_t rounds() const {
    absl::MutexLock lock(&mu_);
    return rounds_;
  }

  absl::Duration interval() const { return options_.interval; }

  uint64_t AddRoundListener(RoundListener listener) {
    absl::MutexLock lock(&mu_);
    const uint64_t id = next_listener_++;
    round_listeners_[id] = std::make_shared<RoundListener>(std::move(listener));
    return id;
  }

  void RemoveRoundListener(uint64_t id) {
    absl::MutexLock lock(&mu_);
    round_listeners_.erase(id);
  }

 private:
  struct Collection {
    std::string method;
    std::string kind;
    const Descriptor* request = nullptr;
    const Descriptor* response = nullptr;
    const FieldDescriptor* items = nullptr;
    const Descriptor* item = nullptr;
  };
  using Items = std::map<std::string, std::string, std::less<>>;  // name → bytes
  struct Round {
    bool full = false;
    absl::Time started;
    int pending = 0;
    // By index in collections_, so the first error is the same whatever
    // order the answers arrive in.
    std::map<size_t, absl::Status> results;
  };

  const Collection* Find(absl::string_view kind) const {
    for (const Collection& c : collections_) {
      if (c.kind == kind) return &c;
    }
    return nullptr;
  }

  std::unique_ptr<Message> New(const Descriptor* type) const {
    return std::unique_ptr<Message>(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
  }

  // On the loop: the stored snapshot and baseline markers.
  void Load() {
    for (const Collection& c : collections_) {
      absl::StatusOr<std::string> marker = store_->GetResource(account_, kMarkers, c.kind);
      if (!marker.ok()) continue;
      Items items;
      std::string token;
      bool ok = true;
      do {
        absl::StatusOr<store::ResourcePage> page = store_->ListResources(
            account_, absl::StrCat(kSnapshotPrefix, c.kind), 1000, token);
        if (!page.ok()) {
          std::cerr << "cloudplaned: account " << account_ << ": observer: cannot read the "
                    << c.kind << " snapshot: " << page.status().message() << "\n";
          ok = false;
          break;
        }
        for (auto& entry : page->resources) items[entry.id] = std::move(entry.bytes);
        token = page->next_page_token;
      } while (!token.empty());
      if (!ok) continue;  // no baseline: the first round records one
      baseline_.insert(c.kind);
      absl::MutexLock lock(&mu_);
      snapshot_[c.kind] = std::move(items);
    }
  }

  // On the loop. `kinds` empty: a full round.
  void StartRound(std::set<std::string> kinds) {
    const bool full = kinds.empty();
    if (full && timer_ != 0) {
      loop_->Cancel(timer_);
      timer_ = 0;
    }
    auto round = std::make_shared<Round>();
    round->full = full;
    round->started = absl::Now();
    in_flight_ = true;
    const adapters::ProviderInfo& info = provider_->Info();
    // A push provider whose feed is up reports its own changes. Each of its
    // collections is still listed once, for a baseline: the pushed changes
    // keep it current, so the first round after the feed goes down finds
    // what changed meanwhile instead of taking it in as a silent baseline.
    const bool pushing = info.watch_source == adapters::WatchSource::kPush &&
                         provider_->PushConnected();
    std::vector<const Collection*> chosen;
    for (const Collection& c : collections_) {
      if (!full && !kinds.contains(c.kind)) continue;
      if (pushing && baseline_.contains(c.kind)) continue;
      chosen.push_back(&c);
    }
    round->pending = static_cast<int>(chosen.size());
    if (chosen.empty()) return FinishRound(round);
    for (const Collection* c : chosen) {
      listing_.insert(c->kind);
      touched_[c->kind].clear();
      ListPage(round, c, "", std::make_shared<Items>(), 0, 0);
    }
  }

  // A listing that the provider aborts past its first page (ABORTED: the
  // collection changed under an offset-paged listing, e.g. CloudSigma's) is
  // walked again from the first page, at most this many times per round.
  static constexpr int kMaxRestarts = 2;

  void ListPage(std::shared_ptr<Round> round, const Collection* c, std::string token,
                std::shared_ptr<Items> items, int pages, int restarts) {
    std::unique_ptr<Message> request = New(c->request);
    const auto* reflection = request->GetReflection();
    const Descriptor* d = c->request;
    if (const FieldDescriptor* f = d->FindFieldByName("parent")) {
      reflection->SetString(request.get(), f, absl::StrCat("accounts/", account_));
    }
    if (const FieldDescriptor* f = d->FindFieldByName("page_size"); f && options_.page_size > 0) {
      reflection->SetInt32(request.get(), f, options_.page_size);
    }
    if (const FieldDescriptor* f = d->FindFieldByName("page_token")) {
      reflection->SetString(request.get(), f, token);
    }
    google::protobuf::Any packed;
    packed.PackFrom(*request);
    adapters::CallContext ctx;
    ctx.account = account_;
    ctx.deadline = absl::Now() + options_.list_deadline;
    auto self = shared_from_this();
    absl::Status sent = adapters::DispatchRead(
        c->method, *provider_, ctx, packed,
        [self, round, c, token, items, pages,
         restarts](absl::StatusOr<google::protobuf::Any> answer) {
          // Usually on a transport thread: the store and the snapshot are
          // the loop's.
          self->loop_->Post([self, round, c, token, items, pages, restarts,
                             answer = std::move(answer)]() mutable {
            if (self->stopped_.load()) return;
            self->OnPage(std::move(round), c, token, std::move(items), pages, restarts,
                         std::move(answer));
          });
        });
    if (!sent.ok()) CollectionDone(round, c, sent, nullptr);
  }

  void OnPage(std::shared_ptr<Round> round, const Collection* c, const std::string& token,
              std::shared_ptr<Items> items, int pages, int restarts,
              absl::StatusOr<google::protobuf::Any> answer) {
    if (absl::IsAborted(answer.status()) && !token.empty() && restarts < kMaxRestarts) {
      return ListPage(std::move(round), c, "", std::make_shared<Items>(), 0, restarts + 1);
    }
    if (!answer.ok()) return CollectionDone(round, c, answer.status(), nullptr);
    std::unique_ptr<Message> response = New(c->response);
    if (!answer->UnpackTo(response.get())) {
      return CollectionDone(round, c,
                            absl::InternalError("the adapter answered another message type"),
                            nullptr);
    }
    const auto* reflection = response->GetReflection();
    const int n = reflection->FieldSize(*response, c->items);
    const FieldDescriptor* name_field = c->item->FindFieldByName("name");
    for (int i = 0; i < n; ++i) {
      const Message& item = reflection->GetRepeatedMessage(*response, c->items, i);
      std::string name =
          name_field ? item.GetReflection()->GetString(item, name_field) : std::string();
      if (name.empty()) continue;
      (*items)[std::move(name)] = Deterministic(item);
    }
    std::string next;
    if (const FieldDescriptor* f = c->response->FindFieldByName("next_page_token")) {
      next = reflection->GetString(*response, f);
    }
    if (next.empty()) return CollectionDone(round, c, absl::OkStatus(), items.get());
    if (next == token || pages + 1 >= kMaxPages) {
      return CollectionDone(
          round, c, absl::InternalError("the provider's paging does not advance"), nullptr);
    }
    ListPage(std::move(round), c, std::move(next), std::move(items), pages + 1, restarts);
  }

  // On the loop: one collection's listing ended; `items` null on failure.
  void CollectionDone(const std::shared_ptr<Round>& round, const Collection* c,
                      const absl::Status& status, const Items* items) {
    listing_.erase(c->kind);
    absl::flat_hash_set<std::string> touched = std::move(touched_[c->kind]);
    touched_.erase(c->kind);
    const size_t index = c - collections_.data();
    if (status.ok() && items != nullptr) {
      Diff(*c, *items, touched);
      round->results[index] = absl::OkStatus();
    } else {
      round->results[index] =
          absl::Status(status.code(), absl::StrCat(ShortName(c->method), ": ", status.message()));
    }
    if (--round->pending == 0) FinishRound(round);
  }

  void Diff(const Collection& c, const Items& now,
            const absl::flat_hash_set<std::string>& touched) {
    struct Change {
      v1::WatchResponse::ChangeType type;
      std::string name;
      std::string bytes;  // the new value, or the last one for DELETED
    };
    std::vector<Change> changes;
    const bool baseline = baseline_.contains(c.kind);
    {
      absl::MutexLock lock(&mu_);
      const Items& before = snapshot_[c.kind];
      for (const auto& [name, bytes] : now) {
        if (touched.contains(name)) continue;
        auto it = before.find(name);
        if (it == before.end()) {
          changes.push_back({v1::WatchResponse::CREATED, name, bytes});
        } else if (it->second != bytes) {
          changes.push_back({v1::WatchResponse::UPDATED, name, bytes});
        }
      }
      for (const auto& [name, bytes] : before) {
        if (touched.contains(name) || now.contains(name)) continue;
        changes.push_back({v1::WatchResponse::DELETED, name, bytes});
      }
    }
    if (changes.empty() && baseline) return;
    const std::string collection = absl::StrCat(kSnapshotPrefix, c.kind);
    absl::Status written = store_->RunInTransaction([&](store::TxnView& txn) -> absl::Status {
      for (const Change& change : changes) {
        absl::Status s = change.type == v1::WatchResponse::DELETED
                             ? txn.DeleteResource(account_, collection, change.name).status()
                             : txn.PutResource(account_, collection, change.name, change.bytes);
        if (!s.ok()) return s;
      }
      if (!baseline) return txn.PutResource(account_, kMarkers, c.kind, "baseline");
      return absl::OkStatus();
    });
    if (!written.ok()) {
      // Nothing changes in memory either: the next round finds the same
      // differences and tries again.
      std::cerr << "cloudplaned: account " << account_ << ": observer: cannot store the "
                << c.kind << " snapshot: " << written.message() << "\n";
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      Items& snapshot = snapshot_[c.kind];
      for (const Change& change : changes) {
        if (change.type == v1::WatchResponse::DELETED) {
          snapshot.erase(change.name);
        } else {
          snapshot[change.name] = change.bytes;
        }
      }
    }
    if (!baseline) {
      // The first observation of the collection: what exists now is not news.
      baseline_.insert(c.kind);
      return;
    }
    for (const Change& change : changes) {
      std::unique_ptr<Message> resource = New(c.item);
      resource->ParseFromString(change.bytes);
      sink_->Publish(account_, change.type, change.name, *resource, adapters::WatchSource::kPoll);
    }
  }

  void FinishRound(const std::shared_ptr<Round>& round) {
    in_flight_ = false;
    NotifyRound(*round);
    if (round->full) {
      {
        absl::MutexLock lock(&mu_);
        ++rounds_;
      }
      if (options_.on_health) {
        Health health;
        std::vector<absl::Status> results;
        for (const auto& [index, status] : round->results) {
          if (!status.ok() && health.error.ok()) health.error = status;
          results.push_back(status);
        }
        health.state = Judge(results);
        health.observed_at = absl::Now();
        options_.on_health(health);
      }
    }
    if (again_full_) {
      again_full_ = false;
      again_kinds_.clear();
      return StartRound({});
    }
    if (!again_kinds_.empty()) {
      std::set<std::string> kinds = std::move(again_kinds_);
      again_kinds_.clear();
      return StartRound(std::move(kinds));
    }
    if (round->full) {
      const double j = std::clamp(options_.jitter, 0.0, 0.9);
      absl::Duration delay = options_.interval * absl::Uniform(gen_, 1.0 - j, 1.0 + j);
      std::weak_ptr<Core> weak = shared_from_this();
      timer_ = loop_->RunAfter(delay, [weak] {
        auto self = weak.lock();
        if (!self || self->stopped_.load()) return;
        self->timer_ = 0;
        if (self->in_flight_) {
          self->again_full_ = true;
        } else {
          self->StartRound({});
        }
      });
    }
  }

  // On the loop: tells the round listeners which kinds this round listed
  // completely. Called without mu_ held: listeners read LastObserved.
  void NotifyRound(const Round& round) {
    ObservationSource::Round done;
    done.started = round.started;
    for (const auto& [index, status] : round.results) {
      if (status.ok()) done.kinds.push_back(collections_[index].kind);
    }
    std::vector<std::shared_ptr<RoundListener>> listeners;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, listener] : round_listeners_) listeners.push_back(listener);
    }
    for (const auto& listener : listeners) (*listener)(done);
  }

  // On the loop: a change cloudplane published itself (not this observer).
  void OnOwnChange(const v1::WatchResponse& change) {
    const Collection* c = Find(change.kind());
    if (c == nullptr) return;
    const std::string& name = change.resource_name();
    if (listing_.contains(c->kind)) touched_[c->kind].insert(name);
    if (!baseline_.contains(c->kind)) return;  // the first round takes all
    const std::string collection = absl::StrCat(kSnapshotPrefix, c->kind);
    absl::Status written;
    std::string bytes;
    if (change.change_type() == v1::WatchResponse::DELETED) {
      written = store_->DeleteResource(account_, collection, name).status();
    } else if (change.change_type() == v1::WatchResponse::CREATED ||
               change.change_type() == v1::WatchResponse::UPDATED) {
      std::unique_ptr<Message> resource = New(c->item);
      if (!change.resource().UnpackTo(resource.get())) return;
      bytes = Deterministic(*resource);
      written = store_->PutResource(account_, collection, name, bytes);
    } else {
      return;
    }
    if (!written.ok()) return;  // the next round sees it again as a poll change
    absl::MutexLock lock(&mu_);
    if (change.change_type() == v1::WatchResponse::DELETED) {
      snapshot_[c->kind].erase(name);
    } else {
      snapshot_[c->kind][name] = std::move(bytes);
    }
  }

  const std::string account_;
  adapters::Provider* const provider_;
  store::Store* const store_;
  EventLoop* const loop_;
  adapters::ChangeSink* const sink_;
  Options options_;
  std::vector<Collection> collections_;  // fixed after construction

  std::atomic<bool> stopped_{false};
  uint64_t subscription_ = 0;
  bool subscribed_ = false;

  // The loop's alone.
  absl::BitGen gen_;
  TimerId timer_ = 0;
  bool in_flight_ = false;
  bool again_full_ = false;
  std::set<std::string> again_kinds_;
  absl::flat_hash_set<std::string> baseline_;
  absl::flat_hash_set<std::string> listing_;
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> touched_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Items> snapshot_ ABSL_GUARDED_BY(mu_);
  int64_t rounds_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_listener_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::shared_ptr<RoundListener>> round_listeners_ ABSL_GUARDED_BY(mu_);
};

Observer::Observer(std::string account, adapters::Provider* provider, store::Store* store,
                   EventLoop* loop, adapters::ChangeSink* sink, Options options)
    : core_(std::make_shared<Core>(std::move(account), provider, store, loop, sink,
                                   std::move(options))) {}

Observer::~Observer() { Stop(); }

void Observer::Start() { core_->Start(); }
void Observer::Stop() { core_->Stop(); }
void Observer::ObserveNow(std::vector<std::string> kinds) { core_->ObserveNow(std::move(kinds)); }
std::optional<google::protobuf::Any> Observer::LastObserved(absl::string_view name) const {
  return core_->LastObserved(name);
}
std::vector<std::string> Observer::Kinds() const { return core_->Kinds(); }
int64_t Observer::rounds() const { return core_->rounds(); }
absl::Duration Observer::interval() const { return core_->interval(); }
uint64_t Observer::AddRoundListener(RoundListener listener) {
  return core_->AddRoundListener(std::move(listener));
}
void Observer::RemoveRoundListener(uint64_t id) { core_->RemoveRoundListener(id); }

}  // namespace cloudplane::service
