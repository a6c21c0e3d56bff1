#include "service/watch_hub.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/thread_role.h"
#include "google/protobuf/util/time_util.h"

namespace cloudplane::service {
namespace {
// Store reads while a subscriber catches up.
constexpr int kStoreBatch = 1000;
}  // namespace

bool WatchFilter::Matches(absl::string_view change_account, absl::string_view kind) const {
  if (account != "-" && account != change_account) return false;
  if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) return false;
  return !visible || visible(change_account);
}

WatchHub::WatchHub(store::Store* store, EventLoop* loop, Options options)
    : store_(store), loop_(loop), options_(options) {}

WatchHub::~WatchHub() { fanout_.Shutdown(); }

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
  QueuedChange self{&account, &change};
  {
    absl::MutexLock queue_lock(&queue_mu_);
    queue_.push_back(&self);
  }
  std::vector<std::string> accounts;
  {
    absl::MutexLock publish_lock(&publish_mu_);
    // Whoever holds publish_mu_ logs every change queued by then in one
    // store transaction, hence one fsync, and adds them to the window in
    // that order: concurrent publishers (each create's sandbox record and
    // operation) no longer wait for one commit each in turn. Ours may have
    // gone with the batch of the publisher before us.
    if (self.done) return;
    std::vector<QueuedChange*> batch;
    {
      absl::MutexLock queue_lock(&queue_mu_);
      batch.assign(queue_.begin(), queue_.end());
      queue_.clear();
    }
    // The whole WatchResponse is logged, with the account alongside, so that
    // a replay returns exactly what live subscribers saw.
    std::vector<int64_t> seqs;
    absl::Status logged = store_->RunInTransaction([&](store::TxnView& txn) -> absl::Status {
      seqs.clear();  // set afresh: the store may run this more than once
      for (QueuedChange* q : batch) {
        absl::StatusOr<int64_t> seq =
            txn.AppendChange(*q->account, q->change->kind(), q->change->resource_name(),
                             q->change->change_type(), q->change->SerializeAsString());
        if (!seq.ok()) return seq.status();
        seqs.push_back(*seq);
      }
      return absl::OkStatus();
    });
    if (!logged.ok()) {
      std::cerr << "cloudplaned: change log append failed: " << logged << "\n";
    }
    int64_t trim_before = 0;
    for (size_t i = 0; logged.ok() && i < batch.size(); ++i) {
      batch[i]->change->set_sequence(seqs[i]);
      if (++appended_since_trim_ >= options_.trim_every) {
        appended_since_trim_ = 0;
        if (seqs[i] > options_.keep_changes) trim_before = seqs[i] - options_.keep_changes + 1;
      }
    }
    if (trim_before > 0) store_->TrimChangesBefore(trim_before).IgnoreError();
    absl::MutexLock window_lock(&window_mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      QueuedChange* q = batch[i];
      auto entry = std::make_shared<Entry>();
      if (logged.ok()) entry->seq = seqs[i];
      entry->account = *q->account;
      entry->change = std::make_shared<const v1::WatchResponse>(std::move(*q->change));
      window_.push_back(std::move(entry));
      while (static_cast<int64_t>(window_.size()) > options_.live_window) {
        evicted_pos_[window_.front()->account] = base_pos_;
        window_.pop_front();
        ++base_pos_;
      }
      accounts.push_back(*q->account);
      // Its publisher may return (and `q` end) once publish_mu_ is free.
      q->done = true;
    }
  }
  {
    // After the window holds the changes: a stream that arms itself after
    // this sees them there, one armed before is woken by the pass below.
    absl::MutexLock pending_lock(&pending_mu_);
    for (std::string& a : accounts) pending_accounts_.insert(std::move(a));
  }
  // The only per-publish work besides the log: one task, and none while one
  // is still waiting to run (it will see this change too).
  if (!wake_posted_.exchange(true)) {
    if (!fanout_.Post([this] { WakeArmed(); })) wake_posted_ = false;
  }
}

void WatchHub::WakeArmed() {
  wake_posted_ = false;  // a publish from now on posts another pass
  absl::flat_hash_set<std::string> accounts;
  {
    absl::MutexLock pending_lock(&pending_mu_);
    accounts.swap(pending_accounts_);
  }
  accounts.insert("-");
  std::vector<std::shared_ptr<Subscription>> woken;
  {
    absl::MutexLock lock(&subs_mu_);
    for (const std::string& account : accounts) {
      auto group = subs_by_account_.find(account);
      if (group == subs_by_account_.end()) continue;
      for (auto& [id, sub] : group->second) {
        if (sub->armed_.load(std::memory_order_relaxed) && sub->armed_.exchange(false)) {
          woken.push_back(sub);
        }
      }
    }
  }
  for (auto& sub : woken) {
    if (sub->on_wake_) sub->on_wake_();
  }
}

absl::StatusOr<std::shared_ptr<WatchHub::Subscription>> WatchHub::Subscribe(
    WatchFilter filter, int64_t start_after_sequence, absl::AnyInvocable<void()> on_wake,
    absl::AnyInvocable<void()> on_close) {
  uint64_t id;
  {
    absl::MutexLock lock(&subs_mu_);
    id = next_id_++;
  }
  std::shared_ptr<Subscription> sub(
      new Subscription(this, id, std::move(filter), start_after_sequence));
  sub->on_wake_ = std::move(on_wake);
  sub->on_close_ = std::move(on_close);
  if (start_after_sequence > 0) {
    // Read the first batch now, so that a position already trimmed from the
    // log fails the call before anything is sent.
    absl::StatusOr<std::vector<store::Change>> first =
        store_->ListChangesSince(start_after_sequence, kStoreBatch);
    if (!first.ok()) return first.status();
    sub->catching_up_ = true;
    sub->store_more_ = first->size() == kStoreBatch;
    sub->backlog_.assign(std::make_move_iterator(first->begin()),
                         std::make_move_iterator(first->end()));
  } else {
    absl::ReaderMutexLock window_lock(&window_mu_);
    sub->next_pos_ = base_pos_ + static_cast<int64_t>(window_.size());
  }
  absl::MutexLock lock(&subs_mu_);
  subs_[id] = sub;
  subs_by_account_[sub->filter_.account][id] = sub;
  return sub;
}

void WatchHub::Unsubscribe(uint64_t id) {
  std::shared_ptr<Subscription> sub;
  absl::MutexLock lock(&subs_mu_);
  auto it = subs_.find(id);
  if (it == subs_.end()) return;
  sub = std::move(it->second);  // released after the lock
  subs_.erase(it);
  auto group = subs_by_account_.find(sub->filter_.account);
  if (group != subs_by_account_.end()) {
    group->second.erase(id);
    if (group->second.empty()) subs_by_account_.erase(group);
  }
}

void WatchHub::CloseAll() {
  absl::flat_hash_map<uint64_t, std::shared_ptr<Subscription>> closing;
  {
    absl::MutexLock lock(&subs_mu_);
    closing.swap(subs_);
    subs_by_account_.clear();
  }
  for (auto& [id, sub] : closing) {
    if (sub->on_close_) std::move(sub->on_close_)();
  }
}

// ---- Subscription ----------------------------------------------------------

absl::Status WatchHub::Subscription::Next(
    int max, std::vector<std::shared_ptr<const v1::WatchResponse>>* out) {
  const size_t before = out->size();
  if (catching_up_) {
    absl::Status caught = CatchUp(max, out);
    if (!caught.ok() || catching_up_ || out->size() > before) return caught;
  }
  std::vector<std::shared_ptr<const Entry>> batch;
  while (true) {
    batch.clear();
    {
      absl::ReaderMutexLock lock(&hub_->window_mu_);
      if (next_pos_ < hub_->base_pos_ && filter_.account != "-") {
        // Not woken for other accounts' changes: behind only if one of its
        // own account's left the window unread.
        auto evicted = hub_->evicted_pos_.find(filter_.account);
        if (evicted == hub_->evicted_pos_.end() || evicted->second < next_pos_) {
          next_pos_ = hub_->base_pos_;
        }
      }
      if (next_pos_ < hub_->base_pos_) {
        return WithErrorInfo(
            absl::AbortedError(absl::StrCat(
                "the stream fell more than ", hub_->options_.live_window,
                " changes behind; watch again with start_after_sequence = ", last_sequence_)),
            reasons::kWatchFellBehind, {{"lastSequence", absl::StrCat(last_sequence_)}});
      }
      const int64_t end = hub_->base_pos_ + static_cast<int64_t>(hub_->window_.size());
      for (; next_pos_ < end && static_cast<int>(batch.size()) < max; ++next_pos_) {
        batch.push_back(hub_->window_[next_pos_ - hub_->base_pos_]);
      }
    }
    if (batch.empty()) return absl::OkStatus();
    // Filtering runs outside the hub's locks: `visible` asks the gate.
    for (const auto& entry : batch) {
      if (entry->seq > scanned_) scanned_ = entry->seq;
      if (!filter_.Matches(entry->account, entry->change->kind())) continue;
      if (entry->seq > 0) last_sequence_ = entry->seq;
      out->push_back(entry->change);
    }
    if (out->size() > before) return absl::OkStatus();
  }
}

absl::Status WatchHub::Subscription::CatchUp(
    int max, std::vector<std::shared_ptr<const v1::WatchResponse>>* out) {
  const size_t before = out->size();
  while (true) {
    if (!backlog_.empty()) {
      for (int n = 0; n < max && !backlog_.empty(); ++n) {
        store::Change change = std::move(backlog_.front());
        backlog_.pop_front();
        scanned_ = std::max(scanned_, change.seq);
        if (!filter_.Matches(change.account, change.kind)) continue;
        auto response = std::make_shared<v1::WatchResponse>();
        if (!response->ParseFromString(change.bytes)) continue;
        response->set_sequence(change.seq);
        last_sequence_ = change.seq;
        out->push_back(std::move(response));
      }
      if (out->size() > before) return absl::OkStatus();
      continue;
    }
    if (store_more_) {
      absl::StatusOr<std::vector<store::Change>> more =
          hub_->store_->ListChangesSince(scanned_, kStoreBatch);
      if (!more.ok()) return more.status();
      store_more_ = more->size() == kStoreBatch;
      backlog_.assign(std::make_move_iterator(more->begin()),
                      std::make_move_iterator(more->end()));
      continue;
    }
    // Caught up with the store as far as it went: look once more with
    // appends held off, and if nothing came meanwhile, continue in the live
    // window from its end, which then holds exactly what follows.
    absl::MutexLock publish_lock(&hub_->publish_mu_);
    absl::StatusOr<std::vector<store::Change>> last =
        hub_->store_->ListChangesSince(scanned_, kStoreBatch);
    if (!last.ok()) return last.status();
    if (!last->empty()) {
      store_more_ = last->size() == kStoreBatch;
      backlog_.assign(std::make_move_iterator(last->begin()),
                      std::make_move_iterator(last->end()));
      continue;
    }
    absl::ReaderMutexLock window_lock(&hub_->window_mu_);
    next_pos_ = hub_->base_pos_ + static_cast<int64_t>(hub_->window_.size());
    catching_up_ = false;
    return absl::OkStatus();
  }
}

bool WatchHub::Subscription::ArmIfIdle() {
  if (catching_up_) return false;
  armed_ = true;
  bool waiting;
  {
    absl::ReaderMutexLock lock(&hub_->window_mu_);
    waiting = next_pos_ != hub_->base_pos_ + static_cast<int64_t>(hub_->window_.size());
  }
  if (waiting) {
    armed_ = false;
    return false;
  }
  return true;
}

}  // namespace cloudplane::service
