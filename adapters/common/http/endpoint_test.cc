#include "adapters/common/http/endpoint.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Good {
  const char* text;
  const char* base_url;
  const char* unix_socket_path;
};

TEST(ParseEndpointTest, AcceptsSupportedForms) {
  const Good cases[] = {
      {"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
      {"http://localhost:8080/", "http://localhost:8080", ""},
      {"https://ec2.us-east-1.amazonaws.com", "https://ec2.us-east-1.amazonaws.com", ""},
      {"https://host:443/api/v2//", "https://host:443/api/v2", ""},
      {"HTTP://Host:80/x", "http://Host:80/x", ""},
      {"http://[::1]:9000/base", "http://[::1]:9000/base", ""},
      {"http://[::1]", "http://[::1]", ""},
      {"unix:///var/run/fleet.sock", "http://localhost", "/var/run/fleet.sock"},
      {"file:///tmp/a/b.sock", "http://localhost", "/tmp/a/b.sock"},
  };
  for (const Good& c : cases) {
    auto e = ParseEndpoint(c.text);
    ASSERT_TRUE(e.ok()) << c.text << ": " << e.status();
    EXPECT_EQ(e->base_url, c.base_url) << c.text;
    EXPECT_EQ(e->unix_socket_path, c.unix_socket_path) << c.text;
  }
}

struct Bad {
  const char* text;
  const char* message_part;
};

TEST(ParseEndpointTest, RejectsWithMessageNamingTheProblem) {
  const Bad cases[] = {
      {"", "empty"},
      {"unix://relative.sock", "absolute path"},
      {"unix:relative.sock", "absolute path"},
      {"unix:///", "socket file"},
      {"unix:///tmp/dir/", "socket file"},
      {"ftp://host", "unsupported scheme \"ftp\""},
      {"localhost:8080", "unsupported scheme"},
      {"no-scheme-at-all", "no scheme"},
      {"http:/host", "must start with http://"},
      {"http://", "missing host"},
      {"http://:80", "missing host"},
      {"http://host:", "empty port"},
      {"http://host:0", "bad port"},
      {"http://host:65536", "bad port"},
      {"http://host:8x", "bad port"},
      {"http://ho st", "bad character in host"},
      {"http://[::1", "unterminated IPv6"},
      {"http://[::1]x", "after IPv6"},
      {"http://host/a b", "base path"},
  };
  for (const Bad& c : cases) {
    auto e = ParseEndpoint(c.text);
    ASSERT_FALSE(e.ok()) << c.text;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(e.status().message(), HasSubstr(c.message_part)) << c.text;
  }
}

TEST(ParseEndpointTest, RejectsLongUnixPath) {
  auto e = ParseEndpoint("unix:///" + std::string(200, 'a'));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("the limit is"));
}

TEST(ParseEndpointTest, NeverEchoesCredentialsOrQuery) {
  for (const char* text :
       {"https://user:hunter2@host", "https://host/?key=hunter2",
        "https://host/#hunter2", "hunter2://x"}) {
    auto e = ParseEndpoint(text);
    ASSERT_FALSE(e.ok()) << text;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(e.status().message(), Not(HasSubstr("hunter2:")));
    EXPECT_THAT(e.status().message(), Not(HasSubstr("=hunter2")));
    EXPECT_THAT(e.status().message(), Not(HasSubstr("#hunter2")));
  }
}

}  // namespace
}  // namespace cloudplane::http
