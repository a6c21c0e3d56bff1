// Turning what people type into what the API takes, and back: resource names
// from short ids, sizes with units, labels. Pure functions, no I/O.
#ifndef CLOUDPLANE_CLIENTS_CLOUDPLANECTL_NAMES_H_
#define CLOUDPLANE_CLIENTS_CLOUDPLANECTL_NAMES_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::ctl {

// "sandbox" → "accounts/sandbox"; "accounts/sandbox" stays as it is.
std::string AccountName(absl::string_view account);

// The name of `id_or_name` in `collection` (e.g. "instances") of `account`:
// "web-1" → "accounts/sandbox/instances/web-1". A value that already starts
// with "accounts/" is returned unchanged, so full names always work. An empty
// value stays empty (the server then names the missing field).
std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id_or_name);

// "4f6c…" → "operations/4f6c…"; "operations/4f6c…" stays as it is.
std::string OperationName(absl::string_view id_or_name);

// The last segment of a resource name: "accounts/a/instances/web-1" → "web-1".
std::string LastSegment(absl::string_view name);

// A byte count with an optional binary (KiB, MiB, GiB, TiB) or decimal (KB,
// MB, GB, TB) unit, e.g. "10GiB", "512 MiB", "1073741824". INVALID_ARGUMENT
// for anything else, for negative values and for overflow.
absl::StatusOr<int64_t> ParseSize(absl::string_view text);

// "10 GiB", "1.5 GiB", "512 B": the largest binary unit that keeps the value
// at least 1, with at most one decimal.
std::string FormatBytes(int64_t bytes);

// "team=web,env=dev" → {team: web, env: dev}. INVALID_ARGUMENT for an entry
// without "=" or with an empty key. An empty text is an empty map.
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(absl::string_view text);

}  // namespace cloudplane::ctl

#endif  // CLOUDPLANE_CLIENTS_CLOUDPLANECTL_NAMES_H_
