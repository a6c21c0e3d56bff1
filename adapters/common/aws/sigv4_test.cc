// SigV4 against the official AWS test suite (golden vectors from
// @shared_fixtures//:aws_sigv4, i.e. ../shared/fixtures/aws-sigv4, never
// copied into the repo), plus Phantom's worked example (phantom.md B.2).
#include "adapters/common/aws/sigv4.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "adapters/common/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace cloudplane::aws {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The official suite (@shared_fixtures//:aws_sigv4) in the runfiles tree; a
// missing folder fails the test.
fs::path VectorsDir() { return cloudplane::adapters::testutil::FixturePath("aws-sigv4"); }

struct Vector {
  std::string name;
  SigningRequest request;
  Credentials credentials;
  SigningOptions options;
  std::string canonical_request, string_to_sign, signature;
};

// request.txt: "METHOD PATH HTTP/1.1", "Name:value" lines (a line starting
// with whitespace continues the previous value), a blank line, the body.
Vector LoadVector(const fs::path& dir) {
  Vector v;
  v.name = dir.filename().string();
  const std::string raw = ReadFile(dir / "request.txt");
  const size_t blank = raw.find("\n\n");
  const std::string head = blank == std::string::npos ? raw : raw.substr(0, blank);
  if (blank != std::string::npos) v.request.payload = raw.substr(blank + 2);
  std::vector<std::string> lines = absl::StrSplit(head, '\n');
  const std::string& first = lines[0];
  const size_t sp1 = first.find(' ');
  const size_t sp2 = first.rfind(' ');
  v.request.method = first.substr(0, sp1);
  std::string target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  if (size_t q = target.find('?'); q != std::string::npos) {
    v.request.query = target.substr(q + 1);
    target.resize(q);
  }
  v.request.path = target;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty()) continue;
    if (line[0] == ' ' || line[0] == '\t') {
      v.request.headers.back().second += "\n" + line;
      continue;
    }
    const size_t colon = line.find(':');
    v.request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }

  rapidjson::Document ctx;
  ctx.Parse(ReadFile(dir / "context.json").c_str());
  EXPECT_FALSE(ctx.HasParseError()) << v.name;
  const auto& creds = ctx["credentials"];
  v.credentials.access_key_id = creds["access_key_id"].GetString();
  v.credentials.secret_access_key = creds["secret_access_key"].GetString();
  if (creds.HasMember("token")) v.credentials.session_token = creds["token"].GetString();
  v.options.region = ctx["region"].GetString();
  v.options.service = ctx["service"].GetString();
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, ctx["timestamp"].GetString(), &v.options.time,
                              &err))
      << err;
  v.options.normalize_path = ctx.HasMember("normalize") && ctx["normalize"].GetBool();
  v.options.sign_body_header = ctx.HasMember("sign_body") && ctx["sign_body"].GetBool();
  v.options.omit_session_token_from_signature =
      ctx.HasMember("omit_session_token") && ctx["omit_session_token"].GetBool();

  v.canonical_request = ReadFile(dir / "header-canonical-request.txt");
  v.string_to_sign = ReadFile(dir / "header-string-to-sign.txt");
  v.signature = std::string(absl::StripAsciiWhitespace(ReadFile(dir / "header-signature.txt")));
  return v;
}

TEST(SigV4CorpusTest, EveryHeaderSigningVectorMatches) {
  const fs::path dir = VectorsDir();
  ASSERT_TRUE(fs::is_directory(dir)) << "AWS SigV4 test vectors missing at " << dir;
  int checked = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (!entry.is_directory() || !fs::exists(entry.path() / "request.txt")) continue;
    const Vector v = LoadVector(entry.path());
    absl::StatusOr<SignedRequest> signed_request = Sign(v.request, v.credentials, v.options);
    ASSERT_TRUE(signed_request.ok()) << v.name << ": " << signed_request.status();
    EXPECT_EQ(signed_request->canonical_request, v.canonical_request) << v.name;
    EXPECT_EQ(signed_request->string_to_sign, v.string_to_sign) << v.name;
    EXPECT_EQ(signed_request->signature, v.signature) << v.name;
    EXPECT_THAT(signed_request->authorization,
                ::testing::EndsWith(", Signature=" + v.signature))
        << v.name;
    ++checked;
  }
  // The suite has 38 request folders; all of them must have been read.
  EXPECT_GE(checked, 38);
}

// phantom.md B.2's worked example: host without port, "," separators.
TEST(SigV4Test, PhantomWorkedExampleGet) {
  SigningRequest request;
  request.method = "GET";
  request.path = "/";
  request.query =
      "Action=DescribeAutoScalingGroups&AutoScalingGroupNames.member.1=mydomain&Version=2011-01-01";
  request.headers = {{"Host", "phantom.example.org"}};
  SigningOptions options;
  options.region = "us-east-1";
  options.service = "phantom";
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, "2013-06-01T12:00:00Z", &options.time, nullptr));
  options.authorization_separator = ",";
  absl::StatusOr<SignedRequest> s =
      Sign(request, Credentials{"AKEXAMPLE0001", "s3cr3tEXAMPLEkey", ""}, options);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->string_to_sign,
              ::testing::EndsWith(
                  "56471dd7a80e28b05adecf7490e3d1793d9ccfeedaa90bce4bb43a228851beae"));
  EXPECT_EQ(s->authorization,
            "AWS4-HMAC-SHA256 Credential=AKEXAMPLE0001/20130601/us-east-1/phantom/aws4_request,"
            "SignedHeaders=host;x-amz-date,"
            "Signature=f6f64bdb34abe06b3e4a2a2560f6bdb7a023cb3e31fd308cca0ebe7f65565c3e");
}

TEST(SigV4Test, PhantomWorkedExamplePost) {
  SigningRequest request;
  request.method = "POST";
  request.path = "/";
  request.payload =
      "Action=CreateLaunchConfiguration&ImageId=hello-phantom.gz&InstanceMonitoring.Enabled=false&"
      "InstanceType=m1.small&KeyName=phantomkey&LaunchConfigurationName=mylc%40hotel&"
      "Version=2011-01-01";
  request.headers = {{"Host", "phantom.example.org"}};
  SigningOptions options;
  options.region = "us-east-1";
  options.service = "phantom";
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, "2013-06-01T12:00:00Z", &options.time, nullptr));
  absl::StatusOr<SignedRequest> s =
      Sign(request, Credentials{"AKEXAMPLE0001", "s3cr3tEXAMPLEkey", ""}, options);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->canonical_request,
              ::testing::EndsWith(
                  "f5a13f927eac94fc78955ffd7b2cf8ffcaeb85ce6734391ed917f766d484811e"));
  EXPECT_THAT(s->string_to_sign,
              ::testing::EndsWith(
                  "04ad47f5654987a876594efae731c01e8c6646a3a3f92d510f6961822637796f"));
  EXPECT_EQ(s->signature, "732f603beda3715058f1ae1068359623c0978137e7b6c9a57073393ee8c6350f");
}

TEST(SigV4Test, RejectsBadScopeWithoutLeakingTheSecret) {
  SigningRequest request;
  request.headers = {{"Host", "h"}};
  SigningOptions options;
  options.region = "us east";
  options.service = "autoscaling";
  absl::StatusOr<SignedRequest> s = Sign(request, Credentials{"AK", "TOPSECRET", ""}, options);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(absl::StrContains(s.status().ToString(), "TOPSECRET"));
  options.region = "us-east-1";
  EXPECT_EQ(Sign(request, Credentials{"", "x", ""}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sign(request, Credentials{"AK", "", ""}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SigV4Test, EncodingHelpers) {
  EXPECT_EQ(UriEncode("a b/c@d~"), "a%20b%2Fc%40d~");
  EXPECT_EQ(UriEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(UriDecode("a%20b%zz%4"), "a b%zz%4");
  EXPECT_EQ(CanonicalQueryString("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
  EXPECT_EQ(CanonicalUri("/a/./b/../c//d/", true), "/a/c/d/");
  EXPECT_EQ(HexSha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace cloudplane::aws
