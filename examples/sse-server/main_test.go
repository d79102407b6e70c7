package main

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A real HTTP client reads the stream: chunked text events, each flushed
// as it comes, then [DONE]; the answer comes from the fallback model since
// the embedded gpt-4o is down.
func TestServesTheAnswerAsSSE(t *testing.T) {
	h, err := newHandler("", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/chat?q=" + url.QueryEscape("How full is the disk?"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	var text strings.Builder
	events, done := 0, false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		if done {
			t.Fatal("data after [DONE]")
		}
		events++
		text.WriteString(data)
	}
	if !done || events < 10 || !strings.HasPrefix(text.String(), "The disk is 95% full") {
		t.Fatalf("done %v, %d events, text %q", done, events, text.String())
	}

	bad, err := http.Get(srv.URL + "/chat")
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("no question: status %d", bad.StatusCode)
	}
}

// The URL the server prints works: for the loopback default, an explicit
// loopback address and every interface (":0" is reached via localhost).
func TestPrintedURLWorks(t *testing.T) {
	h, err := newHandler("", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", ":0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		u := chatURL(ln.Addr())
		if strings.Contains(u, "[::]") || strings.Contains(u, "0.0.0.0") {
			t.Errorf("%s: printed URL %s names no reachable host", addr, u)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Errorf("%s: GET %s: %v", addr, u, err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "[DONE]") {
				t.Errorf("%s: GET %s: %d %q", addr, u, resp.StatusCode, body)
			}
		}
		srv.Close()
	}
}

// Each request is a run, so the run limits the example's policy sets
// (limits.run_timeout 5m, the default policy's max_calls) bound it. The
// example once served its calls outside any run: the limits never applied,
// and its first request logged "a call outside a run: the policy's run
// limits ... apply only to calls made with the context of
// middleware.StartRun".
func TestEachRequestIsARun(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	h, err := newHandler("", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/chat?q=" + url.QueryEscape("How full is the disk?"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), "[DONE]") {
		t.Fatalf("status %d, err %v, body %q", resp.StatusCode, err, body)
	}
	if strings.Contains(logs.String(), "outside a run") {
		t.Errorf("the request was served outside a run, its policy's run limits unapplied:\n%s", logs.String())
	}
}
