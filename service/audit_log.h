// The audit trail: every accepted mutation and every refused call becomes one
// cloudplane.v1.AuditEvent, written twice:
//
//   1. at once, as one JSON line `{"audit":{...}}` on the server log, so an
//      operator sees it even if the database is unreachable;
//   2. later, in the store's audit_events table (AuditService reads it),
//      batched: the first event queued posts a flush to the EventLoop, which
//      writes everything queued by then in one transaction. A burst of
//      refused calls thus costs one fsync, not one per call, and Record never
//      waits for the disk.
//
// The queue is bounded (`max_queued`). Beyond it events are dropped from the
// database (their log line is still written) and counted; the next flush
// logs how many were dropped. A flood of refused calls cannot grow memory
// without bound. A failed write is logged and the batch is lost from the
// database (its lines are in the log); later batches are written as usual.
//
// Retention (Options::retention): the flush the loop runs also deletes the
// stored events older than `retention`, at its first run after the AuditLog
// is made and then at most once per TrimInterval(retention): a tenth of the
// retention, but at most 10 minutes and at least 1 second, so a short
// retention (a minute, in a test or a benchmark) keeps the table at about
// 1.1 times its window and a long one costs one trim per 10 minutes of
// writing. It runs only there: never
// on Record's path, nor in an explicit Flush (so shutdown does not wait for
// it). A failed trim is logged and tried again when it is next due; a trim
// that removed events logs one line saying how many. As the trims ride on
// the flushes, a server that records no events trims nothing (and adds
// nothing either).
//
// The store keeps each event without its name; `auditEvents/{seq}` is set
// from the store's sequence when the events are read (ListAuditEvents below).
//
// Thread-safety: Record and stats may be called from any thread, the loop
// thread included; they never touch the disk. Flush does the write on the
// calling thread, so it must not run on a transport thread
// (base/thread_role.h) or inside a store transaction. Log lines are written
// whole (one write under a mutex), so lines from concurrent calls do not
// interleave with each other.
//
// Lifetime: `store`, `loop` and `log` must outlive the AuditLog. The
// destructor flushes what is still queued; a flush already posted to the
// loop that runs after the destructor does nothing.
#ifndef CLOUDPLANE_SERVICE_AUDIT_LOG_H_
#define CLOUDPLANE_SERVICE_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/event_loop.h"
#include "cloudplane/v1/audit.pb.h"
#include "store/store.h"

namespace cloudplane::service {

class AuditLog {
 public:
  static constexpr size_t kDefaultMaxQueued = 10000;
  // Bounds of TrimInterval.
  static constexpr absl::Duration kMaxTrimInterval = absl::Minutes(10);
  static constexpr absl::Duration kMinTrimInterval = absl::Seconds(1);
  // How often the loop's flush deletes events beyond `retention`: a tenth of
  // it, clamped to [kMinTrimInterval, kMaxTrimInterval].
  static absl::Duration TrimInterval(absl::Duration retention);

  struct Options {
    size_t max_queued = kDefaultMaxQueued;
    // Stored events older than this are deleted (see Retention above).
    // absl::InfiniteDuration(), and any value <= 0, keeps every event.
    absl::Duration retention = absl::InfiniteDuration();
    // Source of now for retention (the cut-off and when a trim is due);
    // absl::Now when empty. Called on the loop thread only.
    std::function<absl::Time()> clock;
  };

  struct Stats {
    int64_t recorded = 0;  // Record calls.
    int64_t stored = 0;    // Events written to the store.
    int64_t dropped = 0;   // Events not queued because the queue was full.
    int64_t failed = 0;    // Events whose batch the store refused.
    int64_t flushes = 0;   // Non-empty batches handed to the store.
    int64_t trims = 0;     // Retention trims attempted (failed ones too).
    int64_t removed = 0;   // Events the trims deleted.
  };

  // `log` receives the JSON lines and the audit log's own error lines
  // (e.g. &std::cerr).
  AuditLog(store::Store* store, EventLoop* loop, std::ostream* log,
           size_t max_queued = kDefaultMaxQueued);
  AuditLog(store::Store* store, EventLoop* loop, std::ostream* log,
           Options options);
  ~AuditLog();

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Stamps `event.time` with now when it is unset, clears `name` (the store
  // assigns it), replaces invalid UTF-8 in its strings, writes its JSON line
  // and queues it for the store. Never blocks on the disk.
  void Record(v1::AuditEvent event);

  // Writes what is queued now in one store transaction on the calling thread
  // (and logs the number of events dropped since the last flush). OK when
  // there was nothing to write; otherwise the store's error, which is also
  // logged. Never trims (only the loop's flush does).
  absl::Status Flush();

  Stats stats() const;

  // The JSON line Record writes for `event`, without the trailing newline:
  // `{"audit":{"time":"2024-05-01T12:00:00.000001Z","principal":...}}` with
  // every field of AuditEvent but `name`, strings JSON-escaped, `code` as
  // its google.rpc.Code name. Exposed for tests and tools.
  static std::string JsonLine(const v1::AuditEvent& event);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// A ListAuditEventsRequest's filters as a store query: `account`
// `accounts/{id}` becomes the id, the timestamps become start/end (unset =
// open). The caller adds the `accounts` restriction (the accounts the
// caller may read the audit log of).
//   INVALID_ARGUMENT  `account` is not `accounts/{id}`, a timestamp is out of
//                     range, or start_time is after end_time.
absl::StatusOr<store::AuditQuery> ToAuditQuery(
    const v1::ListAuditEventsRequest& request);

// One page of the store's audit events as the API returns them: each event
// parsed and named `auditEvents/{seq}`. The store's errors as documented
// there (INVALID_ARGUMENT for a foreign page token); DATA_LOSS when a stored
// event does not parse.
absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
    store::Store& store, const store::AuditQuery& query);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_AUDIT_LOG_H_
