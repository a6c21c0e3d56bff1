#include "service/auth/testing/test_jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace cloudplane::auth::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test_jwt: %s failed\n", what);
    std::abort();
  }
}

std::string Coordinate(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  Check(EVP_PKEY_get_bn_param(key, name, &bn) == 1, name);
  std::string out(32, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32);
  BN_free(bn);
  return out;
}

}  // namespace

struct TestJwtSigner::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

std::string Base64Url(absl::string_view bytes) { return absl::WebSafeBase64Escape(bytes); }

std::unique_ptr<TestJwtSigner> TestJwtSigner::Create(absl::string_view kid) {
  std::unique_ptr<TestJwtSigner> signer(new TestJwtSigner());
  signer->kid_ = std::string(kid);
  signer->key_ = std::make_unique<Key>();
  signer->key_->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  Check(signer->key_->pkey != nullptr, "EVP_PKEY_Q_keygen");
  return signer;
}

TestJwtSigner::~TestJwtSigner() = default;

std::string TestJwtSigner::Jwks() const {
  return absl::StrCat(R"({"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":")",
                      kid_, R"(","x":")",
                      Base64Url(Coordinate(key_->pkey, OSSL_PKEY_PARAM_EC_PUB_X)), R"(","y":")",
                      Base64Url(Coordinate(key_->pkey, OSSL_PKEY_PARAM_EC_PUB_Y)), R"("}]})");
}

std::string TestJwtSigner::Sign(absl::string_view claims) const {
  return SignWithHeader(absl::StrCat(R"({"alg":"ES256","typ":"JWT","kid":")", kid_, R"("})"),
                        claims);
}

std::string TestJwtSigner::SignWithHeader(absl::string_view header,
                                          absl::string_view claims) const {
  std::string input = absl::StrCat(Base64Url(header), ".", Base64Url(claims));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  Check(EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key_->pkey) == 1,
        "EVP_DigestSignInit");
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  size_t len = 0;
  Check(EVP_DigestSign(md.get(), nullptr, &len, in, input.size()) == 1, "EVP_DigestSign");
  std::string der(len, '\0');
  Check(EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(der.data()), &len, in,
                       input.size()) == 1,
        "EVP_DigestSign");
  der.resize(len);
  // JWS wants r||s (RFC 7518 §3.4), EVP gives DER.
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  Check(sig != nullptr, "d2i_ECDSA_SIG");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return absl::StrCat(input, ".", Base64Url(raw));
}

}  // namespace cloudplane::auth::testing
