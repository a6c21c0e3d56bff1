// Calling an asynchronous Provider method from a test and waiting for its
// answer:
//
//   absl::StatusOr<v1::Unit> unit = testutil::Await<v1::Unit>(
//       [&](auto cb) { provider->GetUnit(ctx, request, std::move(cb)); });
//
// The callback may run on any thread, before or after `start` returns. A
// second call of it is a test failure (the contract says exactly once); no
// call within `timeout` is DEADLINE_EXCEEDED. The state the callback writes
// is shared, so a late callback after a timeout does no harm.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_TESTING_AWAIT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_TESTING_AWAIT_H_

#include <atomic>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "adapters/provider.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::testutil {

template <typename T, typename Start>
absl::StatusOr<T> Await(Start start, absl::Duration timeout = absl::Seconds(30)) {
  auto done = std::make_shared<absl::Notification>();
  auto out = std::make_shared<absl::StatusOr<T>>(absl::UnknownError("no answer"));
  auto calls = std::make_shared<std::atomic<int>>(0);
  start(Callback<T>([done, out, calls](absl::StatusOr<T> value) {
    if (calls->fetch_add(1) == 0) {
      *out = std::move(value);
      done->Notify();
    } else {
      ADD_FAILURE() << "callback called twice";
    }
  }));
  if (!done->WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("test: no callback within ", absl::FormatDuration(timeout)));
  }
  return *out;
}

}  // namespace cloudplane::adapters::testutil

#endif  // CLOUDPLANE_ADAPTERS_COMMON_TESTING_AWAIT_H_
