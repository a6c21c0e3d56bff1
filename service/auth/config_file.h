// Reading a file the server config names (a JWKS, a certificate, a key).
#ifndef CLOUDPLANE_SERVICE_AUTH_CONFIG_FILE_H_
#define CLOUDPLANE_SERVICE_AUTH_CONFIG_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::auth {

// The whole contents of `path`, which the config field `field` (e.g.
// `tls.key_file`) names. FAILED_PRECONDITION naming the field, the path and
// the system's reason when it cannot be read; never any of its contents.
absl::StatusOr<std::string> ReadConfiguredFile(absl::string_view field, const std::string& path);

}  // namespace cloudplane::auth

#endif  // CLOUDPLANE_SERVICE_AUTH_CONFIG_FILE_H_
