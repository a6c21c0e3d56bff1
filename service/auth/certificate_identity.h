// The principal a client certificate names, for callers that authenticate
// with mutual TLS.
//
// The TLS layer has already verified the certificate's chain against
// tls.client_ca_file when this runs; here only the name is read, in this
// order of preference:
//   1. the first URI subjectAltName that starts with `spiffe://` (a SPIFFE ID,
//      the stable name of a workload);
//   2. the first DNS subjectAltName;
//   3. the subject's commonName.
// A name containing a NUL byte or any control character is skipped (it cannot
// be a name a binding could match safely).
//
// Errors: UNAUTHENTICATED with ErrorInfo reason CREDENTIALS_INVALID when the
// PEM holds no certificate or the certificate names no principal. The message
// never quotes the certificate.
//
// Thread-safety: a pure function; call it from any thread.
#ifndef CLOUDPLANE_SERVICE_AUTH_CERTIFICATE_IDENTITY_H_
#define CLOUDPLANE_SERVICE_AUTH_CERTIFICATE_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::auth {

// `pem`: the peer's leaf certificate in PEM (gRPC's `x509_pem_cert` auth
// property); only the first certificate is read.
absl::StatusOr<std::string> PrincipalFromCertificate(absl::string_view pem);

}  // namespace cloudplane::auth

#endif  // CLOUDPLANE_SERVICE_AUTH_CERTIFICATE_IDENTITY_H_
