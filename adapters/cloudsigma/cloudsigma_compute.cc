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

// The local checks of an image: the libdrive uuid of `accounts/{a}/images/{uuid}`
// (ListImages' names) or of a bare uuid.
absl::StatusOr<std::string> ImageId(absl::string_view account, const std::string& image) {
  std::string id = image;
  if (absl::StartsWith(image, "accounts/")) {
    absl::StatusOr<std::string> parsed = IdFromName("instance.image", account, "images", image);
    if (!parsed.ok()) return parsed.status();
    id = *std::move(parsed);
  }
  if (!IsUuid(id)) {
    return InvalidField("instance.image",
                        "must be a library drive: accounts/{a}/images/{uuid} or its uuid");
  }
  return id;
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
// With with_drives the undo deletes the server's drives too
// (`?recurse=all_drives`, §5.7): a new server booted from an image has only
// the image's clone.
void StartThenPoll(const AccountPtr& account, absl::Time deadline, const std::string& uuid,
                   bool undo_on_error, bool with_drives, Callback<MutationProgress> done) {
  Call(account, deadline, "POST", absl::StrCat("/servers/", uuid, "/action/?do=start"), "{}",
       absl::StrCat("POST server ", uuid, " start"),
       [account, uuid, undo_on_error, with_drives,
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) {
           if (undo_on_error && !kit::IsAmbiguous(r.status())) {
             Send(account, absl::Now() + absl::Seconds(30), "DELETE",
                  absl::StrCat(ObjectPath("servers", uuid),
                               with_drives ? "?recurse=all_drives" : ""),
                  "", "DELETE server (undo)", [](absl::StatusOr<HttpResponse>) {});
           }
           return std::move(done)(r.status());
         }
         std::move(done)(PendingOn(MakePollToken(PollToken::SERVER, uuid, PollToken::RUNNING),
                                   absl::StrCat("starting server ", uuid)));
       });
}

// POSTs the new server, then starts it when asked. A server with a boot
// drive (the clone of an image) that CloudSigma refuses to create deletes
// that drive before the error is reported, so the failed create leaves
// nothing; an ambiguous answer leaves it for the re-drive.
void PostServer(const AccountPtr& account, absl::Time deadline, const ServerSpec& spec,
                bool start, Callback<MutationProgress> done) {
  const std::string boot_drive = spec.boot_drive_uuid;
  Call(
      account, deadline, "POST", "/servers/", ServerCreateBody(spec), "POST servers",
      [account, deadline, start, boot_drive,
       done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
        if (!r.ok()) {
          if (boot_drive.empty() || kit::IsAmbiguous(r.status())) {
            return std::move(done)(r.status());
          }
          return Send(account, absl::Now() + absl::Seconds(30), "DELETE",
                      ObjectPath("drives", boot_drive), "",
                      absl::StrCat("DELETE drive ", boot_drive, " (undo)"),
                      [status = r.status(), done = std::move(done)](
                          absl::StatusOr<HttpResponse>) mutable { std::move(done)(status); });
        }
        absl::StatusOr<WireObject> o = ParseObject(r->body);
        if (!o.ok()) return std::move(done)(o.status());
        // Creation is synchronous; a new server is stopped (servers.rst).
        if (!start) return DoneWithInstance(account, deadline, *o, std::move(done));
        StartThenPoll(account, deadline, o->uuid, /*undo_on_error=*/true,
                      /*with_drives=*/!boot_drive.empty(), std::move(done));
      },
      "instance.");
}

// The BootServer of a token, and back.
BootServer ToBoot(const ServerSpec& spec, bool start) {
  BootServer boot;
  boot.set_name(spec.name);
  boot.set_cpu_mhz(spec.cpu_mhz);
  boot.set_memory_bytes(spec.memory_bytes);
  boot.set_smp(spec.smp);
  boot.set_vnc_password(spec.vnc_password);
  boot.mutable_meta()->insert(spec.meta.begin(), spec.meta.end());
  for (const NicSpec& nic : spec.nics.value_or(std::vector<NicSpec>{})) {
    BootServer::Nic* n = boot.add_nics();
    n->set_vlan_uuid(nic.vlan_uuid);
    n->set_static_ip(nic.static_ip);
    n->set_model(nic.model);
  }
  boot.mutable_pubkeys()->Add(spec.pubkeys.begin(), spec.pubkeys.end());
  boot.set_start(start);
  return boot;
}

ServerSpec FromBoot(const BootServer& boot) {
  ServerSpec spec;
  spec.name = boot.name();
  spec.cpu_mhz = boot.cpu_mhz();
  spec.memory_bytes = boot.memory_bytes();
  spec.smp = boot.smp();
  // A password the request did not choose is not kept in the token.
  spec.vnc_password = boot.vnc_password().empty() ? RandomVncPassword() : boot.vnc_password();
  spec.meta.insert(boot.meta().begin(), boot.meta().end());
  if (boot.nics_size() > 0) {
    spec.nics.emplace();
    for (const BootServer::Nic& n : boot.nics()) {
      spec.nics->push_back({.vlan_uuid = n.vlan_uuid(), .static_ip = n.static_ip(),
                            .model = n.model()});
    }
  }
  spec.pubkeys.assign(boot.pubkeys().begin(), boot.pubkeys().end());
  return spec;
}

// The library image of a create: clones it (§7: a libdrive clone is an
// ordinary drive of the account), tagged with the operation, and waits for
// the clone to settle; the server follows in BootFromDrive. A re-drive finds
// the clone by its meta and does not clone again.
void CloneImage(const AccountPtr& account, absl::Time deadline, const std::string& image_uuid,
                const std::string& image_name, const std::string& operation, BootServer boot,
                Callback<MutationProgress> done) {
  FindExisting(
      account, deadline, "drives", "", operation, ResourceName(account->id, "volumes", "-"),
      [account, deadline, image_uuid, image_name, operation, boot = std::move(boot),
       done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
        if (!found.ok()) return std::move(done)(found.status());
        PollToken token = MakePollToken(PollToken::DRIVE, "", PollToken::BOOT_DRIVE_READY);
        *token.mutable_boot() = std::move(boot);
        if (found->has_value()) {
          token.set_uuid(**found);
          return Poll(account, deadline, token, std::move(done));
        }
        // The image first: an unknown one is NOT_FOUND naming it, and
        // nothing is made.
        GetObject(
            account, deadline, "libdrives", image_uuid, image_name, "image",
            [account, deadline, image_uuid, operation, token = std::move(token),
             done = std::move(done)](absl::StatusOr<WireObject> image) mutable {
              if (!image.ok()) return std::move(done)(image.status());
              Call(account, deadline, "POST",
                   absl::StrCat("/libdrives/", image_uuid, "/action/?do=clone"),
                   DriveCloneBody(token.boot().name(), "", operation),
                   absl::StrCat("POST libdrive ", image_uuid, " clone"),
                   [token = std::move(token),
                    done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                     if (!r.ok()) return std::move(done)(r.status());
                     absl::StatusOr<WireObject> clone = ParseObject(r->body);
                     if (!clone.ok()) return std::move(done)(clone.status());
                     token.set_uuid(clone->uuid);
                     std::move(done)(PendingOn(token, absl::StrCat("cloning the image to drive ",
                                                                   clone->uuid, " (",
                                                                   clone->status, ")")));
                   });
            });
      });
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
                return StartThenPoll(account, deadline, uuid, false, false, std::move(done));
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

void BootFromDrive(const AccountPtr& account, absl::Time deadline, const PollToken& token,
                   Callback<MutationProgress> done) {
  const BootServer& boot = token.boot();
  auto operation = boot.meta().find(std::string(kOperationMetaKey));
  FindExisting(account, deadline, "servers", "",
               operation == boot.meta().end() ? "" : operation->second,
               ResourceName(account->id, "instances", "-"),
               [account, deadline, token,
                done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
                 if (!found.ok()) return std::move(done)(found.status());
                 // Made before a crash: converge from there.
                 if (found->has_value()) {
                   return Converge(account, deadline, **found, token.boot().start(),
                                   std::move(done));
                 }
                 ServerSpec spec = FromBoot(token.boot());
                 spec.boot_drive_uuid = token.uuid();
                 PostServer(account, deadline, spec, token.boot().start(), std::move(done));
               });
}

void CloudSigmaProvider::ListInstances(const CallContext& ctx,
                                       const v1::ListInstancesRequest& request,
                                       Callback<v1::ListInstancesResponse> done) {
  ListRendered<v1::ListInstancesResponse, v1::Instance>(
      account_, ctx.deadline, "servers", "drives", &ServerToInstance,
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
  std::string image_uuid;
  if (!request.instance().image().empty()) {
    absl::StatusOr<std::string> id = ImageId(account_->id, request.instance().image());
    if (id.ok()) {
      image_uuid = *std::move(id);
    } else {
      AddFieldViolation(checked, "instance.image", id.status().message());
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
  if (!image_uuid.empty()) spec.meta[std::string(kImageMetaKey)] = image_uuid;
  spec.nics = std::move(nics);
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  const std::string resource_name = ResourceName(
      account->id, "instances", request.instance_id().empty() ? "-" : request.instance_id());
  FindExisting(
      account, deadline, "servers", request.instance_id(), ctx.operation, resource_name,
      [account, deadline, spec = std::move(spec), start, key_name = in.key_name(), image_uuid,
       image_name = in.image(), operation = ctx.operation,
       choose_password = vnc_password.empty(),
       done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
        if (!found.ok()) return std::move(done)(found.status());
        if (found->has_value()) return Converge(account, deadline, **found, start, std::move(done));
        // The key pair is looked up before anything is made: an unknown one
        // is NOT_FOUND and no server exists.
        ResolveKey(account, deadline, key_name,
                   [account, deadline, spec = std::move(spec), start, image_uuid, image_name,
                    operation, choose_password, done = std::move(done)](
                       absl::StatusOr<std::vector<std::string>> pubkeys) mutable {
                     if (!pubkeys.ok()) return std::move(done)(pubkeys.status());
                     spec.pubkeys = *std::move(pubkeys);
                     if (image_uuid.empty()) {
                       return PostServer(account, deadline, spec, start, std::move(done));
                     }
                     BootServer boot = ToBoot(spec, start);
                     if (choose_password) boot.clear_vnc_password();
                     CloneImage(account, deadline, image_uuid, image_name, operation,
                                std::move(boot), std::move(done));
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
  DeleteObject(
      account_, ctx.deadline, "servers", *id, request.name(), "instance", "server",
      request.allow_missing(),
      [name = request.name()](const WireObject& server) {
        if (server.status == "stopped") return absl::OkStatus();
        return kit::WrongState(
            absl::StrCat("instance ", name, " is ", server.status, "; stop it first"), name,
            server.status);
      },
      [](const std::string& uuid) {
        return PendingOn(MakePollToken(PollToken::SERVER, uuid, PollToken::GONE),
                         absl::StrCat("deleting server ", uuid));
      },
      std::move(done));
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
