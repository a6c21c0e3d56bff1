#include "service/watch_hub.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/thread_role.h"
#include "google/protobuf/util/time_util.h"

namespace cloudplane::service {
namespace {
// How many changes the log keeps for resuming watchers.
constexpr int64_t kKeepChanges = 20000;
constexpr int64_t kTrimEvery = 1000;
}  // namespace

bool WatchFilter::Matches(absl::string_view change_account, absl::string_view kind) const {
  if (account != "-" && account != change_account) return false;
  if (visible && !visible(change_account)) return false;
  return kinds.empty() || std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

WatchHub::WatchHub(store::Store* store, EventLoop* loop) : store_(store), loop_(loop) {}

std::string WatchHub::KindOf(const google::protobuf::Message& message) {
  return message.GetDescriptor()->name();
}

void WatchHub::Publish(absl::string_view account, v1::WatchResponse::ChangeType type,
                       absl::string_view resource_name,
                       const google::protobuf::Message& resource,
                       adapters::WatchSource source) {
  v1::WatchResponse change;
  change.set_change_type(type);
  change.set_resource_name(std::string(resource_name));
  change.set_kind(KindOf(resource));
  change.mutable_resource()->PackFrom(resource);
  *change.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  change.set_source(std::string(adapters::WatchSourceName(source)));
  if (TransportThreadName() != nullptr && loop_ != nullptr) {
    loop_->Post([this, account = std::string(account), change = std::move(change)]() mutable {
      Append(std::move(account), std::move(change));
    });
    return;
  }
  Append(std::string(account), std::move(change));
}

void WatchHub::Append(std::string account, v1::WatchResponse change) {
  const std::string& resource_name = change.resource_name();
  const v1::WatchResponse::ChangeType type = change.change_type();
  absl::MutexLock publish_lock(&publish_mu_);
  // The whole WatchResponse is logged, with the account alongside, so that
  // replay returns exactly what live subscribers saw.
  absl::StatusOr<int64_t> seq =
      store_->AppendChange(account, change.kind(), resource_name, type, change.SerializeAsString());
  if (seq.ok()) {
    change.set_sequence(*seq);
    if (++appended_since_trim_ >= kTrimEvery) {
      appended_since_trim_ = 0;
      if (*seq > kKeepChanges) store_->TrimChangesBefore(*seq - kKeepChanges).IgnoreError();
    }
  } else {
    std::cerr << "cloudplaned: change log append failed: " << seq.status() << "\n";
  }

  std::vector<std::shared_ptr<Listener>> targets;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, subscriber] : subscribers_) {
      if (subscriber.filter.Matches(account, change.kind())) {
        targets.push_back(subscriber.listener);
      }
    }
  }
  absl::MutexLock delivery_lock(&delivery_mu_);
  for (auto& listener : targets) (*listener)(change);
}

uint64_t WatchHub::Subscribe(WatchFilter filter, Listener listener,
                             absl::AnyInvocable<void()> on_close) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_id_++;
  subscribers_[id] = Subscriber{std::move(filter), std::make_shared<Listener>(std::move(listener)),
                                std::move(on_close)};
  return id;
}

void WatchHub::Unsubscribe(uint64_t id) {
  std::shared_ptr<Listener> listener;
  {
    absl::MutexLock lock(&mu_);
    auto it = subscribers_.find(id);
    if (it == subscribers_.end()) return;
    listener = std::move(it->second.listener);
    subscribers_.erase(it);
  }
  // Wait for a delivery in progress (which may hold a copy) to finish.
  absl::MutexLock delivery_lock(&delivery_mu_);
}

absl::StatusOr<std::vector<v1::WatchResponse>> WatchHub::Replay(const WatchFilter& filter,
                                                                int64_t after, int limit,
                                                                int64_t* scanned_to) {
  *scanned_to = after;
  absl::StatusOr<std::vector<store::Change>> changes = store_->ListChangesSince(after, limit);
  if (!changes.ok()) return changes.status();
  std::vector<v1::WatchResponse> out;
  for (const store::Change& change : *changes) {
    *scanned_to = change.seq;
    if (!filter.Matches(change.account, change.kind)) continue;
    v1::WatchResponse response;
    if (!response.ParseFromString(change.bytes)) continue;
    response.set_sequence(change.seq);
    out.push_back(std::move(response));
  }
  return out;
}

void WatchHub::CloseAll() {
  absl::flat_hash_map<uint64_t, Subscriber> closing;
  {
    absl::MutexLock lock(&mu_);
    closing.swap(subscribers_);
  }
  {
    absl::MutexLock delivery_lock(&delivery_mu_);
  }
  for (auto& [id, subscriber] : closing) {
    if (subscriber.on_close) std::move(subscriber.on_close)();
  }
}

}  // namespace cloudplane::service
