// Command example walks through the cloudplane API with the generated Go
// client: it lists accounts, creates an instance in the sandbox account with a
// request_id, waits for the Operation, reads the instance, deletes it, and
// shows the ErrorInfo and BadRequest details of a call that fails.
//
//	go run ./example [address]   (default 127.0.0.1:7070)
//
// Credentials come from the environment (clients/README.md,
// "Authentication"): CLOUDPLANE_TOKEN is sent as `authorization: Bearer` on
// every call; CLOUDPLANE_CA (the server's CA), CLOUDPLANE_CERT and
// CLOUDPLANE_KEY (a client certificate) make the connection TLS. None set:
// plaintext, for a local server.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	cloudplanev1 "cloudplane.dev/api/cloudplane/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

const account = "accounts/sandbox"

// serviceConfig makes gRPC retry a call that fails with UNAVAILABLE (up to 5
// attempts, backoff 0.2 s doubling to 5 s); a retry sends the same request
// again, request_id and all (clients/README.md, "Retries").
const serviceConfig = `{
  "methodConfig": [{
    "name": [
      {"service": "cloudplane.v1.AccountsService"},
      {"service": "cloudplane.v1.AuditService"},
      {"service": "cloudplane.v1.AutoscalingService"},
      {"service": "cloudplane.v1.BillingService"},
      {"service": "cloudplane.v1.NetworksService"},
      {"service": "cloudplane.v1.ComputeService"},
      {"service": "cloudplane.v1.FirewallsService"},
      {"service": "cloudplane.v1.UnitsService"},
      {"service": "cloudplane.v1.VolumesService"},
      {"service": "cloudplane.v1.WatchService"},
      {"service": "google.longrunning.Operations"}
    ],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.2s",
      "maxBackoff": "5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

func main() {
	log.SetFlags(0)
	address := "127.0.0.1:7070"
	if len(os.Args) > 1 {
		address = os.Args[1]
	}
	creds, err := transportCredentials()
	if err != nil {
		log.Fatalf("TLS: %v", err)
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig))
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every call below uses ctx, so the token rides on all of them. (Not
	// oauth.TokenSource: per-RPC credentials insist on TLS, and a local
	// plaintext server may want a token too.)
	if token := os.Getenv("CLOUDPLANE_TOKEN"); token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}

	accounts := cloudplanev1.NewAccountsServiceClient(conn)
	compute := cloudplanev1.NewComputeServiceClient(conn)
	operations := longrunningpb.NewOperationsClient(conn)

	list, err := accounts.ListAccounts(ctx, &cloudplanev1.ListAccountsRequest{})
	if err != nil {
		log.Fatalf("ListAccounts: %v", err)
	}
	for _, a := range list.GetAccounts() {
		fmt.Printf("account: %s (%s, %s)\n", a.GetName(), a.GetProvider(), a.GetState())
	}

	// A request_id makes the call safe to retry: the same id returns the same
	// Operation instead of creating a second instance.
	op, err := compute.CreateInstance(ctx, &cloudplanev1.CreateInstanceRequest{
		Parent:     account,
		InstanceId: "go-example",
		RequestId:  newRequestID(),
		Instance: &cloudplanev1.Instance{
			Image:       account + "/images/debian-12",
			MachineType: account + "/machineTypes/small",
		},
	})
	if err != nil {
		log.Fatalf("CreateInstance: %v", err)
	}
	fmt.Printf("create: %s\n", op.GetName())
	op, err = wait(ctx, operations, op)
	if err != nil {
		log.Fatalf("wait: %v", err)
	}
	created := &cloudplanev1.Instance{}
	if err := op.GetResponse().UnmarshalTo(created); err != nil {
		log.Fatalf("operation response: %v", err)
	}
	fmt.Printf("created: %s %s\n", created.GetName(), created.GetState())

	instance, err := compute.GetInstance(ctx, &cloudplanev1.GetInstanceRequest{Name: created.GetName()})
	if err != nil {
		log.Fatalf("GetInstance: %v", err)
	}
	fmt.Printf("get: %s %s machine_type=%s\n", instance.GetName(), instance.GetState(),
		instance.GetMachineType())

	op, err = compute.DeleteInstance(ctx, &cloudplanev1.DeleteInstanceRequest{
		Name:      instance.GetName(),
		RequestId: newRequestID(),
	})
	if err != nil {
		log.Fatalf("DeleteInstance: %v", err)
	}
	if _, err := wait(ctx, operations, op); err != nil {
		log.Fatalf("wait: %v", err)
	}
	fmt.Printf("deleted: %s\n", instance.GetName())

	// A malformed machine type: the server answers INVALID_ARGUMENT with an
	// ErrorInfo (the reason) and a BadRequest (which field, and why).
	_, err = compute.CreateInstance(ctx, &cloudplanev1.CreateInstanceRequest{
		Parent: account,
		Instance: &cloudplanev1.Instance{
			Image:       account + "/images/debian-12",
			MachineType: "small",
		},
	})
	printError(err)
}

// transportCredentials is TLS when CLOUDPLANE_CA, CLOUDPLANE_CERT or
// CLOUDPLANE_KEY is set (the system's roots without CLOUDPLANE_CA), with the
// client certificate when CLOUDPLANE_CERT and CLOUDPLANE_KEY are; else
// plaintext.
func transportCredentials() (credentials.TransportCredentials, error) {
	ca, cert, key := os.Getenv("CLOUDPLANE_CA"), os.Getenv("CLOUDPLANE_CERT"), os.Getenv("CLOUDPLANE_KEY")
	if ca == "" && cert == "" && key == "" {
		return insecure.NewCredentials(), nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", ca)
		}
	}
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// wait calls WaitOperation until the operation is done and turns an
// operation that failed into an error.
func wait(ctx context.Context, ops longrunningpb.OperationsClient, op *longrunningpb.Operation) (*longrunningpb.Operation, error) {
	for !op.GetDone() {
		var err error
		op, err = ops.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{
			Name:    op.GetName(),
			Timeout: durationpb.New(10 * time.Second),
		})
		if err != nil {
			return nil, err
		}
	}
	if e := op.GetError(); e != nil {
		return nil, status.ErrorProto(e)
	}
	return op, nil
}

func printError(err error) {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		log.Fatalf("expected a gRPC error, got %v", err)
	}
	fmt.Printf("error: %s: %s\n", st.Code(), st.Message())
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			fmt.Printf("reason: %s (domain %s)\n", d.GetReason(), d.GetDomain())
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Printf("field violation: %s: %s\n", v.GetField(), v.GetDescription())
			}
		}
	}
}

func newRequestID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		log.Fatal(err)
	}
	return hex.EncodeToString(b)
}
