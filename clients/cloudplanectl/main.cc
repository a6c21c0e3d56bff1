// cloudplanectl: the cloudplane API from the command line, on the generated
// C++ client. See commands.h for the commands, output and exit codes.
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "clients/cloudplanectl/commands.h"

int main(int argc, char** argv) {
  // --help/-h are ours: absl's would list the flags of every library linked
  // in, not the command's. (--helpfull still gives absl's full list.)
  // `-o json` is spelled out as --output=json for absl, which knows no
  // one-letter flags.
  std::vector<std::string> storage;
  storage.reserve(argc);
  std::vector<char*> args;
  bool help = false;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ||
                  std::strcmp(argv[i], "-help") == 0)) {
      help = true;
      continue;
    }
    if (i > 0 && std::strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      storage.push_back(std::string("--output=") + argv[++i]);
      args.push_back(storage.back().data());
      continue;
    }
    args.push_back(argv[i]);
  }
  absl::SetProgramUsageMessage(
      "the cloudplane API from the command line; `cloudplanectl help` lists the commands");
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  std::vector<std::string> words(positional.begin() + 1, positional.end());
  if (!words.empty() && words[0] == "help") {
    words.erase(words.begin());
    help = true;
  }
  if (help) {
    bool found = true;
    std::cout << cloudplane::ctl::Help(words, &found);
    return found ? cloudplane::ctl::kExitOk : cloudplane::ctl::kExitUsage;
  }
  return cloudplane::ctl::Run(words, std::cout, std::cerr, isatty(STDERR_FILENO) == 1);
}
