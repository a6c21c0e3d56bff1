// ComputeService instances on CloudSigma servers (servers.rst): create,
// update, delete, power actions and the server's meta as instance metadata.
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;
using Empty = google::protobuf::Empty;

std::string RandomVncPassword() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 16; ++i) out.push_back("0123456789abcdef"[rd() % 16]);
  return out;
}

// The local checks of a create; fills `vnc_password` from provider_options.
absl::Status CheckCreate(const v1::CreateInstanceRequest& request, std::string& vnc_password) {
  const v1::Instance& in = request.instance();
  absl::Status status;
  if (!request.instance_id().empty()) {
    if (absl::Status s = ValidateChosenId("instance_id", request.instance_id()); !s.ok()) {
      AddFieldViolation(status, "instance_id", s.message());
    }
  }
  if (in.cpu_mhz() <= 0) AddFieldViolation(status, "instance.cpu_mhz", "must be positive");
  if (in.memory_bytes() <= 0) {
    AddFieldViolation(status, "instance.memory_bytes", "must be positive");
  }
  if (in.cpu_count() < 0) AddFieldViolation(status, "instance.cpu_count", "must not be negative");
  if (!in.image().empty()) {
    AddFieldViolation(status, "instance.image",
                      "CloudSigma servers have no image: clone a library drive "
                      "(CloneVolume) and attach it (AttachVolume)");
  }
  if (!in.machine_type().empty()) {
    AddFieldViolation(status, "instance.machine_type",
                      "CloudSigma has no machine types; set cpu_mhz and memory_bytes");
  }
  for (const auto& [key, value] : in.provider_options().fields()) {
    if (key == "vnc_password" && value.has_string_value() && !value.string_value().empty()) {
      vnc_password = value.string_value();
    } else {
      AddFieldViolation(status, absl::StrCat("instance.provider_options.", key),
                        "unknown key (CloudSigma reads a non-empty string vnc_password)");
    }
  }
  if (absl::Status s = ValidateLabels("instance.labels", in.labels()); !s.ok()) {
    AddFieldViolation(status, "instance.labels", s.message());
  }
  return status;
}

// The local checks of the key name; its keypair id (or uuid).
absl::StatusOr<std::string> KeyId(absl::string_view account, const std::string& key_name) {
  // A key pair's resource name, or its bare id as other providers take it.
  if (absl::StartsWith(key_name, "accounts/")) {
    return IdFromName("instance.key_name", account, "keyPairs", key_name);
  }
  if (key_name.empty() || absl::StrContains(key_name, '/')) {
    return InvalidField("instance.key_name", "must be a key pair id or accounts/{a}/keyPairs/{id}");
  }
  return key_name;
}

void ResolveKey(const AccountPtr& account, absl::Time deadline, const std::string& key_name,
                Callback<std::vector<std::string>> done) {
  if (key_name.empty()) return std::move(done)(std::vector<std::string>{});
  absl::StatusOr<std::string> id = KeyId(account->id, key_name);
  if (!id.ok()) return std::move(done)(id.status());
  FindObject(account, deadline, "keypairs", *id, ResourceName(account->id, "keyPairs", *id),
             "key pair", [done = std::move(done)](absl::StatusOr<WireObject> key) mutable {
               if (!key.ok()) return std::move(done)(key.status());
               std::move(done)(std::vector<std::string>{key->uuid});
             });
}

// Sends `start`, then polls for running. With undo_on_error, a refused start
// deletes the server (a create must not leave a half-made one). A start whose
// answer is ambiguous (kit::IsAmbiguous) may be under way: the server stays,
// and the re-driven create finds it by its meta and converges.
void StartThenPoll(const AccountPtr& account, absl::Time deadline, const std::string& uuid,
                   bool undo_on_error, Callback<MutationProgress> done) {
  Call(account, deadline, "POST", absl::StrCat("/servers/", uuid, "/action/?do=start"), "{}",
       absl::StrCat("POST server ", uuid, " start"),
       [account, uuid, undo_on_error,
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) {
           if (undo_on_error && !kit::IsAmbiguous(r.status())) {
             Send(account, absl::Now() + absl::Seconds(30), "DELETE",
                  ObjectPath("servers", uuid), "", "DELETE server (undo)",
                  [](absl::StatusOr<HttpResponse>) {});
           }
           return std::move(done)(r.status());
         }
         std::move(done)(PendingOn(MakePollToken(PollToken::SERVER, uuid, PollToken::RUNNING),
                                   absl::StrCat("starting server ", uuid)));
       });
}

// POSTs the new server, then starts it when asked.
void PostServer(const AccountPtr& account, absl::Time deadline, const ServerSpec& spec,
                bool start, Callback<MutationProgress> done) {
  Call(
      account, deadline, "POST", "/servers/", ServerCreateBody(spec), "POST servers",
      [account, deadline, start, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
        if (!r.ok()) return std::move(done)(r.status());
        absl::StatusOr<WireObject> o = ParseObject(r->body);
        if (!o.ok()) return std::move(done)(o.status());
        // Creation is synchronous; a new server is stopped (servers.rst).
        if (!start) return DoneWithInstance(account, deadline, *o, std::move(done));
        StartThenPoll(account, deadline, o->uuid, /*undo_on_error=*/true, std::move(done));
      },
      "instance.");
}

// A re-driven create found its server: converge from wherever the first
// attempt stopped.
void Converge(const AccountPtr& account, absl::Time deadline, const std::string& uuid,
              bool start, Callback<MutationProgress> done) {
  GetObject(account, deadline, "servers", uuid, uuid, "instance",
            [account, deadline, uuid, start,
             done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
              if (!o.ok()) return std::move(done)(o.status());
              if (start && o->status == "stopped") {
                return StartThenPoll(account, deadline, uuid, false, std::move(done));
              }
              Poll(account, deadline,
                   MakePollToken(PollToken::SERVER, uuid,
                                 start ? PollToken::RUNNING : PollToken::STOPPED),
                   std::move(done));
            });
}

}  // namespace

void PutServer(const AccountPtr& account, absl::Time deadline, const WireObject& server,
               const ServerEdit& edit, Callback<WireObject> done) {
  absl::StatusOr<std::string> body = EditServer(server.json, edit);
  if (!body.ok()) return std::move(done)(body.status());
  Call(
      account, deadline, "PUT", ObjectPath("servers", server.uuid), *body,
      absl::StrCat("PUT server ", server.uuid),
      [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
        if (!r.ok()) return std::move(done)(r.status());
        std::move(done)(ParseObject(r->body));
      },
      "instance.");
}

void CloudSigmaProvider::ListInstances(const CallContext& ctx,
                                       const v1::ListInstancesRequest& request,
                                       Callback<v1::ListInstancesResponse> done) {
  ListRendered<v1::ListInstancesResponse, v1::Instance>(
      account_, ctx.deadline, "/servers/detail/", "drives", &ServerToInstance,
      request.page_size(), request.page_token(), std::move(done));
}

void CloudSigmaProvider::GetInstance(const CallContext& ctx, const v1::GetInstanceRequest& request,
                                     Callback<v1::Instance> done) {
  auto id = IdFromName("name", account_->id, "instances", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  FindObject(account, deadline, "servers", *id, request.name(), "instance",
             [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
               if (!o.ok()) return std::move(done)(o.status());
               RenderInstance(account, deadline, *o, std::move(done));
             });
}

void CloudSigmaProvider::CreateInstance(const CallContext& ctx,
                                        const v1::CreateInstanceRequest& request,
                                        Callback<MutationProgress> done) {
  std::string vnc_password;
  absl::Status checked = CheckCreate(request, vnc_password);
  std::optional<std::vector<NicSpec>> nics;
  if (request.instance().network_interfaces_size() > 0) {
    nics.emplace();
    for (int n = 0; n < request.instance().network_interfaces_size(); ++n) {
      nics->push_back(NicFromRequest(account_->id, request.instance().network_interfaces(n),
                                     absl::StrCat("instance.network_interfaces[", n, "]"),
                                     checked));
    }
  }
  if (!request.instance().key_name().empty()) {
    if (auto id = KeyId(account_->id, request.instance().key_name()); !id.ok()) {
      AddFieldViolation(checked, "instance.key_name", id.status().message());
    }
  }
  if (!checked.ok()) return std::move(done)(checked);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  const v1::Instance& in = request.instance();
  const bool start = !request.has_start() || request.start();
  ServerSpec spec;
  spec.name = !in.display_name().empty()       ? in.display_name()
              : !request.instance_id().empty() ? request.instance_id()
                                               : "cloudplane instance";
  spec.cpu_mhz = in.cpu_mhz();
  spec.memory_bytes = in.memory_bytes();
  spec.smp = in.cpu_count();
  spec.vnc_password = vnc_password.empty() ? RandomVncPassword() : vnc_password;
  spec.meta = LabelMeta(in.labels());
  if (!request.instance_id().empty()) spec.meta[std::string(kIdMetaKey)] = request.instance_id();
  if (!ctx.operation.empty()) spec.meta[std::string(kOperationMetaKey)] = ctx.operation;
  spec.nics = std::move(nics);
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  const std::string resource_name = ResourceName(
      account->id, "instances", request.instance_id().empty() ? "-" : request.instance_id());
  FindExisting(
      account, deadline, "servers", request.instance_id(), ctx.operation, resource_name,
      [account, deadline, spec = std::move(spec), start, key_name = in.key_name(),
       done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
        if (!found.ok()) return std::move(done)(found.status());
        if (found->has_value()) return Converge(account, deadline, **found, start, std::move(done));
        // The key pair is looked up before anything is made: an unknown one
        // is NOT_FOUND and no server exists.
        ResolveKey(account, deadline, key_name,
                   [account, deadline, spec = std::move(spec), start, done = std::move(done)](
                       absl::StatusOr<std::vector<std::string>> pubkeys) mutable {
                     if (!pubkeys.ok()) return std::move(done)(pubkeys.status());
                     spec.pubkeys = *std::move(pubkeys);
                     PostServer(account, deadline, spec, start, std::move(done));
                   });
      });
}

void CloudSigmaProvider::UpdateInstance(const CallContext& ctx,
                                        const v1::UpdateInstanceRequest& request,
                                        Callback<MutationProgress> done) {
  auto id = IdFromName("instance.name", account_->id, "instances", request.instance().name());
  if (!id.ok()) return std::move(done)(id.status());
  const v1::Instance& in = request.instance();
  ServerEdit edit;
  bool sizing = false;
  for (const std::string& path : request.update_mask().paths()) {
    if (path == "display_name") {
      if (in.display_name().empty()) {
        return std::move(done)(InvalidField("instance.display_name", "must not be empty"));
      }
      edit.name = in.display_name();
    } else if (path == "labels") {
      if (absl::Status s = ValidateLabels("instance.labels", in.labels()); !s.ok()) {
        return std::move(done)(s);
      }
      edit.labels.emplace(in.labels().begin(), in.labels().end());
    } else if (path == "cpu_mhz" && in.cpu_mhz() > 0) {
      edit.cpu_mhz = in.cpu_mhz(), sizing = true;
    } else if (path == "memory_bytes" && in.memory_bytes() > 0) {
      edit.memory_bytes = in.memory_bytes(), sizing = true;
    } else if (path == "cpu_count" && in.cpu_count() > 0) {
      edit.smp = in.cpu_count(), sizing = true;
    } else if (path == "cpu_mhz" || path == "memory_bytes" || path == "cpu_count") {
      return std::move(done)(InvalidField(absl::StrCat("instance.", path), "must be positive"));
    } else {
      return std::move(done)(InvalidField(
          "update_mask", absl::StrCat("\"", path,
                                      "\" cannot be updated (display_name, labels, cpu_mhz, "
                                      "memory_bytes, cpu_count can)")));
    }
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  const std::string name = in.name();
  FindObject(account, deadline, "servers", *id, name, "instance",
             [account, deadline, edit, sizing, name,
              done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
               if (!server.ok()) return std::move(done)(server.status());
               // CloudSigma ignores CPU and memory changes of a running
               // server without an error (servers.rst).
               if (sizing && server->status != "stopped") {
                 return std::move(done)(kit::WrongState(
                     absl::StrCat("instance ", name, " is ", server->status,
                                  "; CPU and memory change only while it is stopped"),
                     name, server->status));
               }
               PutServer(account, deadline, *server, edit,
                         [account, deadline, done = std::move(done)](
                             absl::StatusOr<WireObject> updated) mutable {
                           if (!updated.ok()) return std::move(done)(updated.status());
                           DoneWithInstance(account, deadline, *updated, std::move(done));
                         });
             });
}

void CloudSigmaProvider::DeleteInstance(const CallContext& ctx,
                                        const v1::DeleteInstanceRequest& request,
                                        Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "instances", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(Empty()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  FindObject(
      account, deadline, "servers", *id, request.name(), "instance",
      [account, deadline, name = request.name(), allow_missing = request.allow_missing(),
       done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
        if (!server.ok()) {
          if (allow_missing && server.status().code() == absl::StatusCode::kNotFound) {
            return std::move(done)(kit::Finished(Empty()));
          }
          return std::move(done)(server.status());
        }
        if (server->status != "stopped") {
          return std::move(done)(kit::WrongState(
              absl::StrCat("instance ", name, " is ", server->status, "; stop it first"), name,
              server->status));
        }
        Call(account, deadline, "DELETE", ObjectPath("servers", server->uuid), "",
             absl::StrCat("DELETE server ", server->uuid),
             [uuid = server->uuid, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
               if (!r.ok()) return std::move(done)(r.status());
               std::move(done)(PendingOn(MakePollToken(PollToken::SERVER, uuid, PollToken::GONE),
                                         absl::StrCat("deleting server ", uuid)));
             });
      });
}

void CloudSigmaProvider::StartInstance(const CallContext& ctx,
                                       const v1::StartInstanceRequest& request,
                                       Callback<MutationProgress> done) {
  Power(ctx, request.name(), "start", std::move(done));
}

void CloudSigmaProvider::StopInstance(const CallContext& ctx,
                                      const v1::StopInstanceRequest& request,
                                      Callback<MutationProgress> done) {
  Power(ctx, request.name(), request.force() ? "stop" : "shutdown", std::move(done));
}

void CloudSigmaProvider::RebootInstance(const CallContext& ctx,
                                        const v1::RebootInstanceRequest& request,
                                        Callback<MutationProgress> done) {
  Power(ctx, request.name(), "restart", std::move(done));
}

void CloudSigmaProvider::Power(const CallContext& ctx, const std::string& name,
                               const std::string& action, Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "instances", name);
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  FindObject(
      account, deadline, "servers", *id, name, "instance",
      [account, deadline, name, action,
       done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
        if (!server.ok()) return std::move(done)(server.status());
        const std::string& status = server->status;
        const bool starting = action == "start";
        const bool restart = action == "restart";
        const std::string from = starting ? "stopped" : "running";
        const PollToken token =
            MakePollToken(PollToken::SERVER, server->uuid,
                          starting || restart ? PollToken::RUNNING : PollToken::STOPPED);
        if (!restart) {
          // Already there (or on the way): nothing to send, so a re-driven
          // call is harmless.
          if (status == (starting ? "running" : "stopped")) {
            return DoneWithInstance(account, deadline, *server, std::move(done));
          }
          if (status == (starting ? "starting" : "stopping")) {
            return std::move(done)(PendingOn(token, absl::StrCat("server is ", status)));
          }
        }
        if (status != from) {
          return std::move(done)(kit::WrongState(
              absl::StrCat("instance ", name, " is ", status, "; ", action, " needs ", from), name,
              status));
        }
        Call(account, deadline, "POST",
             absl::StrCat("/servers/", server->uuid, "/action/?do=", action), "{}",
             absl::StrCat("POST server ", server->uuid, " ", action),
             [token, action, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
               if (!r.ok()) return std::move(done)(r.status());
               if (absl::Status s = ParseActionResult(r->body); !s.ok()) {
                 return std::move(done)(s);
               }
               std::move(done)(PendingOn(token, absl::StrCat(action, " sent")));
             });
      });
}

void CloudSigmaProvider::GetInstanceMetadata(const CallContext& ctx,
                                             const v1::GetInstanceMetadataRequest& request,
                                             Callback<v1::InstanceMetadata> done) {
  auto id = IdFromName("name", account_->id, "instances", request.name(), "/metadata");
  if (!id.ok()) return std::move(done)(id.status());
  auto account = account_;
  FindObject(account, ctx.deadline, "servers", *id,
             std::string(absl::StripSuffix(request.name(), "/metadata")), "instance",
             [account, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
               if (!o.ok()) return std::move(done)(o.status());
               std::move(done)(ServerToMetadata(o->json, account->id));
             });
}

void CloudSigmaProvider::UpdateInstanceMetadata(const CallContext& ctx,
                                                const v1::UpdateInstanceMetadataRequest& request,
                                                Callback<MutationProgress> done) {
  auto id = IdFromName("metadata.name", account_->id, "instances", request.metadata().name(),
                       "/metadata");
  if (!id.ok()) return std::move(done)(id.status());
  if (absl::Status s = ValidateLabels("metadata.items", request.metadata().items()); !s.ok()) {
    return std::move(done)(s);
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::InstanceMetadata()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  const std::string instance =
      std::string(absl::StripSuffix(request.metadata().name(), "/metadata"));
  FindObject(account, deadline, "servers", *id, instance, "instance",
             [account, deadline, items = request.metadata().items(), merge = request.merge(),
              done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
               if (!server.ok()) return std::move(done)(server.status());
               std::map<std::string, std::string> labels;
               if (merge) {
                 auto current = ServerToMetadata(server->json, account->id);
                 if (!current.ok()) return std::move(done)(current.status());
                 labels.insert(current->items().begin(), current->items().end());
               }
               for (const auto& [k, v] : items) labels[k] = v;
               ServerEdit edit;
               edit.metadata = std::move(labels);
               PutServer(account, deadline, *server, edit,
                         [account, done = std::move(done)](
                             absl::StatusOr<WireObject> updated) mutable {
                           if (!updated.ok()) return std::move(done)(updated.status());
                           auto m = ServerToMetadata(updated->json, account->id);
                           if (!m.ok()) return std::move(done)(m.status());
                           std::move(done)(kit::Finished(*m));
                         });
             });
}

}  // namespace cloudplane::adapters::cloudsigma
