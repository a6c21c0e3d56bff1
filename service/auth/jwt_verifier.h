// Verifies bearer tokens: JWTs (RFC 7519) in JWS compact form (RFC 7515),
// signed RS256 or ES256 (RFC 7518 §3.3, §3.4) by a key from a JWKS (RFC 7517).
//
// Not wired into the server yet: the server config, the `authorization:
// Bearer …` metadata and SIGHUP reloads of the JWKS file come later (issue 12).
//
// Why OpenSSL's EVP and RapidJSON and not Debian's libcpp-jwt-dev: both are
// already in the build (SigV4, the JSON adapters), so there is no new
// dependency; and the few lines that matter for security stay in view here —
// the verifier picks the algorithm from the KEY, never trusts the token's
// header for it, and refuses `alg=none` and every HMAC alg explicitly, so the
// classic confusions (`none`, HS256 "signed" with the RSA public key) cannot
// depend on how a library defaults. The token's `jku`, `x5u`, `jwk` and `x5c`
// headers are ignored: keys come from the configured JWKS only.
//
// Call flow of VerifyJwt:
//   1. Size (at most kMaxJwtBytes) and shape: three base64url segments
//      without padding, header and payload JSON objects in valid UTF-8 with no
//      member named twice.
//   2. Header: `alg` is RS256 or ES256 (`none` and HS256/384/512 are refused
//      by name); no `crit`. The key is the one named by `kid`, or the only
//      key of the set when the token names none. Its type must fit `alg`
//      (RSA for RS256, EC P-256 for ES256), and its own `alg`, when the JWK
//      has one, must be the token's.
//   3. Signature over `header.payload`: RS256 is RSASSA-PKCS1-v1_5 with
//      SHA-256; ES256 is JOSE's raw 64-byte r||s, turned into DER for EVP.
//   4. Claims, only after the signature holds: `exp` required and
//      `exp + clock_skew >= now`; `nbf`, when present, `nbf - clock_skew <=
//      now`; `iss` equals policy.issuer; `aud` (a string or an array of
//      strings) contains one of policy.audiences; the principal claim is a
//      non-empty string; the groups claim, when configured and present, is an
//      array of strings (or one string).
//
// Errors: every refusal of a token is UNAUTHENTICATED with ErrorInfo reason
// CREDENTIALS_INVALID (an empty token: CREDENTIALS_MISSING). The message says
// which check failed, never the token nor any value taken from it (not the
// kid, the issuer or the subject). A policy without issuer or audience is
// FAILED_PRECONDITION (a server bug or a configuration ValidateJwtPolicy
// should have caught); JwksKeySet::Parse gives INVALID_ARGUMENT.
//
// Thread-safety: a JwksKeySet is immutable once parsed and cheap to copy (the
// keys are shared); VerifyJwt may run on any number of threads at once.
#ifndef CLOUDPLANE_SERVICE_AUTH_JWT_VERIFIER_H_
#define CLOUDPLANE_SERVICE_AUTH_JWT_VERIFIER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cloudplane::auth {

// Longer tokens are refused before any decoding (the limit bounds the work
// and memory an unauthenticated caller can cause).
inline constexpr size_t kMaxJwtBytes = 16 * 1024;

// RSA keys shorter than this are refused when the JWKS is parsed.
inline constexpr int kMinRsaBits = 2048;

struct JwtPolicy {
  // The `iss` every token must carry, exactly. Required.
  std::string issuer;
  // A token is accepted when its `aud` names at least one of these. Required.
  std::vector<std::string> audiences;
  // Tolerance for clocks that disagree, applied to `exp` and `nbf`.
  absl::Duration clock_skew = absl::Seconds(60);
  // The claim whose string value is the principal.
  std::string principal_claim = "sub";
  // The claim listing the principal's groups; empty means none are read.
  std::string groups_claim;
};

// OK, or INVALID_ARGUMENT naming what is missing: no issuer, no audience, a
// negative clock skew, or no principal claim. For the config loader, so a
// server refuses to start rather than refusing every token.
absl::Status ValidateJwtPolicy(const JwtPolicy& policy);

struct Identity {
  std::string principal;
  std::vector<std::string> groups;
  // The token's `exp` (without the skew).
  absl::Time expires;
};

// The verification keys of one JWKS document.
class JwksKeySet {
 public:
  enum class KeyType { kRsa, kEcP256 };

  // Parses `{"keys": [...]}`. Keeps RSA keys (`n`, `e`) and EC keys on P-256
  // (`x`, `y`, 32 bytes each, a point on the curve); skips keys of any other
  // type or curve, keys whose `use` is not "sig", and keys whose `alg` is
  // neither RS256 nor ES256. INVALID_ARGUMENT when the text is not a JWKS,
  // a kept key is malformed, an RSA key has fewer than kMinRsaBits, two keys
  // share a kid, or no key is left.
  static absl::StatusOr<JwksKeySet> Parse(absl::string_view jwks_json);

  // Number of keys kept.
  size_t size() const { return keys_.size(); }

  struct Key;  // defined in the .cc (type, kid, JWK alg, the EVP_PKEY)

  // The key for `kid`, or the only key when `kid` is empty; nullptr when
  // there is no such key (or several and `kid` is empty).
  const Key* Find(absl::string_view kid) const;

 private:
  std::vector<std::shared_ptr<const Key>> keys_;
};

// Verifies `token` (the bearer token without the "Bearer " prefix) as of
// `now`; see the call flow above.
absl::StatusOr<Identity> VerifyJwt(absl::string_view token, const JwksKeySet& keys,
                                   const JwtPolicy& policy, absl::Time now);

}  // namespace cloudplane::auth

#endif  // CLOUDPLANE_SERVICE_AUTH_JWT_VERIFIER_H_
