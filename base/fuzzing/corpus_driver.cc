// main() for a fuzz harness in the ordinary build (any compiler, no
// libFuzzer): feeds every file named on the command line, or found under a
// directory named there, to LLVMFuzzerTestOneInput once. This is how
// `bazel test //...` runs each harness over its seed corpus as a regression
// test. It fails when it finds no input at all, so a harness whose seeds went
// missing cannot pass by running nothing.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

bool RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy in its own allocation, so reads past the end are caught by the
  // sanitizers of a sanitized build just as libFuzzer would catch them.
  std::vector<uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.data(), input.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path root(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(root, ec)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (entry.is_regular_file() && RunFile(entry.path())) ++inputs;
      }
    } else if (RunFile(root)) {
      ++inputs;
    }
  }
  std::printf("%zu inputs run\n", inputs);
  if (inputs == 0) {
    std::fprintf(stderr, "no input found in the arguments\n");
    return 1;
  }
  return 0;
}
