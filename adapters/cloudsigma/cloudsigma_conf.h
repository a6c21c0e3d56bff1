// Importing a pycloudsigma configuration (`~/.cloudsigma.conf`, described in
// the README of github.com/cloudsigma/pycloudsigma) as a cloudplane account.
//
// The file is ConfigObj `key = value` lines with `#` comments. The keys used
// are api_endpoint, ws_endpoint, username and password; the others
// (login_method, request_log_level, …) are ignored.
//
// The result is an AccountConfig snippet for the server's config file plus
// the secret, which does NOT go into that snippet: the snippet names where
// the secret is (`credentials { env: "…" }` or `{ file: "…" }`), and the
// caller puts the secret ("username:password") there. Neither the secret nor
// the password ever appears in a message or in the snippet.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_CONF_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_CONF_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::adapters::cloudsigma {

struct ImportedAccount {
  // `accounts { id: … provider: "cloudsigma" endpoint: … credentials {…}
  // options { key: "ws_endpoint" value: … } }`, ready to paste into a
  // ServerConfig text proto.
  std::string account_textproto;
  // "username:password": the account's secret, to be written where the
  // snippet's credentials point. Never log it.
  std::string secret;
};

// Where the snippet says the secret is: exactly one of the two.
struct SecretLocation {
  std::string env;   // an environment variable name
  std::string file;  // an absolute file path
};

// Converts the text of a .cloudsigma.conf. INVALID_ARGUMENT naming the key
// (never its value) when api_endpoint, username or password is missing, a
// line is not `key = value`, the account id is not 1-63 characters of
// [a-z0-9-] starting with a letter, or not exactly one of env/file is set.
// Surrounding quotes of a value are removed, as ConfigObj does.
absl::StatusOr<ImportedAccount> ImportCloudSigmaConf(absl::string_view conf_text,
                                                     absl::string_view account_id,
                                                     const SecretLocation& secret_location);

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_CONF_H_
