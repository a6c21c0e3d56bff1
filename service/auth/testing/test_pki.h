// Certificates made in tests: a CA, certificates it issues (with DNS and URI
// SANs, a CN, a serial) and self-signed ones, all as PEM. Keys are EC P-256
// (fast to generate). For tests only: nothing here is careful about anything
// but producing well-formed X.509 v3.
//
// Errors: a failing OpenSSL call aborts the test binary (CHECK-like); these
// helpers never run in production.
//
// Thread-safety: TestCa is immutable after Create; Issue may run on any
// thread.
#ifndef CLOUDPLANE_SERVICE_AUTH_TESTING_TEST_PKI_H_
#define CLOUDPLANE_SERVICE_AUTH_TESTING_TEST_PKI_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace cloudplane::auth::testing {

// What goes into a certificate.
struct CertSpec {
  // Subject CN; empty gives a subject without CN (only O=cloudplane-test).
  std::string common_name;
  // subjectAltName entries, in this order: DNS names first, then URIs.
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  long serial = 1;
  // Signs certificates (basicConstraints CA:TRUE, keyUsage keyCertSign).
  bool is_ca = false;
};

struct KeyAndCert {
  std::string key_pem;   // PKCS#8 private key
  std::string cert_pem;  // the certificate
};

// A fresh EC P-256 private key as PEM.
std::string NewKeyPem();

// A self-signed certificate for `spec` with a new key.
KeyAndCert SelfSigned(const CertSpec& spec);

// A certificate authority.
class TestCa {
 public:
  // A new CA named `common_name` with its own key.
  static std::unique_ptr<TestCa> Create(absl::string_view common_name);
  ~TestCa();

  const std::string& cert_pem() const { return self_.cert_pem; }

  // A leaf (or intermediate, with spec.is_ca) certificate with a new key,
  // signed by this CA, valid from an hour ago for a day.
  KeyAndCert Issue(const CertSpec& spec) const;

 private:
  TestCa() = default;
  KeyAndCert self_;
};

}  // namespace cloudplane::auth::testing

#endif  // CLOUDPLANE_SERVICE_AUTH_TESTING_TEST_PKI_H_
