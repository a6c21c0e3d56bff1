#include "adapters/cloudsigma/cloudsigma_feed.h"

#include <algorithm>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;

// The feed's own requests are not bound to any caller's deadline.
absl::Time RequestDeadline() { return absl::Now() + absl::Seconds(30); }

}  // namespace

Feed::Feed(AccountPtr account, std::string ws_url, bool verify_tls, std::string ca_file,
           ChangeSink* sink, EventLoop* loop)
    : account_(std::move(account)),
      ws_url_(std::move(ws_url)),
      verify_tls_(verify_tls),
      ca_file_(std::move(ca_file)),
      sink_(sink),
      loop_(loop) {}

void Feed::Start() { Connect(); }

void Feed::Stop() {
  std::shared_ptr<websocket::WebSocketConnection> conn;
  TimerId timer = 0;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    open_.store(false, std::memory_order_release);
    conn = std::move(conn_);
    timer = timer_;
    timer_ = 0;
  }
  if (conn) conn->Close();
  if (timer != 0 && loop_ != nullptr) loop_->Cancel(timer);
}

void Feed::Connect() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
  }
  std::weak_ptr<Feed> weak = weak_from_this();
  if (ws_url_.empty()) {
    // No ws_endpoint option: look for our location's websocket_url.
    ListAll(account_, RequestDeadline(), "/locations/",
            [weak](absl::StatusOr<std::vector<WireObject>> objects) {
              auto self = weak.lock();
              if (!self) return;
              if (!objects.ok()) return self->Retry(objects.status());
              // Our endpoint as a location lists it: base URL plus '/'.
              std::string mine = absl::StrCat(self->account_->client->endpoint().base_url, "/");
              for (const WireObject& o : *objects) {
                auto loc = LocationFromWire(o.json, self->account_->id);
                if (!loc.ok()) continue;
                const auto& f = loc->provider_details().fields();
                auto api = f.find("api_endpoint");
                auto ws = f.find("websocket_url");
                if (api != f.end() && ws != f.end() && api->second.string_value() == mine) {
                  self->ws_url_ = ws->second.string_value();
                  return self->Connect();
                }
              }
              std::cerr << "cloudplaned: account " << self->account_->id
                        << ": no ws_endpoint option and no location lists this endpoint; "
                           "no push events\n";
            });
    return;
  }
  // A fresh cookie for every connection: it lives 2 minutes (async.rst).
  Call(account_, RequestDeadline(), "POST", "/accounts/action/?do=authenticate_asynchronous",
       "{}", "POST accounts authenticate_asynchronous", [weak](absl::StatusOr<HttpResponse> r) {
         auto self = weak.lock();
         if (!self) return;
         if (!r.ok()) return self->Retry(r.status());
         std::string cookie;
         for (const auto& [name, value] : r->headers) {
           if (name != "set-cookie") continue;
           absl::string_view v = value;
           if (absl::ConsumePrefix(&v, "async_auth=")) {
             cookie = std::string(v.substr(0, v.find(';')));
           }
         }
         if (cookie.empty()) {
           return self->Retry(absl::UnavailableError("no async_auth cookie in the answer"));
         }
         self->OpenSocket(cookie);
       });
}

void Feed::OpenSocket(const std::string& cookie) {
  std::weak_ptr<Feed> weak = weak_from_this();
  websocket::ConnectOptions options;
  options.headers.emplace_back("Cookie", absl::StrCat("async_auth=", cookie));
  options.verify_tls = verify_tls_;
  options.ca_file = ca_file_;
  auto conn = websocket::WebSocketConnection::Connect(
      ws_url_, std::move(options),
      {.on_open =
           [weak] {
             auto self = weak.lock();
             if (!self) return;
             bool resync;
             {
               absl::MutexLock lock(&self->mu_);
               if (self->stopped_) return;
               self->open_.store(true, std::memory_order_release);
               self->failures_ = 0;
               resync = self->connected_before_;
               self->connected_before_ = true;
             }
             if (resync) self->Resync();
           },
       .on_message =
           [weak](std::string message) {
             if (auto self = weak.lock()) self->Enqueue(std::move(message));
           },
       .on_close =
           [weak](absl::Status status) {
             if (auto self = weak.lock()) self->Retry(status);
           }});
  absl::MutexLock lock(&mu_);
  if (stopped_) {
    conn->Close();
    return;
  }
  conn_ = std::move(conn);
}

void Feed::Retry(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  open_.store(false, std::memory_order_release);
  if (stopped_ || why.code() == absl::StatusCode::kCancelled) return;
  conn_.reset();
  const absl::Duration delay =
      std::min(absl::Milliseconds(500) * (1 << std::min(failures_, 6)), absl::Seconds(30));
  ++failures_;
  // Status messages here name URLs and codes only, never the cookie.
  std::cerr << "cloudplaned: account " << account_->id << ": websocket: " << why.message()
            << "; reconnecting in " << absl::FormatDuration(delay) << "\n";
  if (loop_ == nullptr) return;
  std::weak_ptr<Feed> weak = weak_from_this();
  timer_ = loop_->RunAfter(delay, [weak] {
    if (auto self = weak.lock()) self->Connect();
  });
}

// Frames are handled one at a time so events of one resource stay in order.
void Feed::Enqueue(std::string message) {
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(message));
    if (busy_) return;
    busy_ = true;
  }
  Next();
}

void Feed::Next() {
  std::string message;
  {
    absl::MutexLock lock(&mu_);
    if (queue_.empty() || stopped_) {
      busy_ = false;
      return;
    }
    message = std::move(queue_.front());
    queue_.pop_front();
  }
  absl::StatusOr<Frame> frame = ParseFrame(message);
  if (!frame.ok() || (frame->resource_type != "drives" && frame->resource_type != "servers") ||
      !IsUuid(frame->uuid)) {
    return Next();  // balance, profile, jobs…: nothing we publish
  }
  const std::string collection = frame->resource_type;
  std::weak_ptr<Feed> weak = weak_from_this();
  auto then = [weak](absl::Status) {
    if (auto self = weak.lock()) self->Next();
  };
  if (frame->object_json.has_value()) {
    absl::StatusOr<WireObject> o = ParseObject(*frame->object_json);
    if (o.ok()) return Publish(collection, *o, std::move(then));
  }
  // No object (or an odd one): fetch it; 404 means it is gone.
  Send(account_, RequestDeadline(), "GET", ObjectPath(collection, frame->uuid), "",
       absl::StrCat("GET ", collection, " ", frame->uuid),
       [weak, collection, uuid = frame->uuid,
        then = std::move(then)](absl::StatusOr<HttpResponse> r) mutable {
         auto self = weak.lock();
         if (!self) return;
         if (r.ok() && r->status == 404) {
           self->PublishDeleted(uuid);
           return then(absl::OkStatus());
         }
         if (!r.ok() || r->status != 200) return then(absl::OkStatus());
         absl::StatusOr<WireObject> o = ParseObject(r->body);
         if (!o.ok()) return then(o.status());
         self->Publish(collection, *o, std::move(then));
       });
}

void Feed::Publish(const std::string& collection, const WireObject& o,
                   absl::AnyInvocable<void(absl::Status)> then) {
  std::weak_ptr<Feed> weak = weak_from_this();
  const std::string uuid = o.uuid;
  if (collection == "drives") {
    RenderVolume(account_, RequestDeadline(), o,
                 [weak, uuid, then = std::move(then)](absl::StatusOr<v1::Volume> v) mutable {
                   if (auto self = weak.lock(); self && v.ok()) {
                     std::string name = v->name();
                     self->Emit(uuid, {.resource = std::make_shared<v1::Volume>(*std::move(v)),
                                       .name = std::move(name),
                                       .volume = true});
                   }
                   then(absl::OkStatus());
                 });
  } else {
    RenderInstance(account_, RequestDeadline(), o,
                   [weak, uuid, then = std::move(then)](absl::StatusOr<v1::Instance> i) mutable {
                     if (auto self = weak.lock(); self && i.ok()) {
                       std::string name = i->name();
                       self->Emit(uuid,
                                  {.resource = std::make_shared<v1::Instance>(*std::move(i)),
                                   .name = std::move(name)});
                     }
                     then(absl::OkStatus());
                   });
  }
}

void Feed::Emit(const std::string& uuid, Last value) {
  bool known;
  {
    absl::MutexLock lock(&mu_);
    known = last_.contains(uuid);
    last_[uuid] = value;
  }
  sink_->Publish(account_->id, known ? v1::WatchResponse::UPDATED : v1::WatchResponse::CREATED,
                 value.name, *value.resource, WatchSource::kPush);
}

void Feed::PublishDeleted(const std::string& uuid) {
  Last last;
  {
    absl::MutexLock lock(&mu_);
    auto it = last_.find(uuid);
    if (it == last_.end()) return;  // never seen: nothing to name it by
    last = std::move(it->second);
    last_.erase(it);
  }
  sink_->Publish(account_->id, v1::WatchResponse::DELETED, last.name, *last.resource,
                 WatchSource::kPush);
}

// After a reconnect: what changed while we were away is published again.
void Feed::Resync() {
  std::weak_ptr<Feed> weak = weak_from_this();
  for (const std::string collection : {"drives", "servers"}) {
    ListAll(account_, RequestDeadline(), absl::StrCat("/", collection, "/detail/"),
            [weak, collection](absl::StatusOr<std::vector<WireObject>> objects) {
              auto self = weak.lock();
              if (!self || !objects.ok()) return;
              absl::flat_hash_set<std::string> present;
              for (const WireObject& o : *objects) {
                present.insert(o.uuid);
                // The same path as a pushed frame, so order is kept.
                std::string frame = absl::StrCat(
                    R"({"resource_type":")", collection, R"(","resource_uri":"/x/)", collection,
                    "/", o.uuid, R"(/","object":)", o.json, "}");
                self->Enqueue(std::move(frame));
              }
              const bool volumes = collection == "drives";
              std::vector<std::string> gone;
              {
                absl::MutexLock lock(&self->mu_);
                for (const auto& [uuid, last] : self->last_) {
                  if (last.volume == volumes && !present.contains(uuid)) gone.push_back(uuid);
                }
              }
              for (const auto& uuid : gone) self->PublishDeleted(uuid);
            });
  }
}

}  // namespace cloudplane::adapters::cloudsigma
