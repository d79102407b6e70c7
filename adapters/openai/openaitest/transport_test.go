package openaitest_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// memClient returns a go-openai client that reaches srv through the
// in-memory transport.
func memClient(srv *openaitest.Server) *openai.Client {
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = &http.Client{Transport: srv.Transport()}
	return openai.NewClientWithConfig(cfg)
}

func TestTransportLatencyInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Reply{Content: "late", Latency: 2 * time.Second})
		client := memClient(srv)

		start := time.Now()
		resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed != 2*time.Second {
			t.Errorf("elapsed %v, want exactly 2s", elapsed)
		}
		if resp.Choices[0].Message.Content != "late" {
			t.Errorf("content %q", resp.Choices[0].Message.Content)
		}
	})
}

func TestTransportChunkLatencyInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Reply{Content: "0123456789", ChunkSize: 5, Latency: time.Second, ChunkLatency: 100 * time.Millisecond})
		client := memClient(srv)

		start := time.Now()
		stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		// role, "01234", "56789", finish, then [DONE]: one line every 100ms after the first.
		for i := range 5 {
			_, err := stream.Recv()
			if i == 4 {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("Recv %d: %v, want io.EOF", i, err)
				}
			} else if err != nil {
				t.Fatalf("Recv %d: %v", i, err)
			}
			want := time.Second + time.Duration(i)*100*time.Millisecond
			if got := time.Since(start); got != want {
				t.Errorf("event %d at %v, want %v", i, got, want)
			}
		}
	})
}

func TestTransportStallEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastContains("before")).Reply(openaitest.Stall())
		srv.On(openaitest.LastContains("mid")).Reply(openaitest.StallAfter(2))
		client := memClient(srv)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := client.CreateChatCompletion(ctx, openai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("before")},
		})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 30*time.Second {
			t.Errorf("err %v after %v, want context.DeadlineExceeded after 30s", err, time.Since(start))
		}

		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		stream, err := client.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("mid")},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		for range 2 {
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		time.AfterFunc(time.Minute, cancel)
		if _, err := stream.Recv(); !errors.Is(err, context.Canceled) {
			t.Errorf("Recv after cancel: %v, want context.Canceled", err)
		}
		// synctest.Test fails if the stalled handlers are still blocked.
	})
}

func TestTransportCutAndEOF(t *testing.T) {
	// The server and transport may be created outside the bubble.
	srv := openaitest.New()
	srv.On(openaitest.LastContains("cut")).Reply(openaitest.CutAfter(2))
	srv.On(openaitest.LastContains("eof")).Reply(openaitest.EOFAfter(2))
	client := &http.Client{Transport: srv.Transport()}

	synctest.Test(t, func(t *testing.T) {

		read := func(what string, stream bool) (string, error) {
			body := `{"model":"m","stream":` + map[bool]string{true: "true", false: "false"}[stream] + `,"messages":[{"role":"user","content":"` + what + `"}]}`
			resp, err := client.Post(srv.URL+"/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}

		body, err := read("cut", true)
		if !errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(body, "[DONE]") || strings.Count(body, "data: ") != 2 {
			t.Errorf("cut stream: err %v, body %q", err, body)
		}
		body, err = read("cut", false)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(body, `{"id":`) {
			t.Errorf("cut body: err %v, body %q", err, body)
		}
		body, err = read("eof", true)
		if err != nil || strings.Contains(body, "[DONE]") || strings.Count(body, "data: ") != 2 {
			t.Errorf("eof stream: err %v, body %q", err, body)
		}
	})
}

func TestTransportFlushAndBodyClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		handlerDone := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "yes")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-release
			_, _ = io.WriteString(w, "buffered\n") // never flushed
			<-r.Context().Done()
			handlerDone <- context.Cause(r.Context())
		})
		client := &http.Client{Transport: openaitest.NewTransport(h)}

		resp, err := client.Get("http://anything.invalid/path")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Test") != "yes" || resp.ContentLength != -1 {
			t.Errorf("response %d %v %d", resp.StatusCode, resp.Header, resp.ContentLength)
		}
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); line != "first\n" || err != nil {
			t.Errorf("first line %q, %v", line, err)
		}
		close(release)
		next := make(chan string, 1)
		go func() {
			line, _ := br.ReadString('\n')
			next <- line
		}()
		synctest.Wait() // the handler waits for its context, the reader for data
		select {
		case line := <-next:
			t.Errorf("read %q before the handler flushed it", line)
		default:
		}
		resp.Body.Close()
		if cause := <-handlerDone; cause == nil || errors.Is(cause, context.DeadlineExceeded) {
			t.Errorf("handler context cause %v, want the body-closed cause", cause)
		}
		if line := <-next; line != "" {
			t.Errorf("read %q after Close", line)
		}
	})
}

func TestTransportRequestAndPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got *http.Request
		var gotBody string
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/boom" {
				panic("boom")
			}
			b, _ := io.ReadAll(r.Body)
			got, gotBody = r, string(b)
		})
		client := &http.Client{Transport: openaitest.NewTransport(h)}

		req, _ := http.NewRequest(http.MethodPost, "http://api.example/v1/chat/completions?x=1", strings.NewReader("payload"))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(b) != 0 || resp.StatusCode != http.StatusOK {
			t.Errorf("empty response: %d %q %v", resp.StatusCode, b, err)
		}
		if got.Method != http.MethodPost || got.Host != "api.example" || got.RequestURI != "/v1/chat/completions?x=1" ||
			got.Header.Get("Authorization") != "Bearer k" || gotBody != "payload" || got.ContentLength != 7 {
			t.Errorf("handler saw %s %s %s %v %q", got.Method, got.Host, got.RequestURI, got.Header, gotBody)
		}

		if _, err := client.Get("http://api.example/boom"); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("panic: err %v", err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://api.example/", nil)
		if _, err := client.Do(req); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled request: %v", err)
		}
	})
}
