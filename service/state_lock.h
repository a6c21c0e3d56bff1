// One server per state directory.
//
// Two cloudplaned processes on one state directory would both resume the same
// unfinished operations and drive them twice. StateLock::Acquire takes an
// exclusive flock(2) on `<state_dir>/cloudplane.lock` (LOCK_EX | LOCK_NB) and
// records the holder (pid and start time) in the file; the lock is held until
// the StateLock is destroyed or the process ends, however it ends: the kernel
// drops an flock with the last descriptor, so a restart after SIGKILL finds the
// directory free. The file itself stays behind and is never read to decide
// whether the directory is in use, only to name the holder in the error.
//
// flock is advisory and local to one host: it keeps two servers on one machine
// apart, not two machines sharing a network file system.
//
// Errors: FAILED_PRECONDITION when another process holds the lock (the message
// names its pid and start time, as recorded in the file); INVALID_ARGUMENT when
// `state_dir` is empty or not a directory; UNAVAILABLE for other I/O errors.
// Thread-safety: a StateLock is a plain value owned by main.
#ifndef CLOUDPLANE_SERVICE_STATE_LOCK_H_
#define CLOUDPLANE_SERVICE_STATE_LOCK_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::service {

class StateLock {
 public:
  // Name of the lock file inside the state directory.
  static constexpr absl::string_view kFileName = "cloudplane.lock";

  // Creates `state_dir` when missing, then locks it or fails at once (never
  // waits for the holder).
  static absl::StatusOr<StateLock> Acquire(absl::string_view state_dir);

  StateLock(StateLock&& other) noexcept;
  StateLock& operator=(StateLock&& other) noexcept;
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;
  ~StateLock();  // Releases the lock.

  // Path of the lock file.
  const std::string& path() const { return path_; }

 private:
  StateLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_ = -1;
  std::string path_;
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_STATE_LOCK_H_
