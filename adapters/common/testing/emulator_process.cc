#include "adapters/common/testing/emulator_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/common/testing/fixtures.h"
#include "gtest/gtest.h"

extern char** environ;

namespace cloudplane::adapters::testutil {
namespace {

namespace fs = std::filesystem;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The end of a log, for error messages.
std::string Tail(const std::string& text) {
  constexpr size_t kMax = 8192;
  return text.size() <= kMax ? text : absl::StrCat("...", text.substr(text.size() - kMax));
}

// /usr/bin/python3, or python3 from PATH (posix_spawnp searches it).
std::string Python() {
  constexpr char kSystem[] = "/usr/bin/python3";
  return access(kSystem, X_OK) == 0 ? kSystem : "python3";
}

// SIGTERM, then SIGKILL after `grace`; always reaps.
void Stop(pid_t pid, absl::Duration grace) {
  kill(pid, SIGTERM);
  const absl::Time give_up = absl::Now() + grace;
  int wstatus = 0;
  while (waitpid(pid, &wstatus, WNOHANG) != pid) {
    if (absl::Now() > give_up) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      return;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmulatorProcess>> EmulatorProcess::Start(
    absl::string_view script, std::vector<std::string> args, const EmulatorOptions& options) {
  return Start(
      script, [&args](const std::string&) { return args; }, options);
}

absl::StatusOr<std::unique_ptr<EmulatorProcess>> EmulatorProcess::Start(
    absl::string_view script,
    absl::FunctionRef<std::vector<std::string>(const std::string& dir)> args,
    const EmulatorOptions& options) {
  const std::string script_path = RunfilePath(script);
  if (!fs::exists(script_path)) {
    return absl::NotFoundError(absl::StrCat("emulator script ", script_path,
                                            " is not in the runfiles (add it to `data`)"));
  }
  std::unique_ptr<EmulatorProcess> emu(new EmulatorProcess());
  // Unix socket paths must stay under ~108 bytes; Bazel's TEST_TMPDIR can be
  // longer, and /tmp is writable in the sandbox.
  std::string base = "/tmp";
  if (const char* t = getenv("TEST_TMPDIR"); t != nullptr && std::string(t).size() < 60) base = t;
  std::string templ = base + "/emuXXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", templ, " failed"));
  }
  emu->dir_ = templ;
  emu->log_path_ = emu->dir_ + "/emulator.log";
  const std::string ready = emu->dir_ + "/ready";

  std::vector<std::string> argv_strings = {Python(), script_path};
  for (std::string& a : args(emu->dir_)) argv_strings.push_back(std::move(a));
  for (std::string a : {std::string("--ready-file"), ready, std::string("--max-lifetime"),
                        absl::StrCat(absl::ToInt64Seconds(options.max_lifetime))}) {
    argv_strings.push_back(std::move(a));
  }
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, emu->log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int err = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", strerror(err)));
  }
  emu->pid_ = pid;

  const absl::Time give_up = absl::Now() + options.ready_timeout;
  while (!fs::exists(ready)) {
    int wstatus = 0;
    if (waitpid(pid, &wstatus, WNOHANG) == pid) {
      emu->pid_ = -1;
      return absl::InternalError(absl::StrCat(script, " exited before it was ready:\n",
                                              Tail(ReadWhole(emu->log_path_))));
    }
    if (absl::Now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat(script, " wrote no READY line within ",
                       absl::FormatDuration(options.ready_timeout), ":\n",
                       Tail(ReadWhole(emu->log_path_))));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  emu->ready_line_ = std::string(absl::StripAsciiWhitespace(ReadWhole(ready)));
  for (absl::string_view field : absl::StrSplit(emu->ready_line_, ' ', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(field, absl::MaxSplits('=', 1));
    if (!kv.second.empty()) emu->fields_.insert(std::move(kv));
  }
  return emu;
}

EmulatorProcess::~EmulatorProcess() {
  if (pid_ > 0) Stop(pid_, absl::Seconds(5));
  if (::testing::Test::HasFailure() && !log_path_.empty()) {
    std::cerr << "--- emulator log (" << ready_line_ << ") ---\n"
              << Tail(ReadWhole(log_path_)) << "--- end of emulator log ---\n";
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::string EmulatorProcess::Field(absl::string_view key) const {
  auto it = fields_.find(key);
  return it == fields_.end() ? "" : it->second;
}

std::string EmulatorProcess::Log() const {
  std::string log = ReadWhole(log_path_);
  for (int i = 0; i < 30; ++i) {
    absl::SleepFor(absl::Milliseconds(30));
    std::string again = ReadWhole(log_path_);
    if (again == log) break;
    log = std::move(again);
  }
  return log;
}

}  // namespace cloudplane::adapters::testutil
