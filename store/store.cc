// The Store core: opening the database (directories, WAL, schema
// migration), the constructor, transactions, the clock and TxnView. The
// methods of each concern are in store_operations.cc, store_resources.cc and
// store_changes.cc; the SQLite plumbing they share is in store_internal.{h,cc}.
#include "store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status.h"
#include "base/thread_role.h"
#include "openssl/evp.h"
#include "store/store_internal.h"

namespace cloudplane::store {
namespace {

using internal::Conn;
using internal::FromMicros;
using internal::Stmt;
using internal::ToMicros;

// ---- Schema ---------------------------------------------------------------

// Forward migrations: kMigrations[i] takes user_version i to i + 1. A new
// schema version appends one entry and bumps Store::kSchemaVersion; entries
// are never edited once released, because files in the field already ran them.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the initial schema.
    R"sql(
    CREATE TABLE operations (
      name TEXT PRIMARY KEY NOT NULL,
      account TEXT NOT NULL,
      method TEXT NOT NULL,
      request_id TEXT NOT NULL,
      request_fingerprint BLOB NOT NULL,
      phase TEXT NOT NULL,
      poll_token BLOB NOT NULL,
      done INTEGER NOT NULL,
      create_us INTEGER NOT NULL,
      update_us INTEGER NOT NULL,
      op BLOB NOT NULL
    );
    -- The idempotency key. Partial, so operations without a request_id never
    -- collide with each other.
    CREATE UNIQUE INDEX operations_by_request_id
      ON operations (account, method, request_id) WHERE request_id <> '';
    CREATE INDEX operations_by_time ON operations (create_us, name);
    CREATE INDEX operations_by_account
      ON operations (account, create_us, name);
    CREATE INDEX operations_unfinished
      ON operations (create_us, name) WHERE done = 0;

    CREATE TABLE resources (
      account TEXT NOT NULL,
      collection TEXT NOT NULL,
      id TEXT NOT NULL,
      data BLOB NOT NULL,
      PRIMARY KEY (account, collection, id)
    );

    -- AUTOINCREMENT (not plain rowid) so a sequence number is never reused,
    -- even after TrimChangesBefore emptied the table: watchers resume by seq.
    CREATE TABLE changes (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      account TEXT NOT NULL,
      kind TEXT NOT NULL,
      resource_name TEXT NOT NULL,
      change_type INTEGER NOT NULL,
      data BLOB NOT NULL,
      time_us INTEGER NOT NULL
    );

    CREATE TABLE meta (
      key TEXT PRIMARY KEY NOT NULL,
      value INTEGER NOT NULL
    ) WITHOUT ROWID;
    )sql",
    // 1 -> 2: the audit log. AUTOINCREMENT for the same reason as changes:
    // `auditEvents/{seq}` names must never be reused. account and principal
    // are indexed with seq so a filtered listing walks the index newest
    // first; time_us serves the time-window filters.
    R"sql(
    CREATE TABLE audit_events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      time_us INTEGER NOT NULL,
      principal TEXT NOT NULL,
      account TEXT NOT NULL,
      bytes BLOB NOT NULL
    );
    CREATE INDEX audit_events_by_account ON audit_events (account, seq);
    CREATE INDEX audit_events_by_principal ON audit_events (principal, seq);
    CREATE INDEX audit_events_by_time ON audit_events (time_us);
    )sql",
    // 2 -> 3: retention. Finished operations by the time of their last
    // write, so PruneFinishedOperations finds the oldest ones without a
    // table scan. Partial: unfinished operations are never pruned.
    R"sql(
    CREATE INDEX IF NOT EXISTS operations_finished
      ON operations (update_us) WHERE done = 1;
    )sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion,
              "one migration per schema version");

// fsync(2) on a directory, so a file or directory created in it survives a
// power loss (SQLite only syncs the directories of its journal files).
absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "store: cannot open directory ", dir, ": ", std::strerror(errno)));
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "store: cannot sync directory ", dir, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

// Applies every migration the file has not seen, in one transaction with the
// user_version bump, so a crash mid-migration leaves the old version intact.
// BEGIN IMMEDIATE re-reads the version under the write lock, so two
// processes opening a new file at once migrate it once.
absl::Status MigrateSchema(Conn& conn) {
  RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  absl::StatusOr<int64_t> version = conn.PragmaInt("PRAGMA user_version");
  absl::Status s = version.status();
  if (s.ok() && *version > Store::kSchemaVersion) {
    s = absl::FailedPreconditionError(absl::StrFormat(
        "store schema version %d is newer than this binary supports (%d)",
        *version, Store::kSchemaVersion));
  }
  for (int64_t v = s.ok() ? *version : Store::kSchemaVersion;
       s.ok() && v < Store::kSchemaVersion; ++v) {
    s = conn.Exec(kMigrations[v]);
    if (s.ok()) {
      s = conn.Exec(absl::StrCat("PRAGMA user_version = ", v + 1).c_str());
    }
  }
  if (s.ok()) s = conn.Exec("COMMIT");
  if (!s.ok() && !sqlite3_get_autocommit(conn.db())) {
    conn.Exec("ROLLBACK").IgnoreError();
  }
  return s;
}

// cp_sha256(blob): the SHA-256 of its argument as a 32-byte blob.
void Sha256Function(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const void* data = sqlite3_value_blob(argv[0]);
  int size = sqlite3_value_bytes(argv[0]);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(data, static_cast<size_t>(size), digest, &digest_size,
                 EVP_sha256(), nullptr) != 1) {
    sqlite3_result_error(ctx, "SHA-256 failed", -1);
    return;
  }
  sqlite3_result_blob(ctx, digest, static_cast<int>(digest_size),
                      SQLITE_TRANSIENT);
}

// Files written before request fingerprints were hashed hold each request's
// deterministic serialization, input-only secrets (user_data, provider
// passwords) included. This rewrites them once to their SHA-256 — exactly
// what the runner now computes for the same request, so a retry with a
// request_id from before the upgrade still matches — and records that in
// meta('fingerprints_hashed'), so it runs once per file and never on a new
// one's hashes. secure_delete (set by OpenConn) zeroes the freed bytes, and
// the WAL, which may still hold old pages, is truncated.
absl::Status HashOldFingerprints(Conn& conn) {
  if (sqlite3_create_function_v2(conn.db(), "cp_sha256", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                 Sha256Function, nullptr, nullptr,
                                 nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat(
        "store: cannot register cp_sha256: ", sqlite3_errmsg(conn.db())));
  }
  RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  bool rewrote = false;
  absl::Status s;
  {
    absl::StatusOr<Stmt> get = conn.Prepare(
        "SELECT value FROM meta WHERE key = 'fingerprints_hashed'");
    absl::StatusOr<bool> row = get.ok() ? get->Step() : get.status();
    s = row.status();
    if (s.ok() && !*row) {
      rewrote = true;
      s = conn.Exec(
          "UPDATE operations SET request_fingerprint = "
          "cp_sha256(request_fingerprint)");
      if (s.ok()) {
        s = conn.Exec(
            "INSERT INTO meta (key, value) VALUES ('fingerprints_hashed', 1)");
      }
    }
  }  // Resets the statement before COMMIT.
  if (s.ok()) s = conn.Exec("COMMIT");
  if (!s.ok() && !sqlite3_get_autocommit(conn.db())) {
    conn.Exec("ROLLBACK").IgnoreError();
  }
  if (rewrote && s.ok()) s = conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  return s;
}

}  // namespace

// ---- Store ------------------------------------------------------------------

namespace {
// The most writes one commit carries: bounds how long the first of a batch
// waits for the last.
constexpr size_t kMaxBatch = 256;
}  // namespace

Store::Store(std::unique_ptr<Conn> conn, Options options)
    : conn_(std::move(conn)), options_(std::move(options)) {}

Store::~Store() = default;

namespace {

absl::StatusOr<std::unique_ptr<Conn>> OpenConn(const std::string& path,
                                               bool in_memory,
                                               absl::Duration busy) {
  sqlite3* db = nullptr;
  // NOMUTEX: Store's own mutex already serialises use of the connection.
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  auto conn = std::make_unique<Conn>(db);  // Closes db on every path.
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat(
        "store: cannot open ", path, ": ",
        db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  if (!in_memory && sqlite3_db_readonly(db, "main") == 1) {
    return absl::UnavailableError(
        absl::StrCat("store: ", path, " is not writable"));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(
      db, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(busy),
                                             INT32_MAX)));

  // The first statement reads the file header: a non-database file fails
  // here.
  std::string mode;
  {
    absl::StatusOr<Stmt> wal = conn->Prepare("PRAGMA journal_mode = WAL");
    absl::StatusOr<bool> row = wal.ok() ? wal->Step() : wal.status();
    if (!row.ok()) {
      if (absl::IsDataLoss(row.status()) &&
          sqlite3_errcode(db) == SQLITE_NOTADB) {
        return absl::InvalidArgumentError(
            absl::StrCat("store: ", path, " is not a SQLite database"));
      }
      return row.status();
    }
    if (*row) mode = std::string(wal->Column(0));
  }  // Resets the statement; an active one would block COMMIT below.
  // WAL with synchronous=FULL: a commit returns after the WAL is fsync'ed,
  // so an acknowledged write survives power loss, not only a process crash
  // (NORMAL would only guarantee the latter in WAL mode).
  if (!in_memory && mode != "wal") {
    return absl::UnavailableError(absl::StrCat(
        "store: ", path, " cannot use WAL journaling (got '", mode,
        "'); is it on a filesystem without shared memory support?"));
  }
  RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = FULL"));
  // Freed space is zeroed, so a request that an operation kept only while
  // it mattered (the accepted phase's poll token) or a deleted resource does
  // not linger in free pages. Debian builds SQLite with this on already.
  RETURN_IF_ERROR(conn->Exec("PRAGMA secure_delete = ON"));
  // SQLite keeps a WAL file at the largest size it ever reached; with this
  // limit a checkpoint that finds it larger truncates it, so a burst does
  // not leave the file big for good (retention bounds the database itself).
  RETURN_IF_ERROR(conn->Exec("PRAGMA journal_size_limit = 4194304"));
  RETURN_IF_ERROR(MigrateSchema(*conn));
  RETURN_IF_ERROR(HashOldFingerprints(*conn));
  return conn;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(std::string path) {
  return Open(std::move(path), Options());
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(std::string path,
                                                   Options options) {
  namespace fs = std::filesystem;
  if (path.empty()) {
    return absl::InvalidArgumentError("store path must not be empty");
  }
  if (path == ":memory:" || absl::StartsWith(path, "file:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store path ", path, " must be a file path (use OpenInMemory for "
        "tests)"));
  }
  std::error_code ec;
  fs::path file(path);
  if (fs::is_directory(file, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("store path ", path, " is a directory"));
  }
  // Remember what this call creates, so the new directory entries can be
  // made durable afterwards.
  fs::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  std::vector<fs::path> new_dirs;
  for (fs::path d = dir; !d.empty() && !fs::exists(d, ec);
       d = d.parent_path()) {
    new_dirs.push_back(d);
    if (d == d.parent_path()) break;
  }
  bool new_file = !fs::exists(file, ec);
  if (!new_dirs.empty()) {
    fs::create_directories(dir, ec);
    if (ec == std::errc::not_a_directory) {
      return absl::InvalidArgumentError(absl::StrCat(
          "store path ", path, ": a parent of ", dir.string(),
          " is not a directory"));
    }
    if (ec) {
      return absl::UnavailableError(absl::StrCat(
          "store: cannot create directory ", dir.string(), ": ", ec.message()));
    }
  } else if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store path ", path, ": ", dir.string(), " is not a directory"));
  }

  // The database holds operations and their requests' results: the
  // directory this call creates is the owner's only (0700), and a new file
  // is created 0600 before SQLite opens it. SQLite gives the -wal and -shm
  // files the mode of the database file. chmod/fchmod make both exact
  // whatever the umask; existing directories and files keep their modes.
  if (!new_dirs.empty() && ::chmod(dir.c_str(), 0700) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "store: cannot set the mode of ", dir.string(), ": ", std::strerror(errno)));
  }
  if (new_file) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      int rc = ::fchmod(fd, 0600);
      int err = errno;
      ::close(fd);
      if (rc != 0) {
        return absl::UnavailableError(absl::StrCat(
            "store: cannot set the mode of ", path, ": ", std::strerror(err)));
      }
    } else if (errno != EEXIST) {  // EEXIST: another process just made it.
      return absl::UnavailableError(absl::StrCat(
          "store: cannot create ", path, ": ", std::strerror(errno)));
    }
  }

  ASSIGN_OR_RETURN(std::unique_ptr<Conn> conn,
                   OpenConn(path, false, options.busy_timeout));
  if (new_file) RETURN_IF_ERROR(SyncDirectory(dir.string()));
  for (const fs::path& d : new_dirs) {
    fs::path parent = d.parent_path();
    RETURN_IF_ERROR(SyncDirectory(parent.empty() ? "." : parent.string()));
  }
  return std::unique_ptr<Store>(new Store(std::move(conn), std::move(options)));
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenInMemory() {
  return OpenInMemory(Options());
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenInMemory(Options options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Conn> conn,
                   OpenConn(":memory:", true, options.busy_timeout));
  return std::unique_ptr<Store>(new Store(std::move(conn), std::move(options)));
}

absl::Status Store::CheckNotInTransaction() const {
  // Every public method passes here: the one place the transport-thread rule
  // (base/thread_role.h) is enforced for SQLite.
  CheckNotOnTransportThread("store::Store");
  if (txn_thread_.load() == std::this_thread::get_id()) {
    return absl::FailedPreconditionError(
        "Store method called inside RunInTransaction; use the TxnView");
  }
  return absl::OkStatus();
}

absl::Time Store::Now() {
  absl::Time t = options_.clock ? options_.clock() : absl::Now();
  // Truncate to what is stored, so returned records equal stored ones, and
  // never go backwards, so newer records sort after older ones in listings.
  t = FromMicros(ToMicros(t));
  if (t < last_time_) t = last_time_;
  last_time_ = t;
  return t;
}

// Group commit, leader/follower: no thread of its own. A writer queues its
// work and waits until either the work is done or no leader is active; in
// the latter case it becomes the leader and runs what is queued (its own
// work included) as one batch. Whoever writes while a batch commits waits
// for the next batch, so batches grow with the load and a lone writer pays
// nothing extra.
absl::Status Store::Write(absl::FunctionRef<absl::Status()> fn) {
  RETURN_IF_ERROR(CheckNotInTransaction());
  PendingWrite self{fn};
  struct Turn {
    Store* store;
    PendingWrite* write;
    static bool Ready(Turn* t) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      // Called by Await with queue_mu_ held.
      return t->write->done || !t->store->leader_active_;
    }
  } turn{this, &self};
  absl::MutexLock lock(&queue_mu_);
  queue_.push_back(&self);
  while (true) {
    queue_mu_.Await(absl::Condition(&Turn::Ready, &turn));
    if (self.done) return self.status;
    // No batch under way and ours not done: it is still queued. Lead.
    leader_active_ = true;
    std::vector<PendingWrite*> batch;
    const size_t n = std::min(queue_.size(), kMaxBatch);
    batch.assign(queue_.begin(), queue_.begin() + n);
    queue_.erase(queue_.begin(), queue_.begin() + n);
    queue_mu_.Unlock();
    std::vector<std::pair<PendingWrite*, absl::Status>> results;
    std::vector<PendingWrite*> again;
    RunBatch(batch, results, again);
    queue_mu_.Lock();
    // Marked under queue_mu_, which wakes their callers; a caller may return
    // (and its PendingWrite end) as soon as this lock is released.
    for (auto& [write, status] : results) {
      write->status = std::move(status);
      write->done = true;
    }
    // SQLite threw their work away with a failed neighbour's: they run
    // again, first in the next batch (ours too, possibly: then this loop
    // leads or waits once more).
    queue_.insert(queue_.begin(), again.begin(), again.end());
    leader_active_ = false;
  }
}

void Store::RunBatch(const std::vector<PendingWrite*>& batch,
                     std::vector<std::pair<PendingWrite*, absl::Status>>& results,
                     std::vector<PendingWrite*>& again) {
  absl::MutexLock lock(&mu_);
  sqlite3* db = conn_->db();
  // IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so
  // a read-then-write transaction cannot fail halfway with SQLITE_BUSY when
  // another process writes.
  if (absl::Status begin = conn_->Simple("BEGIN IMMEDIATE"); !begin.ok()) {
    for (PendingWrite* w : batch) results.emplace_back(w, begin);
    return;
  }
  // Writes whose work is in the open transaction.
  std::vector<PendingWrite*> applied;
  txn_thread_.store(std::this_thread::get_id());
  for (size_t i = 0; i < batch.size(); ++i) {
    PendingWrite* w = batch[i];
    absl::Status s = conn_->Simple("SAVEPOINT w");
    if (s.ok()) s = w->fn();
    if (!sqlite3_get_autocommit(db)) {
      absl::Status end = s.ok() ? conn_->Simple("RELEASE w")
                                : conn_->Simple("ROLLBACK TO w");
      if (!s.ok() && end.ok()) end = conn_->Simple("RELEASE w");
      if (end.ok()) {
        if (s.ok()) {
          applied.push_back(w);
        } else {
          results.emplace_back(w, std::move(s));  // rolled back alone
        }
        continue;
      }
      if (s.ok()) s = end;
      // The savepoint could not be released or rolled back: give up on the
      // whole transaction, as SQLite does on its own below.
      conn_->Simple("ROLLBACK").IgnoreError();
    }
    // SQLite rolled the whole transaction back (an I/O error, a full disk,
    // out of memory): this write gets its error; the work of the ones
    // before it is gone too, so they, and the ones not yet run, go again.
    results.emplace_back(
        w, s.ok() ? absl::UnavailableError("store: the transaction was rolled back")
                  : std::move(s));
    again.insert(again.end(), applied.begin(), applied.end());
    again.insert(again.end(), batch.begin() + i + 1, batch.end());
    applied.clear();
    break;
  }
  txn_thread_.store(std::thread::id());
  if (sqlite3_get_autocommit(db)) return;
  // With nothing applied there is nothing to make durable.
  absl::Status s = conn_->Simple(applied.empty() ? "ROLLBACK" : "COMMIT");
  // A failed COMMIT may leave the transaction open; some errors (disk full,
  // I/O) make SQLite roll back by itself.
  if (!s.ok() && !sqlite3_get_autocommit(db)) {
    conn_->Simple("ROLLBACK").IgnoreError();
  }
  if (s.ok() && !applied.empty()) {
    commits_.fetch_add(1, std::memory_order_relaxed);
    writes_.fetch_add(static_cast<int64_t>(applied.size()), std::memory_order_relaxed);
  }
  for (PendingWrite* w : applied) results.emplace_back(w, s);
}

Store::Stats Store::GetStats() const {
  Stats stats;
  stats.writes = writes_.load(std::memory_order_relaxed);
  stats.commits = commits_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&queue_mu_);
  stats.queued = static_cast<int64_t>(queue_.size());
  return stats;
}

absl::Status Store::Read(absl::FunctionRef<absl::Status()> fn, bool one_statement) {
  RETURN_IF_ERROR(CheckNotInTransaction());
  absl::MutexLock lock(&mu_);
  if (one_statement) return fn();
  // A read transaction gives multi-statement reads one consistent snapshot
  // even while other processes write.
  RETURN_IF_ERROR(conn_->Simple("BEGIN"));
  absl::Status s = fn();
  absl::Status end = conn_->Simple(s.ok() ? "COMMIT" : "ROLLBACK");
  if (!end.ok() && !sqlite3_get_autocommit(conn_->db())) {
    conn_->Simple("ROLLBACK").IgnoreError();
  }
  return s.ok() ? end : s;
}

absl::Status Store::RunInTransaction(
    absl::FunctionRef<absl::Status(TxnView&)> fn) {
  return Write([&] {
    TxnView view(this);
    return fn(view);
  });
}

// ---- TxnView ----------------------------------------------------------------
//
// RunInTransaction holds mu_ while the callback runs and records its thread;
// a view used from any other thread (or after the callback) would race on the
// connection, so it is refused.

#define CP_TXN_CHECK()                                                  \
  do {                                                                  \
    if (store_->txn_thread_.load() != std::this_thread::get_id()) {     \
      return absl::FailedPreconditionError(                             \
          "TxnView used outside its RunInTransaction callback");        \
    }                                                                   \
  } while (false)

absl::StatusOr<std::string> TxnView::GetResource(absl::string_view account,
                                                 absl::string_view collection,
                                                 absl::string_view id) {
  CP_TXN_CHECK();
  return store_->conn_->GetResource(account, collection, id);
}

absl::Status TxnView::PutResource(absl::string_view account,
                                  absl::string_view collection,
                                  absl::string_view id,
                                  absl::string_view bytes) {
  CP_TXN_CHECK();
  return store_->conn_->PutResource(account, collection, id, bytes);
}

absl::StatusOr<bool> TxnView::DeleteResource(absl::string_view account,
                                             absl::string_view collection,
                                             absl::string_view id) {
  CP_TXN_CHECK();
  return store_->conn_->DeleteResource(account, collection, id);
}

absl::StatusOr<ResourcePage> TxnView::ListResources(
    absl::string_view account, absl::string_view collection, int page_size,
    absl::string_view page_token) {
  CP_TXN_CHECK();
  return store_->conn_->ListResources(account, collection, page_size,
                                      page_token);
}

absl::StatusOr<int64_t> TxnView::AppendChange(absl::string_view account,
                                              absl::string_view kind,
                                              absl::string_view resource_name,
                                              int change_type,
                                              absl::string_view bytes) {
  CP_TXN_CHECK();
  return store_->conn_->AppendChange(account, kind, resource_name, change_type,
                                     bytes, store_->Now());
}

absl::StatusOr<OperationRecord> TxnView::GetOperation(absl::string_view name) {
  CP_TXN_CHECK();
  return store_->conn_->GetOperation(name);
}

absl::Status TxnView::UpdateOperation(const OperationRecord& record) {
  CP_TXN_CHECK();
  return store_->conn_->UpdateOperation(record, store_->Now());
}

#undef CP_TXN_CHECK

}  // namespace cloudplane::store
