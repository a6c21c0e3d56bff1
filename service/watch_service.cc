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

// Changes a stream takes from the log at a time: its bounded buffer.
constexpr int kBatch = 32;

v1::WatchResponse Heartbeat() {
  v1::WatchResponse beat;
  beat.set_change_type(v1::WatchResponse::HEARTBEAT);
  *beat.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  return beat;
}

// Everything the hub's wake-up, the heartbeat timer and the reactor share.
// It lives as long as any of them holds it; `reactor` becomes null when gRPC
// is done with the call, after which nothing is written.
//
// One write is in flight at a time. The stream pulls its next batch from
// its subscription when a write completes (OnWriteDone, a gRPC thread) or,
// when it had read everything, when the hub wakes it (the hub's fan-out
// thread); publishers never run any of this.
struct StreamState {
  absl::Mutex mu;
  grpc::ServerWriteReactor<v1::WatchResponse>* reactor ABSL_GUARDED_BY(mu) = nullptr;
  std::shared_ptr<WatchHub::Subscription> sub ABSL_GUARDED_BY(mu);
  std::deque<std::shared_ptr<const v1::WatchResponse>> pending ABSL_GUARDED_BY(mu);
  std::shared_ptr<const v1::WatchResponse> in_flight ABSL_GUARDED_BY(mu);
  bool writing ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;
  absl::Time last_write ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  TimerId heartbeat_timer ABSL_GUARDED_BY(mu) = 0;

  void Pump() {
    absl::MutexLock lock(&mu);
    PumpLocked();
  }

  // Starts the next write if none is in flight: from the buffer, else from
  // the subscription, else arms the subscription for a wake-up.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!finished && reactor != nullptr && !writing && sub != nullptr) {
      if (pending.empty()) {
        std::vector<std::shared_ptr<const v1::WatchResponse>> batch;
        absl::Status status = sub->Next(kBatch, &batch);
        if (!status.ok()) {
          FinishLocked(ToGrpcStatus(status));
          return;
        }
        if (batch.empty()) {
          if (sub->ArmIfIdle()) return;
          continue;
        }
        pending.assign(std::make_move_iterator(batch.begin()),
                       std::make_move_iterator(batch.end()));
      }
      std::shared_ptr<const v1::WatchResponse> next = std::move(pending.front());
      pending.pop_front();
      WriteLocked(std::move(next));
    }
  }

  void WriteLocked(std::shared_ptr<const v1::WatchResponse> message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    in_flight = std::move(message);
    writing = true;
    last_write = absl::Now();
    reactor->StartWrite(in_flight.get());
  }

  void Finish(const grpc::Status& status) {
    absl::MutexLock lock(&mu);
    FinishLocked(status);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (finished || reactor == nullptr) return;
    finished = true;
    pending.clear();
    reactor->Finish(status);
  }
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  WatchReactor(WatchHub* hub, const AccountTable* accounts, const Gate* gate,
               const grpc::CallbackServerContext& ctx, const v1::WatchRequest& request)
      : hub_(hub), state_(std::make_shared<StreamState>()) {
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
    state_->PumpLocked();
  }

  void OnCancel() override { state_->Finish(grpc::Status::CANCELLED); }

  void OnDone() override {
    std::shared_ptr<WatchHub::Subscription> sub;
    TimerId timer;
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
      state_->finished = true;
      sub = std::move(state_->sub);
      timer = state_->heartbeat_timer;
    }
    if (sub != nullptr) hub_->Unsubscribe(sub->id());
    hub_->fanout_loop()->Cancel(timer);
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
    const absl::Duration interval = absl::Seconds(
        request.heartbeat_interval_seconds() == 0 ? 30 : request.heartbeat_interval_seconds());

    // The subscription is a cursor: it starts after start_after_sequence
    // (replaying the store's log first) or at the log's end, so nothing falls
    // between the replay and the live changes, and nothing comes twice.
    std::weak_ptr<StreamState> weak = state_;
    ASSIGN_OR_RETURN(
        std::shared_ptr<WatchHub::Subscription> sub,
        hub_->Subscribe(
            std::move(filter), request.start_after_sequence(),
            [weak] {
              if (auto state = weak.lock()) state->Pump();
            },
            [weak] {
              if (auto state = weak.lock()) {
                state->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                           "the server is shutting down"));
              }
            }));
    {
      absl::MutexLock lock(&state_->mu);
      state_->sub = std::move(sub);
      // The heartbeat first, so a client knows it is subscribed; the replay
      // and live changes follow from OnWriteDone.
      if (!state_->finished) {
        state_->WriteLocked(std::make_shared<const v1::WatchResponse>(Heartbeat()));
      }
    }
    ScheduleHeartbeat(hub_->fanout_loop(), state_, interval);
    return absl::OkStatus();
  }

  // Sends a heartbeat once `interval` has passed since the last message of
  // any kind; the timer is due at exactly that moment, so a client that asks
  // for N seconds sees one every N seconds of silence.
  static void ScheduleHeartbeat(EventLoop* loop, std::weak_ptr<StreamState> weak,
                                absl::Duration interval) {
    auto state = weak.lock();
    if (state == nullptr) return;
    absl::MutexLock lock(&state->mu);
    if (state->finished) return;
    state->heartbeat_timer = loop->RunAt(state->last_write + interval, [loop, weak, interval] {
      auto state = weak.lock();
      if (state == nullptr) return;
      {
        absl::MutexLock lock(&state->mu);
        if (state->finished || state->reactor == nullptr) return;
        // A write in flight or a change waiting is not silence.
        if (!state->writing && state->pending.empty() &&
            absl::Now() - state->last_write >= interval) {
          state->WriteLocked(std::make_shared<const v1::WatchResponse>(Heartbeat()));
        }
      }
      ScheduleHeartbeat(loop, weak, interval);
    });
  }

  WatchHub* const hub_;
  std::shared_ptr<StreamState> state_;
};

class WatchServiceImpl final : public v1::WatchService::CallbackService {
 public:
  WatchServiceImpl(WatchHub* hub, const AccountTable* accounts, const Gate* gate)
      : hub_(hub), accounts_(accounts), gate_(gate) {}

 private:
  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(grpc::CallbackServerContext* ctx,
                                                      const v1::WatchRequest* request) override {
    return new WatchReactor(hub_, accounts_, gate_, *ctx, *request);
  }

  WatchHub* const hub_;
  const AccountTable* const accounts_;
  const Gate* const gate_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeWatchService(WatchHub* hub, EventLoop* loop,
                                                const AccountTable* accounts, const Gate* gate) {
  (void)loop;  // streams run on the hub's fan-out loop (WatchHub::fanout_loop)
  return std::make_unique<WatchServiceImpl>(hub, accounts, gate);
}

}  // namespace cloudplane::service
