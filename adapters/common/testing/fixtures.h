// Where a test finds its data files: runfiles of this repository, and the
// recorded provider payloads of ../shared/fixtures.
//
// The recorded payloads are the external repository @shared_fixtures
// (WORKSPACE: a new_local_repository of ../shared/fixtures, filegroups per
// provider in tools/bazel/shared_fixtures.BUILD). A test lists the filegroup
// it reads in its `data`, e.g. "@shared_fixtures//:fleet", and asks for
// FixturePath("fleet/v1.json"). Bazel then tracks the files as inputs and
// lays them out in the runfiles tree; nothing reaches outside it.
//
// A missing fixture fails the test (ADD_FAILURE), wherever it runs: a
// fixture test that silently skips proves nothing.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_TESTING_FIXTURES_H_
#define CLOUDPLANE_ADAPTERS_COMMON_TESTING_FIXTURES_H_

#include <string>

#include "absl/strings/string_view.h"

namespace cloudplane::adapters::testutil {

// The path of `relative` (e.g. "fleet/v1.json", or "aws-sigv4" for a
// folder) in the recorded payloads, as laid out in the runfiles tree
// ($TEST_SRCDIR/shared_fixtures/...). Adds a test failure naming the path
// and the `data` dependency to add when it does not exist.
std::string FixturePath(absl::string_view relative);

// The content of FixturePath(relative) ("" after the failure when missing).
std::string ReadFixture(absl::string_view relative);

// The path of a file of this repository in the runfiles tree
// ($TEST_SRCDIR/$TEST_WORKSPACE/<relative>); `relative` itself when not run
// by Bazel (from the repository root).
std::string RunfilePath(absl::string_view relative);

}  // namespace cloudplane::adapters::testutil

#endif  // CLOUDPLANE_ADAPTERS_COMMON_TESTING_FIXTURES_H_
