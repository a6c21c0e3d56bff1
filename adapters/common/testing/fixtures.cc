#include "adapters/common/testing/fixtures.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::testutil {
namespace {

namespace fs = std::filesystem;

// The external repository's name in WORKSPACE, which is also its directory
// at the top of the runfiles tree.
constexpr absl::string_view kFixturesRepository = "shared_fixtures";

std::string Srcdir() {
  const char* srcdir = getenv("TEST_SRCDIR");
  return srcdir == nullptr ? "" : srcdir;
}

}  // namespace

std::string FixturePath(absl::string_view relative) {
  const std::string srcdir = Srcdir();
  const std::string path =
      srcdir.empty() ? absl::StrCat("external/", kFixturesRepository, "/", relative)
                     : absl::StrCat(srcdir, "/", kFixturesRepository, "/", relative);
  if (!fs::exists(path)) {
    const absl::string_view provider = *absl::StrSplit(relative, '/').begin();
    ADD_FAILURE() << "recorded fixture " << relative << " is missing (looked for " << path
                  << "): the test needs `data = [\"@" << kFixturesRepository << "//:"
                  << absl::StrReplaceAll(provider, {{"-", "_"}})
                  << "\"]`, and ../shared/fixtures must be beside the repository";
  }
  return path;
}

std::string ReadFixture(absl::string_view relative) {
  std::ifstream in(FixturePath(relative), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string RunfilePath(absl::string_view relative) {
  const std::string srcdir = Srcdir();
  const char* workspace = getenv("TEST_WORKSPACE");
  if (srcdir.empty() || workspace == nullptr) return std::string(relative);
  return absl::StrCat(srcdir, "/", workspace, "/", relative);
}

}  // namespace cloudplane::adapters::testutil
