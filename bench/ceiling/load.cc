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

}  // namespace

int main(int argc, char** argv) {
  const std::string target = Flag(argc, argv, "target", "");
  const std::string method = Flag(argc, argv, "method", "get");
  Options options;
  options.list = method == "list";
  options.name = Flag(argc, argv, "name", "");
  options.page_size = std::stoi(Flag(argc, argv, "page_size", "100"));
  options.token = Flag(argc, argv, "token", "");
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
