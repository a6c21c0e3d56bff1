// EventLoop: one owned thread that runs posted tasks and timers in order.
//
// cloudplane keeps gRPC threads free of provider I/O. Work that must happen
// later (retries with backoff, polling a long-running provider operation,
// deadlines) is handed to an EventLoop instead of sleeping on a thread:
//
//   cloudplane::EventLoop loop;
//   loop.Post([] { ... });                                  // soon
//   TimerId t = loop.RunAfter(absl::Seconds(2), [] { ... }); // later
//   loop.Cancel(t);                                         // never mind
//
// Ordering: every callback runs on the loop thread, one at a time. Posted
// tasks run in Post() order. Timers run in order of their due time (ties in
// the order they were scheduled); a due timer runs after the tasks that were
// already posted when it became due. Callbacks must not block: they hold up
// everything else on the loop.
//
// Time is absl::Now() (wall clock), so RunAt() takes an absl::Time; a wall
// clock step moves timers with it.
//
// Thread-safety: all methods may be called from any thread, including from
// inside a callback on the loop thread.
#ifndef CLOUDPLANE_BASE_EVENT_LOOP_H_
#define CLOUDPLANE_BASE_EVENT_LOOP_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace cloudplane {

// Identifies a timer for Cancel(). Never 0 for a scheduled timer, so 0 can be
// used as "no timer".
using TimerId = uint64_t;

class EventLoop {
 public:
  // Starts the loop thread.
  EventLoop();

  // Calls Shutdown(). May be called on any thread, including the loop thread
  // itself (from inside a callback); then the loop thread finishes the current
  // callback, drains as Shutdown() describes and exits on its own.
  ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Queues `task` to run on the loop thread. Returns false, and destroys
  // `task` without running it, once Shutdown() has begun.
  bool Post(absl::AnyInvocable<void()> task);

  // Schedules `task` to run on the loop thread once `delay` has passed (a
  // zero or negative delay means "as soon as possible", after tasks already
  // posted). Returns 0, and destroys `task`, once Shutdown() has begun.
  TimerId RunAfter(absl::Duration delay, absl::AnyInvocable<void()> task);

  // Like RunAfter(), at the absolute time `when`.
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void()> task);

  // Cancels a timer. Returns true if it had not started running and now never
  // will (its callback is destroyed on the calling thread before Cancel
  // returns). Returns false if it already ran or is running, was already
  // cancelled, the loop is shutting down, or `id` is unknown.
  bool Cancel(TimerId id);

  // Stops the loop. Idempotent. What happens to pending work:
  //   - tasks already Post()ed run (so completion callbacks are delivered);
  //   - timers that have not yet fired are dropped: their callbacks are
  //     destroyed without running, on the loop thread;
  //   - Post()/RunAfter()/RunAt() called after Shutdown() began (including
  //     from a draining task) are refused, as documented on each.
  // Blocks until the loop thread has exited, except when called on the loop
  // thread itself, where it only requests the stop and returns.
  void Shutdown();

  // True when called from a callback running on this loop's thread.
  bool IsLoopThread() const;

 private:
  struct State;
  // Shared with the loop thread so the thread can outlive `this` when the
  // loop is destroyed from one of its own callbacks.
  std::shared_ptr<State> state_;
};

}  // namespace cloudplane

#endif  // CLOUDPLANE_BASE_EVENT_LOOP_H_
