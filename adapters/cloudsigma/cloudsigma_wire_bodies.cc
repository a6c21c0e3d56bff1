// CloudSigma request bodies: DriveCreateBody, DriveCloneBody and
// ServerCreateBody (split from cloudsigma_wire.cc; the declarations are in
// cloudsigma_wire.h).
#include <string>
#include <vector>

#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/cloudsigma/cloudsigma_wire_internal.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

namespace rj = rapidjson;

using wire_internal::NicValue;
using wire_internal::ReservedMeta;
using wire_internal::WriteMeta;

}  // namespace

std::string DriveCreateBody(const v1::Volume& volume, absl::string_view chosen_id,
                            absl::string_view operation) {
  return wire_internal::CreateEnvelope([&](rj::Writer<rj::StringBuffer>& w) {
    w.Key("name");
    const std::string name = !volume.display_name().empty() ? volume.display_name()
                                                            : std::string(chosen_id);
    w.String(name.empty() ? "cloudplane volume" : name.c_str());
    w.Key("size");
    w.Int64(volume.size_bytes());
    w.Key("media");
    w.String(volume.media() == v1::Volume::CDROM ? "cdrom" : "disk");
    auto meta = ReservedMeta(chosen_id, operation);
    for (const auto& [k, v] : volume.labels()) meta[k] = v;
    WriteMeta(w, meta);
  });
}

std::string DriveCloneBody(absl::string_view name, absl::string_view chosen_id,
                           absl::string_view operation) {
  rj::StringBuffer buffer;
  rj::Writer<rj::StringBuffer> w(buffer);
  w.StartObject();
  if (!name.empty()) {
    w.Key("name");
    w.String(name.data(), static_cast<rj::SizeType>(name.size()));
  }
  WriteMeta(w, ReservedMeta(chosen_id, operation));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string ServerCreateBody(const ServerSpec& spec) {
  return wire_internal::CreateEnvelope([&](rj::Writer<rj::StringBuffer>& w) {
    w.Key("name");
    w.String(spec.name.c_str());
    w.Key("cpu");
    w.Int64(spec.cpu_mhz);
    w.Key("mem");
    w.Int64(spec.memory_bytes);
    if (spec.smp > 0) {
      w.Key("smp");
      w.Int(spec.smp);
    }
    w.Key("vnc_password");
    w.String(spec.vnc_password.c_str());
    WriteMeta(w, spec.meta);
    w.Key("drives");
    w.StartArray();
    if (!spec.boot_drive_uuid.empty()) {
      // The boot drive as pycloudsigma attaches one (servers.rst, "drives").
      w.StartObject();
      w.Key("boot_order");
      w.Int(1);
      w.Key("dev_channel");
      w.String("0:0");
      w.Key("device");
      w.String("virtio");
      w.Key("drive");
      w.String(spec.boot_drive_uuid.c_str());
      w.EndObject();
    }
    w.EndArray();
    w.Key("nics");
    w.StartArray();
    {
      // Without network_interfaces: one public NIC with DHCP (§5.4).
      const std::vector<NicSpec> nics = spec.nics.value_or(std::vector<NicSpec>{NicSpec{}});
      rj::Document scratch;
      for (const NicSpec& nic : nics) NicValue(nic, scratch.GetAllocator()).Accept(w);
    }
    w.EndArray();
    if (!spec.pubkeys.empty()) {
      w.Key("pubkeys");
      w.StartArray();
      for (const auto& k : spec.pubkeys) w.String(k.c_str());
      w.EndArray();
    }
  });
}

}  // namespace cloudplane::adapters::cloudsigma
