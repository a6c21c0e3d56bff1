// JWTs made in tests: an EC P-256 signing key, its JWKS, and ES256 tokens
// over any header and claims (so tests can also make broken ones).
//
// Thread-safety: immutable after Create.
#ifndef CLOUDPLANE_SERVICE_AUTH_TESTING_TEST_JWT_H_
#define CLOUDPLANE_SERVICE_AUTH_TESTING_TEST_JWT_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace cloudplane::auth::testing {

class TestJwtSigner {
 public:
  // A new P-256 key published under `kid`.
  static std::unique_ptr<TestJwtSigner> Create(absl::string_view kid);
  ~TestJwtSigner();

  const std::string& kid() const { return kid_; }

  // `{"keys":[<this key as a JWK>]}`.
  std::string Jwks() const;

  // `claims` (a JSON object) signed ES256 with header
  // {"alg":"ES256","typ":"JWT","kid":<kid>}.
  std::string Sign(absl::string_view claims) const;

  // base64url(header).base64url(claims).base64url(ES256 signature), for
  // tests that need a header of their own.
  std::string SignWithHeader(absl::string_view header, absl::string_view claims) const;

 private:
  TestJwtSigner() = default;
  std::string kid_;
  struct Key;
  std::unique_ptr<Key> key_;
};

// base64url without padding.
std::string Base64Url(absl::string_view bytes);

}  // namespace cloudplane::auth::testing

#endif  // CLOUDPLANE_SERVICE_AUTH_TESTING_TEST_JWT_H_
