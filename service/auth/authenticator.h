// Authentication: which principal an RPC comes from, decided from its
// `authorization` metadata or, failing that, its verified client certificate.
//
// Built once from ServerConfig.auth and ServerConfig.tls and never changed:
// on SIGHUP the server builds a new Authenticator and swaps the
// std::shared_ptr, so a call in flight keeps the one it started with, and a
// new JWKS never meets a cache entry verified under the old one.
//
// Call flow of Authenticate:
//   1. Authentication off (no jwt, no api_keys, no tls.client_ca_file):
//      every call is Caller{credential "none", unrestricted}.
//   2. More than one `authorization` entry: refused.
//   3. An `authorization` entry decides alone, even when a valid client
//      certificate came too: `Bearer <token>` (scheme case-insensitive, one
//      space, a token without whitespace); anything else is refused.
//      a. The token's SHA-256 is compared with EVERY configured API key hash
//         in constant time (CRYPTO_memcmp, no early exit), so timing says
//         nothing about which key, or how much of one, matched.
//      b. Else, when jwt is configured, the token is verified as a JWT
//         (jwt_verifier.h). Verified tokens are cached until their `exp` plus
//         the clock skew (at most kJwtCacheSize entries), so a client that
//         sends the same token on every call pays for one signature check.
//      c. Else refused.
//   4. No `authorization`: when tls.client_ca_file is set and the peer sent a
//      certificate (which the TLS layer verified against that CA), the
//      principal is the certificate's (certificate_identity.h). Principals are
//      cached by the SHA-256 of the certificate's PEM (at most
//      kCertificateCacheSize; a full cache is emptied): the principal depends
//      on those bytes alone, and parsing them is the dearest step of a call
//      (OpenSSL 3 decodes the public key through its provider machinery; the
//      mtls mode of bench/api_bench.py --auth=compare measured ~200 us per
//      call, doubling GetInstance's server CPU). Refusals are not cached.
//   5. Else: no credential.
//
// Errors of Authenticate: UNAUTHENTICATED with ErrorInfo reason
// CREDENTIALS_MISSING (step 5) or CREDENTIALS_INVALID (everything refused).
// Messages say which check failed and never quote the metadata value, the
// token, a key, or anything read from a token.
//
// Errors of Create: INVALID_ARGUMENT with a BadRequest naming the field path
// (`auth.api_keys[1].sha256`, `auth.jwt.issuer`, `auth.bindings[0].role`, …);
// FAILED_PRECONDITION naming auth.jwt.jwks_file's path when it cannot be read
// (never its content).
//
// Thread-safety: const methods may run on any number of threads at once (the
// JWT cache has its own mutex).
#ifndef CLOUDPLANE_SERVICE_AUTH_AUTHENTICATOR_H_
#define CLOUDPLANE_SERVICE_AUTH_AUTHENTICATOR_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cloudplane/config/v1/config.pb.h"
#include "service/auth/caller.h"
#include "service/auth/jwt_verifier.h"

namespace cloudplane::auth {

// At most this many verified JWTs are remembered.
inline constexpr size_t kJwtCacheSize = 10000;

// At most this many client certificates' principals are remembered.
inline constexpr size_t kCertificateCacheSize = 1000;

class Authenticator {
 public:
  // Validates config.auth (and reads auth.jwt.jwks_file); see the errors
  // above. Role bindings are only validated here (policy.h applies them).
  static absl::StatusOr<std::shared_ptr<const Authenticator>> Create(
      const config::v1::ServerConfig& config);

  // Whether calls must carry a credential: jwt, api_keys or
  // tls.client_ca_file is configured.
  bool enabled() const { return enabled_; }

  // `authorization`: the value of the call's `authorization` metadata, ""
  // when absent; `authorization_count`: how many such entries the call had;
  // `peer_certificate_pem`: the verified client certificate, "" if none.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization, int authorization_count,
                                      absl::string_view peer_certificate_pem,
                                      absl::Time now) const;

  // How many times a JWT signature was verified (cache misses); for tests.
  size_t jwt_verifications_for_testing() const { return jwt_verifications_.load(); }

  // How many times a client certificate was parsed (cache misses); for tests.
  size_t certificate_parses_for_testing() const { return certificate_parses_.load(); }

  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

 private:
  using Digest = std::array<unsigned char, 32>;
  struct ApiKeyEntry {
    Digest sha256;
    std::string principal;
    std::vector<std::string> groups;
  };
  struct CachedJwt {
    Identity identity;
    absl::Time verified_at;  // a lookup with an earlier `now` re-verifies
    absl::Time valid_until;  // exp + clock skew
  };
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };

  Authenticator() = default;

  absl::StatusOr<Caller> Bearer(absl::string_view token, absl::Time now) const;
  absl::StatusOr<Identity> VerifyCached(absl::string_view token, const Digest& digest,
                                        absl::Time now) const;
  absl::StatusOr<std::string> CertificatePrincipal(absl::string_view pem) const;

  bool enabled_ = false;
  bool client_certificates_ = false;
  std::vector<ApiKeyEntry> api_keys_;
  bool jwt_enabled_ = false;
  JwtPolicy jwt_policy_;
  std::unique_ptr<JwksKeySet> jwks_;

  // Keyed by the token's SHA-256 rather than its bytes: the same identity
  // (collisions are out of reach) in 32 bytes instead of up to 16 KiB.
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<Digest, CachedJwt, DigestHash> jwt_cache_
      ABSL_GUARDED_BY(cache_mu_);
  mutable std::atomic<size_t> jwt_verifications_{0};

  // Principals of client certificates, keyed by the SHA-256 of the PEM.
  mutable absl::Mutex certificate_mu_;
  mutable absl::flat_hash_map<Digest, std::string, DigestHash> certificate_cache_
      ABSL_GUARDED_BY(certificate_mu_);
  mutable std::atomic<size_t> certificate_parses_{0};
};

}  // namespace cloudplane::auth

#endif  // CLOUDPLANE_SERVICE_AUTH_AUTHENTICATOR_H_
