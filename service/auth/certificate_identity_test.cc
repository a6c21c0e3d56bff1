// The principal of client certificates made here (test_pki), one test per
// branch of the preference order.
#include "service/auth/certificate_identity.h"

#include <string>

#include "base/errors.h"
#include "base/reasons.h"
#include "gtest/gtest.h"
#include "service/auth/testing/test_pki.h"

namespace cloudplane::auth {
namespace {

using testing::CertSpec;
using testing::SelfSigned;
using testing::TestCa;

void ExpectRefused(const absl::StatusOr<std::string>& got) {
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated) << got.status();
  auto info = GetErrorInfo(got.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), reasons::kCredentialsInvalid);
}

TEST(PrincipalFromCertificateTest, SpiffeUriWinsOverDnsAndCn) {
  CertSpec spec;
  spec.common_name = "cn-name";
  spec.dns_names = {"worker.example.com"};
  spec.uris = {"https://example.com/not-spiffe", "spiffe://example.org/ns/prod/sa/deployer",
               "spiffe://example.org/second"};
  auto got = PrincipalFromCertificate(SelfSigned(spec).cert_pem);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "spiffe://example.org/ns/prod/sa/deployer");
}

TEST(PrincipalFromCertificateTest, FirstDnsNameWhenNoSpiffeUri) {
  CertSpec spec;
  spec.common_name = "cn-name";
  spec.dns_names = {"first.example.com", "second.example.com"};
  spec.uris = {"https://example.com/not-spiffe"};
  auto got = PrincipalFromCertificate(SelfSigned(spec).cert_pem);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "first.example.com");
}

TEST(PrincipalFromCertificateTest, CommonNameWhenNoUsableSan) {
  CertSpec spec;
  spec.common_name = "ci-runner";
  spec.uris = {"urn:example:not-spiffe"};
  auto got = PrincipalFromCertificate(SelfSigned(spec).cert_pem);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ci-runner");

  spec.uris.clear();  // no SAN extension at all
  got = PrincipalFromCertificate(SelfSigned(spec).cert_pem);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ci-runner");
}

TEST(PrincipalFromCertificateTest, CertificateIssuedByACaReadsTheLeaf) {
  auto ca = TestCa::Create("test-ca");
  CertSpec spec;
  spec.common_name = "leaf";
  spec.dns_names = {"leaf.example.com"};
  auto issued = ca->Issue(spec);
  // The leaf followed by the CA, as a chain would be sent: the leaf counts.
  auto got = PrincipalFromCertificate(issued.cert_pem + ca->cert_pem());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "leaf.example.com");
}

TEST(PrincipalFromCertificateTest, NoNameIsRefused) {
  CertSpec spec;  // no CN, no SAN: only O=cloudplane-test
  auto got = PrincipalFromCertificate(SelfSigned(spec).cert_pem);
  ExpectRefused(got);
  EXPECT_NE(got.status().message().find("names no principal"), absl::string_view::npos);
}

TEST(PrincipalFromCertificateTest, UnparsableInputIsRefused) {
  ExpectRefused(PrincipalFromCertificate(""));
  ExpectRefused(PrincipalFromCertificate("not a certificate"));
  std::string pem = SelfSigned(CertSpec{.common_name = "x"}).cert_pem;
  // Damage the base64 body.
  std::string broken = pem.substr(0, 40) + "!!!!" + pem.substr(44);
  auto got = PrincipalFromCertificate(broken);
  ExpectRefused(got);
  EXPECT_EQ(got.status().message().find(pem.substr(30, 20)), absl::string_view::npos);
  // A private key is not a certificate.
  ExpectRefused(PrincipalFromCertificate(testing::NewKeyPem()));
}

}  // namespace
}  // namespace cloudplane::auth
