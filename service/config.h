// Loading cloudplaned's configuration (cloudplane.config.v1.ServerConfig).
#ifndef CLOUDPLANE_SERVICE_CONFIG_H_
#define CLOUDPLANE_SERVICE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cloudplane/config/v1/config.pb.h"

namespace cloudplane::service {

// Reads the text-format ServerConfig at `path`, or the embedded default (one
// `sandbox` account) when `path` is empty; then fills in defaults and checks
// it. INVALID_ARGUMENT names the offending field, e.g. `accounts[1].id`;
// NOT_FOUND when the file does not exist.
absl::StatusOr<config::v1::ServerConfig> LoadConfig(const std::string& path);

// What LoadConfig does with the file's text: parse it as a text-format
// ServerConfig (INVALID_ARGUMENT with the first error's line and column,
// naming `source`), then FinishConfig. Reads no file.
absl::StatusOr<config::v1::ServerConfig> ParseConfigText(absl::string_view text,
                                                        absl::string_view source);

// Fills in defaults and checks a config (what LoadConfig does after parsing).
absl::Status FinishConfig(config::v1::ServerConfig& config);

// The secret an account's credentials point at: the file's contents without
// a trailing newline, or the environment variable's value; "" when no source
// is set. FAILED_PRECONDITION naming the file or variable (never its
// contents) when it cannot be read.
absl::StatusOr<std::string> ReadSecret(const config::v1::Credentials& credentials);

// Whether the config sets up a way to authenticate callers: `auth.jwt`,
// `auth.api_keys`, or `tls.client_ca_file` (client certificates). Without
// one every caller may act on every account, and CheckListenAddress keeps
// the server on this host by default. TLS alone does not count: it never
// asks who the client is.
bool AuthenticationConfigured(const config::v1::ServerConfig& config);

// Whether a gRPC listen address can only be reached from this host: a unix
// socket (`unix:` or `unix-abstract:`), `localhost`, an IPv4 address in
// 127.0.0.0/8, or `[::1]` (also `[::ffff:127.x.y.z]`). Everything else is
// remote, including an empty host (`:7070`, every interface), the wildcards
// `0.0.0.0` and `[::]`, and any other host name (it may resolve anywhere).
bool IsLoopbackListenAddress(absl::string_view address);

// OK when cloudplaned may listen on `config.listen_address()`: the address
// is loopback (IsLoopbackListenAddress), authentication is configured, or
// `allow_remote` (the `--insecure_allow_remote` flag) is set.
// FAILED_PRECONDITION naming the address and the flag otherwise.
absl::Status CheckListenAddress(const config::v1::ServerConfig& config, bool allow_remote);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_CONFIG_H_
