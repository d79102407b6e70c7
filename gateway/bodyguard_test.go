package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3/option"
)

// wholeStore is an objectStore that notes, of every multipart or JSON
// request, whether its body came whole (a form its parser read to its
// end, a JSON value) and the file ids it named.
type wholeStore struct {
	*objectStore
	mu    sync.Mutex
	whole map[string]bool // a file id → a body naming it came whole
	n     int
}

func (s *wholeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	s.mu.Lock()
	s.n++
	if err == nil {
		for _, id := range namedFiles(r.Header.Get("Content-Type"), body) {
			s.whole[id] = true
		}
	}
	s.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.objectStore.ServeHTTP(w, r)
}

// namedFiles returns the file ids a whole body names ("file-" strings
// of its form's fields or its JSON), none when it is not whole.
func namedFiles(ct string, body []byte) []string {
	var ids []string
	if strings.HasPrefix(ct, "multipart/") {
		r, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if err != nil {
			return nil
		}
		r.Header.Set("Content-Type", ct)
		if r.ParseMultipartForm(64<<20) != nil {
			return nil
		}
		for _, vs := range r.MultipartForm.Value {
			for _, v := range vs {
				if strings.HasPrefix(v, "file-") {
					ids = append(ids, v)
				}
			}
		}
		return ids
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if strings.HasPrefix(v, "file-") {
				ids = append(ids, v)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return ids
}

// TestGatewayRefusesAnotherTeamsIDsInStreamedBodies: random multipart
// forms (a container file named by a file_id field, an image edit's
// images[0][file_id], before or after a file part of random size, below
// or over limits.max_body) and random JSON image edits (an image's
// data URL of random size before the file_id), posted by payments through
// openai-go, naming payments' own file, devops' or an unknown one: one
// naming devops' is answered its 404 and the upstream never gets its body
// whole (a body over max_body is cut); the others pass whole. Memory and
// Redis replicas. Before, every form and JSON image edit passed unread.
func TestGatewayRefusesAnotherTeamsIDsInStreamedBodies(t *testing.T) {
	for _, redis := range []bool{false, true} {
		t.Run(fmt.Sprint("redis=", redis), func(t *testing.T) {
			up := &wholeStore{objectStore: newObjectStore(), whole: map[string]bool{}}
			hs := httptest.NewServer(up)
			t.Cleanup(hs.Close)
			t.Setenv(upstreamEnv, upstreamKey)
			extra := "limits: {max_body: 100000}\n"
			if redis {
				_, prefix := testRedis(t)
				extra += "redis: {addr: " + redisAddr() + ", prefix: " + prefix + "}\n"
			}
			cfgPath := writeFiles(t, hs.URL+"/v1", isolatedPolicies, extra)
			a, b := serveFile(t, cfgPath).url, ""
			b = a
			if redis {
				b = serveFile(t, cfgPath).url
			}
			dev, pay := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
			cntr := pay.create(6)
			seed := rand.Uint64()
			r := rand.New(rand.NewPCG(seed, 11))
			for i := range 24 {
				own, other := pay.create(0), dev.create(0)
				unknown := fmt.Sprintf("file-unknown%d", i)
				id := []string{own, other, unknown}[r.IntN(3)]
				size := []int{10, 50_000, 300_000}[r.IntN(3)]
				blob := strings.Repeat("x", size)
				var body bytes.Buffer
				var ct, path string
				if r.IntN(2) == 0 {
					mw := multipart.NewWriter(&body)
					field, name := "file_id", "containers/"+cntr+"/files"
					if r.IntN(2) == 0 {
						field, name = "images[0][file_id]", "images/edits"
					}
					after := r.IntN(2) == 0
					if !after {
						_ = mw.WriteField(field, id)
					}
					fw, _ := mw.CreateFormFile("file", "a.png")
					_, _ = io.WriteString(fw, blob)
					if after {
						_ = mw.WriteField(field, id)
					}
					_ = mw.WriteField("metadata[file_id]", other) // names nothing
					_ = mw.Close()
					ct, path = mw.FormDataContentType(), name
				} else {
					b, _ := json.Marshal(map[string]any{"model": "gpt-image-1", "prompt": "a hat",
						"images":   []any{map[string]any{"image_url": "data:image/png;base64," + blob}, map[string]any{"file_id": id}},
						"metadata": map[string]any{"file_id": other}})
					body.Write(b)
					ct, path = "application/json", "images/edits"
				}
				what := fmt.Sprintf("seed %d, body %d (%d bytes to %s, naming %s)", seed, i, body.Len(), path, id)
				var out json.RawMessage
				err := pay.c.Post(context.Background(), path, nil, &out, option.WithRequestBody(ct, bytes.NewReader(body.Bytes())), option.WithMaxRetries(0))
				up.mu.Lock()
				whole := up.whole[id]
				up.mu.Unlock()
				if id == other {
					refusedNotFound(t, what, fmt.Sprintf("No such File object: %s", other), err)
					if whole {
						t.Errorf("%s: the upstream got the body naming devops' file whole", what)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", what, err)
				} else if !whole {
					t.Errorf("%s: the upstream did not get the body whole", what)
				}
			}
		})
	}
}
