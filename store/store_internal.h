// Internal to //store (listed in the library's srcs, so nothing outside it can
// include this): what store.cc and the per-concern files share. The SQLite
// connection `Conn` with its statement cache, the `Stmt` wrapper, error
// mapping, time encoding and page-token helpers.
//
// Conn's methods are defined by concern: the connection plumbing in
// store_internal.cc, the rest in store_operations.cc, store_resources.cc and
// store_changes.cc.
#ifndef CLOUDPLANE_STORE_STORE_INTERNAL_H_
#define CLOUDPLANE_STORE_STORE_INTERNAL_H_

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "store/store.h"

namespace cloudplane::store::internal {

// ---- Errors ---------------------------------------------------------------

// A SQLite result code as an absl::Status whose message names `context`.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context);

// INVALID_ARGUMENT for a page_token that does not decode, or that was issued
// for another query.
absl::Status InvalidToken();
absl::Status ForeignToken();

// INVALID_ARGUMENT unless 1 <= limit <= 10000: the batch size of the
// retention methods (PruneFinishedOperations, TrimChangesOlderThan/ToCount).
absl::Status CheckBatchLimit(int limit);

// page_size as the List methods apply it: 0 = 50, above 1000 = 1000,
// negative = INVALID_ARGUMENT.
absl::StatusOr<int> EffectivePageSize(int page_size);

// ---- Page tokens ----------------------------------------------------------
//
// A token is web-safe base64 of length-prefixed fields ("3:abc2:de"). The
// first field names the token kind and version, the next ones repeat the
// query's filters (so a token cannot silently be used for another query),
// the rest is the keyset position of the last returned row. Nothing in it
// depends on process state, so tokens survive restarts.

std::string EncodeToken(std::initializer_list<absl::string_view> fields);

absl::StatusOr<std::vector<std::string>> DecodeToken(absl::string_view token,
                                                     absl::string_view kind,
                                                     size_t num_fields);

// A short digest of a set of account ids (order and duplicates do not
// matter), for binding page tokens to a restricted query; "" for the empty
// set (no restriction).
std::string AccountSetKey(const std::vector<std::string>& accounts);

// `values` as a JSON array of strings, for `IN (SELECT value FROM
// json_each(?))`: one cached statement whatever the number of values.
std::string JsonStringArray(const std::vector<std::string>& values);

inline int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

// ---- Connection -------------------------------------------------------------

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
  ~Conn();

  sqlite3* db() { return db_; }

  // ---- Plumbing (store_internal.cc) ----

  absl::StatusOr<Stmt> Prepare(absl::string_view sql);
  // For multi-statement scripts (migrations, pragmas); not cached.
  absl::Status Exec(const char* sql);
  absl::Status Simple(absl::string_view sql);
  absl::StatusOr<int64_t> PragmaInt(absl::string_view sql);

  // ---- Operations (store_operations.cc) ----

  absl::StatusOr<InsertResult> InsertOperation(const OperationRecord& record,
                                               absl::Time now);
  absl::Status UpdateOperation(const OperationRecord& record, absl::Time now);
  absl::StatusOr<OperationRecord> GetOperation(absl::string_view name);
  absl::StatusOr<OperationPage> ListOperations(const ListOperationsQuery& q);
  absl::StatusOr<std::vector<OperationRecord>> ListUnfinishedOperations();
  absl::Status DeleteOperation(absl::string_view name);
  absl::StatusOr<int64_t> PruneFinishedOperations(absl::Time before,
                                                  int limit);

  // ---- Resources (store_resources.cc) ----

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
                                             int page_size_in,
                                             absl::string_view page_token);

  // ---- Changes (store_changes.cc) ----

  absl::StatusOr<int64_t> AppendChange(absl::string_view account,
                                       absl::string_view kind,
                                       absl::string_view resource_name,
                                       int change_type,
                                       absl::string_view bytes,
                                       absl::Time now);
  absl::StatusOr<int64_t> TrimmedBefore();
  absl::StatusOr<int64_t> LastChangeSeq();
  absl::StatusOr<std::vector<Change>> ListChangesSince(int64_t after_seq,
                                                       int limit);
  absl::Status TrimChangesBefore(int64_t seq);
  absl::StatusOr<int64_t> TrimChangesOlderThan(absl::Time before, int limit);
  absl::StatusOr<int64_t> TrimChangesToCount(int64_t keep, int limit);

  // ---- Audit log (store_audit.cc) ----

  absl::Status AppendAuditEvents(const std::vector<AuditRecord>& records);
  absl::StatusOr<AuditPage> ListAuditEvents(const AuditQuery& q);
  absl::StatusOr<int64_t> TrimAuditEventsBefore(absl::Time before);

 private:
  sqlite3* db_;
  absl::flat_hash_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace cloudplane::store::internal

#endif  // CLOUDPLANE_STORE_STORE_INTERNAL_H_
