// JWT verification against keys made here: an RSA-2048 and two EC P-256 keys
// are generated with EVP, published as a JWKS, and tokens are signed by a
// small signer below, so every case controls header, claims and signature.
#include "service/auth/jwt_verifier.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "gtest/gtest.h"

namespace cloudplane::auth {
namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);
constexpr int64_t kNowS = 1700000000;

std::string B64(absl::string_view bytes) { return absl::WebSafeBase64Escape(bytes); }

std::string BnParam(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1) << name;
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

std::string RsaJwk(EVP_PKEY* key, absl::string_view kid) {
  return absl::StrCat(R"({"kty":"RSA","kid":")", kid, R"(","use":"sig","n":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_RSA_N)), R"(","e":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_RSA_E)), R"("})");
}

std::string EcJwk(EVP_PKEY* key, absl::string_view kid, absl::string_view extra = "") {
  return absl::StrCat(R"({"kty":"EC","crv":"P-256","kid":")", kid, R"(",)", extra, R"("x":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32)), R"(","y":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32)), R"("})");
}

std::string Jwks(std::initializer_list<std::string> keys) {
  std::string out = R"({"keys":[)";
  bool first = true;
  for (const auto& k : keys) {
    absl::StrAppend(&out, first ? "" : ",", k);
    first = false;
  }
  return absl::StrCat(out, "]}");
}

// Signs `input` the way JWS does for RS256 or ES256 (ES256: DER from EVP,
// re-encoded as raw r||s).
std::string Sign(EVP_PKEY* key, absl::string_view input, bool ec) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key), 1);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(md.get(), nullptr, &len, in, input.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                           input.size()),
            1);
  sig.resize(len);
  if (!ec) return sig;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(ecdsa);
  return raw;
}

std::string HmacSha256(absl::string_view secret, absl::string_view input) {
  unsigned char out[32];
  unsigned int len = sizeof(out);
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

class JwtVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    ec_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    ec_other_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    ASSERT_NE(rsa_, nullptr);
    ASSERT_NE(ec_, nullptr);
    ASSERT_NE(ec_other_, nullptr);
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(ec_);
    EVP_PKEY_free(ec_other_);
  }

  void SetUp() override {
    jwks_json_ = Jwks({RsaJwk(rsa_, "rsa-1"), EcJwk(ec_, "ec-1")});
    auto keys = JwksKeySet::Parse(jwks_json_);
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = std::make_unique<JwksKeySet>(*std::move(keys));
    policy_.issuer = "https://idp.example.com";
    policy_.audiences = {"cloudplane", "cloudplane-ci"};
    policy_.groups_claim = "groups";
  }

  // Claims that pass every check; tests replace or drop what they test.
  static std::string Claims(absl::string_view extra = "") {
    return absl::StrCat(R"({"iss":"https://idp.example.com","aud":"cloudplane","sub":"alice",)",
                        R"("exp":)", kNowS + 300, R"(,"nbf":)", kNowS - 10, R"(,"iat":)",
                        kNowS - 10, extra, "}");
  }

  // header.payload.signature, signed by `key` (RS256 when it is rsa_).
  static std::string Token(absl::string_view header, absl::string_view claims,
                           EVP_PKEY* key = rsa_) {
    std::string input = absl::StrCat(B64(header), ".", B64(claims));
    return absl::StrCat(input, ".", B64(Sign(key, input, key != rsa_)));
  }
  static std::string Rs(absl::string_view claims) {
    return Token(R"({"alg":"RS256","typ":"JWT","kid":"rsa-1"})", claims, rsa_);
  }
  static std::string Es(absl::string_view claims) {
    return Token(R"({"alg":"ES256","typ":"JWT","kid":"ec-1"})", claims, ec_);
  }

  absl::StatusOr<Identity> Verify(absl::string_view token, absl::Time now = kNow) {
    return VerifyJwt(token, *keys_, policy_, now);
  }

  // A refusal: UNAUTHENTICATED, reason CREDENTIALS_INVALID, the message
  // contains `why` and nothing of the token.
  void ExpectRefused(absl::string_view token, absl::string_view why, absl::Time now = kNow) {
    absl::StatusOr<Identity> got = Verify(token, now);
    ASSERT_FALSE(got.ok()) << why;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated) << got.status();
    auto info = GetErrorInfo(got.status());
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->reason(), reasons::kCredentialsInvalid);
    EXPECT_NE(got.status().message().find(why), absl::string_view::npos) << got.status();
    for (absl::string_view part : absl::StrSplit(token, '.')) {
      if (part.size() >= 8) {
        EXPECT_EQ(got.status().message().find(part), absl::string_view::npos) << got.status();
      }
    }
    for (absl::string_view secret : {"alice", "idp.example.com", "rsa-1", "ec-1"}) {
      EXPECT_EQ(got.status().message().find(secret), absl::string_view::npos) << got.status();
    }
  }

  static EVP_PKEY* rsa_;
  static EVP_PKEY* ec_;
  static EVP_PKEY* ec_other_;
  std::string jwks_json_;
  std::unique_ptr<JwksKeySet> keys_;
  JwtPolicy policy_;
};

EVP_PKEY* JwtVerifierTest::rsa_ = nullptr;
EVP_PKEY* JwtVerifierTest::ec_ = nullptr;
EVP_PKEY* JwtVerifierTest::ec_other_ = nullptr;

// ---- Accepted ---------------------------------------------------------------

TEST_F(JwtVerifierTest, Rs256TokenGivesThePrincipalAndExpiry) {
  auto got = Verify(Rs(Claims()));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "alice");
  EXPECT_TRUE(got->groups.empty());
  EXPECT_EQ(got->expires, kNow + absl::Seconds(300));
}

TEST_F(JwtVerifierTest, Es256TokenIsAccepted) {
  auto got = Verify(Es(Claims()));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "alice");
}

TEST_F(JwtVerifierTest, GroupsComeFromTheConfiguredClaim) {
  auto got = Verify(Rs(Claims(R"(,"groups":["ops","dev"],"roles":["x"])")));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->groups, (std::vector<std::string>{"ops", "dev"}));
  // A single string is one group.
  got = Verify(Es(Claims(R"(,"groups":"ops")")));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->groups, (std::vector<std::string>{"ops"}));
  // No groups claim configured: none are read.
  policy_.groups_claim.clear();
  got = Verify(Rs(Claims(R"(,"groups":["ops"])")));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->groups.empty());
}

TEST_F(JwtVerifierTest, AudienceMayBeAStringOrAnArray) {
  auto claims = [](absl::string_view aud) {
    return absl::StrCat(R"({"iss":"https://idp.example.com","sub":"alice","exp":)", kNowS + 60,
                        R"(,"aud":)", aud, "}");
  };
  EXPECT_TRUE(Verify(Rs(claims(R"("cloudplane")"))).ok());
  EXPECT_TRUE(Verify(Rs(claims(R"("cloudplane-ci")"))).ok());  // the policy's second audience
  EXPECT_TRUE(Verify(Rs(claims(R"(["other","cloudplane"])"))).ok());
  EXPECT_TRUE(Verify(Es(claims(R"(["cloudplane-ci"])"))).ok());
}

TEST_F(JwtVerifierTest, PrincipalClaimIsConfigurable) {
  policy_.principal_claim = "email";
  auto got = Verify(Rs(Claims(R"(,"email":"alice@example.com")")));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "alice@example.com");
}

TEST_F(JwtVerifierTest, ClockSkewToleratesExpiryOnBothSides) {
  // exp = now+300 s, nbf = now-10 s; skew 60 s.
  std::string token = Rs(Claims());
  EXPECT_TRUE(Verify(token, kNow + absl::Seconds(300 + 60)).ok());  // exactly at exp + skew
  ExpectRefused(token, "expired", kNow + absl::Seconds(300 + 61));
  EXPECT_TRUE(Verify(token, kNow - absl::Seconds(10 + 60)).ok());  // exactly at nbf - skew
  ExpectRefused(token, "not valid yet", kNow - absl::Seconds(10 + 61));
  // Without skew the same instants just outside exp and nbf are refused.
  policy_.clock_skew = absl::ZeroDuration();
  ExpectRefused(token, "expired", kNow + absl::Seconds(301));
  ExpectRefused(token, "not valid yet", kNow - absl::Seconds(11));
}

TEST_F(JwtVerifierTest, FractionalNumericDatesAreAccepted) {
  auto got = Verify(Rs(absl::StrCat(R"({"iss":"https://idp.example.com","aud":"cloudplane",)",
                                    R"("sub":"alice","exp":)", kNowS, ".5}")));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->expires, kNow + absl::Milliseconds(500));
}

TEST_F(JwtVerifierTest, NoKidIsFineWhenTheSetHasOneKey) {
  auto one = JwksKeySet::Parse(Jwks({EcJwk(ec_, "only")}));
  ASSERT_TRUE(one.ok()) << one.status();
  std::string token = Token(R"({"alg":"ES256"})", Claims(), ec_);
  EXPECT_TRUE(VerifyJwt(token, *one, policy_, kNow).ok());
}

// ---- Refused: algorithm and key ---------------------------------------------

TEST_F(JwtVerifierTest, AlgNoneIsRefused) {
  std::string unsigned_input = absl::StrCat(B64(R"({"alg":"none"})"), ".", B64(Claims()));
  ExpectRefused(absl::StrCat(unsigned_input, "."), "alg none");  // empty signature
  ExpectRefused(absl::StrCat(unsigned_input, ".", B64("x")), "alg none");
  ExpectRefused(Token(R"({"alg":"NoNe","kid":"rsa-1"})", Claims()), "alg none");
}

TEST_F(JwtVerifierTest, HmacSignedWithThePublicKeyIsRefused) {
  // The classic confusion: an attacker HMACs with the public key's bytes,
  // hoping the verifier uses "the key" as the HMAC secret.
  for (absl::string_view alg : {"HS256", "HS384", "HS512"}) {
    std::string input = absl::StrCat(
        B64(absl::StrCat(R"({"alg":")", alg, R"(","kid":"rsa-1"})")), ".", B64(Claims()));
    std::string token =
        absl::StrCat(input, ".", B64(HmacSha256(RsaJwk(rsa_, "rsa-1"), input)));
    ExpectRefused(token, "HMAC algs are not accepted");
  }
}

TEST_F(JwtVerifierTest, AlgMustFitTheKeyType) {
  // RS256 naming the EC key, and ES256 naming the RSA key.
  ExpectRefused(Token(R"({"alg":"RS256","kid":"ec-1"})", Claims(), rsa_), "does not fit");
  ExpectRefused(Token(R"({"alg":"ES256","kid":"rsa-1"})", Claims(), ec_), "does not fit");
}

TEST_F(JwtVerifierTest, JwkAlgMustMatchTheToken) {
  // An EC key restricted to ES256 in the JWKS; the same key with alg RS256 is
  // skipped at parse time, so the kid is then unknown.
  auto keys = JwksKeySet::Parse(
      Jwks({RsaJwk(rsa_, "rsa-1"), EcJwk(ec_, "ec-1", R"("alg":"ES256",)"),
            EcJwk(ec_other_, "ec-2", R"("alg":"RS256",)")}));
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(VerifyJwt(Es(Claims()), *keys, policy_, kNow).ok());
  auto got = VerifyJwt(Token(R"({"alg":"ES256","kid":"ec-2"})", Claims(), ec_other_), *keys,
                       policy_, kNow);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(JwtVerifierTest, OtherAlgsAreRefused) {
  for (absl::string_view alg : {"RS512", "PS256", "ES384", "EdDSA", ""}) {
    ExpectRefused(Token(absl::StrCat(R"({"alg":")", alg, R"(","kid":"rsa-1"})"), Claims()),
                  "neither RS256 nor ES256");
  }
  ExpectRefused(Token(R"({"kid":"rsa-1"})", Claims()), "no alg");
  ExpectRefused(Token(R"({"alg":7,"kid":"rsa-1"})", Claims()), "no alg");
}

TEST_F(JwtVerifierTest, UnknownKidIsRefused) {
  ExpectRefused(Token(R"({"alg":"RS256","kid":"rsa-2"})", Claims()), "no key with that kid");
  ExpectRefused(Token(R"({"alg":"RS256","kid":""})", Claims()), "kid is not a non-empty");
}

TEST_F(JwtVerifierTest, NoKidIsRefusedWhenTheSetHasSeveralKeys) {
  ExpectRefused(Token(R"({"alg":"RS256"})", Claims()), "no kid, and the key set has several");
}

TEST_F(JwtVerifierTest, CritHeaderIsRefused) {
  ExpectRefused(Token(R"({"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1})", Claims()),
                "crit");
}

TEST_F(JwtVerifierTest, EmbeddedKeysInTheHeaderAreIgnored) {
  // A jwk header naming the attacker's own key changes nothing: the kid
  // still selects the configured key, whose signature check fails.
  std::string header = absl::StrCat(R"({"alg":"ES256","kid":"ec-1","jwk":)",
                                     EcJwk(ec_other_, "ec-1"), "}");
  ExpectRefused(Token(header, Claims(), ec_other_), "bad signature");
}

// ---- Refused: signature -------------------------------------------------------

TEST_F(JwtVerifierTest, BadSignaturesAreRefused) {
  // Payload changed after signing.
  std::string token = Rs(Claims());
  std::string forged = absl::StrReplaceAll(
      token, {{B64(Claims()), B64(absl::StrCat(R"({"iss":"https://idp.example.com",)",
                                               R"("aud":"cloudplane","sub":"root","exp":)",
                                               kNowS + 300, "}"))}});
  ASSERT_NE(forged, token);
  ExpectRefused(forged, "bad signature");
  // Signed by another EC key under our kid.
  ExpectRefused(Token(R"({"alg":"ES256","kid":"ec-1"})", Claims(), ec_other_), "bad signature");
  // ES256 signature of the wrong length (e.g. DER instead of r||s).
  std::string input = absl::StrCat(B64(R"({"alg":"ES256","kid":"ec-1"})"), ".", B64(Claims()));
  ExpectRefused(absl::StrCat(input, ".", B64(std::string(70, 'x'))), "bad signature");
  // RS256 signature truncated by one byte.
  std::string rs_input = absl::StrCat(B64(R"({"alg":"RS256","kid":"rsa-1"})"), ".", B64(Claims()));
  std::string sig = Sign(rsa_, rs_input, false);
  ExpectRefused(absl::StrCat(rs_input, ".", B64(sig.substr(1))), "bad signature");
  // A flipped bit.
  sig[10] ^= 1;
  ExpectRefused(absl::StrCat(rs_input, ".", B64(sig)), "bad signature");
}

// ---- Refused: claims ------------------------------------------------------------

TEST_F(JwtVerifierTest, ExpiredIsRefused) {
  ExpectRefused(Rs(Claims()), "expired", kNow + absl::Hours(1));
}

TEST_F(JwtVerifierTest, NotYetValidIsRefused) {
  ExpectRefused(Es(Claims()), "not valid yet", kNow - absl::Hours(1));
}

TEST_F(JwtVerifierTest, MissingOrNonNumericExpIsRefused) {
  ExpectRefused(Rs(R"({"iss":"https://idp.example.com","aud":"cloudplane","sub":"alice"})"),
                "no exp");
  ExpectRefused(Rs(R"({"iss":"https://idp.example.com","aud":"cloudplane","sub":"alice",)"
                   R"("exp":"2100-01-01"})"),
                "not a number");
  ExpectRefused(Rs(absl::StrCat(R"({"iss":"https://idp.example.com","aud":"cloudplane",)",
                                R"("sub":"alice","exp":)", kNowS + 60, R"(,"nbf":true})")),
                "not a number");
}

TEST_F(JwtVerifierTest, WrongIssuerIsRefused) {
  auto claims = [](absl::string_view iss) {
    return absl::StrCat(R"({"aud":"cloudplane","sub":"alice","exp":)", kNowS + 60, iss, "}");
  };
  ExpectRefused(Rs(claims(R"(,"iss":"https://evil.example.com")")), "wrong or missing issuer");
  ExpectRefused(Rs(claims(R"(,"iss":"https://idp.example.com/")")), "wrong or missing issuer");
  ExpectRefused(Rs(claims("")), "wrong or missing issuer");
  ExpectRefused(Rs(claims(R"(,"iss":["https://idp.example.com"])")), "wrong or missing issuer");
}

TEST_F(JwtVerifierTest, WrongAudienceIsRefused) {
  auto claims = [](absl::string_view aud) {
    return absl::StrCat(R"({"iss":"https://idp.example.com","sub":"alice","exp":)", kNowS + 60,
                        aud, "}");
  };
  ExpectRefused(Rs(claims(R"(,"aud":"other")")), "no accepted audience");
  ExpectRefused(Rs(claims(R"(,"aud":["other","another"])")), "no accepted audience");
  ExpectRefused(Rs(claims(R"(,"aud":[])")), "no accepted audience");
  ExpectRefused(Rs(claims("")), "no accepted audience");
  ExpectRefused(Rs(claims(R"(,"aud":["cloudplane",1])")), "aud holds something other");
}

TEST_F(JwtVerifierTest, MissingPrincipalIsRefused) {
  auto claims = [](absl::string_view sub) {
    return absl::StrCat(R"({"iss":"https://idp.example.com","aud":"cloudplane","exp":)",
                        kNowS + 60, sub, "}");
  };
  ExpectRefused(Rs(claims("")), "principal claim is missing");
  ExpectRefused(Rs(claims(R"(,"sub":"")")), "principal claim is missing");
  ExpectRefused(Rs(claims(R"(,"sub":42)")), "principal claim is missing");
  policy_.principal_claim = "email";
  ExpectRefused(Rs(Claims()), "principal claim is missing");  // has sub, not email
}

TEST_F(JwtVerifierTest, MalformedGroupsAreRefused) {
  ExpectRefused(Rs(Claims(R"(,"groups":{"a":1})")), "groups claim is not an array");
  ExpectRefused(Rs(Claims(R"(,"groups":["ops",7])")), "groups claim holds something other");
}

// ---- Refused: shape ---------------------------------------------------------------

TEST_F(JwtVerifierTest, WrongSegmentCountIsRefused) {
  std::string token = Rs(Claims());
  ExpectRefused(token.substr(0, token.rfind('.')), "three dot-separated");
  ExpectRefused(absl::StrCat(token, ".", B64("x")), "three dot-separated");
  ExpectRefused("abc", "three dot-separated");
}

TEST_F(JwtVerifierTest, BadBase64IsRefused) {
  std::string token = Rs(Claims());
  std::string padded = absl::StrCat(token.substr(0, token.find('.')), "=",
                                    token.substr(token.find('.')));
  ExpectRefused(padded, "not base64url");
  std::string std_alphabet = token;
  std_alphabet[std_alphabet.find('.') + 2] = '+';
  ExpectRefused(std_alphabet, "not base64url");
  std::string odd = token;  // a last segment of 4k+1 characters
  while ((odd.size() - odd.rfind('.') - 1) % 4 != 1) odd.push_back('A');
  ExpectRefused(odd, "not base64url");
  ExpectRefused(absl::StrCat(" ", token), "not base64url");
}

TEST_F(JwtVerifierTest, BadJsonIsRefused) {
  ExpectRefused(Token(R"({"alg":"RS256","kid":"rsa-1")", Claims()), "header is not a JSON");
  ExpectRefused(Token(R"(["RS256"])", Claims()), "header is not a JSON object");
  ExpectRefused(Rs(R"({"iss":"https://idp.example.com")"), "payload is not a JSON object");
  ExpectRefused(Rs("42"), "payload is not a JSON object");
  // Invalid UTF-8 in a claim.
  ExpectRefused(Rs(Claims(",\"name\":\"\xC3\x28\"")), "payload is not a JSON object");
  // A claim named twice: which one counts would depend on the parser.
  ExpectRefused(Rs(Claims(R"(,"sub":"root")")), "payload is not a JSON object");
  ExpectRefused(Token(R"({"alg":"RS256","kid":"rsa-1","alg":"none"})", Claims()),
                "header is not a JSON object");
  // Absurd nesting.
  ExpectRefused(Rs(Claims(absl::StrCat(R"(,"x":)", std::string(100, '['),
                                       std::string(100, ']')))),
                "payload is not a JSON object");
}

TEST_F(JwtVerifierTest, OverlongTokenIsRefusedUnread) {
  std::string token = Rs(Claims(absl::StrCat(R"(,"pad":")", std::string(13000, 'a'), "\"")));
  ASSERT_GT(token.size(), kMaxJwtBytes);
  ExpectRefused(token, "longer than 16 KiB");
  // Just under the limit is fine.
  std::string fits = Rs(Claims(absl::StrCat(R"(,"pad":")", std::string(11000, 'a'), "\"")));
  ASSERT_LE(fits.size(), kMaxJwtBytes);
  EXPECT_TRUE(Verify(fits).ok());
}

TEST_F(JwtVerifierTest, EmptyTokenIsMissing) {
  auto got = Verify("");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated);
  ASSERT_TRUE(GetErrorInfo(got.status()).has_value());
  EXPECT_EQ(GetErrorInfo(got.status())->reason(), reasons::kCredentialsMissing);
}

// ---- Policy -----------------------------------------------------------------------

TEST_F(JwtVerifierTest, IncompletePolicyRefusesEverything) {
  JwtPolicy no_issuer = policy_;
  no_issuer.issuer.clear();
  EXPECT_EQ(ValidateJwtPolicy(no_issuer).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyJwt(Rs(Claims()), *keys_, no_issuer, kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  JwtPolicy no_audience = policy_;
  no_audience.audiences.clear();
  EXPECT_EQ(ValidateJwtPolicy(no_audience).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyJwt(Rs(Claims()), *keys_, no_audience, kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  JwtPolicy negative_skew = policy_;
  negative_skew.clock_skew = absl::Seconds(-1);
  EXPECT_EQ(ValidateJwtPolicy(negative_skew).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateJwtPolicy(policy_).ok());
}

// ---- JWKS parsing -------------------------------------------------------------------

TEST_F(JwtVerifierTest, JwksSkipsKeysItCannotUse) {
  auto keys = JwksKeySet::Parse(Jwks({
      R"({"kty":"oct","kid":"hmac","k":"c2VjcmV0"})",
      R"({"kty":"OKP","crv":"Ed25519","kid":"ed",)"
      R"("x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
      R"({"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"})",
      EcJwk(ec_other_, "enc", R"("use":"enc",)"),
      RsaJwk(rsa_, "rsa-1"),
  }));
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 1u);
  EXPECT_NE(keys->Find("rsa-1"), nullptr);
  EXPECT_NE(keys->Find(""), nullptr);  // the only key
  EXPECT_EQ(keys->Find("hmac"), nullptr);
  EXPECT_EQ(keys->Find("enc"), nullptr);
}

TEST_F(JwtVerifierTest, JwksErrors) {
  auto code = [](absl::string_view json) { return JwksKeySet::Parse(json).status().code(); };
  constexpr auto kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code("not json"), kBad);
  EXPECT_EQ(code(R"({"keys":{}})"), kBad);
  EXPECT_EQ(code(R"({"keys":[]})"), kBad);  // nothing usable
  EXPECT_EQ(code(Jwks({R"({"kty":"oct","k":"c2VjcmV0"})"})), kBad);
  EXPECT_EQ(code(Jwks({EcJwk(ec_, "same"), EcJwk(ec_other_, "same")})), kBad);  // kid twice
  EXPECT_EQ(code(Jwks({R"({"kty":"RSA","kid":"r","n":"AQAB"})"})), kBad);  // no e
  EXPECT_EQ(code(Jwks({R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})"})), kBad);
  // A point off the curve: (x, y+1).
  std::string y = BnParam(ec_, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
  y[31] ^= 1;
  EXPECT_EQ(code(Jwks({absl::StrCat(R"({"kty":"EC","crv":"P-256","x":")",
                                    B64(BnParam(ec_, OSSL_PKEY_PARAM_EC_PUB_X, 32)),
                                    R"(","y":")", B64(y), R"("})")})),
            kBad);
  // RSA-1024 is too short.
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(code(Jwks({RsaJwk(small, "small")})), kBad);
  EVP_PKEY_free(small);
}

}  // namespace
}  // namespace cloudplane::auth
