#include "adapters/dispatch.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace cloudplane::adapters {
namespace {


using Dispatch = absl::Status (*)(Provider&, const CallContext&, const google::protobuf::Any&,
                                  Callback<MutationProgress>&);

const absl::flat_hash_map<std::string, Dispatch>& Table() {
  static const auto* const kTable = new absl::flat_hash_map<std::string, Dispatch>{
#define CP_READ(Service, Method, Request, Response)
#define CP_MUTATION(Service, Method, Request, Result)                                    \
  {FullMethodName(#Service, #Method),                                                    \
   [](Provider& p, const CallContext& c, const google::protobuf::Any& a,                 \
      Callback<MutationProgress>& cb) -> absl::Status {                                  \
     v1::Request typed;                                                                  \
     if (!a.UnpackTo(&typed)) {                                                          \
       return absl::InvalidArgumentError("stored request is not a " #Request);          \
     }                                                                                   \
     p.Method(c, typed, std::move(cb));                                                  \
     return absl::OkStatus();                                                            \
   }},
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
  };
  return *kTable;
}

using ReadDispatch = absl::Status (*)(Provider&, const CallContext&, const google::protobuf::Any&,
                                      Callback<google::protobuf::Any>&);

const absl::flat_hash_map<std::string, ReadDispatch>& ReadTable() {
  static const auto* const kTable = new absl::flat_hash_map<std::string, ReadDispatch>{
#define CP_MUTATION(Service, Method, Request, Result)
#define CP_READ(Service, Method, Request, Response)                                      \
  {FullMethodName(#Service, #Method),                                                    \
   [](Provider& p, const CallContext& c, const google::protobuf::Any& a,                 \
      Callback<google::protobuf::Any>& cb) -> absl::Status {                             \
     v1::Request typed;                                                                  \
     if (!a.UnpackTo(&typed)) {                                                          \
       return absl::InvalidArgumentError("request is not a " #Request);                 \
     }                                                                                   \
     p.Method(c, typed,                                                                  \
              [cb = std::move(cb)](absl::StatusOr<v1::Response> r) mutable {             \
                if (!r.ok()) return std::move(cb)(r.status());                           \
                google::protobuf::Any packed;                                            \
                packed.PackFrom(*r);                                                     \
                std::move(cb)(std::move(packed));                                        \
              });                                                                        \
     return absl::OkStatus();                                                            \
   }},
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
  };
  return *kTable;
}

}  // namespace

absl::Status DispatchRead(const std::string& method, Provider& provider, const CallContext& ctx,
                          const google::protobuf::Any& request,
                          Callback<google::protobuf::Any> done) {
  auto it = ReadTable().find(method);
  if (it == ReadTable().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown read ", method));
  }
  return it->second(provider, ctx, request, done);
}

absl::Status DispatchMutation(const std::string& method, Provider& provider,
                              const CallContext& ctx, const google::protobuf::Any& request,
                              Callback<MutationProgress> done) {
  auto it = Table().find(method);
  if (it == Table().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown mutation ", method));
  }
  return it->second(provider, ctx, request, done);
}

}  // namespace cloudplane::adapters
