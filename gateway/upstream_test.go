package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/tokenwise/tokenwise/gateway"
)

// Chat completions reach a plain-HTTP upstream over the gateway's own
// transport, which keeps the connection between calls and closes it when
// the gateway shuts down.
func TestGatewayUpstreamConnections(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opened, closed := make(chan struct{}, 16), make(chan struct{}, 16)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(instantAnswer)))
		_, _ = w.Write(instantAnswer)
	}), ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			opened <- struct{}{}
		case http.StateClosed:
			closed <- struct{}{}
		}
	}}
	go func() { _ = up.Serve(l) }()
	defer up.Close()
	cfg, err := gateway.LoadConfig(writeFiles(t, "http://"+l.Addr().String(), defaultPolicies, ""))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithPolicyWatch(false), gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(gl) }()
	e := &env{srv: srv, url: "http://" + gl.Addr().String()}
	for i := range 5 {
		resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"call `+strconv.Itoa(i)+`"}]}`)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(b) == 0 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if n := len(opened); n != 1 {
		t.Fatalf("5 sequential calls opened %d upstream connections, want 1", n)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	<-closed // the idle upstream connection is closed by Shutdown (else this waits)
}
