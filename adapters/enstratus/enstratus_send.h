// Signed requests to DCM and the reads built on them. Internal to
// adapters/enstratus.
//
// Every request carries the x-esauth-* headers of enstratus_wire.h; the send
// itself, the transport's errors and the deadline rule are kit::Send's
// (adapters/common/kit/send.h). Callbacks run on the HTTP transport thread
// (or inline): they never touch the server's store.
#ifndef CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_SEND_H_
#define CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_SEND_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/kit/send.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_wire.h"

namespace cloudplane::adapters::enstratus {

// Sends one signed request. `rel_path` is relative to the basepath, without
// a leading slash (§1); `query` starts with '?' or is empty and is not
// signed (§2 step 2); `body` (JSON) may be empty. `context` names what was
// asked ("GET server 3"), never a body. `done` gets every HTTP answer, or the
// transport's error prefixed with `context`.
void Send(const Account& a, absl::Time deadline, absl::string_view method,
          absl::string_view rel_path, absl::string_view query, std::string body,
          absl::string_view context, kit::ResponseCallback done);

// The response as a status: the transport's error, else StatusFromResponse.
absl::Status AnswerStatus(const absl::StatusOr<http::HttpResponse>& r, absl::string_view context);

// Reads the items of a response body (a wire.h Parse* function).
template <typename T>
using Parser = std::function<absl::StatusOr<std::vector<T>>(absl::string_view body)>;

// GET <rel_path><query>: every item of the answer.
template <typename T>
void GetAll(const Account& a, absl::Time deadline, absl::string_view rel_path,
            absl::string_view query, std::string context, Parser<T> parse,
            Callback<std::vector<T>> done) {
  Send(a, deadline, "GET", rel_path, query, "", context,
       [context, parse = std::move(parse),
        done = std::move(done)](absl::StatusOr<http::HttpResponse> r) mutable {
         if (absl::Status s = AnswerStatus(r, context); !s.ok()) return std::move(done)(s);
         std::move(done)(parse(r->body));
       });
}

// GET <collection>/<id>: DCM answers a one-element list (§4); an empty one
// is NOT_FOUND "<context> <name> does not exist".
template <typename T>
void GetOne(const Account& a, absl::Time deadline, absl::string_view rel_path,
            std::string context, std::string name, Parser<T> parse, Callback<T> done) {
  GetAll<T>(a, deadline, rel_path, "", context, std::move(parse),
            [name = std::move(name), context,
             done = std::move(done)](absl::StatusOr<std::vector<T>> items) mutable {
              if (!items.ok()) return std::move(done)(items.status());
              if (items->empty()) return std::move(done)(kit::NotFound(context, name));
              std::move(done)(std::move(items->front()));
            });
}

// What a List method does with every item a GetAll found: the page the
// request asks for (kit::AnswerPage).
template <typename Response, typename T>
Callback<std::vector<T>> AnswerPage(int32_t page_size, std::string page_token,
                                    Callback<Response> done) {
  return [page_size, page_token = std::move(page_token),
          done = std::move(done)](absl::StatusOr<std::vector<T>> items) mutable {
    if (!items.ok()) return std::move(done)(items.status());
    std::move(done)(kit::AnswerPage<Response>(*std::move(items), page_size, page_token));
  };
}

}  // namespace cloudplane::adapters::enstratus

#endif  // CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_SEND_H_
