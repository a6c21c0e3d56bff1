// A provider emulator (tests/emulators/<p>/<p>_emulator.py) run as a child
// process by an adapter test: one harness for every emulator.
//
// Every emulator takes `--ready-file PATH` and `--max-lifetime SECONDS`, and
// once it listens writes one line to the ready file (atomically):
//   READY key=value key=value ...
// e.g. `READY tcp=127.0.0.1:PORT unix=PATH` (fleet), `READY url=… port=…`
// (enStratus), `READY api=… ws=…` (CloudSigma). EmulatorProcess starts the
// script, waits for that line and hands out its fields.
//
//   absl::StatusOr<std::unique_ptr<EmulatorProcess>> emu = EmulatorProcess::Start(
//       "tests/emulators/fleet/fleet_emulator.py",
//       [](const std::string& dir) { return std::vector<std::string>{
//           "--tcp", "127.0.0.1:0", "--unix", dir + "/fleet.sock"}; });
//   ASSERT_TRUE(emu.ok()) << emu.status();
//   std::string base_url = "http://" + (*emu)->Field("tcp");
//
// The script is a runfile of the test (list it in the cc_test's `data`) and
// runs under /usr/bin/python3 (python3 from PATH when that is absent); the
// emulators use the standard library only. Its stdout is discarded (the
// READY line is in the file); its stderr goes to a log in the scratch
// directory, which Log() reads and which is printed when a test that used the
// emulator failed.
//
// Thread-safety: Start and the destructor belong to one thread; the const
// accessors may be called from any thread.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_TESTING_EMULATOR_PROCESS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_TESTING_EMULATOR_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cloudplane::adapters::testutil {

struct EmulatorOptions {
  // How long the emulator may take to write its READY line.
  absl::Duration ready_timeout = absl::Seconds(30);
  // Passed as --max-lifetime: the emulator stops by itself after this long,
  // even if the test process died without reaping it.
  absl::Duration max_lifetime = absl::Seconds(300);
};

class EmulatorProcess {
 public:
  // Makes a private scratch directory (a short path under $TEST_TMPDIR or
  // /tmp, so that unix socket paths in it stay under 108 bytes), runs
  //   python3 <runfiles>/<script> <args...> --ready-file <dir>/ready
  //           --max-lifetime <seconds>
  // and waits for the READY line. The second form gets the scratch directory
  // for arguments that name files in it.
  //   NOT_FOUND          the script is not in the runfiles.
  //   INTERNAL           the emulator exited before it was ready (its log in
  //                      the message), or no scratch directory or process.
  //   DEADLINE_EXCEEDED  no READY line within ready_timeout (its log in the
  //                      message); the process is killed.
  static absl::StatusOr<std::unique_ptr<EmulatorProcess>> Start(
      absl::string_view script, std::vector<std::string> args,
      const EmulatorOptions& options = {});
  static absl::StatusOr<std::unique_ptr<EmulatorProcess>> Start(
      absl::string_view script,
      absl::FunctionRef<std::vector<std::string>(const std::string& dir)> args,
      const EmulatorOptions& options = {});

  // SIGTERM, then SIGKILL if it has not exited within 5 s; reaps the child
  // and removes the scratch directory.
  ~EmulatorProcess();

  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  // The value of `key=` in the READY line ("" when absent): the port, base
  // URL or socket path the emulator listens on.
  std::string Field(absl::string_view key) const;
  // The whole READY line.
  const std::string& ready_line() const { return ready_line_; }
  // The scratch directory.
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

  // The emulator's stderr so far, read until it stops growing (two reads
  // 30 ms apart agree): emulators log a request after answering it.
  std::string Log() const;

 private:
  EmulatorProcess() = default;

  pid_t pid_ = -1;
  std::string dir_;
  std::string log_path_;
  std::string ready_line_;
  std::map<std::string, std::string, std::less<>> fields_;
};

}  // namespace cloudplane::adapters::testutil

#endif  // CLOUDPLANE_ADAPTERS_COMMON_TESTING_EMULATOR_PROCESS_H_
