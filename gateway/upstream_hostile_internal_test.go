package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

// An upstream that answers with headers that do not end (a broken or
// hostile server, garbage that is no HTTP), or with informational answers
// that never give way to the answer, fails the call at once, as net/http's
// Transport fails it (headers over MaxResponseHeaderBytes, 10 MiB by
// default; more than five 1xx answers): the synchronous transport read
// them for as long as they came, the process's memory growing with the
// headers, and a call that no timeout bounds (a passed-through request of
// an endpoint the gateway does not police) never ended.
func TestSyncTransportBoundsTheAnswersHeaders(t *testing.T) {
	for _, c := range []struct{ name, head, unit string }{
		{"endless header", "HTTP/1.1 200 OK\r\nX-Junk: ", strings.Repeat("a", 64<<10)},
		{"garbage without a line end", "", strings.Repeat("\x16\x03\x01garbage", 8<<10)},
		{"endless 1xx", "", "HTTP/1.1 100 Continue\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hang := make(chan struct{})
				var wg sync.WaitGroup
				tr := newSyncTransport(nil)
				tr.dial = func(context.Context, string, string) (net.Conn, error) {
					cc, s := net.Pipe()
					wg.Go(func() {
						defer s.Close()
						if _, err := http.ReadRequest(bufio.NewReader(s)); err != nil {
							return
						}
						if _, err := io.WriteString(s, c.head); err != nil {
							return
						}
						// 12 MiB of it, then nothing more.
						for n := 0; n < 12<<20; n += len(c.unit) {
							if _, err := io.WriteString(s, c.unit); err != nil {
								return
							}
						}
						<-hang
					})
					return cc, nil
				}
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://upstream.test/v1/files", nil)
				done := make(chan error, 1)
				go func() {
					resp, err := tr.RoundTrip(req)
					if err == nil {
						resp.Body.Close()
					}
					done <- err
				}()
				synctest.Wait()
				select {
				case err := <-done:
					if err == nil {
						t.Error("the call succeeded")
					} else {
						t.Logf("failed with %v", err)
					}
				default:
					t.Error("after 12 MiB of an answer's headers (or of garbage, or of 1xx answers), the call still reads them")
					cancel()
					<-done
				}
				cancel()
				close(hang)
				wg.Wait()
			})
		})
	}
}
