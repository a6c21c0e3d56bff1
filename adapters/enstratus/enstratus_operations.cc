// Operations: PollOperation follows a job-backed mutation (enstratus_jobs.h);
// every DCM job of the account, whoever started it, is a read-only provider
// operation (admin/Job, §5).
#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/paging/paging.h"
#include "adapters/enstratus/enstratus_jobs.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_send.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::enstratus {

void EnstratusProvider::PollOperation(const CallContext& ctx, const std::string& poll_token,
                                      Callback<MutationProgress> done) {
  absl::StatusOr<JobToken> token = kit::UnpackToken<JobToken>(poll_token, kJobTokenVersion);
  if (!token.ok()) return std::move(done)(token.status());
  Advance(CallOf(a_, ctx), *std::move(token), std::move(done));
}

void EnstratusProvider::ListProviderOperations(
    const CallContext& ctx, int page_size, const std::string& page_token,
    Callback<google::longrunning::ListOperationsResponse> done) {
  if (absl::Status s = kit::CheckPaging(page_size, page_token); !s.ok()) {
    return std::move(done)(s);
  }
  // DCM answers every job at once (§4: no paging); pages are cut here,
  // keyed by the zero-padded job id (not the name, whose text order is not
  // the ids' order), so they hold across calls.
  GetAll<Job>(
      *a_, ctx.deadline, "admin/Job", "", "GET jobs",
      [](absl::string_view body) { return ParseJobs(body); },
      [account_id = a_->id, page_size, page_token,
       done = std::move(done)](absl::StatusOr<std::vector<Job>> jobs) mutable {
        if (!jobs.ok()) return std::move(done)(jobs.status());
        std::sort(jobs->begin(), jobs->end(),
                  [](const Job& x, const Job& y) { return x.id < y.id; });
        jobs->erase(std::unique(jobs->begin(), jobs->end(),
                                [](const Job& x, const Job& y) { return x.id == y.id; }),
                    jobs->end());
        google::longrunning::ListOperationsResponse response;
        absl::StatusOr<std::vector<Job>> page =
            paging::Paginate(*std::move(jobs), [](const Job& j) { return JobKey(j.id); },
                             page_size, page_token, response.mutable_next_page_token());
        if (!page.ok()) return std::move(done)(page.status());
        for (const Job& job : *page) *response.add_operations() = JobToOperation(job, account_id);
        std::move(done)(std::move(response));
      });
}

void EnstratusProvider::GetProviderOperation(const CallContext& ctx, const std::string& id,
                                             Callback<google::longrunning::Operation> done) {
  const std::string name = absl::StrCat("accounts/", a_->id, "/providerOperations/", id);
  // Job ids are DCM integers; anything else names no job.
  std::optional<int64_t> job_id = ParseDcmId(id);
  if (!job_id.has_value()) return std::move(done)(kit::NotFound("provider operation", name));
  GetOne<Job>(
      *a_, ctx.deadline, absl::StrCat("admin/Job/", *job_id), absl::StrCat("GET job ", *job_id),
      name, [](absl::string_view body) { return ParseJobs(body); },
      [account_id = a_->id, name, done = std::move(done)](absl::StatusOr<Job> job) mutable {
        if (job.ok()) return std::move(done)(JobToOperation(*job, account_id));
        if (job.status().code() != absl::StatusCode::kNotFound) {
          return std::move(done)(job.status());
        }
        // DCM's 404 ("No such job ID: 5") keeps its text; the resource
        // named is ours.
        std::map<std::string, std::string> metadata = {{"resource", name}};
        if (auto info = GetErrorInfo(job.status())) {
          metadata.insert(info->metadata().begin(), info->metadata().end());
        }
        std::move(done)(WithErrorInfo(job.status(), reasons::kResourceNotFound, metadata));
      });
}

}  // namespace cloudplane::adapters::enstratus
