// The Authenticator against configs written here: API keys (hashes of keys
// made in the test), a JWKS file of a key made in the test (test_jwt.h), and
// client certificates from test_pki.h.
#include "service/auth/authenticator.h"

#include <openssl/sha.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "service/auth/testing/test_jwt.h"
#include "service/auth/testing/test_pki.h"

namespace cloudplane::auth {
namespace {

using config::v1::ServerConfig;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);
constexpr int64_t kNowS = 1700000000;

constexpr absl::string_view kCiKey = "cpk_ci_0123456789abcdef";
constexpr absl::string_view kOpsKey = "cpk_ops_fedcba9876543210";

std::string Sha256Hex(absl::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string TempPath(absl::string_view name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

void WriteFile(const std::string& path, absl::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

ServerConfig Parse(const std::string& text) {
  ServerConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return config;
}

std::string Claims(absl::string_view extra = "", int64_t exp = kNowS + 300) {
  return absl::StrCat(R"({"iss":"https://idp.example.com","aud":"cloudplane","sub":"alice",)",
                      R"("groups":["ops"],"exp":)", exp, extra, "}");
}

void ExpectUnauthenticated(const absl::StatusOr<Caller>& got, absl::string_view reason,
                           absl::string_view secret = "") {
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated) << got.status();
  auto info = GetErrorInfo(got.status());
  ASSERT_TRUE(info.has_value()) << got.status();
  EXPECT_EQ(info->reason(), reason) << got.status();
  if (!secret.empty()) {
    EXPECT_EQ(got.status().message().find(secret), absl::string_view::npos) << got.status();
  }
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signer_ = testing::TestJwtSigner::Create("key-1").release();
    other_signer_ = testing::TestJwtSigner::Create("key-1").release();  // same kid, other key
    ca_ = testing::TestCa::Create("clients-ca").release();
  }
  static void TearDownTestSuite() {
    delete signer_;
    delete other_signer_;
    delete ca_;
  }

  void SetUp() override {
    jwks_path_ = TempPath("jwks.json");
    WriteFile(jwks_path_, signer_->Jwks());
  }

  // jwt + two API keys + client certificates.
  std::string FullConfig() const {
    return absl::StrCat(R"(
      tls { client_ca_file: "/unused/ca.pem" }
      auth {
        jwt {
          jwks_file: ")", jwks_path_, R"("
          issuer: "https://idp.example.com"
          audiences: "cloudplane"
          groups_claim: "groups"
        }
        api_keys { principal: "ci-deploy" sha256: ")", Sha256Hex(kCiKey), R"(" groups: "ci" }
        api_keys { principal: "ops-bot" sha256: ")", Sha256Hex(kOpsKey), R"(" }
        bindings { role: VIEWER principals: "alice" accounts: "*" }
      })");
  }

  std::shared_ptr<const Authenticator> Make(const std::string& text) {
    auto got = Authenticator::Create(Parse(text));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : nullptr;
  }

  static absl::StatusOr<Caller> Bearer(const Authenticator& a, absl::string_view token,
                                       absl::Time now = kNow) {
    return a.Authenticate(absl::StrCat("Bearer ", token), 1, "", now);
  }

  static testing::TestJwtSigner* signer_;
  static testing::TestJwtSigner* other_signer_;
  static testing::TestCa* ca_;
  std::string jwks_path_;
};

testing::TestJwtSigner* AuthenticatorTest::signer_ = nullptr;
testing::TestJwtSigner* AuthenticatorTest::other_signer_ = nullptr;
testing::TestCa* AuthenticatorTest::ca_ = nullptr;

// ---- Off -----------------------------------------------------------------------

TEST_F(AuthenticatorTest, DisabledModeLetsEveryCallInUnrestricted) {
  // Bindings alone, or TLS without client CA, do not turn authentication on.
  auto a = Make(R"(
      tls { cert_file: "/x/cert.pem" key_file: "/x/key.pem" }
      auth { bindings { role: ADMIN principals: "root" accounts: "*" } })");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->enabled());
  for (absl::string_view authorization : {"", "Bearer whatever", "garbage"}) {
    auto got = a->Authenticate(authorization, authorization.empty() ? 0 : 1, "", kNow);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->credential, "none");
    EXPECT_TRUE(got->unrestricted);
    EXPECT_EQ(got->principal, "");
  }
}

TEST_F(AuthenticatorTest, EachWayToAuthenticateTurnsItOn) {
  EXPECT_TRUE(Make(FullConfig())->enabled());
  EXPECT_TRUE(Make(R"(tls { client_ca_file: "/x/ca.pem" })")->enabled());
  EXPECT_TRUE(
      Make(absl::StrCat(R"(auth { api_keys { principal: "p" sha256: ")", Sha256Hex("k"),
                        R"(" } })"))
          ->enabled());
  EXPECT_TRUE(Make(absl::StrCat(R"(auth { jwt { jwks_file: ")", jwks_path_,
                                R"(" issuer: "i" audiences: "a" } })"))
                  ->enabled());
}

// ---- API keys ------------------------------------------------------------------

TEST_F(AuthenticatorTest, ApiKeyGivesItsPrincipalAndGroups) {
  auto a = Make(FullConfig());
  auto got = Bearer(*a, kCiKey);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "ci-deploy");
  EXPECT_EQ(got->groups, std::vector<std::string>{"ci"});
  EXPECT_EQ(got->credential, "api_key");
  EXPECT_FALSE(got->unrestricted);
  got = Bearer(*a, kOpsKey);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "ops-bot");
  EXPECT_EQ(a->jwt_verifications_for_testing(), 0u);
}

TEST_F(AuthenticatorTest, WrongAndNearMissApiKeysAreRefused) {
  auto a = Make(absl::StrCat(R"(auth { api_keys { principal: "ci-deploy" sha256: ")",
                             Sha256Hex(kCiKey), R"(" } })"));
  std::string near = std::string(kCiKey);
  near.back() = near.back() == 'f' ? 'e' : 'f';
  for (const std::string& token :
       {std::string("cpk_unknown_key_000000"), near, std::string(kCiKey) + "0",
        std::string(kCiKey.substr(0, kCiKey.size() - 1)), Sha256Hex(kCiKey)}) {
    auto got = Bearer(*a, token);
    ExpectUnauthenticated(got, reasons::kCredentialsInvalid, token);
    EXPECT_NE(got.status().message().find("no API key matches"), absl::string_view::npos);
  }
}

TEST_F(AuthenticatorTest, MalformedAuthorizationIsRefusedWithoutQuotingIt) {
  auto a = Make(FullConfig());
  for (absl::string_view value :
       {"Basic Y2k6c2VjcmV0c2VjcmV0", "Bearer", "Bearer ", "Bearer  cpk_ci_0123456789abcdef",
        "Bearer\tcpk_ci_0123456789abcdef", "cpk_ci_0123456789abcdef",
        "Bearer cpk_ci_0123456789abcdef ", "Bearer cpk_ci 0123456789abcdef", "",
        "Token cpk_ci_0123456789abcdef"}) {
    auto got = a->Authenticate(value, 1, "", kNow);
    ExpectUnauthenticated(got, reasons::kCredentialsInvalid, "0123456789abcdef");
    EXPECT_EQ(got.status().message().find("Y2k6c2VjcmV0"), absl::string_view::npos);
  }
}

TEST_F(AuthenticatorTest, BearerSchemeIsCaseInsensitive) {
  auto a = Make(FullConfig());
  for (absl::string_view scheme : {"Bearer ", "bearer ", "BEARER ", "bEaReR "}) {
    auto got = a->Authenticate(absl::StrCat(scheme, kCiKey), 1, "", kNow);
    ASSERT_TRUE(got.ok()) << scheme << got.status();
    EXPECT_EQ(got->principal, "ci-deploy");
  }
}

// ---- JWT -----------------------------------------------------------------------

TEST_F(AuthenticatorTest, GoodJwtGivesItsPrincipalAndGroups) {
  auto a = Make(FullConfig());
  auto got = Bearer(*a, signer_->Sign(Claims()));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "alice");
  EXPECT_EQ(got->groups, std::vector<std::string>{"ops"});
  EXPECT_EQ(got->credential, "jwt");
  EXPECT_FALSE(got->unrestricted);
}

TEST_F(AuthenticatorTest, BadJwtsAreRefused) {
  auto a = Make(FullConfig());
  struct Case {
    const char* name;
    std::string token;
  } cases[] = {
      {"expired", signer_->Sign(Claims("", kNowS - 3600))},
      {"wrong issuer",
       signer_->Sign(absl::StrCat(R"({"iss":"https://evil.example.com","aud":"cloudplane",)",
                                  R"("sub":"alice","exp":)", kNowS + 300, "}"))},
      {"wrong audience",
       signer_->Sign(absl::StrCat(R"({"iss":"https://idp.example.com","aud":"other",)",
                                  R"("sub":"alice","exp":)", kNowS + 300, "}"))},
      {"bad signature", other_signer_->Sign(Claims())},
      {"alg none",
       absl::StrCat(testing::Base64Url(R"({"alg":"none","typ":"JWT"})"), ".",
                    testing::Base64Url(Claims()), ".")},
      {"not yet valid", signer_->Sign(Claims(absl::StrCat(R"(,"nbf":)", kNowS + 3600)))},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ExpectUnauthenticated(Bearer(*a, c.token), reasons::kCredentialsInvalid,
                          c.token.substr(0, 20));
  }
}

TEST_F(AuthenticatorTest, UnknownBearerWithoutJwtConfiguredIsRefused) {
  auto a = Make(absl::StrCat(R"(auth { api_keys { principal: "ci-deploy" sha256: ")",
                             Sha256Hex(kCiKey), R"(" } })"));
  // A perfectly good JWT means nothing when jwt is not configured.
  ExpectUnauthenticated(Bearer(*a, signer_->Sign(Claims())), reasons::kCredentialsInvalid);
}

TEST_F(AuthenticatorTest, SameJwtIsVerifiedOnceThenServedFromTheCache) {
  auto a = Make(FullConfig());
  std::string token = signer_->Sign(Claims());
  for (int i = 0; i < 5; ++i) {
    auto got = Bearer(*a, token, kNow + absl::Seconds(i));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->principal, "alice");
    EXPECT_EQ(got->groups, std::vector<std::string>{"ops"});
    EXPECT_EQ(got->credential, "jwt");
  }
  EXPECT_EQ(a->jwt_verifications_for_testing(), 1u);
  // Another token is verified on its own.
  ASSERT_TRUE(Bearer(*a, signer_->Sign(Claims(R"(,"jti":"2")"))).ok());
  EXPECT_EQ(a->jwt_verifications_for_testing(), 2u);
  // A refused token is not cached: each try verifies again.
  std::string forged = other_signer_->Sign(Claims());
  EXPECT_FALSE(Bearer(*a, forged).ok());
  EXPECT_FALSE(Bearer(*a, forged).ok());
  EXPECT_EQ(a->jwt_verifications_for_testing(), 4u);
  // A new Authenticator (a SIGHUP) starts with an empty cache.
  auto b = Make(FullConfig());
  ASSERT_TRUE(Bearer(*b, token).ok());
  EXPECT_EQ(b->jwt_verifications_for_testing(), 1u);
}

TEST_F(AuthenticatorTest, CachedJwtExpiresWithTheTokenPlusSkew) {
  auto a = Make(FullConfig());  // default skew 60 s
  std::string token = signer_->Sign(Claims("", kNowS + 300));
  ASSERT_TRUE(Bearer(*a, token).ok());
  // Up to exp + skew the cache answers.
  ASSERT_TRUE(Bearer(*a, token, kNow + absl::Seconds(360)).ok());
  EXPECT_EQ(a->jwt_verifications_for_testing(), 1u);
  // One second later it is refused, as VerifyJwt would.
  ExpectUnauthenticated(Bearer(*a, token, kNow + absl::Seconds(361)),
                        reasons::kCredentialsInvalid);
  // A clock that went back before the verification does not use the entry.
  auto c = Make(FullConfig());
  std::string later = signer_->Sign(Claims(absl::StrCat(R"(,"nbf":)", kNowS)));
  ASSERT_TRUE(Bearer(*c, later, kNow + absl::Seconds(10)).ok());
  ExpectUnauthenticated(Bearer(*c, later, kNow - absl::Seconds(100)),
                        reasons::kCredentialsInvalid);
}

TEST_F(AuthenticatorTest, FullCacheEvictsTheEntryThatExpiresFirst) {
  auto a = Make(FullConfig());
  // The first token expires first; then kJwtCacheSize more fill the cache.
  std::string first = signer_->Sign(Claims(R"(,"jti":"first")", kNowS + 100));
  ASSERT_TRUE(Bearer(*a, first).ok());
  std::string last;
  for (size_t i = 0; i < kJwtCacheSize; ++i) {
    last = signer_->Sign(Claims(absl::StrCat(R"(,"jti":")", i, R"(")"), kNowS + 1000));
    ASSERT_TRUE(Bearer(*a, last).ok());
  }
  size_t verified = a->jwt_verifications_for_testing();
  EXPECT_EQ(verified, kJwtCacheSize + 1);
  ASSERT_TRUE(Bearer(*a, last).ok());  // still cached
  EXPECT_EQ(a->jwt_verifications_for_testing(), verified);
  ASSERT_TRUE(Bearer(*a, first).ok());  // evicted: verified again
  EXPECT_EQ(a->jwt_verifications_for_testing(), verified + 1);
}

// ---- Precedence, counts, certificates --------------------------------------------

TEST_F(AuthenticatorTest, BearerWinsOverAClientCertificate) {
  auto a = Make(FullConfig());
  testing::CertSpec spec;
  spec.dns_names = {"worker.example.com"};
  std::string cert = ca_->Issue(spec).cert_pem;
  auto got = a->Authenticate(absl::StrCat("Bearer ", kCiKey), 1, cert, kNow);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "ci-deploy");
  EXPECT_EQ(got->credential, "api_key");
  // A bad bearer fails although the certificate is fine.
  ExpectUnauthenticated(a->Authenticate("Bearer nope", 1, cert, kNow),
                        reasons::kCredentialsInvalid);
  ExpectUnauthenticated(a->Authenticate("Basic abc", 1, cert, kNow),
                        reasons::kCredentialsInvalid);
}

TEST_F(AuthenticatorTest, TwoAuthorizationEntriesAreRefused) {
  auto a = Make(FullConfig());
  auto got = a->Authenticate(absl::StrCat("Bearer ", kCiKey), 2, "", kNow);
  ExpectUnauthenticated(got, reasons::kCredentialsInvalid, kCiKey);
  EXPECT_NE(got.status().message().find("more than one"), absl::string_view::npos);
}

TEST_F(AuthenticatorTest, NoCredentialIsMissing) {
  ExpectUnauthenticated(Make(FullConfig())->Authenticate("", 0, "", kNow),
                        reasons::kCredentialsMissing);
  // A certificate means nothing when client certificates are not configured.
  auto keys_only = Make(absl::StrCat(R"(auth { api_keys { principal: "ci-deploy" sha256: ")",
                                     Sha256Hex(kCiKey), R"(" } })"));
  std::string cert = ca_->Issue(testing::CertSpec{.common_name = "x"}).cert_pem;
  ExpectUnauthenticated(keys_only->Authenticate("", 0, cert, kNow),
                        reasons::kCredentialsMissing);
}

TEST_F(AuthenticatorTest, ClientCertificateGivesItsPrincipal) {
  auto a = Make(FullConfig());
  testing::CertSpec spec;
  spec.common_name = "ignored-cn";
  spec.dns_names = {"worker.example.com"};
  spec.uris = {"spiffe://example.org/ns/ci/sa/deployer"};
  auto got = a->Authenticate("", 0, ca_->Issue(spec).cert_pem, kNow);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "spiffe://example.org/ns/ci/sa/deployer");
  EXPECT_TRUE(got->groups.empty());
  EXPECT_EQ(got->credential, "certificate");
  EXPECT_FALSE(got->unrestricted);
  // A certificate without any name is refused, not missing.
  ExpectUnauthenticated(a->Authenticate("", 0, ca_->Issue(testing::CertSpec{}).cert_pem, kNow),
                        reasons::kCredentialsInvalid);
}

TEST_F(AuthenticatorTest, CertificatePrincipalIsParsedOnceThenServedFromTheCache) {
  auto a = Make(FullConfig());
  testing::CertSpec spiffe;
  spiffe.uris = {"spiffe://example.org/ns/ci/sa/deployer"};
  testing::CertSpec dns;
  dns.dns_names = {"worker.example.com"};
  std::string first = ca_->Issue(spiffe).cert_pem;
  std::string second = ca_->Issue(dns).cert_pem;
  for (int i = 0; i < 3; ++i) {
    auto got = a->Authenticate("", 0, first, kNow);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->principal, "spiffe://example.org/ns/ci/sa/deployer");
    EXPECT_EQ(got->credential, "certificate");
    got = a->Authenticate("", 0, second, kNow);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->principal, "worker.example.com");
  }
  EXPECT_EQ(a->certificate_parses_for_testing(), 2u);
  // A refused certificate is not cached: each try parses again.
  std::string nameless = ca_->Issue(testing::CertSpec{}).cert_pem;
  ExpectUnauthenticated(a->Authenticate("", 0, nameless, kNow), reasons::kCredentialsInvalid);
  ExpectUnauthenticated(a->Authenticate("", 0, nameless, kNow), reasons::kCredentialsInvalid);
  EXPECT_EQ(a->certificate_parses_for_testing(), 4u);
  // A new Authenticator (a SIGHUP) starts with an empty cache.
  auto b = Make(FullConfig());
  ASSERT_TRUE(b->Authenticate("", 0, first, kNow).ok());
  EXPECT_EQ(b->certificate_parses_for_testing(), 1u);
}

TEST_F(AuthenticatorTest, FullCertificateCacheIsEmptiedAndStillAnswersRight) {
  auto a = Make(FullConfig());
  testing::CertSpec spec;
  spec.common_name = "cn-0";
  std::string first = ca_->Issue(spec).cert_pem;
  ASSERT_TRUE(a->Authenticate("", 0, first, kNow).ok());
  for (size_t i = 1; i < kCertificateCacheSize; ++i) {
    spec.common_name = absl::StrCat("cn-", i);
    auto got = a->Authenticate("", 0, ca_->Issue(spec).cert_pem, kNow);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->principal, spec.common_name);
  }
  ASSERT_EQ(a->certificate_parses_for_testing(), kCertificateCacheSize);
  auto got = a->Authenticate("", 0, first, kNow);  // still cached: the cache is full, not over
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(a->certificate_parses_for_testing(), kCertificateCacheSize);
  spec.common_name = "one-more";
  got = a->Authenticate("", 0, ca_->Issue(spec).cert_pem, kNow);  // empties the cache
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "one-more");
  got = a->Authenticate("", 0, first, kNow);  // parsed again, same answer
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->principal, "cn-0");
  EXPECT_EQ(a->certificate_parses_for_testing(), kCertificateCacheSize + 2);
}

// ---- Create --------------------------------------------------------------------

TEST_F(AuthenticatorTest, CreateNamesTheBadField) {
  std::string ci = Sha256Hex(kCiKey);
  std::string jwt_ok = absl::StrCat(R"(jwks_file: ")", jwks_path_,
                                    R"(" issuer: "i" audiences: "a")");
  struct Case {
    std::string auth;
    std::string field;
  } cases[] = {
      {R"(jwt { issuer: "i" audiences: "a" })", "auth.jwt.jwks_file"},
      {absl::StrCat(R"(jwt { jwks_file: ")", jwks_path_, R"(" audiences: "a" })"),
       "auth.jwt.issuer"},
      {absl::StrCat(R"(jwt { jwks_file: ")", jwks_path_, R"(" issuer: "i" })"),
       "auth.jwt.audiences"},
      {absl::StrCat("jwt { ", jwt_ok, " clock_skew_seconds: -1 }"),
       "auth.jwt.clock_skew_seconds"},
      {absl::StrCat(R"(api_keys { principal: "a" sha256: ")", ci, R"(" })",
                    R"(api_keys { principal: "b" sha256: "abc" })"),
       "auth.api_keys[1].sha256"},
      {absl::StrCat(R"(api_keys { principal: "a" sha256: ")", absl::AsciiStrToUpper(ci),
                    R"(" })"),
       "auth.api_keys[0].sha256"},
      {absl::StrCat(R"(api_keys { principal: "a" sha256: ")", ci.substr(0, 63), R"(g" })"),
       "auth.api_keys[0].sha256"},
      {absl::StrCat(R"(api_keys { sha256: ")", ci, R"(" })"), "auth.api_keys[0].principal"},
      {absl::StrCat(R"(api_keys { principal: "a" sha256: ")", ci, R"(" })",
                    R"(api_keys { principal: "b" sha256: ")", Sha256Hex("other"), R"(" })",
                    R"(api_keys { principal: "c" sha256: ")", ci, R"(" })"),
       "auth.api_keys[2].sha256"},
      {R"(bindings { principals: "p" accounts: "*" })", "auth.bindings[0].role"},
      {R"(bindings { role: VIEWER principals: "p" accounts: "*" }
          bindings { role: ADMIN accounts: "*" })",
       "auth.bindings[1].principals"},
      {R"(bindings { role: VIEWER groups: "g" })", "auth.bindings[0].accounts"},
      {R"(bindings { role: VIEWER principals: "" accounts: "*" })",
       "auth.bindings[0].principals[0]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.auth);
    auto got = Authenticator::Create(Parse(absl::StrCat("auth { ", c.auth, " }")));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
    auto bad = GetBadRequest(got.status());
    ASSERT_TRUE(bad.has_value()) << got.status();
    ASSERT_EQ(bad->field_violations_size(), 1);
    EXPECT_EQ(bad->field_violations(0).field(), c.field) << got.status();
  }
}

TEST_F(AuthenticatorTest, UnreadableJwksIsAFailedPreconditionNamingTheFile) {
  std::string missing = TempPath("no-such-jwks.json");
  auto got = Authenticator::Create(Parse(absl::StrCat(
      R"(auth { jwt { jwks_file: ")", missing, R"(" issuer: "i" audiences: "a" } })")));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition) << got.status();
  EXPECT_NE(got.status().message().find(missing), absl::string_view::npos) << got.status();
}

TEST_F(AuthenticatorTest, MalformedJwksNamesTheFieldNotTheContent) {
  std::string path = TempPath("bad-jwks.json");
  WriteFile(path, R"({"keys":[{"kty":"EC","crv":"P-256","x":"c2VjcmV0LXNlY3JldA","y":"AA"}]})");
  auto got = Authenticator::Create(Parse(
      absl::StrCat(R"(auth { jwt { jwks_file: ")", path, R"(" issuer: "i" audiences: "a" } })")));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  auto bad = GetBadRequest(got.status());
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->field_violations(0).field(), "auth.jwt.jwks_file");
  EXPECT_NE(got.status().message().find(path), absl::string_view::npos) << got.status();
  EXPECT_EQ(got.status().message().find("c2VjcmV0"), absl::string_view::npos) << got.status();
}

}  // namespace
}  // namespace cloudplane::auth
