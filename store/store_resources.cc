// Resources: opaque bytes keyed by (account, collection, id); get, put,
// delete and list (keyset paged).
#include "store/store.h"

#include <sqlite3.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "store/store_internal.h"

namespace cloudplane::store::internal {
namespace {

absl::Status CheckResourceKey(absl::string_view collection,
                              absl::string_view id) {
  if (collection.empty()) {
    return absl::InvalidArgumentError("collection must not be empty");
  }
  if (id.empty()) return absl::InvalidArgumentError("id must not be empty");
  return absl::OkStatus();
}

}  // namespace

// ---- Conn ------------------------------------------------------------------

absl::StatusOr<std::string> Conn::GetResource(absl::string_view account,
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

absl::Status Conn::PutResource(absl::string_view account,
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

absl::StatusOr<bool> Conn::DeleteResource(absl::string_view account,
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

absl::StatusOr<ResourcePage> Conn::ListResources(absl::string_view account,
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

}  // namespace cloudplane::store::internal

namespace cloudplane::store {

// ---- Store: resources ----

absl::StatusOr<std::string> Store::GetResource(absl::string_view account,
                                               absl::string_view collection,
                                               absl::string_view id) {
  absl::StatusOr<std::string> result;
  RETURN_IF_ERROR(Read([&] {
    result = conn_->GetResource(account, collection, id);
    return result.status();
  }, /*one_statement=*/true));
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

absl::StatusOr<std::vector<ResourceEntry>> Store::ListResourcesAfter(
    absl::string_view account, absl::string_view collection,
    absl::string_view after_id, int limit) {
  if (collection.empty()) {
    return absl::InvalidArgumentError("collection must not be empty");
  }
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError("limit must be in [1, 10000]");
  }
  std::vector<ResourceEntry> out;
  RETURN_IF_ERROR(Read([&]() -> absl::Status {
    ASSIGN_OR_RETURN(internal::Stmt list,
                     conn_->Prepare("SELECT id, data FROM resources WHERE "
                                    "account = ? AND collection = ? AND id > ? "
                                    "ORDER BY id LIMIT ?"));
    list.Text(account).Text(collection).Text(after_id).Int(limit);
    while (true) {
      ASSIGN_OR_RETURN(bool row, list.Step());
      if (!row) break;
      out.push_back({std::string(list.Column(0)), std::string(list.Column(1))});
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace cloudplane::store
