#include "base/thread_role.h"

#include <cstdio>
#include <cstdlib>

namespace cloudplane {
namespace {

thread_local const char* transport_name = nullptr;
#ifdef NDEBUG
thread_local bool reported = false;
#endif

}  // namespace

void MarkTransportThread(const char* name) { transport_name = name; }

const char* TransportThreadName() { return transport_name; }

void CheckNotOnTransportThread(absl::string_view what) {
  if (transport_name == nullptr) return;
#ifndef NDEBUG
  std::fprintf(stderr, "cloudplane: %.*s called on the %s transport thread\n",
               static_cast<int>(what.size()), what.data(), transport_name);
  std::abort();
#else
  if (!reported) {
    reported = true;
    std::fprintf(stderr, "cloudplane: %.*s called on the %s transport thread (reported once)\n",
                 static_cast<int>(what.size()), what.data(), transport_name);
  }
#endif
}

}  // namespace cloudplane
