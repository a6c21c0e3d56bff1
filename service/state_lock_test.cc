#include "service/state_lock.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::service {
namespace {

using ::testing::HasSubstr;

std::string MakeTempDir() {
  std::string tmpl = ::testing::TempDir() + "/state_lock_XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(StateLock, CreatesTheDirectoryAndRecordsTheHolder) {
  std::string dir = MakeTempDir() + "/a/state";
  absl::StatusOr<StateLock> lock = StateLock::Acquire(dir);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(lock->path(), dir + "/cloudplane.lock");
  std::string record = ReadFile(lock->path());
  EXPECT_THAT(record, HasSubstr(absl::StrCat("pid ", getpid(), "\n")));
  EXPECT_THAT(record, HasSubstr("\nstarted 20"));
}

// flock locks belong to the open file description, so a second Acquire in the
// same process conflicts just as another process's would.
TEST(StateLock, SecondHolderIsRefusedWithTheFirstOnesPid) {
  std::string dir = MakeTempDir();
  std::optional<absl::StatusOr<StateLock>> first(StateLock::Acquire(dir));
  ASSERT_TRUE(first->ok()) << first->status();
  absl::StatusOr<StateLock> second = StateLock::Acquire(dir);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("state directory ", dir, " is in use by pid ", getpid(),
                                     " (started 20")));
  EXPECT_THAT(second.status().message(), HasSubstr("one server per state directory"));
  // The refused attempt leaves the holder's record alone.
  EXPECT_THAT(ReadFile(dir + "/cloudplane.lock"), HasSubstr(absl::StrCat("pid ", getpid())));

  first.reset();  // released
  EXPECT_TRUE(StateLock::Acquire(dir).ok());
}

TEST(StateLock, MovedLockStaysHeld) {
  std::string dir = MakeTempDir();
  absl::StatusOr<StateLock> first = StateLock::Acquire(dir);
  ASSERT_TRUE(first.ok());
  StateLock moved = *std::move(first);
  EXPECT_EQ(StateLock::Acquire(dir).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StateLock, KilledHolderReleasesTheLock) {
  std::string dir = MakeTempDir();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<StateLock> lock = StateLock::Acquire(dir);
    char byte = lock.ok() ? 'y' : 'n';
    (void)!write(ready[1], &byte, 1);
    pause();  // until SIGKILL
    _exit(0);
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  ASSERT_EQ(byte, 'y');

  absl::StatusOr<StateLock> refused = StateLock::Acquire(dir);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("in use by pid ", child, " ")));

  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  absl::StatusOr<StateLock> after = StateLock::Acquire(dir);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(ReadFile(dir + "/cloudplane.lock"), HasSubstr(absl::StrCat("pid ", getpid(), "\n")));
}

TEST(StateLock, RefusesBadDirectories) {
  EXPECT_EQ(StateLock::Acquire("").status().code(), absl::StatusCode::kInvalidArgument);
  std::string file = MakeTempDir() + "/file";
  std::ofstream(file) << "x";
  EXPECT_EQ(StateLock::Acquire(file).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::service
