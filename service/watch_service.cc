#include "service/watch_service.h"

#include <deque>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "cloudplane/v1/watch.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "base/status.h"
#include "service/accounts.h"
#include "service/auth/policy.h"
#include "service/gate.h"
#include "service/request_validation.h"
#include "service/status_conversion.h"

namespace cloudplane::service {
namespace {

constexpr int kReplayBatch = 1000;

// Everything the hub's listener, the heartbeat timer and the reactor share.
// It lives as long as any of them holds it; `reactor` becomes null when gRPC
// is done with the call, after which nothing is written.
struct StreamState {
  absl::Mutex mu;
  grpc::ServerWriteReactor<v1::WatchResponse>* reactor ABSL_GUARDED_BY(mu) = nullptr;
  std::deque<v1::WatchResponse> queue ABSL_GUARDED_BY(mu);
  v1::WatchResponse in_flight ABSL_GUARDED_BY(mu);
  bool writing ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;
  bool replaying ABSL_GUARDED_BY(mu) = true;
  bool sent_since_tick ABSL_GUARDED_BY(mu) = false;
  int64_t last_seq ABSL_GUARDED_BY(mu) = 0;
  TimerId heartbeat_timer ABSL_GUARDED_BY(mu) = 0;

  void Enqueue(v1::WatchResponse change) {
    absl::MutexLock lock(&mu);
    if (finished) return;
    if (change.sequence() != 0) {
      if (change.sequence() <= last_seq) return;  // seen in the replay already
      if (!replaying) last_seq = change.sequence();
    }
    queue.push_back(std::move(change));
    if (!replaying) WriteNext();
  }

  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (writing || finished || reactor == nullptr || queue.empty()) return;
    in_flight = std::move(queue.front());
    queue.pop_front();
    writing = true;
    sent_since_tick = true;
    reactor->StartWrite(&in_flight);
  }

  void Finish(const grpc::Status& status) {
    absl::MutexLock lock(&mu);
    if (finished || reactor == nullptr) return;
    finished = true;
    queue.clear();
    reactor->Finish(status);
  }
};

v1::WatchResponse Heartbeat() {
  v1::WatchResponse beat;
  beat.set_change_type(v1::WatchResponse::HEARTBEAT);
  *beat.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  return beat;
}

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  WatchReactor(WatchHub* hub, EventLoop* loop, const AccountTable* accounts, const Gate* gate,
               const grpc::CallbackServerContext& ctx, const v1::WatchRequest& request)
      : hub_(hub), loop_(loop), state_(std::make_shared<StreamState>()) {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = this;
    }
    absl::Status status = Open(accounts, gate, ctx, request);
    if (!status.ok()) state_->Finish(ToGrpcStatus(status));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&state_->mu);
    state_->writing = false;
    if (!ok) return;  // the client is gone; OnDone follows
    state_->WriteNext();
  }

  void OnCancel() override { state_->Finish(grpc::Status::CANCELLED); }

  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
      state_->finished = true;
    }
    if (subscription_ != 0) hub_->Unsubscribe(subscription_);
    TimerId timer;
    {
      absl::MutexLock lock(&state_->mu);
      timer = state_->heartbeat_timer;
    }
    loop_->Cancel(timer);
    delete this;
  }

 private:
  absl::Status Open(const AccountTable* accounts, const Gate* gate,
                    const grpc::CallbackServerContext& ctx, const v1::WatchRequest& request) {
    constexpr absl::string_view kMethod = "cloudplane.v1.WatchService.Watch";
    absl::StatusOr<auth::Caller> caller = gate->Authenticate(ctx, kMethod);
    if (!caller.ok()) return caller.status();
    absl::StatusOr<RoutedRequest> routed = ValidateRequest("Watch", request);
    WatchFilter filter;
    if (request.parent() == "accounts/-") {
      filter.account = "-";
    } else if (!routed.ok()) {
      return routed.status();
    } else {
      absl::Status not_found = AccountTable::NotConfigured(routed->account, "parent");
      CallFacts facts{std::string(kMethod), request.parent(), routed->account, ""};
      RETURN_IF_ERROR(
          gate->Authorize(*caller, *auth::PermissionFor(kMethod), facts, not_found));
      if (accounts->Find(routed->account) == nullptr) return not_found;
      filter.account = routed->account;
    }
    if (!caller->unrestricted) {
      filter.visible = [gate, who = *caller](absl::string_view account) {
        return gate->RoleOn(who, account) >= auth::Role::kViewer;
      };
    }
    if (request.heartbeat_interval_seconds() < 0) {
      return InvalidField("heartbeat_interval_seconds", "must not be negative");
    }
    if (request.start_after_sequence() < 0) {
      return InvalidField("start_after_sequence", "must not be negative");
    }
    filter.kinds.assign(request.kinds().begin(), request.kinds().end());
    interval_ = absl::Seconds(request.heartbeat_interval_seconds() == 0
                                  ? 30
                                  : request.heartbeat_interval_seconds());

    // Subscribe before replaying so nothing falls between the two; live
    // changes wait in the queue until the replay is in, and duplicates are
    // dropped by sequence.
    std::weak_ptr<StreamState> weak = state_;
    subscription_ = hub_->Subscribe(
        filter,
        [weak](const v1::WatchResponse& change) {
          if (auto state = weak.lock()) state->Enqueue(change);
        },
        [weak] {
          if (auto state = weak.lock()) {
            state->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "the server is shutting down"));
          }
        });
    state_->Enqueue(Heartbeat());
    std::vector<v1::WatchResponse> replayed;
    int64_t after = request.start_after_sequence();
    while (after > 0) {
      int64_t scanned_to = after;
      absl::StatusOr<std::vector<v1::WatchResponse>> batch =
          hub_->Replay(filter, after, kReplayBatch, &scanned_to);
      if (!batch.ok()) return batch.status();
      for (auto& change : *batch) replayed.push_back(std::move(change));
      if (scanned_to == after) break;
      after = scanned_to;
    }
    {
      absl::MutexLock lock(&state_->mu);
      std::deque<v1::WatchResponse> queued;
      queued.swap(state_->queue);
      std::vector<v1::WatchResponse> live;
      // Heartbeat first, then the replay, then live changes not replayed.
      for (auto& change : queued) {
        if (change.change_type() == v1::WatchResponse::HEARTBEAT) {
          state_->queue.push_back(std::move(change));
        } else {
          live.push_back(std::move(change));
        }
      }
      for (auto& change : replayed) {
        state_->last_seq = std::max(state_->last_seq, change.sequence());
        state_->queue.push_back(std::move(change));
      }
      for (auto& change : live) {
        if (change.sequence() != 0 && change.sequence() <= state_->last_seq) continue;
        state_->last_seq = std::max(state_->last_seq, change.sequence());
        state_->queue.push_back(std::move(change));
      }
      state_->replaying = false;
      state_->WriteNext();
    }
    ScheduleHeartbeat(loop_, state_, interval_);
    return absl::OkStatus();
  }

  // Sends a heartbeat when a whole interval passed without any message.
  static void ScheduleHeartbeat(EventLoop* loop, std::weak_ptr<StreamState> weak,
                                absl::Duration interval) {
    auto state = weak.lock();
    if (state == nullptr) return;
    absl::MutexLock lock(&state->mu);
    if (state->finished) return;
    state->heartbeat_timer = loop->RunAfter(interval, [loop, weak, interval] {
      auto state = weak.lock();
      if (state == nullptr) return;
      bool idle;
      {
        absl::MutexLock lock(&state->mu);
        if (state->finished) return;
        idle = !state->sent_since_tick;
        state->sent_since_tick = false;
      }
      if (idle) state->Enqueue(Heartbeat());
      ScheduleHeartbeat(loop, weak, interval);
    });
  }

  WatchHub* const hub_;
  EventLoop* const loop_;
  std::shared_ptr<StreamState> state_;
  uint64_t subscription_ = 0;
  absl::Duration interval_;
};

class WatchServiceImpl final : public v1::WatchService::CallbackService {
 public:
  WatchServiceImpl(WatchHub* hub, EventLoop* loop, const AccountTable* accounts, const Gate* gate)
      : hub_(hub), loop_(loop), accounts_(accounts), gate_(gate) {}

 private:
  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(grpc::CallbackServerContext* ctx,
                                                      const v1::WatchRequest* request) override {
    return new WatchReactor(hub_, loop_, accounts_, gate_, *ctx, *request);
  }

  WatchHub* const hub_;
  EventLoop* const loop_;
  const AccountTable* const accounts_;
  const Gate* const gate_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeWatchService(WatchHub* hub, EventLoop* loop,
                                                const AccountTable* accounts, const Gate* gate) {
  return std::make_unique<WatchServiceImpl>(hub, loop, accounts, gate);
}

}  // namespace cloudplane::service
