#include "base/event_loop.h"

#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace cloudplane {

using Task = absl::AnyInvocable<void()>;

struct EventLoop::State {
  absl::Mutex mu;
  absl::CondVar cv;
  std::deque<Task> tasks ABSL_GUARDED_BY(mu);
  // Keyed by (due time, id): ids grow monotonically, so equal due times run
  // in scheduling order.
  std::map<std::pair<absl::Time, TimerId>, Task> timers ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<TimerId, absl::Time> timer_due ABSL_GUARDED_BY(mu);
  TimerId next_timer_id ABSL_GUARDED_BY(mu) = 1;
  bool stopping ABSL_GUARDED_BY(mu) = false;

  // Serialises join/detach of `thread` between concurrent Shutdown() calls.
  std::mutex join_mu;
  std::thread thread;
  std::thread::id thread_id;

  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return stopping || !tasks.empty() ||
           (!timers.empty() && timers.begin()->first.first <= absl::Now());
  }

  static void Run(std::shared_ptr<State> s);
};

void EventLoop::State::Run(std::shared_ptr<State> s) {
  std::vector<Task> batch;
  std::map<std::pair<absl::Time, TimerId>, Task> dropped;
  bool last_round = false;
  while (!last_round) {
    {
      absl::MutexLock lock(&s->mu);
      while (!s->HasWork()) {
        if (s->timers.empty()) {
          s->cv.Wait(&s->mu);
        } else {
          s->cv.WaitWithDeadline(&s->mu, s->timers.begin()->first.first);
        }
      }
      if (s->stopping) {
        // Post() refuses work once `stopping` is set, so this batch is the
        // last one; timers that are not yet due are dropped.
        last_round = true;
        dropped.swap(s->timers);
        s->timer_due.clear();
      }
      // Due timers join the queue behind tasks already posted.
      const absl::Time now = absl::Now();
      while (!s->timers.empty() && s->timers.begin()->first.first <= now) {
        auto node = s->timers.extract(s->timers.begin());
        s->timer_due.erase(node.key().second);
        s->tasks.push_back(std::move(node.mapped()));
      }
      batch.reserve(s->tasks.size());
      for (Task& t : s->tasks) batch.push_back(std::move(t));
      s->tasks.clear();
    }
    // Run without the lock so callbacks can Post/Cancel freely.
    for (Task& t : batch) {
      t();
      t = nullptr;  // Destroy captures now, in order.
    }
    batch.clear();
  }
  // Dropped timers are destroyed here, on the loop thread, without the lock.
  dropped.clear();
}

EventLoop::EventLoop() : state_(std::make_shared<State>()) {
  absl::MutexLock lock(&state_->mu);
  state_->thread = std::thread(&State::Run, state_);
  state_->thread_id = state_->thread.get_id();
}

EventLoop::~EventLoop() {
  Shutdown();
  if (IsLoopThread()) {
    // Destroyed from one of its own callbacks: the thread cannot join itself.
    // It holds its own reference to `state_` and exits after this callback.
    std::lock_guard<std::mutex> join_lock(state_->join_mu);
    if (state_->thread.joinable()) state_->thread.detach();
  }
}

bool EventLoop::Post(Task task) {
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->stopping) return false;  // `task` is destroyed unlocked.
    state_->tasks.push_back(std::move(task));
  }
  state_->cv.Signal();
  return true;
}

TimerId EventLoop::RunAfter(absl::Duration delay, Task task) {
  return RunAt(absl::Now() + delay, std::move(task));
}

TimerId EventLoop::RunAt(absl::Time when, Task task) {
  TimerId id;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->stopping) return 0;
    id = state_->next_timer_id++;
    state_->timers.emplace(std::make_pair(when, id), std::move(task));
    state_->timer_due.emplace(id, when);
  }
  state_->cv.Signal();
  return id;
}

bool EventLoop::Cancel(TimerId id) {
  Task cancelled;
  {
    absl::MutexLock lock(&state_->mu);
    auto it = state_->timer_due.find(id);
    if (it == state_->timer_due.end()) return false;
    auto node = state_->timers.extract(std::make_pair(it->second, id));
    state_->timer_due.erase(it);
    cancelled = std::move(node.mapped());
  }
  // `cancelled` is destroyed here, without the lock: its captures may call
  // back into the loop.
  return true;
}

void EventLoop::Shutdown() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
  }
  state_->cv.Signal();
  if (IsLoopThread()) return;
  std::lock_guard<std::mutex> join_lock(state_->join_mu);
  if (state_->thread.joinable()) state_->thread.join();
}

bool EventLoop::IsLoopThread() const {
  return std::this_thread::get_id() == state_->thread_id;
}

}  // namespace cloudplane
