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
#include <initializer_list>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status.h"
#include "base/thread_role.h"

namespace cloudplane::store {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr int kMaxChangeLimit = 10000;

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
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion,
              "one migration per schema version");

constexpr char kOpColumns[] =
    "name, account, method, request_id, request_fingerprint, phase, "
    "poll_token, create_us, update_us, op";

// ---- Errors ---------------------------------------------------------------

// SQLite result code -> absl code. Only what a caller can act on is
// distinguished: retry (UNAVAILABLE), free space (RESOURCE_EXHAUSTED),
// restore from backup (DATA_LOSS), fix the deployment (FAILED_PRECONDITION).
absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_TOOBIG:
      return absl::StatusCode::kInvalidArgument;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kAlreadyExists;
    default:
      return absl::StatusCode::kInternal;
  }
}

// SQLite's messages name tables and columns, never bound values, so they are
// safe to return.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context) {
  const char* detail =
      db != nullptr && sqlite3_errcode(db) == rc ? sqlite3_errmsg(db)
                                                 : sqlite3_errstr(rc);
  return absl::Status(CodeFor(rc),
                      absl::StrCat("store: ", context, ": ", detail));
}

absl::Status InvalidToken() {
  return absl::InvalidArgumentError("page_token is malformed");
}

absl::Status ForeignToken() {
  return absl::InvalidArgumentError(
      "page_token was issued for a different query");
}

absl::StatusOr<int> EffectivePageSize(int page_size) {
  if (page_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must not be negative, got ", page_size));
  }
  if (page_size == 0) return kDefaultPageSize;
  return std::min(page_size, kMaxPageSize);
}

absl::Status CheckResourceKey(absl::string_view collection,
                              absl::string_view id) {
  if (collection.empty()) {
    return absl::InvalidArgumentError("collection must not be empty");
  }
  if (id.empty()) return absl::InvalidArgumentError("id must not be empty");
  return absl::OkStatus();
}

// ---- Page tokens ----------------------------------------------------------
//
// A token is web-safe base64 of length-prefixed fields ("3:abc2:de"). The
// first field names the token kind and version, the next ones repeat the
// query's filters (so a token cannot silently be used for another query),
// the rest is the keyset position of the last returned row. Nothing in it
// depends on process state, so tokens survive restarts.

std::string EncodeToken(std::initializer_list<absl::string_view> fields) {
  std::string raw;
  for (absl::string_view f : fields) absl::StrAppend(&raw, f.size(), ":", f);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<std::vector<std::string>> DecodeToken(absl::string_view token,
                                                     absl::string_view kind,
                                                     size_t num_fields) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return InvalidToken();
  std::vector<std::string> fields;
  absl::string_view rest = raw;
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    size_t len = 0;
    if (colon == absl::string_view::npos || colon == 0 || colon > 10 ||
        !absl::SimpleAtoi(rest.substr(0, colon), &len) ||
        len > rest.size() - colon - 1) {
      return InvalidToken();
    }
    fields.emplace_back(rest.substr(colon + 1, len));
    rest.remove_prefix(colon + 1 + len);
  }
  if (fields.size() != num_fields || fields[0] != kind) return InvalidToken();
  return fields;
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

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

}  // namespace

// ---- Connection -------------------------------------------------------------

namespace internal {

// A prepared statement borrowed from the connection's cache. Binds are
// positional in call order; destruction resets it for the next user. Text and
// blob binds use SQLITE_STATIC: the bound strings outlive the statement's use
// within one method.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        next_(other.next_),
        bind_rc_(other.bind_rc_) {}
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  Stmt& Text(absl::string_view v) {
    if (TooBig(v)) return *this;
    // An empty string_view may have data() == nullptr, which SQLite would
    // bind as NULL; "" keeps it an empty value.
    Check(sqlite3_bind_text(stmt_, next_++, v.empty() ? "" : v.data(),
                            static_cast<int>(v.size()), SQLITE_STATIC));
    return *this;
  }
  Stmt& Blob(absl::string_view v) {
    if (TooBig(v)) return *this;
    Check(sqlite3_bind_blob(stmt_, next_++, v.empty() ? "" : v.data(),
                            static_cast<int>(v.size()), SQLITE_STATIC));
    return *this;
  }
  Stmt& Int(int64_t v) {
    Check(sqlite3_bind_int64(stmt_, next_++, v));
    return *this;
  }

  // True when a row is available, false when the statement is done.
  absl::StatusOr<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, "bind");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, "step");
  }
  // Runs a statement that returns no rows.
  absl::Status Run() { return Step().status(); }

  absl::string_view Column(int i) const {
    const void* p = sqlite3_column_blob(stmt_, i);
    int n = sqlite3_column_bytes(stmt_, i);
    if (p == nullptr) return {};
    return absl::string_view(static_cast<const char*>(p), n);
  }
  int64_t ColumnInt(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  // The bind APIs take an int length; a negative one would make SQLite
  // read up to a NUL. (SQLite's own limit, 1e9 bytes by default, is lower.)
  bool TooBig(absl::string_view v) {
    if (v.size() <= static_cast<size_t>(INT32_MAX)) return false;
    Check(SQLITE_TOOBIG);
    ++next_;
    return true;
  }
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_ = 1;
  int bind_rc_ = SQLITE_OK;
};

// Everything that touches SQLite. Not thread-safe: Store serialises access
// and wraps each public call in a transaction, so methods here assume one is
// open.
class Conn {
 public:
  explicit Conn(sqlite3* db) : db_(db) {}
  ~Conn() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  sqlite3* db() { return db_; }

  absl::StatusOr<Stmt> Prepare(absl::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare");
      it = cache_.emplace(std::string(sql), stmt).first;
    }
    return Stmt(db_, it->second);
  }

  // For multi-statement scripts (migrations, pragmas); not cached.
  absl::Status Exec(const char* sql) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "exec");
    return absl::OkStatus();
  }

  absl::Status Simple(absl::string_view sql) {
    ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
    return stmt.Run();
  }

  absl::StatusOr<int64_t> PragmaInt(absl::string_view sql) {
    ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    return row ? stmt.ColumnInt(0) : 0;
  }

  // ---- Operations ----

  static absl::StatusOr<OperationRecord> ReadOperation(const Stmt& stmt) {
    OperationRecord r;
    std::string name(stmt.Column(0));
    r.account = std::string(stmt.Column(1));
    r.method = std::string(stmt.Column(2));
    r.request_id = std::string(stmt.Column(3));
    r.request_fingerprint = std::string(stmt.Column(4));
    r.phase = std::string(stmt.Column(5));
    r.poll_token = std::string(stmt.Column(6));
    r.create_time = FromMicros(stmt.ColumnInt(7));
    r.update_time = FromMicros(stmt.ColumnInt(8));
    absl::string_view op = stmt.Column(9);
    if (!r.op.ParseFromArray(op.data(), static_cast<int>(op.size()))) {
      return absl::DataLossError(
          absl::StrCat("store: operation ", name, " does not parse"));
    }
    if (r.op.name() != name) {
      return absl::DataLossError(absl::StrCat(
          "store: operation ", name, " holds a proto named ", r.op.name()));
    }
    return r;
  }

  absl::StatusOr<InsertResult> InsertOperation(const OperationRecord& record,
                                               absl::Time now) {
    const std::string& name = record.op.name();
    if (name.empty()) {
      return absl::InvalidArgumentError("op.name must not be empty");
    }
    if (!record.request_id.empty()) {
      ASSIGN_OR_RETURN(
          Stmt find,
          Prepare(absl::StrCat("SELECT ", kOpColumns,
                               " FROM operations WHERE account = ? AND "
                               "method = ? AND request_id = ?")));
      find.Text(record.account).Text(record.method).Text(record.request_id);
      ASSIGN_OR_RETURN(bool found, find.Step());
      if (found) {
        ASSIGN_OR_RETURN(OperationRecord existing, ReadOperation(find));
        // AIP-155: a reused request_id must carry the same request.
        if (existing.request_fingerprint != record.request_fingerprint) {
          return absl::AlreadyExistsError(absl::StrCat(
              "request_id ", record.request_id,
              " was already used for a different request"));
        }
        return InsertResult{std::move(existing), true};
      }
    }
    InsertResult result{record, false};
    result.record.create_time = now;
    result.record.update_time = now;
    std::string op = record.op.SerializeAsString();
    ASSIGN_OR_RETURN(
        Stmt insert,
        Prepare(absl::StrCat("INSERT INTO operations (", kOpColumns,
                             ", done) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                             "?)")));
    insert.Text(name)
        .Text(record.account)
        .Text(record.method)
        .Text(record.request_id)
        .Blob(record.request_fingerprint)
        .Text(record.phase)
        .Blob(record.poll_token)
        .Int(ToMicros(now))
        .Int(ToMicros(now))
        .Blob(op)
        .Int(record.op.done() ? 1 : 0);
    absl::Status s = insert.Run();
    if (absl::IsAlreadyExists(s)) {
      // The request_id case returned above, so only the name can collide.
      return absl::AlreadyExistsError(
          absl::StrCat("operation ", name, " already exists"));
    }
    RETURN_IF_ERROR(s);
    return result;
  }

  absl::Status UpdateOperation(const OperationRecord& record, absl::Time now) {
    std::string op = record.op.SerializeAsString();
    ASSIGN_OR_RETURN(Stmt update,
                     Prepare("UPDATE operations SET op = ?, phase = ?, "
                             "poll_token = ?, done = ?, update_us = ? "
                             "WHERE name = ?"));
    update.Blob(op)
        .Text(record.phase)
        .Blob(record.poll_token)
        .Int(record.op.done() ? 1 : 0)
        .Int(ToMicros(now))
        .Text(record.op.name());
    RETURN_IF_ERROR(update.Run());
    if (sqlite3_changes(db_) == 0) return OperationNotFound(record.op.name());
    return absl::OkStatus();
  }

  absl::StatusOr<OperationRecord> GetOperation(absl::string_view name) {
    ASSIGN_OR_RETURN(Stmt get, Prepare(absl::StrCat("SELECT ", kOpColumns,
                                                    " FROM operations "
                                                    "WHERE name = ?")));
    get.Text(name);
    ASSIGN_OR_RETURN(bool found, get.Step());
    if (!found) return OperationNotFound(name);
    return ReadOperation(get);
  }

  absl::StatusOr<OperationPage> ListOperations(const ListOperationsQuery& q) {
    ASSIGN_OR_RETURN(int page_size, EffectivePageSize(q.page_size));
    const char* unfinished = q.only_unfinished ? "1" : "0";
    bool has_cursor = !q.page_token.empty();
    int64_t cursor_us = 0;
    std::string cursor_name;
    if (has_cursor) {
      ASSIGN_OR_RETURN(std::vector<std::string> f,
                       DecodeToken(q.page_token, "op1", 5));
      if (!absl::SimpleAtoi(f[3], &cursor_us)) return InvalidToken();
      if (f[1] != q.account || f[2] != unfinished) return ForeignToken();
      cursor_name = std::move(f[4]);
    }
    // Each filter combination is its own (cached) statement so SQLite can
    // pick the matching index instead of a generic "?1 = '' OR ..." plan.
    std::string sql = absl::StrCat("SELECT ", kOpColumns,
                                   " FROM operations WHERE 1");
    if (!q.account.empty()) absl::StrAppend(&sql, " AND account = ?");
    if (q.only_unfinished) absl::StrAppend(&sql, " AND done = 0");
    if (has_cursor) absl::StrAppend(&sql, " AND (create_us, name) > (?, ?)");
    absl::StrAppend(&sql, " ORDER BY create_us, name LIMIT ?");
    ASSIGN_OR_RETURN(Stmt list, Prepare(sql));
    if (!q.account.empty()) list.Text(q.account);
    if (has_cursor) list.Int(cursor_us).Text(cursor_name);
    // One extra row tells whether another page exists.
    list.Int(page_size + 1);

    OperationPage page;
    while (true) {
      ASSIGN_OR_RETURN(bool row, list.Step());
      if (!row) break;
      if (static_cast<int>(page.records.size()) == page_size) {
        const OperationRecord& last = page.records.back();
        page.next_page_token =
            EncodeToken({"op1", q.account, unfinished,
                         absl::StrCat(ToMicros(last.create_time)),
                         last.op.name()});
        break;
      }
      ASSIGN_OR_RETURN(OperationRecord r, ReadOperation(list));
      page.records.push_back(std::move(r));
    }
    return page;
  }

  absl::StatusOr<std::vector<OperationRecord>> ListUnfinishedOperations() {
    ASSIGN_OR_RETURN(
        Stmt list,
        Prepare(absl::StrCat("SELECT ", kOpColumns,
                             " FROM operations WHERE done = 0 "
                             "ORDER BY create_us, name")));
    std::vector<OperationRecord> records;
    while (true) {
      ASSIGN_OR_RETURN(bool row, list.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(OperationRecord r, ReadOperation(list));
      records.push_back(std::move(r));
    }
    return records;
  }

  absl::Status DeleteOperation(absl::string_view name) {
    ASSIGN_OR_RETURN(Stmt del,
                     Prepare("DELETE FROM operations WHERE name = ?"));
    del.Text(name);
    RETURN_IF_ERROR(del.Run());
    if (sqlite3_changes(db_) == 0) return OperationNotFound(name);
    return absl::OkStatus();
  }

  // ---- Resources ----

  absl::StatusOr<std::string> GetResource(absl::string_view account,
                                          absl::string_view collection,
                                          absl::string_view id) {
    RETURN_IF_ERROR(CheckResourceKey(collection, id));
    ASSIGN_OR_RETURN(Stmt get,
                     Prepare("SELECT data FROM resources WHERE account = ? "
                             "AND collection = ? AND id = ?"));
    get.Text(account).Text(collection).Text(id);
    ASSIGN_OR_RETURN(bool found, get.Step());
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("resource ", collection, "/", id, " not found"));
    }
    return std::string(get.Column(0));
  }

  absl::Status PutResource(absl::string_view account,
                           absl::string_view collection, absl::string_view id,
                           absl::string_view bytes) {
    RETURN_IF_ERROR(CheckResourceKey(collection, id));
    ASSIGN_OR_RETURN(Stmt put,
                     Prepare("INSERT INTO resources (account, collection, id, "
                             "data) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE "
                             "SET data = excluded.data"));
    put.Text(account).Text(collection).Text(id).Blob(bytes);
    return put.Run();
  }

  absl::StatusOr<bool> DeleteResource(absl::string_view account,
                                      absl::string_view collection,
                                      absl::string_view id) {
    RETURN_IF_ERROR(CheckResourceKey(collection, id));
    ASSIGN_OR_RETURN(Stmt del,
                     Prepare("DELETE FROM resources WHERE account = ? AND "
                             "collection = ? AND id = ?"));
    del.Text(account).Text(collection).Text(id);
    RETURN_IF_ERROR(del.Run());
    return sqlite3_changes(db_) > 0;
  }

  absl::StatusOr<ResourcePage> ListResources(absl::string_view account,
                                             absl::string_view collection,
                                             int page_size_in,
                                             absl::string_view page_token) {
    if (collection.empty()) {
      return absl::InvalidArgumentError("collection must not be empty");
    }
    ASSIGN_OR_RETURN(int page_size, EffectivePageSize(page_size_in));
    // "" sorts before every id, and ids are never empty.
    std::string after;
    if (!page_token.empty()) {
      ASSIGN_OR_RETURN(std::vector<std::string> f,
                       DecodeToken(page_token, "rs1", 4));
      if (f[3].empty()) return InvalidToken();
      if (f[1] != account || f[2] != collection) return ForeignToken();
      after = std::move(f[3]);
    }
    ASSIGN_OR_RETURN(Stmt list,
                     Prepare("SELECT id, data FROM resources WHERE account = ? "
                             "AND collection = ? AND id > ? ORDER BY id "
                             "LIMIT ?"));
    list.Text(account).Text(collection).Text(after).Int(page_size + 1);
    ResourcePage page;
    while (true) {
      ASSIGN_OR_RETURN(bool row, list.Step());
      if (!row) break;
      if (static_cast<int>(page.resources.size()) == page_size) {
        page.next_page_token = EncodeToken(
            {"rs1", account, collection, page.resources.back().id});
        break;
      }
      page.resources.push_back(
          {std::string(list.Column(0)), std::string(list.Column(1))});
    }
    return page;
  }

  // ---- Changes ----

  absl::StatusOr<int64_t> AppendChange(absl::string_view account,
                                       absl::string_view kind,
                                       absl::string_view resource_name,
                                       int change_type,
                                       absl::string_view bytes,
                                       absl::Time now) {
    ASSIGN_OR_RETURN(Stmt insert,
                     Prepare("INSERT INTO changes (account, kind, "
                             "resource_name, change_type, data, time_us) "
                             "VALUES (?, ?, ?, ?, ?, ?)"));
    insert.Text(account)
        .Text(kind)
        .Text(resource_name)
        .Int(change_type)
        .Blob(bytes)
        .Int(ToMicros(now));
    RETURN_IF_ERROR(insert.Run());
    return sqlite3_last_insert_rowid(db_);
  }

  absl::StatusOr<int64_t> TrimmedBefore() {
    ASSIGN_OR_RETURN(Stmt get, Prepare("SELECT value FROM meta WHERE key = "
                                       "'changes_trimmed_before'"));
    ASSIGN_OR_RETURN(bool row, get.Step());
    return row ? get.ColumnInt(0) : 0;
  }

  absl::StatusOr<int64_t> LastChangeSeq() {
    ASSIGN_OR_RETURN(Stmt get, Prepare("SELECT seq FROM sqlite_sequence "
                                       "WHERE name = 'changes'"));
    ASSIGN_OR_RETURN(bool row, get.Step());
    return row ? get.ColumnInt(0) : 0;
  }

  absl::StatusOr<std::vector<Change>> ListChangesSince(int64_t after_seq,
                                                       int limit) {
    if (after_seq < 0) {
      return absl::InvalidArgumentError("after_seq must not be negative");
    }
    if (limit < 1 || limit > kMaxChangeLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "limit must be in [1, ", kMaxChangeLimit, "], got ", limit));
    }
    ASSIGN_OR_RETURN(int64_t trimmed_before, TrimmedBefore());
    if (after_seq + 1 < trimmed_before) {
      return absl::OutOfRangeError(absl::StrCat(
          "changes after seq ", after_seq, " were trimmed (oldest kept is ",
          trimmed_before, "); resynchronise"));
    }
    ASSIGN_OR_RETURN(Stmt list,
                     Prepare("SELECT seq, account, kind, resource_name, "
                             "change_type, data, time_us FROM changes "
                             "WHERE seq > ? ORDER BY seq LIMIT ?"));
    list.Int(after_seq).Int(limit);
    std::vector<Change> changes;
    while (true) {
      ASSIGN_OR_RETURN(bool row, list.Step());
      if (!row) break;
      Change c;
      c.seq = list.ColumnInt(0);
      c.account = std::string(list.Column(1));
      c.kind = std::string(list.Column(2));
      c.resource_name = std::string(list.Column(3));
      c.change_type = static_cast<int>(list.ColumnInt(4));
      c.bytes = std::string(list.Column(5));
      c.time = FromMicros(list.ColumnInt(6));
      changes.push_back(std::move(c));
    }
    return changes;
  }

  absl::Status TrimChangesBefore(int64_t seq) {
    // Never move the watermark past the next seq to be assigned: changes
    // appended later were not trimmed, and a watcher at the head must not be
    // told otherwise.
    ASSIGN_OR_RETURN(int64_t last, LastChangeSeq());
    seq = std::min(seq, last + 1);
    ASSIGN_OR_RETURN(Stmt del, Prepare("DELETE FROM changes WHERE seq < ?"));
    del.Int(seq);
    RETURN_IF_ERROR(del.Run());
    ASSIGN_OR_RETURN(Stmt mark,
                     Prepare("INSERT INTO meta (key, value) VALUES "
                             "('changes_trimmed_before', ?) ON CONFLICT DO "
                             "UPDATE SET value = max(value, excluded.value)"));
    mark.Int(seq);
    return mark.Run();
  }

 private:
  static absl::Status OperationNotFound(absl::string_view name) {
    return absl::NotFoundError(absl::StrCat("operation ", name, " not found"));
  }

  sqlite3* db_;
  absl::flat_hash_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace internal

namespace {

using internal::Conn;
using internal::Stmt;

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

}  // namespace

// ---- Store ------------------------------------------------------------------

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
  RETURN_IF_ERROR(MigrateSchema(*conn));
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

absl::Status Store::Write(absl::FunctionRef<absl::Status()> fn) {
  RETURN_IF_ERROR(CheckNotInTransaction());
  absl::MutexLock lock(&mu_);
  // IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so
  // a read-then-write transaction cannot fail halfway with SQLITE_BUSY when
  // another process writes.
  RETURN_IF_ERROR(conn_->Simple("BEGIN IMMEDIATE"));
  txn_thread_.store(std::this_thread::get_id());
  absl::Status s = fn();
  txn_thread_.store(std::thread::id());
  if (s.ok()) s = conn_->Simple("COMMIT");
  // A failed COMMIT may leave the transaction open; some errors (disk full,
  // I/O) make SQLite roll back by itself.
  if (!s.ok() && !sqlite3_get_autocommit(conn_->db())) {
    conn_->Simple("ROLLBACK").IgnoreError();
  }
  return s;
}

absl::Status Store::Read(absl::FunctionRef<absl::Status()> fn) {
  RETURN_IF_ERROR(CheckNotInTransaction());
  absl::MutexLock lock(&mu_);
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

// ---- Store: operations ----

absl::StatusOr<InsertResult> Store::InsertOperation(
    const OperationRecord& record) {
  absl::StatusOr<InsertResult> result;
  RETURN_IF_ERROR(Write([&] {
    result = conn_->InsertOperation(record, Now());
    return result.status();
  }));
  return result;
}

absl::Status Store::UpdateOperation(const OperationRecord& record) {
  return Write([&] { return conn_->UpdateOperation(record, Now()); });
}

absl::StatusOr<OperationRecord> Store::GetOperation(absl::string_view name) {
  absl::StatusOr<OperationRecord> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->GetOperation(name);
    return result.status();
  }));
  return result;
}

absl::StatusOr<OperationPage> Store::ListOperations(
    const ListOperationsQuery& query) {
  absl::StatusOr<OperationPage> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->ListOperations(query);
    return result.status();
  }));
  return result;
}

absl::StatusOr<std::vector<OperationRecord>>
Store::ListUnfinishedOperations() {
  absl::StatusOr<std::vector<OperationRecord>> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->ListUnfinishedOperations();
    return result.status();
  }));
  return result;
}

absl::Status Store::DeleteOperation(absl::string_view name) {
  return Write([&] { return conn_->DeleteOperation(name); });
}

// ---- Store: resources ----

absl::StatusOr<std::string> Store::GetResource(absl::string_view account,
                                               absl::string_view collection,
                                               absl::string_view id) {
  absl::StatusOr<std::string> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->GetResource(account, collection, id);
    return result.status();
  }));
  return result;
}

absl::Status Store::PutResource(absl::string_view account,
                                absl::string_view collection,
                                absl::string_view id,
                                absl::string_view bytes) {
  return Write(
      [&] { return conn_->PutResource(account, collection, id, bytes); });
}

absl::StatusOr<bool> Store::DeleteResource(absl::string_view account,
                                           absl::string_view collection,
                                           absl::string_view id) {
  absl::StatusOr<bool> result;
  RETURN_IF_ERROR(Write([&] {
    result = conn_->DeleteResource(account, collection, id);
    return result.status();
  }));
  return result;
}

absl::StatusOr<ResourcePage> Store::ListResources(
    absl::string_view account, absl::string_view collection, int page_size,
    absl::string_view page_token) {
  absl::StatusOr<ResourcePage> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->ListResources(account, collection, page_size, page_token);
    return result.status();
  }));
  return result;
}

absl::Status Store::RunInTransaction(
    absl::FunctionRef<absl::Status(TxnView&)> fn) {
  return Write([&] {
    TxnView view(this);
    return fn(view);
  });
}

// ---- Store: changes ----

absl::StatusOr<int64_t> Store::AppendChange(absl::string_view account,
                                            absl::string_view kind,
                                            absl::string_view resource_name,
                                            int change_type,
                                            absl::string_view bytes) {
  absl::StatusOr<int64_t> result;
  RETURN_IF_ERROR(Write([&] {
    result = conn_->AppendChange(account, kind, resource_name, change_type,
                                 bytes, Now());
    return result.status();
  }));
  return result;
}

absl::StatusOr<std::vector<Change>> Store::ListChangesSince(int64_t after_seq,
                                                            int limit) {
  absl::StatusOr<std::vector<Change>> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->ListChangesSince(after_seq, limit);
    return result.status();
  }));
  return result;
}

absl::StatusOr<int64_t> Store::LastChangeSeq() {
  absl::StatusOr<int64_t> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->LastChangeSeq();
    return result.status();
  }));
  return result;
}

absl::Status Store::TrimChangesBefore(int64_t seq) {
  return Write([&] { return conn_->TrimChangesBefore(seq); });
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
