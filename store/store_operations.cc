// Long-running operations: insert (with request_id idempotency), update,
// get, list (keyset paged), list unfinished and delete.
#include "store/store.h"

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "store/store_internal.h"

namespace cloudplane::store::internal {
namespace {

constexpr char kOpColumns[] =
    "name, account, method, request_id, request_fingerprint, phase, "
    "poll_token, create_us, update_us, op";

absl::StatusOr<OperationRecord> ReadOperation(const Stmt& stmt) {
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

absl::Status OperationNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("operation ", name, " not found"));
}

}  // namespace

// ---- Conn ------------------------------------------------------------------

absl::StatusOr<InsertResult> Conn::InsertOperation(const OperationRecord& record,
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

absl::Status Conn::UpdateOperation(const OperationRecord& record, absl::Time now) {
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

absl::StatusOr<OperationRecord> Conn::GetOperation(absl::string_view name) {
  ASSIGN_OR_RETURN(Stmt get, Prepare(absl::StrCat("SELECT ", kOpColumns,
                                                  " FROM operations "
                                                  "WHERE name = ?")));
  get.Text(name);
  ASSIGN_OR_RETURN(bool found, get.Step());
  if (!found) return OperationNotFound(name);
  return ReadOperation(get);
}

absl::StatusOr<OperationPage> Conn::ListOperations(const ListOperationsQuery& q) {
  ASSIGN_OR_RETURN(int page_size, EffectivePageSize(q.page_size));
  const char* unfinished = q.only_unfinished ? "1" : "0";
  const std::string set_key = AccountSetKey(q.accounts);
  bool has_cursor = !q.page_token.empty();
  int64_t cursor_us = 0;
  std::string cursor_name;
  if (has_cursor) {
    // "op2" tokens carry the accounts set; "op1" tokens (from before the set
    // existed) stand for the unrestricted set.
    absl::StatusOr<std::vector<std::string>> f =
        DecodeToken(q.page_token, "op2", 6);
    if (!f.ok()) {
      f = DecodeToken(q.page_token, "op1", 5);
      if (f.ok()) f->insert(f->begin() + 3, "");
    }
    RETURN_IF_ERROR(f.status());
    if (!absl::SimpleAtoi((*f)[4], &cursor_us)) return InvalidToken();
    if ((*f)[1] != q.account || (*f)[2] != unfinished || (*f)[3] != set_key) {
      return ForeignToken();
    }
    cursor_name = std::move((*f)[5]);
  }
  // Each filter combination is its own (cached) statement so SQLite can
  // pick the matching index instead of a generic "?1 = '' OR ..." plan.
  std::string sql = absl::StrCat("SELECT ", kOpColumns,
                                 " FROM operations WHERE 1");
  if (!q.account.empty()) absl::StrAppend(&sql, " AND account = ?");
  if (!q.accounts.empty()) {
    absl::StrAppend(&sql,
                    " AND account IN (SELECT value FROM json_each(?))");
  }
  if (q.only_unfinished) absl::StrAppend(&sql, " AND done = 0");
  if (has_cursor) absl::StrAppend(&sql, " AND (create_us, name) > (?, ?)");
  absl::StrAppend(&sql, " ORDER BY create_us, name LIMIT ?");
  ASSIGN_OR_RETURN(Stmt list, Prepare(sql));
  // Bound with SQLITE_STATIC: must outlive the statement's steps below.
  const std::string accounts_json =
      q.accounts.empty() ? "" : JsonStringArray(q.accounts);
  if (!q.account.empty()) list.Text(q.account);
  if (!q.accounts.empty()) list.Text(accounts_json);
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
          EncodeToken({"op2", q.account, unfinished, set_key,
                       absl::StrCat(ToMicros(last.create_time)),
                       last.op.name()});
      break;
    }
    ASSIGN_OR_RETURN(OperationRecord r, ReadOperation(list));
    page.records.push_back(std::move(r));
  }
  return page;
}

absl::StatusOr<std::vector<OperationRecord>> Conn::ListUnfinishedOperations() {
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

absl::Status Conn::DeleteOperation(absl::string_view name) {
  ASSIGN_OR_RETURN(Stmt del,
                   Prepare("DELETE FROM operations WHERE name = ?"));
  del.Text(name);
  RETURN_IF_ERROR(del.Run());
  if (sqlite3_changes(db_) == 0) return OperationNotFound(name);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Conn::PruneFinishedOperations(absl::Time before,
                                                      int limit) {
  RETURN_IF_ERROR(CheckBatchLimit(limit));
  // The subquery walks operations_finished (done = 1, by update_us), so a
  // batch costs its own size, not the table's. The unique request_id index
  // entry goes with the row: the key is free again.
  ASSIGN_OR_RETURN(
      Stmt del,
      Prepare("DELETE FROM operations WHERE name IN (SELECT name FROM "
              "operations WHERE done = 1 AND update_us < ? "
              "ORDER BY update_us LIMIT ?)"));
  del.Int(ToMicros(before)).Int(limit);
  RETURN_IF_ERROR(del.Run());
  return static_cast<int64_t>(sqlite3_changes64(db_));
}

}  // namespace cloudplane::store::internal

namespace cloudplane::store {

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
  }, /*one_statement=*/true));
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

absl::StatusOr<int64_t> Store::PruneFinishedOperations(absl::Time before,
                                                       int limit) {
  absl::StatusOr<int64_t> result;
  RETURN_IF_ERROR(Write([&] {
    result = conn_->PruneFinishedOperations(before, limit);
    return result.status();
  }));
  return result;
}

}  // namespace cloudplane::store
