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

absl::StatusOr<int64_t> Conn::TrimChangesOlderThan(absl::Time before,
                                                   int limit) {
  RETURN_IF_ERROR(CheckBatchLimit(limit));
  // Walk the oldest `limit` entries in seq order and stop at the first one
  // that is new enough. Times are non-decreasing within one Store, so this
  // is normally every old entry; after a clock step back between runs an
  // older-looking entry behind a newer one waits for its neighbours, which
  // keeps the trimmed part a prefix (one watermark, see TrimChangesBefore).
  int64_t cut = -1;  // Delete seq < cut.
  int64_t count = 0;
  {
    ASSIGN_OR_RETURN(Stmt oldest, Prepare("SELECT seq, time_us FROM changes "
                                          "ORDER BY seq LIMIT ?"));
    oldest.Int(limit);
    const int64_t before_us = ToMicros(before);
    while (true) {
      ASSIGN_OR_RETURN(bool row, oldest.Step());
      if (!row || oldest.ColumnInt(1) >= before_us) break;
      cut = oldest.ColumnInt(0) + 1;
      ++count;
    }
  }  // Reset before the DELETE below.
  if (count == 0) return 0;
  RETURN_IF_ERROR(TrimChangesBefore(cut));
  return count;
}

absl::StatusOr<int64_t> Conn::TrimChangesToCount(int64_t keep, int limit) {
  if (keep < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep must not be negative, got ", keep));
  }
  RETURN_IF_ERROR(CheckBatchLimit(limit));
  ASSIGN_OR_RETURN(int64_t last, LastChangeSeq());
  // Everything below `target` goes; `limit` bounds this call's share.
  const int64_t target = last - keep + 1;
  if (target <= 1) return 0;
  int64_t cut = target;  // Delete seq < cut.
  {
    // The seq just past this batch: the row after the first `limit` below
    // target, if there is one.
    ASSIGN_OR_RETURN(Stmt nth, Prepare("SELECT seq FROM changes WHERE seq < ? "
                                       "ORDER BY seq LIMIT 1 OFFSET ?"));
    nth.Int(target).Int(limit);
    ASSIGN_OR_RETURN(bool more, nth.Step());
    if (more) cut = nth.ColumnInt(0);
  }
  int64_t count = 0;
  {
    ASSIGN_OR_RETURN(Stmt below,
                     Prepare("SELECT count(*) FROM changes WHERE seq < ?"));
    below.Int(cut);
    ASSIGN_OR_RETURN(bool row, below.Step());
    if (row) count = below.ColumnInt(0);
  }
  if (count == 0) return 0;
  RETURN_IF_ERROR(TrimChangesBefore(cut));
  return count;
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

absl::StatusOr<int64_t> Store::TrimChangesOlderThan(absl::Time before,
                                                    int limit) {
  absl::StatusOr<int64_t> result;
  RETURN_IF_ERROR(Write([&] {
    result = conn_->TrimChangesOlderThan(before, limit);
    return result.status();
  }));
  return result;
}

absl::StatusOr<int64_t> Store::TrimChangesToCount(int64_t keep, int limit) {
  absl::StatusOr<int64_t> result;
  RETURN_IF_ERROR(Write([&] {
    result = conn_->TrimChangesToCount(keep, limit);
    return result.status();
  }));
  return result;
}

}  // namespace cloudplane::store
