package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A passed-through request of an endpoint the gateway does not police
// (GET /v1/files, a file upload, an audio transcription, legacy
// completions with pass_unpoliced) has no team timeout; limits.upstream_idle
// (10m by default) bounds what the upstream does: the wait for its
// answer's headers, for each next piece of its answer, for it to read the
// next piece of an upload. An upstream slow but steady, or a client slow
// to upload, is never cut by it.
func TestGatewayUnpolicedPassThroughToAHungUpstreamIsBounded(t *testing.T) {
	const devops = "version: 1\nname: devops\ntimeouts: {call: 5s, total: 8s}\nlimits: {run_timeout: 10s}\n"
	// send writes a raw request and returns, in time, how the call ended
	// for its client: the status, then the answer's body read whole or
	// the read's failure.
	send := func(t *testing.T, dial func() net.Conn, head string, body func(io.Writer)) <-chan string {
		c := dial()
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		ended := make(chan string, 1)
		go func() {
			defer c.Close()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				ended <- "error: " + err.Error()
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				ended <- strconv.Itoa(resp.StatusCode) + " cut after " + strconv.Itoa(len(b)) + " bytes"
				return
			}
			ended <- strconv.Itoa(resp.StatusCode) + " " + string(b)
		}()
		if body != nil {
			go body(c)
		}
		return ended
	}
	wait := func(t *testing.T, ended <-chan string, within time.Duration) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		select {
		case got := <-ended:
			return got, time.Since(start)
		case <-time.After(within):
			t.Fatalf("the call is still open after %s", within)
			return "", 0
		}
	}
	// A file's content: an answer passed on as it comes (a list of files
	// is read whole, for the team's own: objects_owner.go).
	get := "GET /v1/files/file-abc/content HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + devopsKey + "\r\nX-Run-Id: run-1\r\n\r\n"

	t.Run("never answers: a 504 after the default 10 minutes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dial, _, _, closeAll := bubbleGateway(t, devops, "", silentUpstream{})
			defer closeAll()
			got, took := wait(t, send(t, dial, get, nil), time.Hour)
			if !strings.HasPrefix(got, "504 ") || !strings.Contains(got, "upstream_idle") {
				t.Errorf("answer %q, want a 504 naming limits.upstream_idle", got)
			}
			if took != 10*time.Minute {
				t.Errorf("ended after %s, want 10m", took)
			}
		})
	})

	t.Run("stalls inside its answer: cut after upstream_idle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dial, _, _, closeAll := bubbleGateway(t, devops, "limits: {upstream_idle: 1m}\n", &pacedUpstream{pieces: 3, every: 30 * time.Second, stallAfter: 2})
			defer closeAll()
			got, took := wait(t, send(t, dial, get, nil), time.Hour)
			if !strings.HasPrefix(got, "200 cut after ") {
				t.Errorf("answer %q, want a 200 whose body is cut", got)
			}
			if took != 2*30*time.Second+time.Minute {
				t.Errorf("ended after %s, want 2m (two pieces 30s apart, then 1m of silence)", took)
			}
		})
	})

	t.Run("slow but steady answer is not cut", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dial, _, _, closeAll := bubbleGateway(t, devops, "limits: {upstream_idle: 1m}\n", &pacedUpstream{pieces: 6, every: 50 * time.Second})
			defer closeAll()
			got, _ := wait(t, send(t, dial, get, nil), time.Hour)
			if got != "200 "+strings.Repeat("piece;", 6) {
				t.Errorf("answer %q, want all 6 pieces", got)
			}
		})
	})

	upload := func(pieces int, every time.Duration) (string, func(io.Writer)) {
		head := "POST /v1/files HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + devopsKey +
			"\r\nContent-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(pieces*1000) + "\r\n\r\n"
		return head, func(w io.Writer) {
			for range pieces {
				time.Sleep(every)
				if _, err := w.Write([]byte(strings.Repeat("u", 1000))); err != nil {
					return
				}
			}
		}
	}

	t.Run("client slow to upload is not cut", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			up := &readingUpstream{}
			// The clock does not run while the gateway waits for the
			// client: 25s between pieces, over upstream_idle, within
			// read_timeout.
			dial, _, _, closeAll := bubbleGateway(t, devops, "limits: {upstream_idle: 10s, read_timeout: 30s}\n", up)
			defer closeAll()
			head, body := upload(6, 25*time.Second)
			got, _ := wait(t, send(t, dial, head, body), time.Hour)
			if got != "200 read 6000 bytes" {
				t.Errorf("answer %q, want the upload read whole", got)
			}
		})
	})

	t.Run("upstream slow to read the upload is not blamed on the client", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// The client sends its upload at once; the upstream takes 40s
			// between reads (within upstream_idle): limits.read_timeout
			// (30s) bounds the waits for the client only.
			up := &readingUpstream{pause: 40 * time.Second}
			dial, _, _, closeAll := bubbleGateway(t, devops, "limits: {upstream_idle: 1m, read_timeout: 30s}\n", up)
			defer closeAll()
			head, body := upload(3, 0)
			got, _ := wait(t, send(t, dial, head, body), time.Hour)
			if got != "200 read 3000 bytes" {
				t.Errorf("answer %q, want the upload read whole", got)
			}
		})
	})

	t.Run("upstream that stops reading the upload: a 504", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			up := &readingUpstream{stopAfter: 2000}
			dial, _, _, closeAll := bubbleGateway(t, devops, "limits: {upstream_idle: 1m, read_timeout: 30s}\n", up)
			defer closeAll()
			head, body := upload(6, time.Second)
			got, _ := wait(t, send(t, dial, head, body), time.Hour)
			if !strings.HasPrefix(got, "504 ") || !strings.Contains(got, "upstream_idle") {
				t.Errorf("answer %q, want a 504 naming limits.upstream_idle", got)
			}
		})
	})
}

// silentUpstream never answers: it waits for the call's context to end.
type silentUpstream struct{}

func (silentUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// pacedUpstream answers at once with a body of pieces "piece;" sent every
// interval; with stallAfter > 0 it goes silent after that many.
type pacedUpstream struct {
	pieces     int
	every      time.Duration
	stallAfter int
}

func (u *pacedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	go func() {
		for i := range u.pieces {
			if u.stallAfter > 0 && i == u.stallAfter {
				<-r.Context().Done()
				pw.CloseWithError(r.Context().Err())
				return
			}
			select {
			case <-time.After(u.every):
			case <-r.Context().Done():
				pw.CloseWithError(r.Context().Err())
				return
			}
			if _, err := pw.Write([]byte("piece;")); err != nil {
				return
			}
		}
		pw.Close()
	}()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: pr, Request: r}, nil
}

// readingUpstream reads the request's body and answers how much it read;
// with stopAfter > 0 it stops reading after that many bytes and waits;
// with pause, it waits that long before each read after the first.
type readingUpstream struct {
	stopAfter int
	pause     time.Duration
}

func (u *readingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	n := 0
	buf := make([]byte, 500)
	for {
		if u.stopAfter > 0 && n >= u.stopAfter {
			<-r.Context().Done()
			return nil, context.Cause(r.Context())
		}
		if n > 0 && u.pause > 0 {
			time.Sleep(u.pause)
		}
		k, err := r.Body.Read(buf)
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	body := "read " + strconv.Itoa(n) + " bytes"
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}
