// libcurl result code -> absl::Status. Private to this package: nothing
// outside adapters/common/http includes curl.h.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_HTTP_CURL_STATUS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_HTTP_CURL_STATUS_H_

#include <curl/curl.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cloudplane::http::internal {

// Maps a transfer's CURLcode to a status whose message is `context` (for
// example "GET https://host/path"), a short description of the failure, and
// libcurl's `detail` text (its error buffer) when non-empty. CURLE_OK maps to
// OK. A timeout maps to DEADLINE_EXCEEDED; HttpClient turns a connect timeout
// that happened before the request deadline into UNAVAILABLE itself.
absl::Status CurlCodeToStatus(CURLcode code, absl::string_view context,
                              absl::string_view detail);

// Just the code of that table.
absl::StatusCode CurlCodeToStatusCode(CURLcode code);

}  // namespace cloudplane::http::internal

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_CURL_STATUS_H_
