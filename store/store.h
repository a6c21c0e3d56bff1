// Durable persistence for cloudplaned: long-running operations (with
// request_id idempotency), a generic key/value resource table and a change
// log, all in one SQLite database file.
//
// Durability contract: every mutating call runs in its own SQLite transaction
// (or inside the caller's `RunInTransaction`) and returns only after the
// commit has been fsync'ed (WAL mode, synchronous=FULL). A call that returned
// OK survives a SIGKILL of the process or a power loss; a call interrupted by
// a crash leaves either all of its writes or none of them.
//
// Blocking: every method does local disk I/O on the calling thread (a commit
// includes an fsync, typically well under a few milliseconds on local disks,
// more on network storage). Call it from worker threads, never from a thread
// that must not block (an event loop driving libcurl, for example).
//
// Thread-safety: a `Store` is safe to use from any number of threads. It owns
// one SQLite connection guarded by a mutex, so calls are serialised. Several
// processes may open the same file; SQLite's file locks plus a busy timeout
// arbitrate between them.
//
// Group commit: concurrent writes share one commit, hence one fsync. Each
// mutating call (and each RunInTransaction) queues its work; the first
// caller that finds no commit under way becomes the leader and runs every
// write queued by then in one transaction, each inside a SAVEPOINT of its
// own, then commits once and wakes the others. A write that fails is rolled
// back to its savepoint alone: the others of the batch commit as if it had
// never run. Every caller still returns only after the commit that holds its
// work is durable, with its own status. While one batch commits, the next
// one gathers, so the number of fsyncs per second stays near the disk's
// limit however many threads write, and each costs 1/batch of one.
//
// Errors common to all methods (besides the per-method ones listed below):
//   UNAVAILABLE         the database stayed locked by another process longer
//                       than the busy timeout, or an I/O error; retryable.
//   RESOURCE_EXHAUSTED  the disk is full or SQLite ran out of memory.
//   DATA_LOSS           the file is corrupt or holds undecodable data.
//   FAILED_PRECONDITION a Store method was called from inside a
//                       RunInTransaction callback (use the TxnView instead),
//                       or the database file is read-only.
//
// Times are stored with microsecond precision; the records returned by the
// store carry exactly the stored values.
#ifndef CLOUDPLANE_STORE_STORE_H_
#define CLOUDPLANE_STORE_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/longrunning/operations.pb.h"

namespace cloudplane::store {

namespace internal {
class Conn;  // The SQLite connection and its statement cache (store_internal.h).
}  // namespace internal

// One long-running operation as cloudplaned tracks it.
struct OperationRecord {
  // The operation as clients see it. `op.name()` (e.g. "operations/<uuid>")
  // is the primary key; `op.done()` decides whether the operation counts as
  // unfinished.
  google::longrunning::Operation op;
  // Identity fields, fixed when the record is inserted.
  std::string account;
  std::string method;  // Full RPC name, "/cloudplane.v1.Compute/CreateVm".
  std::string request_id;  // Client-chosen idempotency key; empty = none.
  // Hash of the request with request_id/validate_only cleared; detects a
  // request_id reused for a different request.
  std::string request_fingerprint;
  // Adapter-owned progress, rewritten by UpdateOperation.
  std::string phase;       // "accepted", "submitted", ...
  std::string poll_token;  // Data to resume polling after a restart.
  // Set by the store: create_time on insert, update_time on every write.
  // Values passed in are ignored.
  absl::Time create_time;
  absl::Time update_time;
};

struct InsertResult {
  OperationRecord record;  // The stored record (new, or the existing one).
  bool existed = false;    // True when a request_id match was returned.
};

struct ListOperationsQuery {
  std::string account;          // Only this account's operations; empty = all.
  // Non-empty: only operations of these accounts (AND-ed with `account`, so
  // an `account` outside the set gives empty pages). Empty means no
  // restriction: a caller that may see no account must not list at all.
  std::vector<std::string> accounts;
  bool only_unfinished = false;  // Only operations with op.done() == false.
  int page_size = 0;             // 0 = 50; values above 1000 mean 1000.
  std::string page_token;        // From a previous page of the same query.
};

struct OperationPage {
  std::vector<OperationRecord> records;
  std::string next_page_token;  // Empty on the last page.
};

struct ResourceEntry {
  std::string id;
  std::string bytes;
};

struct ResourcePage {
  std::vector<ResourceEntry> resources;
  std::string next_page_token;  // Empty on the last page.
};

struct Change {
  int64_t seq = 0;  // Strictly increasing; never reused, even after trims.
  std::string account;
  std::string kind;
  std::string resource_name;
  int change_type = 0;
  std::string bytes;
  absl::Time time;  // When it was appended.
};

// One audited call (service/audit_log.h). The store keeps the serialized
// cloudplane.v1.AuditEvent as opaque bytes, like resources, plus the columns
// the queries filter on; the event's name `auditEvents/{seq}` is derived
// from `seq` by the reader, so the bytes are stored without it.
struct AuditRecord {
  int64_t seq = 0;        // Set by the store; ignored on append.
  absl::Time time;        // When the call happened (set by the caller).
  std::string principal;  // Empty for an unauthenticated caller.
  std::string account;    // Account id without `accounts/`; empty = none.
  std::string bytes;      // The serialized event.
};

struct AuditQuery {
  std::string account;    // Only this account's events (id); empty = all.
  // Non-empty: only events of these account ids, AND-ed with `account`. An
  // element "" admits the events that name no account. Empty means no
  // restriction.
  std::vector<std::string> accounts;
  std::string principal;  // Only this principal's events; empty = all.
  absl::Time start = absl::InfinitePast();   // Events at or after.
  absl::Time end = absl::InfiniteFuture();   // Events before.
  int page_size = 0;      // 0 = 50; values above 1000 mean 1000.
  std::string page_token;  // From a previous page of the same query.
};

struct AuditPage {
  std::vector<AuditRecord> records;  // Newest (highest seq) first.
  std::string next_page_token;       // Empty on the last page.
};

// The operations available inside `Store::RunInTransaction`. Each one has the
// contract of the Store method of the same name, except that nothing is
// committed until the callback returns OK. Valid only during the callback and
// only on the thread that runs it.
class TxnView {
 public:
  absl::StatusOr<std::string> GetResource(absl::string_view account,
                                          absl::string_view collection,
                                          absl::string_view id);
  absl::Status PutResource(absl::string_view account,
                           absl::string_view collection, absl::string_view id,
                           absl::string_view bytes);
  absl::StatusOr<bool> DeleteResource(absl::string_view account,
                                      absl::string_view collection,
                                      absl::string_view id);
  absl::StatusOr<ResourcePage> ListResources(absl::string_view account,
                                             absl::string_view collection,
                                             int page_size,
                                             absl::string_view page_token);
  absl::StatusOr<int64_t> AppendChange(absl::string_view account,
                                       absl::string_view kind,
                                       absl::string_view resource_name,
                                       int change_type,
                                       absl::string_view bytes);
  absl::StatusOr<OperationRecord> GetOperation(absl::string_view name);
  absl::Status UpdateOperation(const OperationRecord& record);

 private:
  friend class Store;
  explicit TxnView(class Store* store) : store_(store) {}
  class Store* store_;
};

class Store {
 public:
  // The schema version this binary writes (PRAGMA user_version). Older files
  // are migrated forward on Open; newer ones are refused.
  static constexpr int kSchemaVersion = 3;

  struct Options {
    // Source of create/update/change times; absl::Now when empty. Times are
    // additionally kept non-decreasing within one Store.
    std::function<absl::Time()> clock;
    // How long a call waits for another process's lock before UNAVAILABLE.
    absl::Duration busy_timeout = absl::Seconds(5);
  };

  // Opens (creating if needed, with its parent directories) the database at
  // `path` and migrates its schema to kSchemaVersion. A database file this
  // call creates is mode 0600 (its -wal and -shm files follow it), and the
  // file's directory, when this call creates it, 0700, whatever the umask;
  // an existing file or directory keeps its mode.
  //   INVALID_ARGUMENT    empty path, ":memory:", a directory, or a file that
  //                       is not a SQLite database.
  //   FAILED_PRECONDITION the file's schema is newer than kSchemaVersion.
  //   UNAVAILABLE         the file or a directory cannot be created/opened
  //                       (permissions, missing mount, ...).
  static absl::StatusOr<std::unique_ptr<Store>> Open(std::string path);
  static absl::StatusOr<std::unique_ptr<Store>> Open(std::string path,
                                                     Options options);
  // A private in-memory database, for unit tests. Not durable.
  static absl::StatusOr<std::unique_ptr<Store>> OpenInMemory();
  static absl::StatusOr<std::unique_ptr<Store>> OpenInMemory(Options options);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();

  // ---- Operations ---------------------------------------------------------

  // Atomically either returns the record already stored under the same
  // (account, method, request_id), when request_id is non-empty, with
  // existed=true, or inserts `record` (times stamped) with existed=false.
  //   INVALID_ARGUMENT  op.name() is empty.
  //   ALREADY_EXISTS    the request_id was used before with a different
  //                     request_fingerprint, or an operation with this name
  //                     already exists.
  absl::StatusOr<InsertResult> InsertOperation(const OperationRecord& record);

  // Replaces op, phase and poll_token of the operation named op.name() and
  // stamps update_time. The identity fields (account, method, request_id,
  // request_fingerprint, create_time) cannot change; their values in `record`
  // are ignored.
  //   NOT_FOUND  no such operation.
  absl::Status UpdateOperation(const OperationRecord& record);

  //   NOT_FOUND  no such operation.
  absl::StatusOr<OperationRecord> GetOperation(absl::string_view name);

  // One page of operations ordered by (create_time, name). Paging is keyset
  // based: records inserted or deleted between pages never make another
  // record appear twice or be skipped; records created after the first page
  // may or may not appear. Tokens stay valid across restarts.
  //   INVALID_ARGUMENT  negative page_size; a malformed page_token, or one
  //                     issued for a different account/only_unfinished.
  absl::StatusOr<OperationPage> ListOperations(
      const ListOperationsQuery& query);

  // Every operation with op.done() == false, ordered by (create_time, name):
  // what the server resumes after a restart.
  absl::StatusOr<std::vector<OperationRecord>> ListUnfinishedOperations();

  //   NOT_FOUND  no such operation.
  absl::Status DeleteOperation(absl::string_view name);

  // Retention: deletes up to `limit` finished operations (op.done() true)
  // whose last write (update_time) is before `before`, oldest first, and
  // returns how many it deleted. Their request_id goes with them: a later
  // InsertOperation with the same (account, method, request_id) inserts a
  // new operation. Unfinished operations are never deleted, however old.
  // One transaction of at most `limit` deletions (an index finds them), so
  // a caller that must not hold the store long calls it repeatedly until it
  // returns less than `limit`.
  //   INVALID_ARGUMENT  limit outside [1, 10000].
  absl::StatusOr<int64_t> PruneFinishedOperations(absl::Time before,
                                                  int limit);

  // ---- Resources: opaque bytes keyed by (account, collection, id) ---------
  // collection and id must be non-empty (INVALID_ARGUMENT otherwise).

  //   NOT_FOUND  no such resource.
  absl::StatusOr<std::string> GetResource(absl::string_view account,
                                          absl::string_view collection,
                                          absl::string_view id);
  // Creates or overwrites.
  absl::Status PutResource(absl::string_view account,
                           absl::string_view collection, absl::string_view id,
                           absl::string_view bytes);
  // Returns whether the resource existed.
  absl::StatusOr<bool> DeleteResource(absl::string_view account,
                                      absl::string_view collection,
                                      absl::string_view id);
  // One page of a collection ordered by id (keyset paging as above).
  // page_size: 0 = 50, above 1000 = 1000.
  //   INVALID_ARGUMENT  negative page_size; malformed page_token, or one
  //                     issued for another account/collection.
  absl::StatusOr<ResourcePage> ListResources(absl::string_view account,
                                             absl::string_view collection,
                                             int page_size,
                                             absl::string_view page_token);
  // Keyset read for callers that keep their own cursor (the sandbox's list
  // pages, whose tokens carry a resource name): up to `limit` resources of
  // the collection whose id is above `after_id` ("" = from the first),
  // ordered by id (byte order), read through the primary key index, so the
  // cost grows with `limit`, not with the collection.
  //   INVALID_ARGUMENT  empty collection; limit outside [1, 10000].
  absl::StatusOr<std::vector<ResourceEntry>> ListResourcesAfter(
      absl::string_view account, absl::string_view collection,
      absl::string_view after_id, int limit);

  // Runs `fn` inside one write transaction: commits if it returns OK, rolls
  // everything back otherwise and returns its status. Other callers of this
  // Store wait meanwhile, so keep `fn` short and free of network I/O. `fn`
  // must use the TxnView, not this Store (FAILED_PRECONDITION).
  //
  // Group commit (see the top of this file): `fn` may run on another thread
  // (the caller that commits the batch) while this one waits, so it must not
  // depend on which thread runs it, nor take a lock that a caller of a Store
  // method may hold. Rarely it runs more than once: when another write of
  // its batch fails so badly that SQLite abandons the whole transaction (an
  // I/O error, a full disk), the writes that had succeeded run again in the
  // next batch. So `fn` must set its results by assignment, not accumulate
  // them across calls.
  absl::Status RunInTransaction(absl::FunctionRef<absl::Status(TxnView&)> fn);

  // ---- Counters (tests, benchmarks) ---------------------------------------

  struct Stats {
    // Write calls (mutating methods and RunInTransaction) that committed.
    int64_t writes = 0;
    // Transactions committed: each is one fsync of the WAL for a file
    // database; a commit carries one write or more (group commit).
    int64_t commits = 0;
    // Writes queued right now for the next batch.
    int64_t queued = 0;
  };
  Stats GetStats() const;

  // ---- Change log (Watch resumption) --------------------------------------

  // Appends a change and returns its sequence number (> every earlier one).
  absl::StatusOr<int64_t> AppendChange(absl::string_view account,
                                       absl::string_view kind,
                                       absl::string_view resource_name,
                                       int change_type,
                                       absl::string_view bytes);
  // Up to `limit` (1..10000) changes with seq > `after_seq`, ascending.
  // Pass 0 to read from the beginning.
  //   INVALID_ARGUMENT  limit out of range or after_seq < 0.
  //   OUT_OF_RANGE      changes after `after_seq` were already trimmed, so the
  //                     caller must resynchronise from a full listing.
  absl::StatusOr<std::vector<Change>> ListChangesSince(int64_t after_seq,
                                                       int limit);
  // The highest seq ever assigned (0 if none), even if since trimmed.
  absl::StatusOr<int64_t> LastChangeSeq();
  // Deletes changes with seq < `seq`; later ListChangesSince(s) with
  // s + 1 < seq return OUT_OF_RANGE.
  absl::Status TrimChangesBefore(int64_t seq);
  // Retention by age: deletes the oldest changes appended before `before`,
  // at most `limit` of them, and returns how many it deleted. Only a prefix
  // of the log goes (it stops at the first change appended at or after
  // `before`), so the trimmed part is always "every seq below N" and
  // ListChangesSince answers OUT_OF_RANGE for it, as after TrimChangesBefore.
  //   INVALID_ARGUMENT  limit outside [1, 10000].
  absl::StatusOr<int64_t> TrimChangesOlderThan(absl::Time before, int limit);
  // Retention by count: deletes the oldest changes so that only those with
  // the `keep` highest sequence numbers ever assigned can remain (so at most
  // `keep` entries), at most `limit` per call, and returns how many it
  // deleted. Same OUT_OF_RANGE rule as TrimChangesBefore.
  //   INVALID_ARGUMENT  keep < 0, or limit outside [1, 10000].
  absl::StatusOr<int64_t> TrimChangesToCount(int64_t keep, int limit);

  // ---- Audit log ----------------------------------------------------------

  // Appends `records` in order, in one transaction (all or none), giving each
  // a sequence number above every earlier one (never reused). Their `seq`
  // fields are ignored; `time` is kept as given.
  absl::Status AppendAuditEvents(const std::vector<AuditRecord>& records);

  // One page of the events matching `query`, newest (highest seq) first.
  // Keyset paging on seq: events appended between pages never make another
  // appear twice or be skipped (they are newer than the first page, so they
  // do not appear). Tokens stay valid across restarts.
  //   INVALID_ARGUMENT  negative page_size; start after end; a malformed
  //                     page_token, or one issued for a different query
  //                     (any filter, the `accounts` set included).
  absl::StatusOr<AuditPage> ListAuditEvents(const AuditQuery& query);

  // Deletes the events whose `time` is before `before` (retention) and
  // returns how many were deleted. Sequence numbers are never reused, so an
  // event appended later still gets a seq above every one ever given, and
  // page tokens issued before the trim stay valid (their pages just lack the
  // deleted events). One transaction; its cost grows with the number of
  // events deleted (the time index finds them).
  absl::StatusOr<int64_t> TrimAuditEventsBefore(absl::Time before);

 private:
  friend class TxnView;

  Store(std::unique_ptr<internal::Conn> conn, Options options);

  // One write waiting in queue_ for a leader to run and commit it.
  struct PendingWrite {
    absl::FunctionRef<absl::Status()> fn;
    absl::Status status;
    bool done = false;
  };
  // Queues `fn` and returns once a commit holding its work is durable, or
  // with its error (see group commit above). `fn` runs in a SAVEPOINT of a
  // BEGIN IMMEDIATE ... COMMIT transaction under mu_, on this thread or on
  // the leader's.
  absl::Status Write(absl::FunctionRef<absl::Status()> fn);
  // Runs `batch` in one transaction: each write gets its status in
  // `results`, except those whose work SQLite threw away with a failed
  // neighbour's, which go to `again` (to run in the next batch).
  void RunBatch(const std::vector<PendingWrite*>& batch,
                std::vector<std::pair<PendingWrite*, absl::Status>>& results,
                std::vector<PendingWrite*>& again) ABSL_LOCKS_EXCLUDED(mu_, queue_mu_);
  // Runs `fn` under mu_, in a read transaction (one snapshot for its
  // statements) unless `one_statement`: a single SELECT is its own snapshot,
  // and BEGIN/COMMIT around it were two thirds of the statements of a
  // GetInstance (issue 15).
  absl::Status Read(absl::FunctionRef<absl::Status()> fn, bool one_statement = false);
  absl::Status CheckNotInTransaction() const;
  absl::Time Now() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Lock order: queue_mu_ is never held while mu_ is taken.
  mutable absl::Mutex queue_mu_;
  std::deque<PendingWrite*> queue_ ABSL_GUARDED_BY(queue_mu_);
  // True while a leader runs a batch; the queue gathers the next one.
  bool leader_active_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> commits_{0};

  absl::Mutex mu_;
  std::unique_ptr<internal::Conn> conn_ ABSL_GUARDED_BY(mu_);
  const Options options_;
  absl::Time last_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // The thread inside RunInTransaction, to turn self-deadlock into an error.
  std::atomic<std::thread::id> txn_thread_{};
};

}  // namespace cloudplane::store

#endif  // CLOUDPLANE_STORE_STORE_H_
