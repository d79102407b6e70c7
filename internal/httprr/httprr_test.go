package httprr_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/internal/httprr"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// record renders one record the way langchaingo's recorder writes it.
func record(t *testing.T, method, url, body string, status int, respBody string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-api-key")
	var rq bytes.Buffer
	if err := req.WriteProxy(&rq); err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{StatusCode: status, ProtoMajor: 2, Proto: "HTTP/2.0", Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(respBody)), ContentLength: int64(len(respBody))}
	var rs bytes.Buffer
	if err := resp.Write(&rs); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %d\n%s%s", rq.Len(), rs.Len(), rq.String(), rs.String())
}

func get(t *testing.T, c *http.Client, method, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), nil
}

func TestReplay(t *testing.T) {
	t.Parallel()
	const url = "https://api.example.com/v1/chat/completions"
	trace := "httprr trace v1\n" +
		record(t, "POST", url, `{"a":1,"b":2}`, 200, `first`) +
		record(t, "POST", url, `{"a":1,"b":2}`, 200, `second`) +
		record(t, "POST", url, `{"a":2}`, 429, `{"error":{}}`) +
		record(t, "GET", "https://api.example.com/v1/models", ``, 200, `models`)
	rr, err := httprr.Parse([]byte(trace))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rr.Records()); n != 4 {
		t.Fatalf("%d records", n)
	}
	c := rr.Client()
	// Identical keys are served in recorded order, then the last repeats.
	for i, want := range []string{"first", "second", "second"} {
		if _, body, err := get(t, c, "POST", url, `{"a":1,"b":2}`); err != nil || body != want {
			t.Fatalf("call %d: %q, %v; want %q", i, body, err, want)
		}
	}
	if status, _, err := get(t, c, "POST", url, `{"a":2}`); err != nil || status != 429 {
		t.Fatalf("status %d, %v", status, err)
	}
	if _, body, err := get(t, c, "GET", "https://api.example.com/v1/models", ""); err != nil || body != "models" {
		t.Fatalf("%q, %v", body, err)
	}
	// Bodies match byte for byte unless MatchJSON is set.
	if _, _, err := get(t, c, "POST", url, `{"b":2, "a":1}`); err == nil || !strings.Contains(err.Error(), "no recorded response") {
		t.Fatalf("reordered JSON matched without MatchJSON: %v", err)
	}
	loose, _ := httprr.Parse([]byte(trace))
	loose.MatchJSON = true
	if _, body, err := get(t, loose.Client(), "POST", url, `{"b":2, "a":1}`); err != nil || body != "first" {
		t.Fatalf("MatchJSON: %q, %v", body, err)
	}
	if _, _, err := get(t, c, "POST", "https://other.example.com/v1/chat/completions", `{"a":2}`); err == nil {
		t.Fatal("another host matched")
	}
}

func TestReplayConcurrent(t *testing.T) {
	t.Parallel()
	const url = "https://api.example.com/x"
	rr, err := httprr.Parse([]byte("httprr trace v1\n" + record(t, "POST", url, "q", 200, "a")))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, body, err := get(t, rr.Client(), "POST", url, "q"); err != nil || body != "a" {
					t.Errorf("%q %v", body, err)
				}
			}
		})
	}
	wg.Wait()
}

func TestOpenGzipAndCRLF(t *testing.T) {
	t.Parallel()
	const url = "https://api.example.com/x"
	rec := record(t, "POST", url, "q", 200, "a")
	// A trace checked out with CRLF line endings on its length lines.
	rec = strings.Replace(rec, "\n", "\r\n", 1)
	trace := "httprr trace v1\r\n" + rec
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(trace))
	zw.Close()
	file := filepath.Join(dir, "T.httprr.gz")
	if err := os.WriteFile(file, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rr, err := httprr.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, body, err := get(t, rr.Client(), "POST", url, "q"); err != nil || body != "a" {
		t.Fatalf("%q %v", body, err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for name, trace := range map[string]string{
		"header":    "not a trace\n",
		"length":    "httprr trace v1\nx y\n",
		"short":     "httprr trace v1\n10 10\nabc",
		"request":   "httprr trace v1\n3 0\nabc",
		"response":  "httprr trace v1\n" + fmt.Sprintf("%d 3\n", len("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n")) + "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\nxyz",
		"truncated": "httprr trace v1",
	} {
		if _, err := httprr.Parse([]byte(trace)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := httprr.Open(filepath.Join(t.TempDir(), "missing.httprr")); err == nil {
		t.Error("missing file: no error")
	}
}

// TestLangchaingoRecordings reads every trace langchaingo recorded for its
// openai backend and replays each record's own request.
func TestLangchaingoRecordings(t *testing.T) {
	t.Parallel()
	dir := langchaingoTestdata(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.httprr"))
	if len(files) == 0 {
		t.Skipf("no traces in %s", dir)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			rr, err := httprr.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(rr.Records()) == 0 {
				t.Fatal("no records")
			}
			for _, rec := range rr.Records() {
				req, err := http.NewRequest(rec.Method, rec.URL, bytes.NewReader(rec.Body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := rr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				dump, err := httputil.DumpResponse(resp, true)
				resp.Body.Close()
				if err != nil || resp.StatusCode == 0 || len(dump) == 0 {
					t.Fatalf("response %v: %v", resp.Status, err)
				}
			}
		})
	}
}

// langchaingoTestdata locates llms/openai/testdata of the langchaingo
// version the module requires, in the module cache.
func langchaingoTestdata(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Skip(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/tmc/langchaingo\s+(v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Skip("go.mod does not require langchaingo")
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com", "tmc", "langchaingo@"+string(m[1]), "llms", "openai", "testdata")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("langchaingo source not in the module cache (%v); run go mod download", err)
	}
	return dir
}
