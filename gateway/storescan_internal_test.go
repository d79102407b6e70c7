package gateway

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestStoreScanFindsTheNameAcrossAnyReads: the body's name "store",
// written plainly or with any of its letters \u escaped (upper- or
// lower-case hex), is found however the body is cut into reads, and a
// body without it (the word inside a string, escaped quotes, another
// name) is not.
func TestStoreScanFindsTheNameAcrossAnyReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	letter := func(c byte) string {
		switch rng.IntN(3) {
		case 0:
			return string(c)
		case 1:
			return `\u00` + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])
		}
		return `\u00` + string("0123456789ABCDEF"[c>>4]) + string("0123456789ABCDEF"[c&15])
	}
	for i := range 2000 {
		name, want := "", true
		for _, c := range []byte("store") {
			name += letter(c)
		}
		switch i % 4 {
		case 1:
			name, want = `stores`, false
		case 2:
			name, want = `\"store\"`, false // inside a string, no name
		}
		body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + string(bytes.Repeat([]byte("x"), rng.IntN(80))) + `"}],"` + name + `":true}`)
		if i%4 == 2 {
			body = []byte(`{"model":"m","messages":[{"role":"user","content":"` + name + `"}]}`)
		}
		s := &storeScan{ReadCloser: io.NopCloser(&choppy{b: body, rng: rng})}
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s: read %q %v", body, got, err)
		}
		if s.found != want || namesStore(body) != want {
			t.Errorf("%s: found %v (whole %v), want %v", body, s.found, namesStore(body), want)
		}
	}
}

// choppy reads b in reads of random sizes.
type choppy struct {
	b   []byte
	rng *rand.Rand
}

func (c *choppy) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+c.rng.IntN(40))], c.b)
	c.b = c.b[n:]
	return n, nil
}
