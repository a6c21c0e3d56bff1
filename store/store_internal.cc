// Definitions for store_internal.h: SQLite error mapping, page tokens and
// the connection plumbing every concern uses.
#include "store/store_internal.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status.h"
#include "openssl/evp.h"

namespace cloudplane::store::internal {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

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

}  // namespace

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

absl::Status CheckBatchLimit(int limit) {
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be in [1, 10000], got ", limit));
  }
  return absl::OkStatus();
}

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

std::string AccountSetKey(const std::vector<std::string>& accounts) {
  if (accounts.empty()) return "";
  std::vector<std::string> sorted = accounts;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string canonical;
  for (const std::string& a : sorted) absl::StrAppend(&canonical, a.size(), ":", a);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), digest, &digest_size,
                 EVP_sha256(), nullptr) != 1) {
    // Never expected; the canonical form itself still binds the token.
    return canonical;
  }
  // 128 bits are plenty to tell two sets apart; tokens stay short.
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(digest), std::min(digest_size, 16u)));
}

std::string JsonStringArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (unsigned char c : values[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        out += absl::StrFormat("\\u%04x", c);
      } else {
        out += static_cast<char>(c);
      }
    }
    out += '"';
  }
  out += ']';
  return out;
}

// ---- Connection -------------------------------------------------------------

Conn::~Conn() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<Stmt> Conn::Prepare(absl::string_view sql) {
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

absl::Status Conn::Exec(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "exec");
  return absl::OkStatus();
}

absl::Status Conn::Simple(absl::string_view sql) {
  ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
  return stmt.Run();
}

absl::StatusOr<int64_t> Conn::PragmaInt(absl::string_view sql) {
  ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnInt(0) : 0;
}

}  // namespace cloudplane::store::internal
