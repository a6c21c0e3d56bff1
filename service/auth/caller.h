// Who is calling: what authentication found out about the caller of one RPC.
#ifndef CLOUDPLANE_SERVICE_AUTH_CALLER_H_
#define CLOUDPLANE_SERVICE_AUTH_CALLER_H_

#include <string>
#include <vector>

namespace cloudplane::auth {

struct Caller {
  // The principal as the credential names it: a JWT's principal claim, an
  // API key's configured principal, a client certificate's SPIFFE ID, DNS
  // name or CN. Empty when the server runs without authentication.
  std::string principal;
  // Groups from the JWT's groups claim or the API key's configuration.
  std::vector<std::string> groups;
  // How the caller proved it: "jwt", "api_key", "certificate", or "none"
  // (authentication is off).
  std::string credential;
  // Authentication is off: the caller may do everything on every account.
  bool unrestricted = false;
};

}  // namespace cloudplane::auth

#endif  // CLOUDPLANE_SERVICE_AUTH_CALLER_H_
