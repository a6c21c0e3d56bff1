// AWS Signature Version 4 (HMAC-SHA256) request signing.
//
// Used by adapters that speak an AWS query API (adapters/phantom: Phantom's
// AWS Auto Scaling-compatible API and real AWS Auto Scaling). The signer is
// pure: it takes the request as it will go on the wire and returns the
// canonical request, the string to sign, the signature and the headers to
// add. It is tested against the official AWS SigV4 test suite
// (sigv4_test.cc, vectors from @shared_fixtures//:aws_sigv4).
//
// Reference: "Signature Version 4 signing process" in the AWS General
// Reference (docs.aws.amazon.com/general/latest/gr/signature-version-4.html);
// the project's Phantom notes (shared/protocols/phantom.md, B.2) for
// Phantom's server-side quirks (host without port, comma separator without
// spaces), which are options here rather than special cases.
//
// Crypto: SHA-256 and HMAC-SHA256 from OpenSSL's libcrypto.
//
// Thread-safety: every function is thread-safe (no shared state).
#ifndef CLOUDPLANE_ADAPTERS_COMMON_AWS_SIGV4_H_
#define CLOUDPLANE_ADAPTERS_COMMON_AWS_SIGV4_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cloudplane::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // never logged
  std::string session_token;      // optional (STS); signed as x-amz-security-token
};

// The request to sign, as it will be sent.
struct SigningRequest {
  std::string method = "GET";
  // The path as on the request line (before '?'); may hold raw UTF-8 or
  // spaces: each byte outside the unreserved set and '/' is percent-encoded
  // for the canonical URI (so an already encoded "%20" becomes "%2520", the
  // rule of every AWS service but S3).
  std::string path = "/";
  // The raw query string (after '?', without it); empty for none.
  std::string query;
  // Every header to sign, Host included, in any order and case. Repeated
  // names are joined with ',' in the order given.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
};

struct SigningOptions {
  std::string region;   // e.g. "us-east-1"
  std::string service;  // e.g. "autoscaling"
  absl::Time time;      // the request time (X-Amz-Date)
  // Remove "." and ".." segments and repeated slashes from the path before
  // encoding it (every AWS service but S3).
  bool normalize_path = true;
  // Add and sign x-amz-content-sha256 (S3 style).
  bool sign_body_header = false;
  // Sign without x-amz-security-token but still send it (some STS callers).
  bool omit_session_token_from_signature = false;
  // Separator between the Credential, SignedHeaders and Signature parts of
  // the Authorization header. AWS accepts ", " and ","; Phantom splits the
  // header on whitespace and needs "," (phantom.md B.2 step 7).
  std::string authorization_separator = ", ";
};

struct SignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // lowercase hex
  // Headers to add to the request: X-Amz-Date, then (when used)
  // X-Amz-Security-Token, X-Amz-Content-Sha256, and Authorization.
  std::vector<std::pair<std::string, std::string>> headers_to_add;
  std::string authorization;  // the Authorization header's value
};

// Signs `request`. INVALID_ARGUMENT when the credentials, region or service
// are empty or contain characters that cannot appear in a credential scope
// ('/', whitespace, control characters), or when a header name is empty.
// The message never contains the secret.
absl::StatusOr<SignedRequest> Sign(const SigningRequest& request,
                                   const Credentials& credentials,
                                   const SigningOptions& options);

// The pieces, exposed for tests and for servers that verify signatures.

// Percent-encodes every byte except A-Z a-z 0-9 - _ . ~ (and '/' when
// `keep_slash`), upper-case hex: RFC 3986 as SigV4 wants it.
std::string UriEncode(absl::string_view text, bool keep_slash = false);
// Decodes %XX escapes (malformed ones are kept as they are); '+' stays '+'.
std::string UriDecode(absl::string_view text);
// The canonical query string of a raw query: parameters decoded,
// re-encoded with UriEncode, sorted by name then value, joined with '&'.
std::string CanonicalQueryString(absl::string_view raw_query);
// The canonical URI of a path (see SigningRequest::path).
std::string CanonicalUri(absl::string_view path, bool normalize);
// Lowercase hex SHA-256 of `data`.
std::string HexSha256(absl::string_view data);
// Raw HMAC-SHA256.
std::string HmacSha256(absl::string_view key, absl::string_view data);
// "20150830T123600Z".
std::string AmzDate(absl::Time time);

}  // namespace cloudplane::aws

#endif  // CLOUDPLANE_ADAPTERS_COMMON_AWS_SIGV4_H_
