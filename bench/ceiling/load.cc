// The load generator of bench/grpc_ceiling.py: keeps --concurrency unary
// calls in flight on one channel for --seconds (after a --warmup), each lane
// sending its next call when the previous answer arrives, and prints one line
// of JSON: calls, errors, calls per second, p50 and p99 latency in ms.
// The same binary drives cloudplaned and the bare server, so the client's
// own cost is the same on both sides.
//
//   load --target=127.0.0.1:N --method=get|list --name=RESOURCE
//        [--concurrency=16] [--seconds=5] [--warmup=1] [--page_size=100]
//        [--token=BEARER]
//
// Burst mode (bench/inflight.py): --burst=N starts N GetInstance calls at
// once from --senders threads (default 1), spread over --channels
// connections (default 4), each with a
// --deadline_ms (default 30000), waits for every answer and prints one line
// of JSON: count, ok, errors, first_error, wall_s (first call sent to last
// answer), send_s (time to start all N), p50/p99/max ms. `{i}` in --name is
// replaced by 1000000 + the call's index, so every call reads its own
// resource.
//
//   load --target=127.0.0.1:N --burst=10000 --name=accounts/a/instances/{i}
//        [--channels=4] [--senders=1] [--deadline_ms=30000] [--token=BEARER]

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cloudplane/v1/compute.grpc.pb.h"

namespace {

namespace v1 = cloudplane::v1;
using Clock = std::chrono::steady_clock;

std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
  }
  return fallback;
}

struct Options {
  bool list = false;
  std::string name;
  int page_size = 100;
  std::string token;
  Clock::time_point measure_from;
  Clock::time_point stop_at;
};

// What every lane records; latencies only of calls started after the warmup.
struct Tally {
  std::mutex mu;
  std::vector<double> latencies_ms;
  long errors = 0;
  int lanes_running = 0;
  std::condition_variable all_done;
};

// One lane: a call, and on its answer the next, until stop_at.
class Lane {
 public:
  Lane(v1::ComputeService::Stub* stub, const Options& options, Tally* tally)
      : stub_(stub), options_(options), tally_(tally) {}

  void Start() { Issue(); }

 private:
  void Issue() {
    started_ = Clock::now();
    if (started_ >= options_.stop_at) return Finish();
    context_ = std::make_unique<grpc::ClientContext>();
    if (!options_.token.empty()) {
      context_->AddMetadata("authorization", "Bearer " + options_.token);
    }
    auto on_done = [this](grpc::Status status) { Done(status); };
    if (options_.list) {
      list_request_.set_parent(options_.name);
      list_request_.set_page_size(options_.page_size);
      stub_->async()->ListInstances(context_.get(), &list_request_, &list_reply_, on_done);
    } else {
      get_request_.set_name(options_.name);
      stub_->async()->GetInstance(context_.get(), &get_request_, &get_reply_, on_done);
    }
  }

  void Done(const grpc::Status& status) {
    const Clock::time_point now = Clock::now();
    if (started_ >= options_.measure_from) {
      std::lock_guard<std::mutex> lock(tally_->mu);
      if (status.ok()) {
        tally_->latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(now - started_).count());
      } else {
        ++tally_->errors;
        if (tally_->errors == 1) std::cerr << "first error: " << status.error_message() << "\n";
      }
    }
    Issue();
  }

  void Finish() {
    std::lock_guard<std::mutex> lock(tally_->mu);
    if (--tally_->lanes_running == 0) tally_->all_done.notify_all();
  }

  v1::ComputeService::Stub* stub_;
  const Options& options_;
  Tally* tally_;
  std::unique_ptr<grpc::ClientContext> context_;
  Clock::time_point started_;
  v1::GetInstanceRequest get_request_;
  v1::Instance get_reply_;
  v1::ListInstancesRequest list_request_;
  v1::ListInstancesResponse list_reply_;
};

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()));
  return sorted[i];
}

// JSON string contents: quotes, backslashes and control characters escaped.
std::string JsonEscape(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// One call of a burst: its own context, request and reply, alive until the
// whole burst has answered.
struct BurstCall {
  grpc::ClientContext context;
  v1::GetInstanceRequest request;
  v1::Instance reply;
  Clock::time_point started;
};

// --burst=N: N GetInstance at once over `channels` connections; prints the
// JSON line and returns the exit code (0 when every call succeeded).
int RunBurst(const std::string& target, const std::string& name_pattern, const std::string& token,
             int count, int channels, int senders, int deadline_ms) {
  // Distinct channel arguments keep the channels from sharing one subchannel
  // (and so one TCP connection).
  std::vector<std::unique_ptr<v1::ComputeService::Stub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("cloudplane.load.channel", c);
    auto channel =
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::cerr << "cannot connect to " << target << "\n";
      return 2;
    }
    stubs.push_back(v1::ComputeService::NewStub(channel));
  }
  const size_t marker = name_pattern.find("{i}");
  std::vector<std::unique_ptr<BurstCall>> calls;
  calls.reserve(count);
  for (int i = 0; i < count; ++i) {
    auto call = std::make_unique<BurstCall>();
    std::string name = name_pattern;
    if (marker != std::string::npos) name.replace(marker, 3, std::to_string(1000000 + i));
    call->request.set_name(name);
    if (!token.empty()) call->context.AddMetadata("authorization", "Bearer " + token);
    calls.push_back(std::move(call));
  }

  std::mutex mu;
  std::condition_variable all_done;
  int answered = 0;
  long errors = 0;
  std::string first_error;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(count);
  Clock::time_point last_answer;

  // Each sender thread starts every `senders`-th call: starting a call costs
  // the client tens of microseconds, which one thread would spend in series.
  auto start_calls = [&](int first) {
    for (int i = first; i < count; i += senders) {
      BurstCall* call = calls[i].get();
      call->context.set_deadline(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(deadline_ms));
      call->started = Clock::now();
      stubs[i % channels]->async()->GetInstance(
          &call->context, &call->request, &call->reply, [&, call](grpc::Status status) {
            const Clock::time_point now = Clock::now();
            std::lock_guard<std::mutex> lock(mu);
            latencies_ms.push_back(
                std::chrono::duration<double, std::milli>(now - call->started).count());
            if (!status.ok() && ++errors == 1) {
              first_error = std::to_string(status.error_code()) + ": " + status.error_message();
            }
            last_answer = now;
            if (++answered == count) all_done.notify_all();
          });
    }
  };
  const Clock::time_point begin = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 1; s < senders; ++s) threads.emplace_back(start_calls, s);
  start_calls(0);
  for (std::thread& t : threads) t.join();
  const Clock::time_point sent = Clock::now();
  {
    std::unique_lock<std::mutex> lock(mu);
    all_done.wait(lock, [&] { return answered == count; });
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double wall_s = std::chrono::duration<double>(last_answer - begin).count();
  std::printf(
      "{\"count\": %d, \"ok\": %ld, \"errors\": %ld, \"first_error\": \"%s\", "
      "\"wall_s\": %.3f, \"send_s\": %.3f, \"p50_ms\": %.1f, \"p99_ms\": %.1f, "
      "\"max_ms\": %.1f, \"channels\": %d, \"senders\": %d}\n",
      count, count - errors, errors, JsonEscape(first_error).c_str(), wall_s,
      std::chrono::duration<double>(sent - begin).count(), Percentile(latencies_ms, 0.5),
      Percentile(latencies_ms, 0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back(),
      channels, senders);
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string target = Flag(argc, argv, "target", "");
  const std::string method = Flag(argc, argv, "method", "get");
  Options options;
  options.list = method == "list";
  options.name = Flag(argc, argv, "name", "");
  options.page_size = std::stoi(Flag(argc, argv, "page_size", "100"));
  options.token = Flag(argc, argv, "token", "");
  const int burst = std::stoi(Flag(argc, argv, "burst", "0"));
  if (burst > 0) {
    const int channels = std::stoi(Flag(argc, argv, "channels", "4"));
    const int senders = std::stoi(Flag(argc, argv, "senders", "1"));
    const int deadline_ms = std::stoi(Flag(argc, argv, "deadline_ms", "30000"));
    if (target.empty() || options.name.empty() || method != "get" || channels < 1 ||
        senders < 1 || deadline_ms < 1) {
      std::cerr << "usage: load --target=HOST:PORT --burst=N --name=RESOURCE "
                   "[--channels=4] [--senders=1] [--deadline_ms=30000] [--token=T]\n";
      return 2;
    }
    return RunBurst(target, options.name, options.token, burst, channels, senders, deadline_ms);
  }
  const int concurrency = std::stoi(Flag(argc, argv, "concurrency", "16"));
  const double seconds = std::stod(Flag(argc, argv, "seconds", "5"));
  const double warmup = std::stod(Flag(argc, argv, "warmup", "1"));
  if (target.empty() || options.name.empty() || (method != "get" && method != "list") ||
      concurrency < 1 || seconds <= 0) {
    std::cerr << "usage: load --target=HOST:PORT --method=get|list --name=RESOURCE "
                 "[--concurrency=N] [--seconds=S] [--warmup=S] [--page_size=N] [--token=T]\n";
    return 2;
  }
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = v1::ComputeService::NewStub(channel);
  const Clock::time_point begin = Clock::now();
  options.measure_from = begin + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(warmup));
  options.stop_at = options.measure_from + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(seconds));
  Tally tally;
  tally.lanes_running = concurrency;
  std::vector<std::unique_ptr<Lane>> lanes;
  for (int i = 0; i < concurrency; ++i) {
    lanes.push_back(std::make_unique<Lane>(stub.get(), options, &tally));
  }
  for (auto& lane : lanes) lane->Start();
  {
    std::unique_lock<std::mutex> lock(tally.mu);
    tally.all_done.wait(lock, [&] { return tally.lanes_running == 0; });
  }
  std::vector<double> sorted = tally.latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf("{\"calls\": %zu, \"errors\": %ld, \"rps\": %.1f, \"p50_ms\": %.3f, "
              "\"p99_ms\": %.3f}\n",
              sorted.size(), tally.errors, sorted.size() / seconds, Percentile(sorted, 0.5),
              Percentile(sorted, 0.99));
  return tally.errors == 0 ? 0 : 1;
}
