package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// fileUpstream is an upstream that serves POST /v1/files as the API does:
// it reads the multipart upload and answers a file object with the file's
// size; it records the SHA-256 of every file it received whole.
type fileUpstream struct {
	mu       sync.Mutex
	received []string // the files' SHA-256, hex
	calls    int
}

func (u *fileUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.calls++
	u.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/files" {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error"}}`, err.Error())
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	u.received = append(u.received, hex.EncodeToString(h.Sum(nil)))
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": "file-1", "object": "file", "bytes": n, "created_at": 1,
		"filename": hdr.Filename, "purpose": r.FormValue("purpose"), "status": "processed"})
}

// TestGatewayPassesUploadsLargerThanMaxBody: a file upload through the
// gateway (openai-go's Files.New, a batch input file of 6 MiB) reaches the
// upstream whole, though it is larger than limits.max_body (4 MiB by
// default): max_body bounds the bodies the gateway reads and holds (chat,
// Responses, embeddings), and an upload it passes on as it comes is
// bounded by limits.max_upload (512 MiB by default, the API's own file
// limit). An upload above max_upload is refused with a 413 before any of
// it reaches the upstream when its length is known. Before, every upload
// above 4 MiB failed.
func TestGatewayPassesUploadsLargerThanMaxBody(t *testing.T) {
	up := &fileUpstream{}
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)
	t.Setenv(upstreamEnv, upstreamKey)
	g := startFuzzGateway(t, hs.URL+"/v1", defaultPolicies, "limits: {max_upload: 8MiB}\n")
	client := openai.NewClient(option.WithBaseURL(g.url+"/v1"), option.WithAPIKey(devopsKey), option.WithMaxRetries(0))

	line := `{"custom_id":"r","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}` + "\n"
	data := []byte(strings.Repeat(line, 6<<20/len(line)+1))
	sum := sha256.Sum256(data)
	f, err := client.Files.New(t.Context(), openai.FileNewParams{
		File:    openai.File(bytes.NewReader(data), "batch.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeBatch,
	})
	if err != nil {
		t.Fatalf("uploading %d bytes through the gateway: %v", len(data), err)
	}
	if f.Bytes != int64(len(data)) {
		t.Fatalf("the upstream read a file of %d bytes, want %d", f.Bytes, len(data))
	}
	up.mu.Lock()
	got := append([]string(nil), up.received...)
	up.mu.Unlock()
	if len(got) != 1 || got[0] != hex.EncodeToString(sum[:]) {
		t.Fatalf("the upstream received %v, want the file whole (%x)", got, sum)
	}

	// Above max_upload: refused before the upstream sees it.
	big := bytes.Repeat([]byte("x"), 9<<20)
	_, err = client.Files.New(t.Context(), openai.FileNewParams{
		File:    openai.File(bytes.NewReader(big), "big.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeBatch,
	})
	var ae *openai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(ae.Message, "max_upload") {
		t.Fatalf("an upload of 9 MiB over max_upload 8MiB: %v, want a 413 that names limits.max_upload", err)
	}
	up.mu.Lock()
	calls := up.calls
	up.mu.Unlock()
	if calls != 1 {
		t.Fatalf("the upstream was called %d times, want once (the refused upload never reaches it)", calls)
	}

	// Of unknown length (chunked), it is cut at max_upload: a 413 too.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "big.jsonl")
	_, _ = fw.Write(big)
	_ = mw.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.url+"/v1/files", io.MultiReader(&form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+devopsKey)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "max_upload") {
		t.Fatalf("a chunked upload of 9 MiB: %d %s, want a 413 that names limits.max_upload", resp.StatusCode, b)
	}

	// A body the gateway reads to police it stays bounded by max_body.
	emb := `{"model":"text-embedding-3-small","input":"` + strings.Repeat("a", 5<<20) + `"}`
	resp, err = http.DefaultClient.Do(mustRequest(t, g.url+"/v1/embeddings", emb))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "max_body") {
		t.Fatalf("an embeddings call of 5 MiB: %d %s, want a 413 that names limits.max_body", resp.StatusCode, b)
	}
}

func mustRequest(t *testing.T, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+devopsKey)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// countingUpstream answers a passed-through POST with the number of bytes
// of its body, read whole.
type countingUpstream struct{}

func (countingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	n, err := io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(fmt.Sprintf(`{"bytes":%d}`, n))), Request: r}, nil
}

// TestGatewayUploadThatKeepsComingIsNotCut: an upload passed through to
// the upstream (not held by the gateway) that takes longer than
// limits.read_timeout (30s) but keeps coming — 12 pieces 5s apart, as a
// large file over a slow link — reaches the upstream whole; one that
// stops coming for longer than read_timeout gets the 408; a chat body the
// gateway reads and holds keeps the whole-body bound. Before, any body
// not read whole within 30s was cut with a 408, which the SDKs retry: a
// large upload failed again and again.
func TestGatewayUploadThatKeepsComingIsNotCut(t *testing.T) {
	send := func(t *testing.T, c net.Conn, path string, pieces int, gap time.Duration) *http.Response {
		t.Helper()
		const piece = 64 << 10
		head := strings.Replace(requestHead(path, pieces*piece), "application/json", "application/octet-stream", 1)
		resp := make(chan *http.Response, 1)
		go func() {
			r, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Error(err)
			}
			resp <- r
		}()
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		for range pieces {
			time.Sleep(gap)
			if _, err := c.Write(bytes.Repeat([]byte("x"), piece)); err != nil {
				break // the gateway gave up on the body
			}
		}
		return <-resp
	}
	for _, c := range []struct {
		name, path string
		gap        time.Duration
		status     int
	}{
		{"upload kept coming", "/v1/files", 5 * time.Second, http.StatusOK},
		{"upload stopped coming", "/v1/files", 31 * time.Second, http.StatusRequestTimeout},
		{"chat body held", "/v1/chat/completions", 5 * time.Second, http.StatusRequestTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dial, _, _, closeAll := bubbleGatewayReply(t, "version: 1\nname: devops\n", "", countingUpstream{}, openaitest.Text("hi"))
				defer closeAll()
				conn := dial()
				defer conn.Close()
				r := send(t, conn, c.path, 12, c.gap)
				if r == nil {
					return
				}
				b, _ := io.ReadAll(r.Body)
				if r.StatusCode != c.status {
					t.Fatalf("%d pieces %v apart: %d %s, want %d", 12, c.gap, r.StatusCode, b, c.status)
				}
				if c.status == http.StatusOK && string(b) != fmt.Sprintf(`{"bytes":%d}`, 12*64<<10) {
					t.Fatalf("the upstream read %s, want the whole upload", b)
				}
			})
		})
	}
}
