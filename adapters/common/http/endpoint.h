// Where an HttpClient sends its requests: a TCP base URL or a unix socket.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_HTTP_ENDPOINT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_HTTP_ENDPOINT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::http {

struct Endpoint {
  // Prefix of every request URL, never with a trailing slash:
  // "https://host:8443/base". For a unix socket it is "http://localhost"
  // (plus any base path), which is what goes on the request line and in Host.
  std::string base_url;
  // When non-empty, connections go to this unix domain socket (an absolute
  // path) instead of the host in `base_url`.
  std::string unix_socket_path;
};

// Parses an endpoint written in configuration. Accepted forms:
//   http://host[:port][/base]      host: name, IPv4, or [IPv6]
//   https://host[:port][/base]
//   unix:///abs/path.sock          also file:///abs/path.sock
// Trailing slashes of the base path are dropped.
//
// Returns INVALID_ARGUMENT, with a message naming the problem, for: an empty
// string, another scheme, a relative unix socket path (unix://relative), a
// socket path longer than the OS allows, a missing host, a bad port,
// credentials (user:pass@) or a query/fragment in the URL. The messages never
// repeat credentials or query strings.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text);

}  // namespace cloudplane::http

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_ENDPOINT_H_
