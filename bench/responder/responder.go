// Command responder is the delaying HTTPS provider of bench/inflight.py: it
// stands in for an enStratus / Dell Cloud Manager endpoint that answers every
// server read after --delay, and counts, on its own side of the wire, how
// cloudplaned reaches it: connections accepted, connections open at once,
// requests, requests in flight at once, and the HTTP versions used.
//
//	responder --fixture=server.json --ca_out=ca.pem [--delay=2s]
//	          [--max_streams=0] [--listen=127.0.0.1:0]
//
// TLS on --listen with a certificate made at start-up (an ECDSA CA written
// to --ca_out as PEM, and a leaf for 127.0.0.1 and localhost signed by it);
// it offers HTTP/2 (ALPN h2) and HTTP/1.1. --max_streams sets HTTP/2's
// SETTINGS_MAX_CONCURRENT_STREAMS (0: Go's default, 250 per connection).
//
// GET .../infrastructure/Server/<id> is answered after --delay with the first
// server of the recorded enStratus document --fixture (a `{"servers":[...]}`
// answer, §4 of enstratus_wire.h), its serverId set to <id>. Any other path
// is a 404 with enStratus' error body `{"error":{"message":...}}`.
//
// When ready it prints one JSON line on stdout:
//
//	{"https_port":N,"stats_port":M,"ca":"...","max_streams":250}
//
// The counters are served as JSON on plain HTTP at 127.0.0.1:<stats_port>:
// GET /stats reads them; POST /reset zeroes the counts and sets the peaks to
// what is open now (so a bench measures one burst); connections_ever counts
// every connection since start; first_request_ms, last_request_ms and
// last_answer_ms say when server reads arrived and the last was answered,
// in ms since the start or the reset. They are also printed
// on stderr when the responder exits.
//
// It exits by itself when its stdin closes or its parent dies (no stray
// servers after a test or a bench), and on SIGTERM / SIGINT.
//
// Standard library only (Go 1.24+ for http.Server.HTTP2 and Protocols).
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A serverId no recorded document holds: the answer body is the fixture
// marshalled once with it, and each answer replaces it with the id asked for.
const placeholderID = 987654321012345

var serverPath = regexp.MustCompile(`/infrastructure/Server/([0-9]+)$`)

// counters are what the responder saw, since start or the last reset.
type counters struct {
	mu          sync.Mutex
	accepted    int64 // connections accepted (ConnState StateNew)
	acceptedAll int64 // the same since start (never reset)
	open        int64 // connections open now
	maxOpen     int64
	requests    int64 // every request, answered or not
	serverGets  int64 // GET .../infrastructure/Server/<id> answered 200
	notFound    int64 // other paths (404)
	inFlight    int64 // requests being handled now
	maxInFlight int64
	protocols   map[string]int64 // r.Proto -> requests
	// When the first and the last server read arrived and the last was
	// answered (zero: none yet), to tell the sending side of a burst from
	// the answering side.
	since                                 time.Time // start or last reset
	firstArrival, lastArrival, lastAnswer time.Time
}

func (c *counters) connState(_ net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch state {
	case http.StateNew:
		c.accepted++
		c.acceptedAll++
		c.open++
		if c.open > c.maxOpen {
			c.maxOpen = c.open
		}
	case http.StateClosed, http.StateHijacked:
		c.open--
	}
}

func (c *counters) begin(proto string, serverGet bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if serverGet {
		now := time.Now()
		if c.firstArrival.IsZero() {
			c.firstArrival = now
		}
		c.lastArrival = now
	}
	c.requests++
	c.inFlight++
	if c.inFlight > c.maxInFlight {
		c.maxInFlight = c.inFlight
	}
	c.protocols[proto]++
}

func (c *counters) end(found bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	if found {
		c.serverGets++
		c.lastAnswer = time.Now()
	} else {
		c.notFound++
	}
}

func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accepted, c.requests, c.serverGets, c.notFound = 0, 0, 0, 0
	c.maxOpen, c.maxInFlight = c.open, c.inFlight
	c.protocols = map[string]int64{}
	c.since = time.Now()
	c.firstArrival, c.lastArrival, c.lastAnswer = time.Time{}, time.Time{}, time.Time{}
}

func (c *counters) json() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.Sub(c.since).Milliseconds()
	}
	out, _ := json.Marshal(map[string]any{
		"first_request_ms":     ms(c.firstArrival),
		"last_request_ms":      ms(c.lastArrival),
		"last_answer_ms":       ms(c.lastAnswer),
		"connections_accepted": c.accepted,
		"connections_ever":     c.acceptedAll,
		"connections_open":     c.open,
		"max_connections_open": c.maxOpen,
		"requests":             c.requests,
		"server_gets":          c.serverGets,
		"not_found":            c.notFound,
		"in_flight":            c.inFlight,
		"max_in_flight":        c.maxInFlight,
		"protocols":            c.protocols,
	})
	return out
}

// answerTemplate is `{"servers":[<first server of the fixture>]}` with its
// serverId set to placeholderID.
func answerTemplate(fixture string) ([]byte, error) {
	raw, err := os.ReadFile(fixture)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Servers []map[string]any `json:"servers"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", fixture, err)
	}
	if len(doc.Servers) == 0 {
		return nil, fmt.Errorf("%s: no servers", fixture)
	}
	server := doc.Servers[0]
	server["serverId"] = placeholderID
	return json.Marshal(map[string]any{"servers": []any{server}})
}

// certificate makes a CA (written to caOut) and a leaf for the loopback
// addresses signed by it.
func certificate(caOut string) (tls.Certificate, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cloudplane bench responder CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	leafTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(caOut, caPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}, nil
}

// exitWithParent ends the process when stdin closes or the parent changes
// (Linux re-parents an orphan), printing the counters first.
func exitWithParent(c *counters) {
	done := func(why string) {
		log.Printf("responder: %s; counters %s", why, c.json())
		os.Exit(0)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		done("stdin closed")
	}()
	parent := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != parent {
				done("parent exited")
			}
		}
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-signals
		done(s.String())
	}()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "HTTPS address")
	statsListen := flag.String("stats_listen", "127.0.0.1:0", "plain-HTTP address of the counters")
	delay := flag.Duration("delay", 2*time.Second, "how long each server read takes")
	fixture := flag.String("fixture", "", "a recorded enStratus GET servers answer")
	caOut := flag.String("ca_out", "", "where to write the CA certificate (PEM)")
	maxStreams := flag.Int("max_streams", 0, "HTTP/2 streams per connection (0: Go's default, 250)")
	flag.Parse()
	log.SetFlags(0)
	if *fixture == "" || *caOut == "" {
		log.Fatal("usage: responder --fixture=FILE --ca_out=FILE [--delay=2s] [--max_streams=N]")
	}
	template, err := answerTemplate(*fixture)
	if err != nil {
		log.Fatal(err)
	}
	placeholder := []byte(strconv.FormatInt(placeholderID, 10))
	cert, err := certificate(*caOut)
	if err != nil {
		log.Fatal(err)
	}
	c := &counters{protocols: map[string]int64{}, since: time.Now()}
	exitWithParent(c)

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := serverPath.FindStringSubmatch(r.URL.Path)
		c.begin(r.Proto, r.Method == http.MethodGet && m != nil)
		if r.Method != http.MethodGet || m == nil {
			c.end(false)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{
				"error": map[string]string{"message": "No such API path: " + r.URL.Path}})
			return
		}
		select {
		case <-time.After(*delay):
		case <-r.Context().Done(): // the client gave up
			c.end(false)
			return
		}
		body := bytes.Replace(template, placeholder, []byte(m[1]), 1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
		c.end(true)
	})

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	server := &http.Server{
		Handler:   handler,
		ConnState: c.connState,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Protocols: protocols,
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: *maxStreams},
		ErrorLog:  log.New(io.Discard, "", 0), // TLS handshake noise under load
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	statsLn, err := net.Listen("tcp", *statsListen)
	if err != nil {
		log.Fatal(err)
	}
	stats := http.NewServeMux()
	stats.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(c.json())
	})
	stats.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		c.reset()
		w.Header().Set("Content-Type", "application/json")
		w.Write(c.json())
	})
	go func() { log.Fatal(http.Serve(statsLn, stats)) }()

	streams := *maxStreams
	if streams == 0 {
		streams = 250 // net/http's http2defaultMaxStreams
	}
	ready, _ := json.Marshal(map[string]any{
		"https_port":  ln.Addr().(*net.TCPAddr).Port,
		"stats_port":  statsLn.Addr().(*net.TCPAddr).Port,
		"ca":          *caOut,
		"max_streams": streams,
		"delay_ms":    delay.Milliseconds(),
	})
	fmt.Println(string(ready))
	os.Stdout.Sync()
	log.Fatal(server.ServeTLS(ln, "", ""))
}
