package gateway

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// TestInProcessCallCutByCloseIsReadAsCut: a call whose answer has begun
// and that the gateway's close cuts (its handler returning as its context
// ends) is read by its caller as cut, never to a clean end, every time:
// 1,000 such calls. Before, the close cancelled the handler's context
// before it cut the body, and a handler that returned at once could end
// the body first: its caller read the cut answer as whole (1 call in
// some hundreds under -race; TestInProcessRoundTripAllocations met it).
func TestInProcessCallCutByCloseIsReadAsCut(t *testing.T) {
	clean := 0
	for range 1000 {
		base, cancel := context.WithCancel(t.Context())
		s := &Server{baseCtx: base, handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://tokenwise.invalid/v1/models", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Transport().RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := io.ReadAll(resp.Body); err == nil {
			clean++
		}
		resp.Body.Close()
	}
	if clean > 0 {
		t.Errorf("%d calls in 1,000 cut by the gateway's close were read to a clean end", clean)
	}
}
