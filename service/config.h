// Loading cloudplaned's configuration (cloudplane.config.v1.ServerConfig).
#ifndef CLOUDPLANE_SERVICE_CONFIG_H_
#define CLOUDPLANE_SERVICE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "cloudplane/config/v1/config.pb.h"

namespace cloudplane::service {

// Reads the text-format ServerConfig at `path`, or the embedded default (one
// `sandbox` account) when `path` is empty; then fills in defaults and checks
// it. INVALID_ARGUMENT names the offending field, e.g. `accounts[1].id`;
// NOT_FOUND when the file does not exist.
absl::StatusOr<config::v1::ServerConfig> LoadConfig(const std::string& path);

// Fills in defaults and checks a config (what LoadConfig does after parsing).
absl::Status FinishConfig(config::v1::ServerConfig& config);

// The secret an account's credentials point at: the file's contents without
// a trailing newline, or the environment variable's value; "" when no source
// is set. FAILED_PRECONDITION naming the file or variable (never its
// contents) when it cannot be read.
absl::StatusOr<std::string> ReadSecret(const config::v1::Credentials& credentials);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_CONFIG_H_
