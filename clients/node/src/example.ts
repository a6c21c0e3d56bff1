// Walks through the cloudplane API with the generated TypeScript client
// (ts-proto + @grpc/grpc-js): lists accounts, creates an instance in the
// sandbox account with a request_id, waits for the Operation, reads the
// instance, deletes it, and shows the ErrorInfo and BadRequest details of a
// call that fails.
//
//   npm run build && node dist/example.js [address]   (default 127.0.0.1:7070)
//
// Credentials come from the environment (clients/README.md,
// "Authentication"): CLOUDPLANE_TOKEN is sent as `authorization: Bearer` on
// every call; CLOUDPLANE_CA (the server's CA), CLOUDPLANE_CERT and
// CLOUDPLANE_KEY (a client certificate) make the connection TLS. None set:
// plaintext, for a local server.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

import {
  ChannelCredentials,
  credentials,
  InterceptingCall,
  Interceptor,
  Metadata,
  ServiceError,
  status,
} from "@grpc/grpc-js";

import {
  account_StateToJSON,
  AccountsServiceClient,
  ListAccountsRequest,
  ListAccountsResponse,
} from "./gen/cloudplane/v1/accounts";
import {
  ComputeServiceClient,
  CreateInstanceRequest,
  DeleteInstanceRequest,
  GetInstanceRequest,
  Instance,
  instance_StateToJSON,
} from "./gen/cloudplane/v1/compute";
import { Operation, OperationsClient, WaitOperationRequest } from "./gen/google/longrunning/operations";
import { BadRequest, ErrorInfo } from "./gen/google/rpc/error_details";
import { Status } from "./gen/google/rpc/status";

const ACCOUNT = "accounts/sandbox";

// gRPC retries a call that fails with UNAVAILABLE (up to 5 attempts, backoff
// 0.2 s doubling to 5 s) and sends the same request again, request_id and all
// (clients/README.md, "Retries").
const SERVICES = [
  "cloudplane.v1.AccountsService",
  "cloudplane.v1.AuditService",
  "cloudplane.v1.AutoscalingService",
  "cloudplane.v1.BillingService",
  "cloudplane.v1.NetworksService",
  "cloudplane.v1.ComputeService",
  "cloudplane.v1.FirewallsService",
  "cloudplane.v1.UnitsService",
  "cloudplane.v1.VolumesService",
  "cloudplane.v1.WatchService",
  "google.longrunning.Operations",
];
const SERVICE_CONFIG = {
  methodConfig: [
    {
      name: SERVICES.map((service) => ({ service })),
      retryPolicy: {
        maxAttempts: 5,
        initialBackoff: "0.2s",
        maxBackoff: "5s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
};

// TLS when CLOUDPLANE_CA, CLOUDPLANE_CERT or CLOUDPLANE_KEY is set (the
// system's roots without CLOUDPLANE_CA), with the client certificate when
// CLOUDPLANE_CERT and CLOUDPLANE_KEY are; else plaintext.
function channelCredentials(): ChannelCredentials {
  const { CLOUDPLANE_CA: ca, CLOUDPLANE_CERT: cert, CLOUDPLANE_KEY: key } = process.env;
  if (!ca && !cert && !key) return credentials.createInsecure();
  const read = (path?: string) => (path ? readFileSync(path) : null);
  return credentials.createSsl(read(ca), read(key), read(cert));
}

// The token as a header on every call of a client. (Not call credentials:
// grpc-js cannot combine them with a plaintext channel, and a local plaintext
// server may want a token too.)
function tokenInterceptors(): Interceptor[] {
  const token = process.env.CLOUDPLANE_TOKEN;
  if (!token) return [];
  return [
    (options, nextCall) =>
      new InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          metadata.set("authorization", `Bearer ${token}`);
          next(metadata, listener);
        },
      }),
  ];
}

type Callback<Res> = (error: ServiceError | null, response: Res) => void;

// grpc-js clients take a callback; this turns one call into a promise.
function call<Res>(invoke: (done: Callback<Res>) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((error, response) => (error ? reject(error) : resolve(response)));
  });
}

// WaitOperation until the operation is done; an operation that failed throws.
async function wait(operations: OperationsClient, op: Operation): Promise<Operation> {
  while (!op.done) {
    const request = WaitOperationRequest.fromPartial({ name: op.name, timeout: { seconds: "10" } });
    op = await call<Operation>((done) => operations.waitOperation(request, done));
  }
  if (op.error) {
    throw new Error(`${op.name} failed: ${op.error.message}`);
  }
  return op;
}

// The google.rpc.Status of a failed call rides in the trailing metadata
// `grpc-status-details-bin`; its details are Any messages.
function printError(error: ServiceError): void {
  console.log(`error: ${status[error.code]}: ${error.details}`);
  const [raw] = (error.metadata ?? new Metadata()).get("grpc-status-details-bin");
  if (!raw) return;
  for (const detail of Status.decode(raw as Buffer).details) {
    const type = detail.typeUrl.substring(detail.typeUrl.lastIndexOf("/") + 1);
    if (type === "google.rpc.ErrorInfo") {
      const info = ErrorInfo.decode(detail.value);
      console.log(`reason: ${info.reason} (domain ${info.domain})`);
    } else if (type === "google.rpc.BadRequest") {
      for (const v of BadRequest.decode(detail.value).fieldViolations) {
        console.log(`field violation: ${v.field}: ${v.description}`);
      }
    }
  }
}

async function main(): Promise<void> {
  const address = process.argv[2] ?? "127.0.0.1:7070";
  const creds = channelCredentials();
  const options = {
    "grpc.service_config": JSON.stringify(SERVICE_CONFIG),
    interceptors: tokenInterceptors(),
  };
  const accounts = new AccountsServiceClient(address, creds, options);
  const compute = new ComputeServiceClient(address, creds, options);
  const operations = new OperationsClient(address, creds, options);
  try {
    const list = await call<ListAccountsResponse>((done) =>
      accounts.listAccounts(ListAccountsRequest.fromPartial({}), done),
    );
    for (const a of list.accounts) {
      console.log(`account: ${a.name} (${a.provider}, ${account_StateToJSON(a.state)})`);
    }

    // A request_id makes the call safe to retry: the same id returns the same
    // Operation instead of creating a second instance.
    const create = CreateInstanceRequest.fromPartial({
      parent: ACCOUNT,
      instanceId: "node-example",
      requestId: randomUUID(),
      instance: { image: `${ACCOUNT}/images/debian-12`, machineType: `${ACCOUNT}/machineTypes/small` },
    });
    let op = await call<Operation>((done) => compute.createInstance(create, done));
    console.log(`create: ${op.name}`);
    op = await wait(operations, op);
    const created = Instance.decode(op.response!.value);
    console.log(`created: ${created.name} ${instance_StateToJSON(created.state)}`);

    const instance = await call<Instance>((done) =>
      compute.getInstance(GetInstanceRequest.fromPartial({ name: created.name }), done),
    );
    console.log(`get: ${instance.name} ${instance_StateToJSON(instance.state)} machine_type=${instance.machineType}`);

    const remove = DeleteInstanceRequest.fromPartial({ name: instance.name, requestId: randomUUID() });
    op = await call<Operation>((done) => compute.deleteInstance(remove, done));
    await wait(operations, op);
    console.log(`deleted: ${instance.name}`);

    // A malformed machine type: the server answers INVALID_ARGUMENT with an
    // ErrorInfo (the reason) and a BadRequest (which field, and why).
    try {
      const bad = CreateInstanceRequest.fromPartial({
        parent: ACCOUNT,
        instance: { image: `${ACCOUNT}/images/debian-12`, machineType: "small" },
      });
      await call<Operation>((done) => compute.createInstance(bad, done));
      throw new Error("expected INVALID_ARGUMENT");
    } catch (error) {
      if ((error as ServiceError).code === undefined) throw error;
      printError(error as ServiceError);
    }
  } finally {
    accounts.close();
    compute.close();
    operations.close();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
