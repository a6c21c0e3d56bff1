// The commands of cloudplanectl and their help.
//
//   cloudplanectl [flags] <group> <command> [arguments] [flags]
//
// Groups: accounts, instances, volumes, operations, watch. Each command is
// one table entry (commands.cc) with its arguments, flags and help text, so
// the help cannot drift from what runs. Commands read the values of the
// flags defined in commands.cc (absl flags, parsed by main.cc).
//
// Output: tables for people by default, `--output json` for scripts (the
// API's messages in proto3 JSON, .proto field names). Mutations wait for
// their Operation, report progress on stderr, then print the resource; with
// `--async` they print the Operation and return.
#ifndef CLOUDPLANE_CLIENTS_CLOUDPLANECTL_COMMANDS_H_
#define CLOUDPLANE_CLIENTS_CLOUDPLANECTL_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

namespace cloudplane::ctl {

// Exit codes.
inline constexpr int kExitOk = 0;
// A bad command, argument or flag (absl's own flag errors exit 1 too).
inline constexpr int kExitUsage = 1;
// The server refused the call (any gRPC error but the two below), or the
// Operation finished with an error.
inline constexpr int kExitFailed = 2;
// The server could not be reached or did not answer in time (UNAVAILABLE,
// DEADLINE_EXCEEDED), or the Operation was not done within --wait_timeout.
inline constexpr int kExitUnavailable = 3;

// Help text: for {} an overview of every command and the global flags; for
// {"instances"} the group's commands; for {"instances", "create"} the
// command's usage, description and flags. Unknown words give the overview
// and set `*found` (when not null) to false.
std::string Help(const std::vector<std::string>& words, bool* found = nullptr);

// Runs the command that `words` (the positional arguments, e.g.
// {"instances", "get", "web-1"}) names. Results go to `out`; errors, usage
// messages and progress go to `err`. Returns one of the exit codes above.
// `err_is_terminal` makes the progress line rewrite itself in place.
int Run(const std::vector<std::string>& words, std::ostream& out, std::ostream& err,
        bool err_is_terminal);

}  // namespace cloudplane::ctl

#endif  // CLOUDPLANE_CLIENTS_CLOUDPLANECTL_COMMANDS_H_
