#include "adapters/cloudsigma/cloudsigma_adapter.h"

#include <algorithm>
#include <deque>
#include <iostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/paging/paging.h"
#include "adapters/common/websocket/websocket_client.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "base/status.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;
using Empty = google::protobuf::Empty;

// Pages of 100 (CloudSigma's default is 20); a list that never ends (a
// provider bug) stops after this many pages.
constexpr int kPageLimit = 100;
constexpr int kMaxPages = 10000;

struct Account {
  std::string id;
  std::unique_ptr<http::HttpClient> client;
  std::string authorization;  // "Basic …"; never logged
};
using AccountPtr = std::shared_ptr<const Account>;
using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<HttpResponse>)>;

// Sends one request. `context` ("GET drive <uuid>") prefixes errors; it
// never holds a body or a header.
void Send(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, absl::string_view context,
          ResponseCallback done) {
  // An expired deadline is refused by the transport before anything is
  // sent (adapters/common/http), and reported below with `context`.
  http::HttpRequest request;
  request.method = std::string(method);
  request.path_and_query = std::move(path);
  request.deadline = deadline;
  request.headers.emplace_back("Authorization", account->authorization);
  request.headers.emplace_back("Accept", "application/json");
  // Both official clients send this on every request, GET included (§1).
  request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(body);
  account->client->Send(std::move(request), [context = std::string(context),
                                             done = std::move(done)](
                                                absl::StatusOr<HttpResponse> r) mutable {
    if (!r.ok()) {
      absl::Status s(r.status().code(), absl::StrCat(context, ": ", r.status().message()));
      done(GetErrorInfo(r.status()).has_value() ? r.status()
                                                : WithErrorInfo(s, DefaultReason(s.code())));
      return;
    }
    done(std::move(r));
  });
}

// Sends and checks the status: 2xx responses only reach `done`.
void Call(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, std::string context, ResponseCallback done,
          std::string field_prefix = "") {
  Send(account, deadline, method, std::move(path), std::move(body), context,
       [context, field_prefix, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return done(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, context, field_prefix);
             !s.ok()) {
           return done(s);
         }
         done(std::move(r));
       });
}

std::string Collection(absl::string_view kind) {
  return kind == "drive" ? "drives" : "servers";
}

std::string ObjectPath(absl::string_view collection, absl::string_view uuid) {
  return absl::StrCat("/", collection, "/", uuid, "/");
}

absl::Status NotFound(absl::string_view what, absl::string_view resource_name) {
  return WithErrorInfo(absl::NotFoundError(absl::StrCat(what, " ", resource_name,
                                                        " does not exist")),
                       "RESOURCE_NOT_FOUND", {{"resource", std::string(resource_name)}});
}

absl::Status WrongState(absl::string_view message, absl::string_view resource_name,
                        absl::string_view status) {
  return WithErrorInfo(absl::FailedPreconditionError(message), "WRONG_STATE",
                       {{"resource", std::string(resource_name)},
                        {"providerState", std::string(status)}});
}

template <typename T>
MutationProgress Done(const T& result) {
  MutationProgress progress;
  progress.done = true;
  progress.result.PackFrom(result);
  return progress;
}

MutationProgress Pending(const PollTarget& target, std::string detail) {
  MutationProgress progress;
  progress.poll_token = MakePollToken(target);
  progress.detail = std::move(detail);
  return progress;
}

// ---------------------------------------------------------------------------
// Lists: every page (limit/offset, §3).

struct ListState {
  AccountPtr account;
  absl::Time deadline;
  std::string path;  // "/drives/detail/?fields=…" or without query
  std::vector<WireObject> objects;
  int pages = 0;
  Callback<std::vector<WireObject>> done;
};

void ListPage(std::shared_ptr<ListState> st) {
  const std::string path =
      absl::StrCat(st->path, absl::StrContains(st->path, '?') ? "&" : "?", "limit=", kPageLimit,
                   "&offset=", st->objects.size());
  const std::string context = absl::StrCat("GET ", st->path.substr(0, st->path.find('?')));
  Call(st->account, st->deadline, "GET", path, "", context,
       [st, context](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(st->done)(r.status());
         absl::StatusOr<Page> page = ParsePage(r->body);
         if (!page.ok()) return std::move(st->done)(page.status());
         const bool empty = page->objects.empty();
         for (WireObject& o : page->objects) st->objects.push_back(std::move(o));
         ++st->pages;
         if (empty || static_cast<int64_t>(st->objects.size()) >= page->total_count) {
           return std::move(st->done)(std::move(st->objects));
         }
         if (st->pages >= kMaxPages) {
           return std::move(st->done)(WithErrorInfo(
               absl::InternalError(absl::StrCat(context, ": the list never ends")),
               "PROVIDER_MALFORMED_RESPONSE"));
         }
         ListPage(std::move(st));
       });
}

void ListAll(AccountPtr account, absl::Time deadline, std::string path,
             Callback<std::vector<WireObject>> done) {
  auto st = std::make_shared<ListState>();
  st->account = std::move(account);
  st->deadline = deadline;
  st->path = std::move(path);
  st->done = std::move(done);
  ListPage(std::move(st));
}

// uuid → chosen id of a collection ("drives"/"servers"), from `uuid,meta`.
void LoadIds(const AccountPtr& account, absl::Time deadline, const std::string& collection,
             Callback<IdMap> done) {
  ListAll(account, deadline, absl::StrCat("/", collection, "/detail/?fields=uuid,meta"),
          [done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            IdMap ids;
            for (const WireObject& o : *objects) {
              if (!o.chosen_id.empty()) ids[o.uuid] = o.chosen_id;
            }
            std::move(done)(std::move(ids));
          });
}

// The uuid named by `id`: itself when in uuid form, else the object whose
// meta holds it. NOT_FOUND naming `resource_name` when none.
void ResolveId(const AccountPtr& account, absl::Time deadline, const std::string& collection,
               const std::string& id, const std::string& resource_name,
               absl::string_view what, Callback<std::string> done) {
  if (IsUuid(id)) return std::move(done)(id);
  ListAll(account, deadline, absl::StrCat("/", collection, "/detail/?fields=uuid,meta"),
          [id, resource_name, what = std::string(what), done = std::move(done)](
              absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            for (const WireObject& o : *objects) {
              if (o.chosen_id == id) return std::move(done)(o.uuid);
            }
            std::move(done)(NotFound(what, resource_name));
          });
}

// GETs one object; NOT_FOUND (naming `resource_name`) for 404.
void GetObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
               const std::string& uuid, const std::string& resource_name,
               absl::string_view what, Callback<WireObject> done) {
  const std::string context = absl::StrCat("GET ", collection, " ", uuid);
  Send(account, deadline, "GET", ObjectPath(collection, uuid), "", context,
       [context, resource_name, what = std::string(what),
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (r->status == 404) return std::move(done)(NotFound(what, resource_name));
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         std::move(done)(ParseObject(r->body));
       });
}

// Resolve + GET.
void FindObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                const std::string& id, const std::string& resource_name, absl::string_view what,
                Callback<WireObject> done) {
  ResolveId(account, deadline, collection, id, resource_name, what,
            [account, deadline, collection, resource_name, what = std::string(what),
             done = std::move(done)](absl::StatusOr<std::string> uuid) mutable {
              if (!uuid.ok()) return std::move(done)(uuid.status());
              GetObject(account, deadline, collection, *uuid, resource_name, what,
                        std::move(done));
            });
}

// Object → message, loading the other collection's ids when it refers to
// objects there.
void RenderVolume(const AccountPtr& account, absl::Time deadline, const WireObject& drive,
                  Callback<v1::Volume> done) {
  if (drive.referenced_uuids.empty()) {
    return std::move(done)(DriveToVolume(drive.json, account->id, {}));
  }
  LoadIds(account, deadline, "servers",
          [account, json = drive.json, done = std::move(done)](absl::StatusOr<IdMap> ids) mutable {
            if (!ids.ok()) return std::move(done)(ids.status());
            std::move(done)(DriveToVolume(json, account->id, *ids));
          });
}

void RenderInstance(const AccountPtr& account, absl::Time deadline, const WireObject& server,
                    Callback<v1::Instance> done) {
  if (server.referenced_uuids.empty()) {
    return std::move(done)(ServerToInstance(server.json, account->id, {}));
  }
  LoadIds(account, deadline, "drives",
          [account, json = server.json,
           done = std::move(done)](absl::StatusOr<IdMap> ids) mutable {
            if (!ids.ok()) return std::move(done)(ids.status());
            std::move(done)(ServerToInstance(json, account->id, *ids));
          });
}

// Reports `progress` after rendering the object as the operation's result.
void DoneWithVolume(const AccountPtr& account, absl::Time deadline, const WireObject& drive,
                    Callback<MutationProgress> done) {
  RenderVolume(account, deadline, drive,
               [done = std::move(done)](absl::StatusOr<v1::Volume> v) mutable {
                 if (!v.ok()) return std::move(done)(v.status());
                 std::move(done)(Done(*v));
               });
}

void DoneWithInstance(const AccountPtr& account, absl::Time deadline, const WireObject& server,
                      Callback<MutationProgress> done) {
  RenderInstance(account, deadline, server,
                 [done = std::move(done)](absl::StatusOr<v1::Instance> i) mutable {
                   if (!i.ok()) return std::move(done)(i.status());
                   std::move(done)(Done(*i));
                 });
}

// Sorts by name and cuts out the requested page.
template <typename T>
absl::StatusOr<std::vector<T>> PageOf(std::vector<T> items, int32_t page_size,
                                      absl::string_view page_token, std::string* next) {
  std::sort(items.begin(), items.end(),
            [](const T& a, const T& b) { return a.name() < b.name(); });
  items.erase(std::unique(items.begin(), items.end(),
                          [](const T& a, const T& b) { return a.name() == b.name(); }),
              items.end());
  return paging::Paginate(std::move(items), [](const T& t) { return t.name(); }, page_size,
                          page_token, next);
}

absl::Status CheckPaging(int32_t page_size, absl::string_view page_token) {
  RETURN_IF_ERROR(paging::EffectivePageSize(page_size).status());
  return paging::DecodeToken(page_token).status();
}

// Renders a whole list (one id lookup for all references).
template <typename T>
void RenderAll(const AccountPtr& account, absl::Time deadline, std::vector<WireObject> objects,
               const std::string& other_collection,
               absl::AnyInvocable<absl::StatusOr<T>(const std::string&, const IdMap&)> render,
               Callback<std::vector<T>> done) {
  bool refs = false;
  for (const auto& o : objects) refs = refs || !o.referenced_uuids.empty();
  auto finish = [objects = std::move(objects), render = std::move(render),
                 done = std::move(done)](const IdMap& ids) mutable {
    std::vector<T> out;
    for (const WireObject& o : objects) {
      absl::StatusOr<T> t = render(o.json, ids);
      if (!t.ok()) return std::move(done)(t.status());
      out.push_back(*std::move(t));
    }
    std::move(done)(std::move(out));
  };
  if (!refs) return finish({});
  LoadIds(account, deadline, other_collection,
          [finish = std::move(finish)](absl::StatusOr<IdMap> ids) mutable {
            if (!ids.ok()) {
              // Keep the list usable; references then show uuids.
              return finish({});
            }
            finish(*ids);
          });
}

std::string RandomVncPassword() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 16; ++i) out.push_back("0123456789abcdef"[rd() % 16]);
  return out;
}

// Looks for an object this operation created before (a re-drive after a
// crash), or one that already has `chosen_id`. `found` gets the object of
// this operation, ALREADY_EXISTS for a clash, or nullopt.
void FindExisting(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& chosen_id, const std::string& operation,
                  const std::string& resource_name,
                  Callback<std::optional<std::string>> found) {
  if (chosen_id.empty() && operation.empty()) return std::move(found)(std::nullopt);
  ListAll(account, deadline, absl::StrCat("/", collection, "/detail/?fields=uuid,meta"),
          [chosen_id, operation, resource_name,
           found = std::move(found)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(found)(objects.status());
            for (const WireObject& o : *objects) {
              const bool mine = !operation.empty() && o.operation == operation;
              if (mine) return std::move(found)(o.uuid);
              if (!chosen_id.empty() && o.chosen_id == chosen_id) {
                return std::move(found)(WithErrorInfo(
                    absl::AlreadyExistsError(absl::StrCat(resource_name, " already exists")),
                    "RESOURCE_ALREADY_EXISTS", {{"resource", resource_name}}));
              }
            }
            std::move(found)(std::nullopt);
          });
}

// ---------------------------------------------------------------------------
// Polling toward a goal.

void Poll(const AccountPtr& account, absl::Time deadline, const PollTarget& target,
          Callback<MutationProgress> done) {
  const std::string collection = Collection(target.kind);
  const std::string context = absl::StrCat("GET ", collection, " ", target.uuid);
  Send(account, deadline, "GET", ObjectPath(collection, target.uuid), "", context,
       [account, deadline, target, context,
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (r->status == 404) {
           if (target.goal == Goal::kGone) return std::move(done)(Done(Empty()));
           return std::move(done)(WithErrorInfo(
               absl::NotFoundError(absl::StrCat(context, ": the object disappeared")),
               "RESOURCE_NOT_FOUND"));
         }
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         absl::StatusOr<WireObject> o = ParseObject(r->body);
         if (!o.ok()) return std::move(done)(o.status());
         auto has_other = [&] {
           return std::find(o->referenced_uuids.begin(), o->referenced_uuids.end(),
                            target.other) != o->referenced_uuids.end();
         };
         bool reached = false;
         switch (target.goal) {
           case Goal::kSettled:
             reached = o->status == "unmounted" || o->status == "mounted";
             break;
           case Goal::kGone:
             reached = false;
             break;
           case Goal::kRunning:
             reached = o->status == "running";
             break;
           case Goal::kStopped:
             reached = o->status == "stopped";
             break;
           case Goal::kMounted:
             reached = has_other() && o->status != "creating";
             break;
           case Goal::kUnmounted:
             reached = !has_other();
             break;
           case Goal::kMetadata:
           {
             auto m = ServerToMetadata(o->json, account->id);
             if (!m.ok()) return std::move(done)(m.status());
             return std::move(done)(Done(*m));
           }
         }
         if (!reached) {
           return std::move(done)(Pending(
               target, absl::StrFormat("waiting for %s %s (now %s)", target.kind, target.uuid,
                                       o->status)));
         }
         if (target.kind == "drive") return DoneWithVolume(account, deadline, *o, std::move(done));
         DoneWithInstance(account, deadline, *o, std::move(done));
       });
}

// ---------------------------------------------------------------------------
// The websocket feed of one account.

class Feed : public std::enable_shared_from_this<Feed> {
 public:
  Feed(AccountPtr account, std::string ws_url, bool verify_tls, std::string ca_file,
       ChangeSink* sink, EventLoop* loop)
      : account_(std::move(account)),
        ws_url_(std::move(ws_url)),
        verify_tls_(verify_tls),
        ca_file_(std::move(ca_file)),
        sink_(sink),
        loop_(loop) {}

  void Start() { Connect(); }

  void Stop() {
    std::shared_ptr<websocket::WebSocketConnection> conn;
    TimerId timer = 0;
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
      conn = std::move(conn_);
      timer = timer_;
      timer_ = 0;
    }
    if (conn) conn->Close();
    if (timer != 0 && loop_ != nullptr) loop_->Cancel(timer);
  }

 private:
  absl::Time RequestDeadline() const { return absl::Now() + absl::Seconds(30); }

  void Connect() {
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
    // A fresh cookie for every connection: it lives 2 minutes (§13).
    Call(account_, RequestDeadline(), "POST", "/accounts/action/?do=authenticate_asynchronous",
         "{}", "POST accounts authenticate_asynchronous",
         [weak](absl::StatusOr<HttpResponse> r) {
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

  void OpenSocket(const std::string& cookie) {
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

  void Retry(const absl::Status& why) {
    absl::MutexLock lock(&mu_);
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
  void Enqueue(std::string message) {
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(message));
      if (busy_) return;
      busy_ = true;
    }
    Next();
  }

  void Next() {
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

  void Publish(const std::string& collection, const WireObject& o,
               absl::AnyInvocable<void(absl::Status)> then) {
    std::weak_ptr<Feed> weak = weak_from_this();
    const std::string uuid = o.uuid;
    if (collection == "drives") {
      RenderVolume(account_, RequestDeadline(), o,
                   [weak, uuid, then = std::move(then)](absl::StatusOr<v1::Volume> v) mutable {
                     if (auto self = weak.lock(); self && v.ok()) {
                       self->Emit(uuid, std::make_shared<v1::Volume>(*std::move(v)));
                     }
                     then(absl::OkStatus());
                   });
    } else {
      RenderInstance(account_, RequestDeadline(), o,
                     [weak, uuid, then = std::move(then)](absl::StatusOr<v1::Instance> i) mutable {
                       if (auto self = weak.lock(); self && i.ok()) {
                         self->Emit(uuid, std::make_shared<v1::Instance>(*std::move(i)));
                       }
                       then(absl::OkStatus());
                     });
    }
  }

  template <typename T>
  void Emit(const std::string& uuid, std::shared_ptr<T> resource) {
    bool known;
    {
      absl::MutexLock lock(&mu_);
      known = last_.contains(uuid);
      last_[uuid] = resource;
    }
    sink_->Publish(account_->id, known ? v1::WatchResponse::UPDATED : v1::WatchResponse::CREATED,
                   resource->name(), *resource, WatchSource::kPush);
  }

  void PublishDeleted(const std::string& uuid) {
    std::shared_ptr<google::protobuf::Message> last;
    {
      absl::MutexLock lock(&mu_);
      auto it = last_.find(uuid);
      if (it == last_.end()) return;  // never seen: nothing to name it by
      last = it->second;
      last_.erase(it);
    }
    std::string name;
    if (auto* v = dynamic_cast<v1::Volume*>(last.get())) name = v->name();
    if (auto* i = dynamic_cast<v1::Instance*>(last.get())) name = i->name();
    sink_->Publish(account_->id, v1::WatchResponse::DELETED, name, *last, WatchSource::kPush);
  }

  // After a reconnect: what changed while we were away is published again.
  void Resync() {
    std::weak_ptr<Feed> weak = weak_from_this();
    for (const std::string collection : {"drives", "servers"}) {
      ListAll(account_, RequestDeadline(), absl::StrCat("/", collection, "/detail/"),
              [weak, collection](absl::StatusOr<std::vector<WireObject>> objects) {
                auto self = weak.lock();
                if (!self || !objects.ok()) return;
                absl::flat_hash_set<std::string> present;
                for (const WireObject& o : *objects) {
                  present.insert(o.uuid);
                  std::string frame = absl::StrCat(
                      R"({"resource_type":")", collection, R"(","resource_uri":"/x/)",
                      collection, "/", o.uuid, R"(/","object":)", o.json, "}");
                  self->Enqueue(std::move(frame));
                }
                std::vector<std::string> gone;
                {
                  absl::MutexLock lock(&self->mu_);
                  for (const auto& [uuid, message] : self->last_) {
                    const bool same_kind =
                        (collection == "drives") ==
                        (dynamic_cast<v1::Volume*>(message.get()) != nullptr);
                    if (same_kind && !present.contains(uuid)) gone.push_back(uuid);
                  }
                }
                for (const auto& uuid : gone) self->PublishDeleted(uuid);
              });
    }
  }

  const AccountPtr account_;
  std::string ws_url_;  // set once before the first connection
  const bool verify_tls_;
  const std::string ca_file_;
  ChangeSink* const sink_;
  EventLoop* const loop_;

  absl::Mutex mu_;
  bool stopped_ = false;
  bool connected_before_ = false;
  int failures_ = 0;
  TimerId timer_ = 0;
  std::shared_ptr<websocket::WebSocketConnection> conn_;
  std::deque<std::string> queue_;
  bool busy_ = false;
  // The last value published per uuid (for DELETED and CREATED vs UPDATED).
  absl::flat_hash_map<std::string, std::shared_ptr<google::protobuf::Message>> last_;
};

// ---------------------------------------------------------------------------

class CloudSigmaProvider final : public Provider {
 public:
  CloudSigmaProvider(AccountPtr account, std::shared_ptr<Feed> feed)
      : account_(std::move(account)), feed_(std::move(feed)) {}

  ~CloudSigmaProvider() override {
    if (feed_) feed_->Stop();
  }

  const ProviderInfo& Info() const override {
    static const auto* const kInfo = new ProviderInfo(CloudSigmaProviderInfo());
    return *kInfo;
  }

  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override {
    absl::StatusOr<PollTarget> target = ParsePollToken(poll_token);
    if (!target.ok()) return std::move(done)(target.status());
    Poll(account_, ctx.deadline, *target, std::move(done));
  }

  // --- Volumes -------------------------------------------------------------

  void ListVolumes(const CallContext& ctx, const v1::ListVolumesRequest& request,
                   Callback<v1::ListVolumesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    ListAll(account, deadline, "/drives/detail/",
            [account, deadline, size = request.page_size(), token = request.page_token(),
             done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
              if (!objects.ok()) return std::move(done)(objects.status());
              RenderAll<v1::Volume>(
                  account, deadline, *std::move(objects), "servers",
                  [account](const std::string& json, const IdMap& ids) {
                    return DriveToVolume(json, account->id, ids);
                  },
                  [size, token, done = std::move(done)](
                      absl::StatusOr<std::vector<v1::Volume>> all) mutable {
                    if (!all.ok()) return std::move(done)(all.status());
                    v1::ListVolumesResponse response;
                    auto page = PageOf(*std::move(all), size, token,
                                       response.mutable_next_page_token());
                    if (!page.ok()) return std::move(done)(page.status());
                    for (auto& v : *page) *response.add_volumes() = std::move(v);
                    std::move(done)(std::move(response));
                  });
            });
  }

  void GetVolume(const CallContext& ctx, const v1::GetVolumeRequest& request,
                 Callback<v1::Volume> done) override {
    auto id = IdFromName("name", account_->id, "volumes", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    FindObject(account, deadline, "drives", *id, request.name(), "volume",
               [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
                 if (!o.ok()) return std::move(done)(o.status());
                 RenderVolume(account, deadline, *o, std::move(done));
               });
  }

  void CreateVolume(const CallContext& ctx, const v1::CreateVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    absl::Status status;
    if (request.volume().size_bytes() <= 0) {
      AddFieldViolation(status, "volume.size_bytes", "must be positive");
    }
    if (!request.volume_id().empty()) {
      if (absl::Status s = ValidateChosenId("volume_id", request.volume_id()); !s.ok()) {
        AddFieldViolation(status, "volume_id", s.message());
      }
    }
    if (absl::Status s = ValidateLabels("volume.labels", request.volume().labels()); !s.ok()) {
      status = s;
    }
    if (!request.volume().provider_options().fields().empty()) {
      AddFieldViolation(status, "volume.provider_options", "CloudSigma volumes take none");
    }
    if (!status.ok()) return std::move(done)(status);
    if (request.validate_only()) return std::move(done)(Done(v1::Volume()));
    const std::string resource_name = ResourceName(
        account_->id, "volumes", request.volume_id().empty() ? "-" : request.volume_id());
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    const std::string operation = ctx.operation;
    const std::string body = DriveCreateBody(request.volume(), request.volume_id(), operation);
    FindExisting(
        account, deadline, "drives", request.volume_id(), operation, resource_name,
        [account, deadline, body,
         done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
          if (!found.ok()) return std::move(done)(found.status());
          if (found->has_value()) {
            return Poll(account, deadline, {.kind = "drive", .uuid = **found},
                        std::move(done));
          }
          Call(
              account, deadline, "POST", "/drives/", body, "POST drives",
              [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                if (!r.ok()) return std::move(done)(r.status());
                absl::StatusOr<WireObject> o = ParseObject(r->body);
                if (!o.ok()) return std::move(done)(o.status());
                std::move(done)(Pending({.kind = "drive", .uuid = o->uuid},
                                        absl::StrCat("drive ", o->uuid, " is ", o->status)));
              },
              "volume.");
        });
  }

  void CloneVolume(const CallContext& ctx, const v1::CloneVolumeRequest& request,
                   Callback<MutationProgress> done) override {
    auto id = IdFromName("name", account_->id, "volumes", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    if (!request.volume_id().empty()) {
      if (absl::Status s = ValidateChosenId("volume_id", request.volume_id()); !s.ok()) {
        return std::move(done)(s);
      }
    }
    if (request.validate_only()) return std::move(done)(Done(v1::Volume()));
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    const std::string operation = ctx.operation;
    const std::string body =
        DriveCloneBody(request.display_name(), request.volume_id(), operation);
    const std::string new_name = ResourceName(
        account->id, "volumes", request.volume_id().empty() ? "-" : request.volume_id());
    FindObject(
        account, deadline, "drives", *id, request.name(), "volume",
        [account, deadline, operation, body, new_name, volume_id = request.volume_id(),
         done = std::move(done)](absl::StatusOr<WireObject> source) mutable {
          if (!source.ok()) return std::move(done)(source.status());
          FindExisting(
              account, deadline, "drives", volume_id, operation, new_name,
              [account, deadline, body, source_uuid = source->uuid,
               done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
                if (!found.ok()) return std::move(done)(found.status());
                if (found->has_value()) {
                  return Poll(account, deadline, {.kind = "drive", .uuid = **found},
                              std::move(done));
                }
                Call(account, deadline, "POST",
                     absl::StrCat("/drives/", source_uuid, "/action/?do=clone"), body,
                     absl::StrCat("POST drive ", source_uuid, " clone"),
                     [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                       if (!r.ok()) return std::move(done)(r.status());
                       absl::StatusOr<WireObject> o = ParseObject(r->body);
                       if (!o.ok()) return std::move(done)(o.status());
                       std::move(done)(Pending({.kind = "drive", .uuid = o->uuid},
                                               absl::StrCat("drive ", o->uuid, " is ",
                                                            o->status)));
                     });
              });
        });
  }

  void UpdateVolume(const CallContext& ctx, const v1::UpdateVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    auto id = IdFromName("volume.name", account_->id, "volumes", request.volume().name());
    if (!id.ok()) return std::move(done)(id.status());
    DriveEdit edit;
    for (const std::string& path : request.update_mask().paths()) {
      if (path == "display_name") {
        if (request.volume().display_name().empty()) {
          return std::move(done)(InvalidField("volume.display_name", "must not be empty"));
        }
        edit.name = request.volume().display_name();
      } else if (path == "size_bytes") {
        if (request.volume().size_bytes() <= 0) {
          return std::move(done)(InvalidField("volume.size_bytes", "must be positive"));
        }
        edit.size = request.volume().size_bytes();
      } else if (path == "labels") {
        if (absl::Status s = ValidateLabels("volume.labels", request.volume().labels()); !s.ok()) return std::move(done)(s);
        edit.labels.emplace(request.volume().labels().begin(), request.volume().labels().end());
      } else {
        return std::move(done)(InvalidField(
            "update_mask", absl::StrCat("\"", path, "\" cannot be updated (display_name, "
                                                    "size_bytes, labels can)")));
      }
    }
    if (request.validate_only()) return std::move(done)(Done(v1::Volume()));
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    FindObject(
        account, deadline, "drives", *id, request.volume().name(), "volume",
        [account, deadline, edit,
         done = std::move(done)](absl::StatusOr<WireObject> drive) mutable {
          if (!drive.ok()) return std::move(done)(drive.status());
          absl::StatusOr<std::string> body = EditDrive(drive->json, edit);
          if (!body.ok()) return std::move(done)(body.status());
          Call(
              account, deadline, "PUT", ObjectPath("drives", drive->uuid), *body,
              absl::StrCat("PUT drive ", drive->uuid),
              [account, deadline, uuid = drive->uuid,
               done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                if (!r.ok()) return std::move(done)(r.status());
                // A resize answers `resizing` and settles later (§6).
                Poll(account, deadline, {.kind = "drive", .uuid = uuid}, std::move(done));
              },
              "volume.");
        });
  }

  void DeleteVolume(const CallContext& ctx, const v1::DeleteVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    auto id = IdFromName("name", account_->id, "volumes", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    if (request.validate_only()) return std::move(done)(Done(Empty()));
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    FindObject(
        account, deadline, "drives", *id, request.name(), "volume",
        [account, deadline, name = request.name(), allow_missing = request.allow_missing(),
         done = std::move(done)](absl::StatusOr<WireObject> drive) mutable {
          if (!drive.ok()) {
            if (allow_missing && drive.status().code() == absl::StatusCode::kNotFound) {
              return std::move(done)(Done(Empty()));
            }
            return std::move(done)(drive.status());
          }
          if (!drive->referenced_uuids.empty()) {
            return std::move(done)(WrongState(
                absl::StrCat("volume ", name, " is attached; detach it first"), name,
                drive->status));
          }
          Call(account, deadline, "DELETE", ObjectPath("drives", drive->uuid), "",
               absl::StrCat("DELETE drive ", drive->uuid),
               [uuid = drive->uuid, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                 if (!r.ok()) return std::move(done)(r.status());
                 // Deletion is asynchronous: done when GET answers 404 (§3).
                 std::move(done)(Pending({.kind = "drive", .uuid = uuid, .goal = Goal::kGone},
                                         absl::StrCat("deleting drive ", uuid)));
               });
        });
  }

  void AttachVolume(const CallContext& ctx, const v1::AttachVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    AttachOrDetach(ctx, request.name(), request.instance(), /*attach=*/true, request.device(),
                   request.channel(), request.boot_order(), request.validate_only(),
                   std::move(done));
  }

  void DetachVolume(const CallContext& ctx, const v1::DetachVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    AttachOrDetach(ctx, request.name(), request.instance(), /*attach=*/false, "", "", 0,
                   request.validate_only(), std::move(done));
  }

  // --- Instances -----------------------------------------------------------

  void ListInstances(const CallContext& ctx, const v1::ListInstancesRequest& request,
                     Callback<v1::ListInstancesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    ListAll(account, deadline, "/servers/detail/",
            [account, deadline, size = request.page_size(), token = request.page_token(),
             done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
              if (!objects.ok()) return std::move(done)(objects.status());
              RenderAll<v1::Instance>(
                  account, deadline, *std::move(objects), "drives",
                  [account](const std::string& json, const IdMap& ids) {
                    return ServerToInstance(json, account->id, ids);
                  },
                  [size, token, done = std::move(done)](
                      absl::StatusOr<std::vector<v1::Instance>> all) mutable {
                    if (!all.ok()) return std::move(done)(all.status());
                    v1::ListInstancesResponse response;
                    auto page = PageOf(*std::move(all), size, token,
                                       response.mutable_next_page_token());
                    if (!page.ok()) return std::move(done)(page.status());
                    for (auto& i : *page) *response.add_instances() = std::move(i);
                    std::move(done)(std::move(response));
                  });
            });
  }

  void GetInstance(const CallContext& ctx, const v1::GetInstanceRequest& request,
                   Callback<v1::Instance> done) override {
    auto id = IdFromName("name", account_->id, "instances", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    FindObject(account, deadline, "servers", *id, request.name(), "instance",
               [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
                 if (!o.ok()) return std::move(done)(o.status());
                 RenderInstance(account, deadline, *o, std::move(done));
               });
  }

  void CreateInstance(const CallContext& ctx, const v1::CreateInstanceRequest& request,
                      Callback<MutationProgress> done) override {
    const v1::Instance& in = request.instance();
    absl::Status status;
    if (!request.instance_id().empty()) {
      if (absl::Status s = ValidateChosenId("instance_id", request.instance_id()); !s.ok()) {
        AddFieldViolation(status, "instance_id", s.message());
      }
    }
    if (in.cpu_mhz() <= 0) AddFieldViolation(status, "instance.cpu_mhz", "must be positive");
    if (in.memory_bytes() <= 0) {
      AddFieldViolation(status, "instance.memory_bytes", "must be positive");
    }
    if (in.cpu_count() < 0) AddFieldViolation(status, "instance.cpu_count", "must not be negative");
    if (!in.image().empty()) {
      AddFieldViolation(status, "instance.image",
                        "CloudSigma servers have no image: clone a library drive "
                        "(CloneVolume) and attach it (AttachVolume)");
    }
    if (!in.machine_type().empty()) {
      AddFieldViolation(status, "instance.machine_type",
                        "CloudSigma has no machine types; set cpu_mhz and memory_bytes");
    }
    std::string vnc_password;
    for (const auto& [key, value] : in.provider_options().fields()) {
      if (key == "vnc_password" && value.has_string_value() && !value.string_value().empty()) {
        vnc_password = value.string_value();
      } else {
        AddFieldViolation(status, absl::StrCat("instance.provider_options.", key),
                          "unknown key (CloudSigma reads a non-empty string vnc_password)");
      }
    }
    if (absl::Status s = ValidateLabels("instance.labels", in.labels()); !s.ok()) {
      AddFieldViolation(status, "instance.labels", s.message());
    }
    if (!status.ok()) return std::move(done)(status);
    const bool start = !request.has_start() || request.start();
    if (request.validate_only()) return std::move(done)(Done(v1::Instance()));

    ServerSpec spec;
    spec.name = !in.display_name().empty()       ? in.display_name()
                : !request.instance_id().empty() ? request.instance_id()
                                                 : "cloudplane instance";
    spec.cpu_mhz = in.cpu_mhz();
    spec.memory_bytes = in.memory_bytes();
    spec.smp = in.cpu_count();
    spec.vnc_password = vnc_password.empty() ? RandomVncPassword() : vnc_password;
    for (const auto& [k, v] : in.labels()) spec.meta[k] = v;
    if (!request.instance_id().empty()) spec.meta[std::string(kIdMetaKey)] = request.instance_id();
    if (!ctx.operation.empty()) spec.meta[std::string(kOperationMetaKey)] = ctx.operation;
    const std::string body = ServerCreateBody(spec);
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    const std::string resource_name = ResourceName(
        account->id, "instances", request.instance_id().empty() ? "-" : request.instance_id());
    FindExisting(
        account, deadline, "servers", request.instance_id(), ctx.operation, resource_name,
        [account, deadline, body, start,
         done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
          if (!found.ok()) return std::move(done)(found.status());
          if (found->has_value()) {
            // Re-driven: converge from wherever the first attempt stopped.
            const std::string uuid = **found;
            return GetObject(account, deadline, "servers", uuid, uuid, "instance",
                             [account, deadline, uuid, start, done = std::move(done)](
                                 absl::StatusOr<WireObject> o) mutable {
                               if (!o.ok()) return std::move(done)(o.status());
                               if (start && o->status == "stopped") {
                                 return StartThenPoll(account, deadline, uuid, false,
                                                      std::move(done));
                               }
                               Poll(account, deadline,
                                    {.kind = "server", .uuid = uuid,
                                     .goal = start ? Goal::kRunning : Goal::kStopped},
                                    std::move(done));
                             });
          }
          Call(
              account, deadline, "POST", "/servers/", body, "POST servers",
              [account, deadline, start,
               done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                if (!r.ok()) return std::move(done)(r.status());
                absl::StatusOr<WireObject> o = ParseObject(r->body);
                if (!o.ok()) return std::move(done)(o.status());
                // Creation is synchronous; a new server is stopped (§5.1).
                if (!start) return DoneWithInstance(account, deadline, *o, std::move(done));
                StartThenPoll(account, deadline, o->uuid, /*undo_on_error=*/true,
                              std::move(done));
              },
              "instance.");
        });
  }

  void UpdateInstance(const CallContext& ctx, const v1::UpdateInstanceRequest& request,
                      Callback<MutationProgress> done) override {
    auto id = IdFromName("instance.name", account_->id, "instances", request.instance().name());
    if (!id.ok()) return std::move(done)(id.status());
    const v1::Instance& in = request.instance();
    ServerEdit edit;
    bool sizing = false;
    for (const std::string& path : request.update_mask().paths()) {
      if (path == "display_name") {
        if (in.display_name().empty()) {
          return std::move(done)(InvalidField("instance.display_name", "must not be empty"));
        }
        edit.name = in.display_name();
      } else if (path == "labels") {
        if (absl::Status s = ValidateLabels("instance.labels", in.labels()); !s.ok()) return std::move(done)(s);
        edit.labels.emplace(in.labels().begin(), in.labels().end());
      } else if (path == "cpu_mhz" && in.cpu_mhz() > 0) {
        edit.cpu_mhz = in.cpu_mhz(), sizing = true;
      } else if (path == "memory_bytes" && in.memory_bytes() > 0) {
        edit.memory_bytes = in.memory_bytes(), sizing = true;
      } else if (path == "cpu_count" && in.cpu_count() > 0) {
        edit.smp = in.cpu_count(), sizing = true;
      } else if (path == "cpu_mhz" || path == "memory_bytes" || path == "cpu_count") {
        return std::move(done)(InvalidField(absl::StrCat("instance.", path), "must be positive"));
      } else {
        return std::move(done)(InvalidField(
            "update_mask", absl::StrCat("\"", path, "\" cannot be updated (display_name, "
                                                    "labels, cpu_mhz, memory_bytes, cpu_count "
                                                    "can)")));
      }
    }
    if (request.validate_only()) return std::move(done)(Done(v1::Instance()));
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    const std::string name = in.name();
    FindObject(account, deadline, "servers", *id, name, "instance",
               [account, deadline, edit, sizing, name,
                done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
                 if (!server.ok()) return std::move(done)(server.status());
                 if (sizing && server->status != "stopped") {
                   return std::move(done)(WrongState(
                       absl::StrCat("instance ", name, " is ", server->status,
                                    "; CPU and memory change only while it is stopped"),
                       name, server->status));
                 }
                 PutServer(account, deadline, *server, edit,
                           [account, deadline, done = std::move(done)](
                               absl::StatusOr<WireObject> updated) mutable {
                             if (!updated.ok()) return std::move(done)(updated.status());
                             DoneWithInstance(account, deadline, *updated, std::move(done));
                           });
               });
  }

  void DeleteInstance(const CallContext& ctx, const v1::DeleteInstanceRequest& request,
                      Callback<MutationProgress> done) override {
    auto id = IdFromName("name", account_->id, "instances", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    if (request.validate_only()) return std::move(done)(Done(Empty()));
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    FindObject(
        account, deadline, "servers", *id, request.name(), "instance",
        [account, deadline, name = request.name(), allow_missing = request.allow_missing(),
         done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
          if (!server.ok()) {
            if (allow_missing && server.status().code() == absl::StatusCode::kNotFound) {
              return std::move(done)(Done(Empty()));
            }
            return std::move(done)(server.status());
          }
          if (server->status != "stopped") {
            return std::move(done)(WrongState(
                absl::StrCat("instance ", name, " is ", server->status, "; stop it first"),
                name, server->status));
          }
          Call(account, deadline, "DELETE", ObjectPath("servers", server->uuid), "",
               absl::StrCat("DELETE server ", server->uuid),
               [uuid = server->uuid,
                done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                 if (!r.ok()) return std::move(done)(r.status());
                 std::move(done)(Pending({.kind = "server", .uuid = uuid, .goal = Goal::kGone},
                                         absl::StrCat("deleting server ", uuid)));
               });
        });
  }

  void StartInstance(const CallContext& ctx, const v1::StartInstanceRequest& request,
                     Callback<MutationProgress> done) override {
    Power(ctx, request.name(), "start", request.validate_only(), std::move(done));
  }

  void StopInstance(const CallContext& ctx, const v1::StopInstanceRequest& request,
                    Callback<MutationProgress> done) override {
    Power(ctx, request.name(), request.force() ? "stop" : "shutdown", request.validate_only(),
          std::move(done));
  }

  void RebootInstance(const CallContext& ctx, const v1::RebootInstanceRequest& request,
                      Callback<MutationProgress> done) override {
    Power(ctx, request.name(), "restart", request.validate_only(), std::move(done));
  }

  void GetInstanceMetadata(const CallContext& ctx, const v1::GetInstanceMetadataRequest& request,
                           Callback<v1::InstanceMetadata> done) override {
    auto id = IdFromName("name", account_->id, "instances", request.name(), "/metadata");
    if (!id.ok()) return std::move(done)(id.status());
    auto account = account_;
    FindObject(account, ctx.deadline, "servers", *id,
               std::string(absl::StripSuffix(request.name(), "/metadata")), "instance",
               [account, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
                 if (!o.ok()) return std::move(done)(o.status());
                 std::move(done)(ServerToMetadata(o->json, account->id));
               });
  }

  void UpdateInstanceMetadata(const CallContext& ctx,
                              const v1::UpdateInstanceMetadataRequest& request,
                              Callback<MutationProgress> done) override {
    auto id = IdFromName("metadata.name", account_->id, "instances", request.metadata().name(),
                         "/metadata");
    if (!id.ok()) return std::move(done)(id.status());
    if (absl::Status s = ValidateLabels("metadata.items", request.metadata().items()); !s.ok()) return std::move(done)(s);
    if (request.validate_only()) return std::move(done)(Done(v1::InstanceMetadata()));
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    const std::string instance =
        std::string(absl::StripSuffix(request.metadata().name(), "/metadata"));
    FindObject(account, deadline, "servers", *id, instance, "instance",
               [account, deadline, items = request.metadata().items(), merge = request.merge(),
                done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
                 if (!server.ok()) return std::move(done)(server.status());
                 std::map<std::string, std::string> labels;
                 if (merge) {
                   auto current = ServerToMetadata(server->json, account->id);
                   if (!current.ok()) return std::move(done)(current.status());
                   labels.insert(current->items().begin(), current->items().end());
                 }
                 for (const auto& [k, v] : items) labels[k] = v;
                 ServerEdit edit;
                 edit.labels = std::move(labels);
                 PutServer(account, deadline, *server, edit,
                           [account, done = std::move(done)](
                               absl::StatusOr<WireObject> updated) mutable {
                             if (!updated.ok()) return std::move(done)(updated.status());
                             auto m = ServerToMetadata(updated->json, account->id);
                             if (!m.ok()) return std::move(done)(m.status());
                             std::move(done)(Done(*m));
                           });
               });
  }

  // --- Images and locations ---------------------------------------------

  void ListImages(const CallContext& ctx, const v1::ListImagesRequest& request,
                  Callback<v1::ListImagesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    auto account = account_;
    ListAll(account, ctx.deadline, "/libdrives/",
            [account, size = request.page_size(), token = request.page_token(),
             done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
              if (!objects.ok()) return std::move(done)(objects.status());
              std::vector<v1::Image> images;
              for (const WireObject& o : *objects) {
                auto image = LibdriveToImage(o.json, account->id);
                if (!image.ok()) return std::move(done)(image.status());
                images.push_back(*std::move(image));
              }
              v1::ListImagesResponse response;
              auto page = PageOf(std::move(images), size, token,
                                 response.mutable_next_page_token());
              if (!page.ok()) return std::move(done)(page.status());
              for (auto& i : *page) *response.add_images() = std::move(i);
              std::move(done)(std::move(response));
            });
  }

  void GetImage(const CallContext& ctx, const v1::GetImageRequest& request,
                Callback<v1::Image> done) override {
    auto id = IdFromName("name", account_->id, "images", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    if (!IsUuid(*id)) return std::move(done)(NotFound("image", request.name()));
    auto account = account_;
    GetObject(account, ctx.deadline, "libdrives", *id, request.name(), "image",
              [account, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
                if (!o.ok()) return std::move(done)(o.status());
                std::move(done)(LibdriveToImage(o->json, account->id));
              });
  }

  void ListLocations(const CallContext& ctx, const v1::ListLocationsRequest& request,
                     Callback<v1::ListLocationsResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    FetchLocations(ctx, [size = request.page_size(), token = request.page_token(),
                         done = std::move(done)](
                            absl::StatusOr<std::vector<v1::Location>> all) mutable {
      if (!all.ok()) return std::move(done)(all.status());
      v1::ListLocationsResponse response;
      auto page = PageOf(*std::move(all), size, token, response.mutable_next_page_token());
      if (!page.ok()) return std::move(done)(page.status());
      for (auto& l : *page) *response.add_locations() = std::move(l);
      std::move(done)(std::move(response));
    });
  }

  void GetLocation(const CallContext& ctx, const v1::GetLocationRequest& request,
                   Callback<v1::Location> done) override {
    auto id = IdFromName("name", account_->id, "locations", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    FetchLocations(ctx, [name = request.name(), done = std::move(done)](
                            absl::StatusOr<std::vector<v1::Location>> all) mutable {
      if (!all.ok()) return std::move(done)(all.status());
      for (auto& l : *all) {
        if (l.name() == name) return std::move(done)(std::move(l));
      }
      std::move(done)(NotFound("location", name));
    });
  }

 private:
  void FetchLocations(const CallContext& ctx, Callback<std::vector<v1::Location>> done) {
    auto account = account_;
    ListAll(account, ctx.deadline, "/locations/",
            [account, done = std::move(done)](
                absl::StatusOr<std::vector<WireObject>> objects) mutable {
              if (!objects.ok()) return std::move(done)(objects.status());
              std::vector<v1::Location> out;
              for (const WireObject& o : *objects) {
                auto l = LocationFromWire(o.json, account->id);
                if (!l.ok()) return std::move(done)(l.status());
                out.push_back(*std::move(l));
              }
              std::move(done)(std::move(out));
            });
  }

  // PUTs the edited full server; answers the updated object.
  static void PutServer(const AccountPtr& account, absl::Time deadline, const WireObject& server,
                        const ServerEdit& edit, Callback<WireObject> done) {
    absl::StatusOr<std::string> body = EditServer(server.json, edit);
    if (!body.ok()) return std::move(done)(body.status());
    Call(
        account, deadline, "PUT", ObjectPath("servers", server.uuid), *body,
        absl::StrCat("PUT server ", server.uuid),
        [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
          if (!r.ok()) return std::move(done)(r.status());
          std::move(done)(ParseObject(r->body));
        },
        "instance.");
  }

  // Sends `start`, then polls for running. With undo_on_error, a refused
  // start deletes the server (a create must not leave a half-made one).
  static void StartThenPoll(const AccountPtr& account, absl::Time deadline,
                            const std::string& uuid, bool undo_on_error,
                            Callback<MutationProgress> done) {
    Call(account, deadline, "POST", absl::StrCat("/servers/", uuid, "/action/?do=start"), "{}",
         absl::StrCat("POST server ", uuid, " start"),
         [account, deadline, uuid, undo_on_error,
          done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
           if (!r.ok()) {
             if (undo_on_error) {
               Send(account, absl::Now() + absl::Seconds(30), "DELETE",
                    ObjectPath("servers", uuid), "", "DELETE server (undo)",
                    [](absl::StatusOr<HttpResponse>) {});
             }
             return std::move(done)(r.status());
           }
           std::move(done)(Pending({.kind = "server", .uuid = uuid, .goal = Goal::kRunning},
                                   absl::StrCat("starting server ", uuid)));
         });
  }

  void Power(const CallContext& ctx, const std::string& name, const std::string& action,
             bool validate_only, Callback<MutationProgress> done) {
    auto id = IdFromName("name", account_->id, "instances", name);
    if (!id.ok()) return std::move(done)(id.status());
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    FindObject(
        account, deadline, "servers", *id, name, "instance",
        [account, deadline, name, action, validate_only,
         done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
          if (!server.ok()) return std::move(done)(server.status());
          const std::string& status = server->status;
          const bool starting = action == "start";
          const bool restart = action == "restart";
          const Goal goal = starting || restart ? Goal::kRunning : Goal::kStopped;
          const std::string from = starting ? "stopped" : "running";
          const PollTarget target{.kind = "server", .uuid = server->uuid, .goal = goal};
          if (!restart) {
            // Already there (or on the way): nothing to send, so a re-driven
            // call is harmless.
            if (status == (starting ? "running" : "stopped")) {
              if (validate_only) return std::move(done)(Done(v1::Instance()));
              return DoneWithInstance(account, deadline, *server, std::move(done));
            }
            if (status == (starting ? "starting" : "stopping")) {
              if (validate_only) return std::move(done)(Done(v1::Instance()));
              return std::move(done)(Pending(target, absl::StrCat("server is ", status)));
            }
          }
          if (status != from) {
            return std::move(done)(WrongState(
                absl::StrCat("instance ", name, " is ", status, "; ", action, " needs ", from),
                name, status));
          }
          if (validate_only) return std::move(done)(Done(v1::Instance()));
          Call(account, deadline, "POST",
               absl::StrCat("/servers/", server->uuid, "/action/?do=", action), "{}",
               absl::StrCat("POST server ", server->uuid, " ", action),
               [target, action, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                 if (!r.ok()) return std::move(done)(r.status());
                 if (absl::Status s = ParseActionResult(r->body); !s.ok()) {
                   return std::move(done)(s);
                 }
                 std::move(done)(Pending(target, absl::StrCat(action, " sent")));
               });
        });
  }

  void AttachOrDetach(const CallContext& ctx, const std::string& volume_name,
                      const std::string& instance_name, bool attach, const std::string& device,
                      const std::string& channel, int32_t boot_order, bool validate_only,
                      Callback<MutationProgress> done) {
    auto volume_id = IdFromName("name", account_->id, "volumes", volume_name);
    if (!volume_id.ok()) return std::move(done)(volume_id.status());
    auto instance_id = IdFromName("instance", account_->id, "instances", instance_name);
    if (!instance_id.ok()) return std::move(done)(instance_id.status());
    absl::Status status;
    if (attach) {
      if (!device.empty() && device != "virtio" && device != "ide") {
        AddFieldViolation(status, "device", "must be virtio or ide");
      }
      bool channel_ok = channel.empty();
      if (!channel.empty()) {
        std::pair<std::string, std::string> cu = absl::StrSplit(channel, ':');
        int c = -1, u = -1;
        channel_ok = absl::SimpleAtoi(cu.first, &c) && absl::SimpleAtoi(cu.second, &u) &&
                     c >= 0 && u >= 0 && c < 1024 && u < 6 &&
                     (device != "ide" || (c <= 1 && u <= 1));
      }
      if (!channel_ok) {
        AddFieldViolation(status, "channel",
                          "must be controller:unit (virtio units 0-5; ide 0:0, 0:1, 1:0, 1:1)");
      }
      if (boot_order < 0) AddFieldViolation(status, "boot_order", "must not be negative");
    }
    if (!status.ok()) return std::move(done)(status);
    auto account = account_;
    const absl::Time deadline = ctx.deadline;
    ServerEdit::Attach item{.device = device, .channel = channel, .boot_order = boot_order};
    FindObject(
        account, deadline, "drives", *volume_id, volume_name, "volume",
        [account, deadline, instance_id = *instance_id, instance_name, attach, item,
         validate_only, done = std::move(done)](absl::StatusOr<WireObject> drive) mutable {
          if (!drive.ok()) return std::move(done)(drive.status());
          FindObject(
              account, deadline, "servers", instance_id, instance_name, "instance",
              [account, deadline, drive = *drive, instance_name, attach, item, validate_only,
               done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
                if (!server.ok()) return std::move(done)(server.status());
                auto has = ServerHasDrive(server->json, drive.uuid);
                if (!has.ok()) return std::move(done)(has.status());
                const PollTarget target{.kind = "drive", .uuid = drive.uuid,
                                        .goal = attach ? Goal::kMounted : Goal::kUnmounted,
                                        .other = server->uuid};
                if (*has == attach) {  // already as asked: converge only
                  if (validate_only) return std::move(done)(Done(v1::Volume()));
                  return Poll(account, deadline, target, std::move(done));
                }
                // CloudSigma ignores drive list changes of a running server
                // without an error (§5.2), so they are refused here.
                if (server->status != "stopped") {
                  return std::move(done)(WrongState(
                      absl::StrCat("instance ", instance_name, " is ", server->status,
                                   "; volumes are attached and detached while it is stopped"),
                      instance_name, server->status));
                }
                if (attach && drive.status != "unmounted" && drive.status != "mounted") {
                  return std::move(done)(WrongState(
                      absl::StrCat("the volume is ", drive.status, "; wait until it is ready"),
                      instance_name, drive.status));
                }
                if (validate_only) return std::move(done)(Done(v1::Volume()));
                ServerEdit edit;
                if (attach) {
                  item.drive_uuid = drive.uuid;
                  edit.attach = item;
                } else {
                  edit.detach_uuid = drive.uuid;
                }
                PutServer(account, deadline, *server, edit,
                          [target, done = std::move(done)](
                              absl::StatusOr<WireObject> updated) mutable {
                            if (!updated.ok()) return std::move(done)(updated.status());
                            std::move(done)(
                                Pending(target, "waiting for the drive's mounted_on"));
                          });
              });
        });
  }

  const AccountPtr account_;
  const std::shared_ptr<Feed> feed_;
};

}  // namespace

ProviderInfo CloudSigmaProviderInfo() {
  ProviderInfo info;
  info.kind = "cloudsigma";
  info.display_name = "CloudSigma API 2.0";
  info.protocol = "REST/JSON over HTTPS, events over a websocket";
  info.watch_source = WatchSource::kPush;
  for (absl::string_view m :
       {"ListInstances", "GetInstance", "CreateInstance", "UpdateInstance", "DeleteInstance",
        "StartInstance", "StopInstance", "RebootInstance", "GetInstanceMetadata",
        "UpdateInstanceMetadata", "ListImages", "GetImage", "ListLocations", "GetLocation"}) {
    info.supported_methods.push_back(FullMethodName("ComputeService", m));
  }
  for (absl::string_view m : {"ListVolumes", "GetVolume", "CreateVolume", "CloneVolume",
                              "UpdateVolume", "DeleteVolume", "AttachVolume", "DetachVolume"}) {
    info.supported_methods.push_back(FullMethodName("VolumesService", m));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateCloudSigmaProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  absl::Status status;
  std::vector<std::string> keys;
  for (const auto& [key, value] : setup.options) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  std::string ws_url;
  for (const std::string& key : keys) {
    if (key == "ws_endpoint") {
      ws_url = setup.options.at(key);
      if (auto u = websocket::ParseWebSocketUrl(ws_url); !u.ok()) {
        AddFieldViolation(status, "options.ws_endpoint", u.status().message());
      }
    } else {
      AddFieldViolation(status, absl::StrCat("options.", key),
                        absl::StrCat("unknown option \"", key,
                                     "\": the cloudsigma provider takes ws_endpoint"));
    }
  }
  const size_t colon = setup.secret.find(':');
  if (colon == std::string::npos || colon == 0) {
    // Never echo the secret.
    AddFieldViolation(status, "credentials",
                      "the CloudSigma secret must be \"username:password\"");
  }
  if (!status.ok()) return status;
  absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(setup.endpoint);
  if (!endpoint.ok()) return InvalidField("endpoint", endpoint.status().message());
  if (!endpoint->unix_socket_path.empty()) {
    return InvalidField("endpoint", "CloudSigma is reached over http(s), not a unix socket");
  }
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
  account->authorization = absl::StrCat("Basic ", absl::Base64Escape(setup.secret));
  std::shared_ptr<Feed> feed;
  if (setup.changes != nullptr) {
    feed = std::make_shared<Feed>(account, ws_url, setup.verify_tls, setup.ca_file,
                                  setup.changes, setup.loop);
    feed->Start();
  }
  return std::make_unique<CloudSigmaProvider>(std::move(account), std::move(feed));
}

absl::Status RegisterCloudSigma(AdapterRegistry& registry) {
  return registry.Register(CloudSigmaProviderInfo(), [](const AccountSetup& setup) {
    return CreateCloudSigmaProvider(setup);
  });
}

}  // namespace cloudplane::adapters::cloudsigma
