package gateway

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// TestPeekEmbeddedError: a 2xx JSON answer that is an error object alone
// is the error its code or type stands for; a response object (with its
// own "error", a failed one) or anything else is not; and whatever was
// peeked, the answer's body reads as the upstream sent it — longer than
// the peek, whole; cut, with the read's error after what came.
func TestPeekEmbeddedError(t *testing.T) {
	cut := errors.New("connection reset")
	long := `{"id":"resp_1","object":"response","output":[],"pad":"` + strings.Repeat("x", maxErrorPeek) + `"}`
	for _, c := range []struct {
		name   string
		body   io.Reader
		want   string // the body as read after the peek
		status int    // 0: not an error
		err    error  // the body's read error after want
	}{
		{"OpenRouter's 429", strings.NewReader(`{"error":{"message":"Rate limit exceeded","code":429}}`), `{"error":{"message":"Rate limit exceeded","code":429}}`, 429, nil},
		{"a typed error", strings.NewReader(`{"error":{"message":"no","type":"invalid_request_error","code":null}}`), `{"error":{"message":"no","type":"invalid_request_error","code":null}}`, 400, nil},
		{"an unknown failure", strings.NewReader(`{"error":{"message":"boom"}}`), `{"error":{"message":"boom"}}`, 500, nil},
		{"a failed response", strings.NewReader(`{"id":"r","object":"response","status":"failed","error":{"message":"x","code":"server_error"}}`), `{"id":"r","object":"response","status":"failed","error":{"message":"x","code":"server_error"}}`, 0, nil},
		{"an error without a message", strings.NewReader(`{"error":{"code":429}}`), `{"error":{"code":429}}`, 0, nil},
		{"not JSON", strings.NewReader(`oops`), `oops`, 0, nil},
		{"longer than the peek", strings.NewReader(long), long, 0, nil},
		{"cut", io.MultiReader(strings.NewReader(`{"error":{"mess`), iotest.ErrReader(cut)), `{"error":{"mess`, 0, cut},
	} {
		resp := &http.Response{StatusCode: 200, Body: io.NopCloser(c.body)}
		status, ok := peekEmbeddedError(resp)
		if ok != (c.status != 0) || status != c.status {
			t.Errorf("%s: status %d, %v; want %d", c.name, status, ok, c.status)
		}
		got, err := io.ReadAll(resp.Body)
		if string(got) != c.want || !errors.Is(err, c.err) && (err != nil || c.err != nil) {
			t.Errorf("%s: the body reads %.80q, %v; want %.80q, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// TestReadAnswerTakesABodyReadWhole: an answer read whole by one hook is
// not read again by the next: readAnswer gives the same bytes, and the
// body still passes on whole; a body read since is read as it is.
func TestReadAnswerTakesABodyReadWhole(t *testing.T) {
	resp := &http.Response{Body: io.NopCloser(strings.NewReader(`{"id":"resp_1"}`))}
	first, whole, err := readAnswer(resp, 1<<10)
	if err != nil || !whole {
		t.Fatal(whole, err)
	}
	again, whole, err := readAnswer(resp, 1<<10)
	if err != nil || !whole || &again[0] != &first[0] {
		t.Fatalf("the second read copied the answer (or failed: %v, %v)", whole, err)
	}
	if _, whole, _ := readAnswer(resp, 4); whole {
		t.Fatal("an answer longer than the bound is read whole")
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != `{"id":"resp_1"}` {
		t.Fatalf("the body passes on as %q", b)
	}
	if b, whole, err := readAnswer(resp, 1<<10); err != nil || !whole || len(b) != 0 {
		t.Fatalf("a body read to its end gives %q, %v, %v; want what is left of it, nothing", b, whole, err)
	}
}
