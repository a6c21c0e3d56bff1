// NetworksService, key pairs and network interfaces of the sandbox: not
// implemented yet. The sandbox does not list these methods as supported
// (sandbox_adapter.cc kNotYet), so the server answers UNIMPLEMENTED
// (CAPABILITY_UNSUPPORTED) before they are called.
#include "adapters/sandbox/sandbox_provider.h"

namespace cloudplane::adapters::sandbox {

#define CP_SANDBOX_NOT_YET(Service, Method, Request, Result)                            \
  void SandboxProvider::Method(const CallContext&, const v1::Request&,                  \
                               Callback<Result> done) {                                 \
    std::move(done)(Unsupported(FullMethodName(#Service, #Method)));                    \
  }
CP_SANDBOX_NOT_YET(ComputeService, AttachNetworkInterface, AttachNetworkInterfaceRequest,
                   MutationProgress)
CP_SANDBOX_NOT_YET(ComputeService, DetachNetworkInterface, DetachNetworkInterfaceRequest,
                   MutationProgress)
CP_SANDBOX_NOT_YET(ComputeService, ListKeyPairs, ListKeyPairsRequest, v1::ListKeyPairsResponse)
CP_SANDBOX_NOT_YET(ComputeService, GetKeyPair, GetKeyPairRequest, v1::KeyPair)
CP_SANDBOX_NOT_YET(ComputeService, CreateKeyPair, CreateKeyPairRequest, MutationProgress)
CP_SANDBOX_NOT_YET(ComputeService, DeleteKeyPair, DeleteKeyPairRequest, MutationProgress)
CP_SANDBOX_NOT_YET(NetworksService, ListNetworks, ListNetworksRequest, v1::ListNetworksResponse)
CP_SANDBOX_NOT_YET(NetworksService, GetNetwork, GetNetworkRequest, v1::Network)
CP_SANDBOX_NOT_YET(NetworksService, CreateNetwork, CreateNetworkRequest, MutationProgress)
CP_SANDBOX_NOT_YET(NetworksService, UpdateNetwork, UpdateNetworkRequest, MutationProgress)
CP_SANDBOX_NOT_YET(NetworksService, DeleteNetwork, DeleteNetworkRequest, MutationProgress)
CP_SANDBOX_NOT_YET(NetworksService, ListAddresses, ListAddressesRequest,
                   v1::ListAddressesResponse)
CP_SANDBOX_NOT_YET(NetworksService, GetAddress, GetAddressRequest, v1::Address)
CP_SANDBOX_NOT_YET(NetworksService, ReserveAddress, ReserveAddressRequest, MutationProgress)
CP_SANDBOX_NOT_YET(NetworksService, ReleaseAddress, ReleaseAddressRequest, MutationProgress)
#undef CP_SANDBOX_NOT_YET

}  // namespace cloudplane::adapters::sandbox
