#include "base/thread_role.h"

#include <thread>

#include "gtest/gtest.h"

namespace cloudplane {
namespace {

TEST(ThreadRoleTest, UnmarkedThreadsPass) {
  EXPECT_EQ(TransportThreadName(), nullptr);
  CheckNotOnTransportThread("test");  // returns
}

TEST(ThreadRoleTest, MarkIsPerThread) {
  const char* seen = "unset";
  std::thread t([&] {
    MarkTransportThread("http");
    seen = TransportThreadName();
  });
  t.join();
  EXPECT_STREQ(seen, "http");
  EXPECT_EQ(TransportThreadName(), nullptr);
}

#ifndef NDEBUG
TEST(ThreadRoleDeathTest, TransportThreadAborts) {
  EXPECT_DEATH(
      {
        MarkTransportThread("websocket");
        CheckNotOnTransportThread("store::Store::PutResource");
      },
      "store::Store::PutResource called on the websocket transport thread");
}
#endif

}  // namespace
}  // namespace cloudplane
