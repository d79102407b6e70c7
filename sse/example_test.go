package sse_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tokenwise/tokenwise/sse"
)

// A handler that streams three pieces of an answer; a real one would run a
// call or an agent with s.Chunk or s.Write as its streaming function.
func ExampleHandler() {
	h := sse.Handler(func(ctx context.Context, r *http.Request, s *sse.Stream) error {
		for _, piece := range []string{"The disk", " is 42%", " full."} {
			if err := s.Send(piece); err != nil {
				return err
			}
		}
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output:
	// data: The disk
	//
	// data:  is 42%
	//
	// data:  full.
	//
	// data: [DONE]
}
