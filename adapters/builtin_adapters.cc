#include "adapters/builtin_adapters.h"

#include "adapters/cloudsigma/cloudsigma_adapter.h"
#include "adapters/enstratus/enstratus_adapter.h"
#include "adapters/fleet/fleet_adapter.h"
#include "adapters/opennebula/opennebula_adapter.h"
#include "adapters/phantom/phantom_adapter.h"
#include "adapters/sandbox/sandbox_adapter.h"
#include "base/status.h"

namespace cloudplane::adapters {

absl::Status RegisterBuiltinAdapters(AdapterRegistry& registry) {
  RETURN_IF_ERROR(sandbox::RegisterSandbox(registry));
  RETURN_IF_ERROR(fleet::RegisterFleet(registry));
  RETURN_IF_ERROR(cloudsigma::RegisterCloudSigma(registry));
  RETURN_IF_ERROR(opennebula::RegisterOpenNebula(registry));
  RETURN_IF_ERROR(enstratus::RegisterEnstratus(registry));
  RETURN_IF_ERROR(phantom::RegisterPhantom(registry));
  return absl::OkStatus();
}

}  // namespace cloudplane::adapters
