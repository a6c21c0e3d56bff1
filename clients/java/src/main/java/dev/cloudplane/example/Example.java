package dev.cloudplane.example;

import com.google.longrunning.Operation;
import com.google.longrunning.OperationsGrpc;
import com.google.longrunning.WaitOperationRequest;
import com.google.protobuf.Any;
import com.google.protobuf.Duration;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import dev.cloudplane.v1.Account;
import dev.cloudplane.v1.AccountsServiceGrpc;
import dev.cloudplane.v1.ComputeServiceGrpc;
import dev.cloudplane.v1.CreateInstanceRequest;
import dev.cloudplane.v1.DeleteInstanceRequest;
import dev.cloudplane.v1.GetInstanceRequest;
import dev.cloudplane.v1.Instance;
import dev.cloudplane.v1.ListAccountsRequest;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.MetadataUtils;
import java.io.File;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * Walks through the cloudplane API with the generated Java client: lists accounts, creates an
 * instance in the sandbox account with a request_id, waits for the Operation, reads the instance,
 * deletes it, and shows the ErrorInfo and BadRequest details of a call that fails.
 *
 * <pre>java -cp ... dev.cloudplane.example.Example [address]   (default 127.0.0.1:7070)</pre>
 *
 * <p>Credentials come from the environment (clients/README.md, "Authentication"):
 * CLOUDPLANE_TOKEN is sent as {@code authorization: Bearer} on every call; CLOUDPLANE_CA (the
 * server's CA), CLOUDPLANE_CERT and CLOUDPLANE_KEY (a client certificate, PKCS#8 key) make the
 * connection TLS. None set: plaintext, for a local server.
 */
public final class Example {
  private static final String ACCOUNT = "accounts/sandbox";

  // gRPC retries a call that fails with UNAVAILABLE (up to 5 attempts, backoff 0.2 s doubling to
  // 5 s) and sends the same request again, request_id and all (clients/README.md, "Retries").
  // grpc-java takes the service config as a map of JSON values (numbers are doubles).
  private static final List<String> SERVICES =
      List.of(
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
          "google.longrunning.Operations");
  private static final Map<String, ?> SERVICE_CONFIG =
      Map.of(
          "methodConfig",
          List.of(
              Map.of(
                  "name", SERVICES.stream().map(s -> Map.of("service", s)).toList(),
                  "retryPolicy",
                      Map.of(
                          "maxAttempts", 5.0,
                          "initialBackoff", "0.2s",
                          "maxBackoff", "5s",
                          "backoffMultiplier", 2.0,
                          "retryableStatusCodes", List.of("UNAVAILABLE")))));

  public static void main(String[] args) throws Exception {
    String address = args.length > 0 ? args[0] : "127.0.0.1:7070";
    ManagedChannelBuilder<?> builder =
        Grpc.newChannelBuilder(address, channelCredentials())
            .defaultServiceConfig(SERVICE_CONFIG)
            .enableRetry();
    // The token as a header on every call of the channel. (Not CallCredentials: grpc-java
    // sends those only over TLS, and a local plaintext server may want a token too.)
    String token = System.getenv("CLOUDPLANE_TOKEN");
    if (token != null && !token.isEmpty()) {
      Metadata headers = new Metadata();
      headers.put(
          Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
      builder.intercept(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    ManagedChannel channel = builder.build();
    try {
      run(channel);
    } catch (StatusRuntimeException e) {
      System.err.printf(
          "error: %s: %s%n", e.getStatus().getCode().name(), e.getStatus().getDescription());
      System.exit(1);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * TLS when CLOUDPLANE_CA, CLOUDPLANE_CERT or CLOUDPLANE_KEY is set (the system's roots without
   * CLOUDPLANE_CA), with the client certificate when CLOUDPLANE_CERT and CLOUDPLANE_KEY are; else
   * plaintext.
   */
  private static ChannelCredentials channelCredentials() throws IOException {
    String ca = System.getenv("CLOUDPLANE_CA");
    String cert = System.getenv("CLOUDPLANE_CERT");
    String key = System.getenv("CLOUDPLANE_KEY");
    if (ca == null && cert == null && key == null) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
    if (ca != null) {
      tls.trustManager(new File(ca));
    }
    if (cert != null || key != null) {
      tls.keyManager(new File(cert), new File(key));
    }
    return tls.build();
  }

  private static void run(ManagedChannel channel) throws InvalidProtocolBufferException {
    var accounts = AccountsServiceGrpc.newBlockingStub(channel);
    var compute = ComputeServiceGrpc.newBlockingStub(channel);
    var operations = OperationsGrpc.newBlockingStub(channel);

    for (Account a : accounts.listAccounts(ListAccountsRequest.getDefaultInstance()).getAccountsList()) {
      System.out.printf("account: %s (%s, %s)%n", a.getName(), a.getProvider(), a.getState());
    }

    // A request_id makes the call safe to retry: the same id returns the same
    // Operation instead of creating a second instance.
    Operation op =
        compute.createInstance(
            CreateInstanceRequest.newBuilder()
                .setParent(ACCOUNT)
                .setInstanceId("java-example")
                .setRequestId(UUID.randomUUID().toString())
                .setInstance(
                    Instance.newBuilder()
                        .setImage(ACCOUNT + "/images/debian-12")
                        .setMachineType(ACCOUNT + "/machineTypes/small"))
                .build());
    System.out.printf("create: %s%n", op.getName());
    op = waitFor(operations, op);
    Instance created = op.getResponse().unpack(Instance.class);
    System.out.printf("created: %s %s%n", created.getName(), created.getState());

    Instance instance =
        compute.getInstance(GetInstanceRequest.newBuilder().setName(created.getName()).build());
    System.out.printf(
        "get: %s %s machine_type=%s%n",
        instance.getName(), instance.getState(), instance.getMachineType());

    op =
        compute.deleteInstance(
            DeleteInstanceRequest.newBuilder()
                .setName(instance.getName())
                .setRequestId(UUID.randomUUID().toString())
                .build());
    waitFor(operations, op);
    System.out.printf("deleted: %s%n", instance.getName());

    // A malformed machine type: the server answers INVALID_ARGUMENT with an
    // ErrorInfo (the reason) and a BadRequest (which field, and why).
    try {
      compute.createInstance(
          CreateInstanceRequest.newBuilder()
              .setParent(ACCOUNT)
              .setInstance(
                  Instance.newBuilder()
                      .setImage(ACCOUNT + "/images/debian-12")
                      .setMachineType("small"))
              .build());
      throw new IllegalStateException("expected INVALID_ARGUMENT");
    } catch (StatusRuntimeException e) {
      printError(e);
    }
  }

  /** WaitOperation until the operation is done; an operation that failed throws. */
  private static Operation waitFor(OperationsGrpc.OperationsBlockingStub operations, Operation op) {
    while (!op.getDone()) {
      op =
          operations.waitOperation(
              WaitOperationRequest.newBuilder()
                  .setName(op.getName())
                  .setTimeout(Duration.newBuilder().setSeconds(10))
                  .build());
    }
    if (op.hasError()) {
      throw new IllegalStateException(op.getName() + " failed: " + op.getError().getMessage());
    }
    return op;
  }

  /** The google.rpc.Status of a failed call carries its details as Any messages. */
  private static void printError(StatusRuntimeException e) throws InvalidProtocolBufferException {
    System.out.printf(
        "error: %s: %s%n", e.getStatus().getCode().name(), e.getStatus().getDescription());
    com.google.rpc.Status status = StatusProto.fromThrowable(e);
    if (status == null) {
      return;
    }
    for (Any detail : status.getDetailsList()) {
      if (detail.is(ErrorInfo.class)) {
        ErrorInfo info = detail.unpack(ErrorInfo.class);
        System.out.printf("reason: %s (domain %s)%n", info.getReason(), info.getDomain());
      } else if (detail.is(BadRequest.class)) {
        for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
          System.out.printf("field violation: %s: %s%n", v.getField(), v.getDescription());
        }
      }
    }
  }

  private Example() {}
}
