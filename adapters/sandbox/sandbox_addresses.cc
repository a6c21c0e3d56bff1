// NetworksService of the sandbox: its addresses (ReserveAddress,
// ReleaseAddress and the reads). The one address space they come from, and
// what an Address record means, are described in sandbox_networks.cc.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/net/ip.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

using net::FormatIpv4;
using net::ParseIpv4;

}  // namespace

void SandboxProvider::ListAddresses(const CallContext& ctx,
                                    const v1::ListAddressesRequest& request,
                                    Callback<v1::ListAddressesResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListAddressesResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListAddressesResponse response;
    RETURN_IF_ERROR(ListPage(kAddresses, request.page_size(), request.page_token(),
                             response.mutable_addresses(), response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetAddress(const CallContext& ctx, const v1::GetAddressRequest& request,
                                 Callback<v1::Address> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::Address> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kAddresses, "name"));
    return GetTyped<v1::Address>(kAddresses, id);
  }());
}

void SandboxProvider::ReserveAddress(const CallContext& ctx,
                                     const v1::ReserveAddressRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        if (!request.has_address()) return InvalidField("address", "required");
        const v1::Address& in = request.address();
        RETURN_IF_ERROR(CheckLabels(in.labels(), "address.labels"));
        Pool pool = PublicPool();
        if (!in.network().empty()) {
          ASSIGN_OR_RETURN(std::string network_id,
                           CheckStoredRef(txn, in.network(), kNetworks, "address.network"));
          ASSIGN_OR_RETURN(Loaded<v1::Network> network,
                           LoadExisting<v1::Network>(txn, kNetworks, network_id));
          if (network.resource.state() != v1::Network::READY) {
            return WrongState(network.resource.name(),
                              absl::StrCat("addresses are reserved in a READY network; it is ",
                                           v1::Network::State_Name(network.resource.state())));
          }
          ASSIGN_OR_RETURN(pool, NetworkPool(network.resource));
        }
        // The server's request check asks ReserveAddress for address.name
        // (it takes every non-Create mutation's resource for an update), so
        // a name that is the address itself is taken as giving it.
        std::string given = in.address();
        if (!in.name().empty()) {
          ASSIGN_OR_RETURN(std::string named,
                           ParseName(in.name(), account_, kAddresses, "address.name"));
          if (!given.empty() && given != named) {
            return InvalidField("address.name",
                                absl::StrCat("names ", named, ", not address.address ", given));
          }
          given = named;
        }
        std::optional<uint32_t> chosen;
        if (!given.empty()) {
          chosen = ParseIpv4(given);
          if (!chosen.has_value()) {
            return InvalidField("address.address", "must be an IPv4 address such as 10.0.0.5");
          }
          if (!pool.Contains(*chosen)) {
            return InvalidField("address.address",
                                pool.network.empty()
                                    ? absl::StrCat("must be in the public pool ", kPublicPool,
                                                   " when no network is given")
                                    : absl::StrCat("is not one of the addresses of ",
                                                   pool.network));
          }
          ASSIGN_OR_RETURN(std::optional<Loaded<v1::Address>> existing,
                           LoadIfExists<v1::Address>(txn, kAddresses, FormatIpv4(*chosen)));
          if (existing.has_value()) {
            if (existing->resource.state() == v1::Address::IN_USE) {
              return WrongState(existing->resource.name(),
                                absl::StrCat("is in use by ", existing->resource.instance()));
            }
            return AlreadyExists(kAddresses, existing->resource.name());
          }
        } else {
          ASSIGN_OR_RETURN(auto taken_records, txn.LoadAll(kAddresses));
          std::set<std::string> taken;
          for (const auto& [id, record] : taken_records) taken.insert(id);
          for (const Span& span : pool.spans) {
            for (uint64_t a = span.first; !chosen.has_value() && a <= span.last; ++a) {
              if (pool.Contains(a) && !taken.contains(FormatIpv4(a))) {
                chosen = static_cast<uint32_t>(a);
              }
            }
          }
          if (!chosen.has_value()) {
            std::string where = pool.network.empty() ? std::string(kPublicPool) : pool.network;
            return WithErrorInfo(
                absl::ResourceExhaustedError(absl::StrCat(where, " has no free address")),
                reasons::kLimitExceeded, {{"resource", where}});
          }
        }
        const std::string id = FormatIpv4(*chosen);
        v1::Address address;
        address.set_name(Name(kAddresses, id));
        address.set_address(id);
        address.set_network(pool.network);
        address.set_state(v1::Address::RESERVED);
        *address.mutable_labels() = in.labels();
        Record record;
        record.set_reserved(true);
        SaveVersion(address, record, txn.now());
        RETURN_IF_ERROR(txn.Put(kAddresses, id, record));
        RETURN_IF_ERROR(RecountNetwork(txn, pool.network));
        return CurrentToken(kAddresses, id);
      },
      std::move(done));
}

void SandboxProvider::ReleaseAddress(const CallContext& ctx,
                                     const v1::ReleaseAddressRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kAddresses, "name"));
        ASSIGN_OR_RETURN(std::optional<Loaded<v1::Address>> loaded,
                         LoadIfExists<v1::Address>(txn, kAddresses, id));
        if (!loaded.has_value()) {
          if (request.allow_missing()) return GoneToken(kAddresses, id);
          return NotFound(kAddresses, request.name());
        }
        if (loaded->resource.state() == v1::Address::IN_USE) {
          return WrongState(loaded->resource.name(),
                            absl::StrCat("is in use by ", loaded->resource.instance(),
                                         "; detach its network interface first"));
        }
        RETURN_IF_ERROR(txn.Delete(kAddresses, id));
        RETURN_IF_ERROR(RecountNetwork(txn, loaded->resource.network()));
        return GoneToken(kAddresses, id);
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::sandbox
