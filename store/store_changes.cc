// The change log behind Watch resumption: append, list since a seq, last
// seq and trim.
#include "store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "store/store_internal.h"

namespace cloudplane::store::internal {
namespace {

constexpr int kMaxChangeLimit = 10000;

}  // namespace

// ---- Conn ------------------------------------------------------------------

absl::StatusOr<int64_t> Conn::AppendChange(absl::string_view account,
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

absl::StatusOr<int64_t> Conn::TrimmedBefore() {
  ASSIGN_OR_RETURN(Stmt get, Prepare("SELECT value FROM meta WHERE key = "
                                     "'changes_trimmed_before'"));
  ASSIGN_OR_RETURN(bool row, get.Step());
  return row ? get.ColumnInt(0) : 0;
}

absl::StatusOr<int64_t> Conn::LastChangeSeq() {
  ASSIGN_OR_RETURN(Stmt get, Prepare("SELECT seq FROM sqlite_sequence "
                                     "WHERE name = 'changes'"));
  ASSIGN_OR_RETURN(bool row, get.Step());
  return row ? get.ColumnInt(0) : 0;
}

absl::StatusOr<std::vector<Change>> Conn::ListChangesSince(int64_t after_seq,
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

absl::Status Conn::TrimChangesBefore(int64_t seq) {
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

}  // namespace cloudplane::store::internal

namespace cloudplane::store {

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

}  // namespace cloudplane::store
