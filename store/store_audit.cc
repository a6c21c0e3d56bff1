// The audit log: batched appends, filtered keyset-paged listing newest
// first, and trims by time (retention).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "store/store.h"
#include "store/store_internal.h"

namespace cloudplane::store::internal {
namespace {

// An open bound of the time window is "" in tokens and absent from the SQL.
std::string TimeBound(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return "";
  return absl::StrCat(ToMicros(t));
}

}  // namespace

// ---- Conn ------------------------------------------------------------------

absl::Status Conn::AppendAuditEvents(const std::vector<AuditRecord>& records) {
  // The caller's transaction makes the batch all or nothing; the statement
  // comes from the cache and is reset at the end of each iteration.
  for (const AuditRecord& r : records) {
    ASSIGN_OR_RETURN(Stmt insert,
                     Prepare("INSERT INTO audit_events (time_us, principal, "
                             "account, bytes) VALUES (?, ?, ?, ?)"));
    insert.Int(ToMicros(r.time)).Text(r.principal).Text(r.account).Blob(r.bytes);
    RETURN_IF_ERROR(insert.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<AuditPage> Conn::ListAuditEvents(const AuditQuery& q) {
  ASSIGN_OR_RETURN(int page_size, EffectivePageSize(q.page_size));
  if (q.start > q.end) {
    return absl::InvalidArgumentError("start time must not be after end time");
  }
  const std::string start = TimeBound(q.start);
  const std::string end = TimeBound(q.end);
  const std::string set_key = AccountSetKey(q.accounts);
  bool has_cursor = !q.page_token.empty();
  int64_t cursor_seq = 0;
  if (has_cursor) {
    ASSIGN_OR_RETURN(std::vector<std::string> f,
                     DecodeToken(q.page_token, "au1", 7));
    if (!absl::SimpleAtoi(f[6], &cursor_seq)) return InvalidToken();
    if (f[1] != q.account || f[2] != q.principal || f[3] != start ||
        f[4] != end || f[5] != set_key) {
      return ForeignToken();
    }
  }
  // One (cached) statement per filter combination, so SQLite picks the
  // matching index.
  std::string sql =
      "SELECT seq, time_us, principal, account, bytes FROM audit_events "
      "WHERE 1";
  if (!q.account.empty()) absl::StrAppend(&sql, " AND account = ?");
  if (!q.accounts.empty()) {
    absl::StrAppend(&sql,
                    " AND account IN (SELECT value FROM json_each(?))");
  }
  if (!q.principal.empty()) absl::StrAppend(&sql, " AND principal = ?");
  if (!start.empty()) absl::StrAppend(&sql, " AND time_us >= ?");
  if (!end.empty()) absl::StrAppend(&sql, " AND time_us < ?");
  if (has_cursor) absl::StrAppend(&sql, " AND seq < ?");
  absl::StrAppend(&sql, " ORDER BY seq DESC LIMIT ?");
  ASSIGN_OR_RETURN(Stmt list, Prepare(sql));
  // Bound with SQLITE_STATIC: must outlive the steps below.
  const std::string accounts_json =
      q.accounts.empty() ? "" : JsonStringArray(q.accounts);
  if (!q.account.empty()) list.Text(q.account);
  if (!q.accounts.empty()) list.Text(accounts_json);
  if (!q.principal.empty()) list.Text(q.principal);
  if (!start.empty()) list.Int(ToMicros(q.start));
  if (!end.empty()) list.Int(ToMicros(q.end));
  if (has_cursor) list.Int(cursor_seq);
  // One extra row tells whether another page exists.
  list.Int(page_size + 1);

  AuditPage page;
  while (true) {
    ASSIGN_OR_RETURN(bool row, list.Step());
    if (!row) break;
    if (static_cast<int>(page.records.size()) == page_size) {
      page.next_page_token =
          EncodeToken({"au1", q.account, q.principal, start, end, set_key,
                       absl::StrCat(page.records.back().seq)});
      break;
    }
    AuditRecord r;
    r.seq = list.ColumnInt(0);
    r.time = FromMicros(list.ColumnInt(1));
    r.principal = std::string(list.Column(2));
    r.account = std::string(list.Column(3));
    r.bytes = std::string(list.Column(4));
    page.records.push_back(std::move(r));
  }
  return page;
}

absl::StatusOr<int64_t> Conn::TrimAuditEventsBefore(absl::Time before) {
  // Served by audit_events_by_time. The AUTOINCREMENT high-water mark lives
  // in sqlite_sequence, which a DELETE leaves alone: seqs are never reused.
  // An infinite `before` becomes the int64 minimum or maximum: nothing or
  // everything.
  ASSIGN_OR_RETURN(Stmt del,
                   Prepare("DELETE FROM audit_events WHERE time_us < ?"));
  del.Int(ToMicros(before));
  RETURN_IF_ERROR(del.Run());
  return static_cast<int64_t>(sqlite3_changes64(db()));
}

}  // namespace cloudplane::store::internal

namespace cloudplane::store {

// ---- Store: audit log ----

absl::Status Store::AppendAuditEvents(const std::vector<AuditRecord>& records) {
  if (records.empty()) {
    RETURN_IF_ERROR(CheckNotInTransaction());
    return absl::OkStatus();
  }
  return Write([&] { return conn_->AppendAuditEvents(records); });
}

absl::StatusOr<AuditPage> Store::ListAuditEvents(const AuditQuery& query) {
  absl::StatusOr<AuditPage> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->ListAuditEvents(query);
    return result.status();
  }));
  return result;
}

absl::StatusOr<int64_t> Store::TrimAuditEventsBefore(absl::Time before) {
  absl::StatusOr<int64_t> result;
  RETURN_IF_ERROR(Write([&] {
    result = conn_->TrimAuditEventsBefore(before);
    return result.status();
  }));
  return result;
}

}  // namespace cloudplane::store
