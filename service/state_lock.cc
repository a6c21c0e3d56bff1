#include "service/state_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cloudplane::service {
namespace {

// The holder's record, one `key value` line each:
//   pid 1234
//   started 2024-05-01T12:00:00Z
std::string HolderRecord() {
  return absl::StrCat("pid ", getpid(), "\nstarted ",
                      absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()),
                      "\n");
}

std::string ReadAll(int fd) {
  std::string text;
  char buffer[256];
  off_t offset = 0;
  while (text.size() < 4096) {
    ssize_t n = pread(fd, buffer, sizeof(buffer), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  return text;
}

// "pid 1234 (started ...)" from the record, or a plain phrase when the holder
// has not written it yet (it truncates, then writes, right after locking).
std::string DescribeHolder(int fd) {
  std::string pid, started;
  for (int attempt = 0; attempt < 20; ++attempt) {
    for (absl::string_view line : absl::StrSplit(ReadAll(fd), '\n')) {
      if (absl::ConsumePrefix(&line, "pid ")) pid = std::string(line);
      if (absl::ConsumePrefix(&line, "started ")) started = std::string(line);
    }
    int number = 0;
    if (absl::SimpleAtoi(pid, &number) && number > 0) break;
    pid.clear();
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (pid.empty()) return "another process (it has not recorded its pid yet)";
  if (started.empty()) return absl::StrCat("pid ", pid);
  return absl::StrCat("pid ", pid, " (started ", started, ")");
}

absl::Status IoError(absl::string_view what, const std::string& path, int error) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(error)));
}

}  // namespace

absl::StatusOr<StateLock> StateLock::Acquire(absl::string_view state_dir) {
  namespace fs = std::filesystem;
  if (state_dir.empty()) return absl::InvalidArgumentError("state directory must not be empty");
  fs::path dir{std::string(state_dir)};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat("state directory ", state_dir, " is not a directory",
                     ec ? absl::StrCat(" (", ec.message(), ")") : ""));
  }
  std::string path = (dir / std::string(kFileName)).string();
  // O_CLOEXEC: a child process must not inherit, and so keep, the lock.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot open lock file", path, errno);
  int result;
  do {
    result = flock(fd, LOCK_EX | LOCK_NB);
  } while (result != 0 && errno == EINTR);
  if (result != 0) {
    int error = errno;
    if (error != EWOULDBLOCK) {
      close(fd);
      return IoError("cannot lock", path, error);
    }
    std::string holder = DescribeHolder(fd);
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat("state directory ", state_dir,
                                                      " is in use by ", holder,
                                                      "; one server per state directory"));
  }
  // Locked: replace the previous holder's record with ours. The record only
  // names the holder in the error above; the flock is the lock.
  std::string record = HolderRecord();
  errno = 0;
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size())) {
    int error = errno != 0 ? errno : EIO;  // a short write leaves errno alone
    close(fd);
    return IoError("cannot write lock file", path, error);
  }
  return StateLock(fd, std::move(path));
}

StateLock::StateLock(StateLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

StateLock& StateLock::operator=(StateLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

StateLock::~StateLock() {
  // Closing the last descriptor releases the flock. The file stays: were it
  // removed, a process that had opened the old file could lock it while a
  // third one creates and locks a new file, and both would run.
  if (fd_ >= 0) close(fd_);
}

}  // namespace cloudplane::service
