#include "service/audit_log.h"

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/rpc/code.pb.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::service {
namespace {

constexpr absl::string_view kAccountPrefix = "accounts/";

// Length of the valid UTF-8 sequence at the start of `s`, or 0 when it does
// not start with one (overlong forms, surrogates and values above U+10FFFF
// are invalid, as RFC 3629 says).
size_t ValidUtf8Prefix(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  }
  return n;
}

// Replaces every byte that is not part of valid UTF-8 with U+FFFD. Strings
// in an event come from requests (already valid: protobuf checks) but also
// from certificates and tokens; a proto3 string field must hold UTF-8, or
// the stored event would not parse back, and the JSON line must be valid.
void SanitizeUtf8(std::string* s) {
  absl::string_view rest = *s;
  size_t first_bad = 0;
  for (; first_bad < rest.size();) {
    size_t n = ValidUtf8Prefix(rest.substr(first_bad));
    if (n == 0) break;
    first_bad += n;
  }
  if (first_bad == rest.size()) return;  // The common case: no copy.
  std::string out(rest.substr(0, first_bad));
  rest.remove_prefix(first_bad);
  while (!rest.empty()) {
    size_t n = ValidUtf8Prefix(rest);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      rest.remove_prefix(1);
    } else {
      out.append(rest.data(), n);
      rest.remove_prefix(n);
    }
  }
  *s = std::move(out);
}

void SanitizeEvent(v1::AuditEvent& e) {
  for (std::string* s :
       {e.mutable_principal(), e.mutable_credential(), e.mutable_method(),
        e.mutable_resource(), e.mutable_account(), e.mutable_request_id(),
        e.mutable_permission(), e.mutable_message(), e.mutable_operation()}) {
    SanitizeUtf8(s);
  }
}

absl::Time EventTime(const v1::AuditEvent& e) {
  return absl::FromUnixSeconds(e.time().seconds()) +
         absl::Nanoseconds(e.time().nanos());
}

// The account id an event is filed under: `accounts/{id}` → id. Anything
// else (a malformed name from a refused request) is filed under the whole
// string, so it is visible to an ADMIN of every account only.
std::string AccountId(absl::string_view account) {
  if (absl::StartsWith(account, kAccountPrefix) &&
      account.size() > kAccountPrefix.size() &&
      !absl::StrContains(account.substr(kAccountPrefix.size()), '/')) {
    return std::string(account.substr(kAccountPrefix.size()));
  }
  return std::string(account);
}

}  // namespace

// ---- State ------------------------------------------------------------------

// Shared with the tasks posted to the loop, so a flush posted before the
// AuditLog died finds either the state (and an empty queue) or nothing.
struct AuditLog::State {
  State(store::Store* store, EventLoop* loop, std::ostream* log,
        Options options)
      : store(store),
        loop(loop),
        log(log),
        max_queued(options.max_queued),
        retention(options.retention),
        trim_interval(TrimInterval(options.retention)),
        clock(options.clock ? std::move(options.clock) : [] {
          return absl::Now();
        }) {}

  void WriteLine(absl::string_view line) {
    absl::MutexLock lock(&log_mu);
    log->write(line.data(), static_cast<std::streamsize>(line.size()));
    log->flush();
  }

  absl::Status Flush() ABSL_LOCKS_EXCLUDED(mu, flush_mu) {
    // flush_mu keeps batches in queue order when the loop's flush and a
    // caller's Flush run at once.
    absl::MutexLock flush_lock(&flush_mu);
    std::vector<store::AuditRecord> batch;
    int64_t dropped_now = 0;
    {
      absl::MutexLock lock(&mu);
      batch.swap(queue);
      dropped_now = dropped_unreported;
      dropped_unreported = 0;
      if (!batch.empty()) ++stats.flushes;
    }
    if (dropped_now > 0) {
      WriteLine(absl::StrCat("cloudplaned: audit: the queue was full (",
                             max_queued, " events); ", dropped_now,
                             " events were logged but not stored\n"));
    }
    if (batch.empty()) return absl::OkStatus();
    absl::Status s = store->AppendAuditEvents(batch);
    {
      absl::MutexLock lock(&mu);
      (s.ok() ? stats.stored : stats.failed) +=
          static_cast<int64_t>(batch.size());
    }
    if (!s.ok()) {
      WriteLine(absl::StrCat("cloudplaned: audit: cannot store ", batch.size(),
                             " events (they are in this log): ", s.ToString(),
                             "\n"));
    }
    return s;
  }

  // Deletes the events beyond the retention when a trim is due. Runs after
  // the loop's flush, on the loop thread: a disk write like the flush, and
  // as rare as TrimInterval allows.
  void MaybeTrim() ABSL_LOCKS_EXCLUDED(trim_mu, mu) {
    if (retention == absl::InfiniteDuration() ||
        retention <= absl::ZeroDuration()) {
      return;
    }
    absl::MutexLock trim_lock(&trim_mu);
    const absl::Time now = clock();
    if (now < next_trim) return;
    // Set before trying: a failure waits for the next due time instead of
    // hammering a store that is failing.
    next_trim = now + trim_interval;
    const absl::Time cutoff = now - retention;
    absl::StatusOr<int64_t> removed = store->TrimAuditEventsBefore(cutoff);
    {
      absl::MutexLock lock(&mu);
      ++stats.trims;
      if (removed.ok()) stats.removed += *removed;
    }
    const std::string when =
        absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", cutoff, absl::UTCTimeZone());
    if (!removed.ok()) {
      WriteLine(absl::StrCat("cloudplaned: audit log: cannot remove events "
                             "older than ", when, " (will retry in ",
                             absl::FormatDuration(trim_interval), "): ",
                             removed.status().ToString(), "\n"));
    } else if (*removed > 0) {
      WriteLine(absl::StrCat("cloudplaned: audit log: removed ", *removed,
                             " events older than ", when, "\n"));
    }
  }

  store::Store* const store;
  EventLoop* const loop;
  std::ostream* const log;
  const size_t max_queued;
  const absl::Duration retention;
  const absl::Duration trim_interval;
  const std::function<absl::Time()> clock;

  absl::Mutex log_mu;
  absl::Mutex flush_mu ABSL_ACQUIRED_BEFORE(mu);
  mutable absl::Mutex mu;
  std::vector<store::AuditRecord> queue ABSL_GUARDED_BY(mu);
  // A loop flush is posted and has not yet taken the queue.
  bool flush_posted ABSL_GUARDED_BY(mu) = false;
  int64_t dropped_unreported ABSL_GUARDED_BY(mu) = 0;
  Stats stats ABSL_GUARDED_BY(mu);
  absl::Mutex trim_mu ABSL_ACQUIRED_BEFORE(mu);
  // When the loop's flush trims next; the first flush trims.
  absl::Time next_trim ABSL_GUARDED_BY(trim_mu) = absl::InfinitePast();
};

// ---- AuditLog -----------------------------------------------------------------

AuditLog::AuditLog(store::Store* store, EventLoop* loop, std::ostream* log,
                   size_t max_queued)
    : AuditLog(store, loop, log, Options{.max_queued = max_queued}) {}

AuditLog::AuditLog(store::Store* store, EventLoop* loop, std::ostream* log,
                   Options options)
    : state_(std::make_shared<State>(store, loop, log, std::move(options))) {}

AuditLog::~AuditLog() { state_->Flush().IgnoreError(); }

absl::Duration AuditLog::TrimInterval(absl::Duration retention) {
  // A tenth: an event lives at most 1.1 times the retention (plus the wait
  // for the next write), and a trim removes about a tenth of the table.
  return std::clamp(retention / 10, kMinTrimInterval, kMaxTrimInterval);
}

void AuditLog::Record(v1::AuditEvent event) {
  if (!event.has_time()) {
    absl::Time now = absl::Now();
    event.mutable_time()->set_seconds(absl::ToUnixSeconds(now));
    event.mutable_time()->set_nanos(static_cast<int32_t>(
        (now - absl::FromUnixSeconds(absl::ToUnixSeconds(now))) /
        absl::Nanoseconds(1)));
  }
  event.clear_name();
  SanitizeEvent(event);
  state_->WriteLine(absl::StrCat(JsonLine(event), "\n"));

  store::AuditRecord record;
  record.time = EventTime(event);
  record.principal = event.principal();
  record.account = AccountId(event.account());
  record.bytes = event.SerializeAsString();

  bool post = false;
  {
    absl::MutexLock lock(&state_->mu);
    ++state_->stats.recorded;
    if (state_->queue.size() >= state_->max_queued) {
      ++state_->dropped_unreported;
      ++state_->stats.dropped;
      // A full queue has a flush posted already (or a loop that is gone);
      // that flush reports the drop.
      return;
    }
    state_->queue.push_back(std::move(record));
    if (!state_->flush_posted) post = state_->flush_posted = true;
  }
  if (!post) return;
  std::weak_ptr<State> weak = state_;
  bool posted = state_->loop->Post([weak] {
    std::shared_ptr<State> state = weak.lock();
    if (state == nullptr) return;
    {
      absl::MutexLock lock(&state->mu);
      state->flush_posted = false;
    }
    // Errors are logged by Flush and MaybeTrim.
    state->Flush().IgnoreError();
    state->MaybeTrim();
  });
  if (!posted) {
    // The loop is shutting down: the events wait for an explicit Flush (the
    // server's shutdown, or the destructor).
    absl::MutexLock lock(&state_->mu);
    state_->flush_posted = false;
  }
}

absl::Status AuditLog::Flush() { return state_->Flush(); }

AuditLog::Stats AuditLog::stats() const {
  absl::MutexLock lock(&state_->mu);
  return state_->stats;
}

std::string AuditLog::JsonLine(const v1::AuditEvent& event) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto field = [&w](const char* key, absl::string_view value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  w.Key("audit");
  w.StartObject();
  field("time", absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", EventTime(event),
                                 absl::UTCTimeZone()));
  field("principal", event.principal());
  field("credential", event.credential());
  field("method", event.method());
  field("resource", event.resource());
  field("account", event.account());
  field("request_id", event.request_id());
  field("permission", event.permission());
  const std::string& code_name = google::rpc::Code_Name(event.code());
  field("code", code_name.empty() ? absl::StrCat(static_cast<int>(event.code()))
                                  : code_name);
  field("message", event.message());
  field("operation", event.operation());
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// ---- Listing ------------------------------------------------------------------

absl::StatusOr<store::AuditQuery> ToAuditQuery(
    const v1::ListAuditEventsRequest& request) {
  store::AuditQuery query;
  if (!request.account().empty()) {
    std::string id = AccountId(request.account());
    if (id == request.account()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "account must look like accounts/{account}, got ", request.account()));
    }
    query.account = std::move(id);
  }
  query.principal = request.principal();
  // google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31.
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  for (auto [set, ts, out, name] :
       {std::make_tuple(request.has_start_time(), &request.start_time(),
                        &query.start, "start_time"),
        std::make_tuple(request.has_end_time(), &request.end_time(),
                        &query.end, "end_time")}) {
    if (!set) continue;  // open
    if (ts->seconds() < kMinSeconds || ts->seconds() > kMaxSeconds ||
        ts->nanos() < 0 || ts->nanos() > 999999999) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is not a valid timestamp"));
    }
    *out = absl::FromUnixSeconds(ts->seconds()) + absl::Nanoseconds(ts->nanos());
  }
  if (query.start > query.end) {
    return absl::InvalidArgumentError("start_time must not be after end_time");
  }
  query.page_size = request.page_size();
  query.page_token = request.page_token();
  return query;
}

absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
    store::Store& store, const store::AuditQuery& query) {
  ASSIGN_OR_RETURN(store::AuditPage page, store.ListAuditEvents(query));
  v1::ListAuditEventsResponse response;
  for (const store::AuditRecord& record : page.records) {
    v1::AuditEvent* event = response.add_audit_events();
    if (!event->ParseFromString(record.bytes)) {
      return absl::DataLossError(
          absl::StrCat("audit event ", record.seq, " does not parse"));
    }
    event->set_name(absl::StrCat("auditEvents/", record.seq));
  }
  response.set_next_page_token(std::move(page.next_page_token));
  return response;
}

}  // namespace cloudplane::service
