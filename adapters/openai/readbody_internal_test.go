package openai

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// piecesWriterTo is a body that writes itself out in pieces of at most
// piece bytes (0: at once), then fails with err (nil: none); counts its
// WriteTo calls.
type piecesWriterTo struct {
	data   []byte
	piece  int
	err    error
	writes *int
}

func (p *piecesWriterTo) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		return 0, io.EOF
	}
	k := copy(b, p.data)
	p.data = p.data[k:]
	return k, nil
}

func (p *piecesWriterTo) WriteTo(w io.Writer) (int64, error) {
	*p.writes++
	var n int64
	for len(p.data) > 0 {
		k := len(p.data)
		if p.piece > 0 && k > p.piece {
			k = p.piece
		}
		m, err := w.Write(p.data[:k])
		n += int64(m)
		p.data = p.data[m:]
		if err != nil {
			return n, err
		}
	}
	return n, p.err
}

// onlyReader hides every method of a body but Read: readBody's reading path.
type onlyReader struct{ io.Reader }

// TestReadBodyWriterToIsTheReadPath: over random bodies, Content-Lengths
// (exact, shorter, longer, unknown), body kinds (bytes.Buffer,
// bytes.Reader, strings.Reader through http.NewRequest; a body writing
// itself in pieces, failing or not after them), readBody of a body that
// writes itself out returns what it returns of the same body read with
// Read only: the same bytes, or the same error.
func TestReadBodyWriterToIsTheReadPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 50))
	errBroken := errors.New("broken body")
	for i := range 4000 {
		data := make([]byte, rng.IntN(3)*rng.IntN(40000))
		for j := range data {
			data[j] = byte(rng.IntN(256))
		}
		length := int64(len(data))
		switch rng.IntN(5) {
		case 0:
			length -= int64(rng.IntN(len(data) + 1))
		case 1:
			length += int64(1 + rng.IntN(100))
		case 2:
			length = int64(rng.IntN(2)) - 1 // unknown: 0 or -1
		}
		kind := rng.IntN(5)
		piece := rng.IntN(3) * rng.IntN(5000)
		var bodyErr error
		if rng.IntN(3) == 0 {
			bodyErr = errBroken
		}
		var writes int
		newBody := func() io.Reader {
			switch kind {
			case 0:
				return bytes.NewBuffer(bytes.Clone(data))
			case 1:
				return bytes.NewReader(data)
			case 2:
				return strings.NewReader(string(data))
			}
			return &piecesWriterTo{data: data, piece: piece, err: bodyErr, writes: &writes}
		}
		read := func(body io.Reader) ([]byte, error) {
			r, err := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions", body)
			if err != nil {
				t.Fatal(err)
			}
			r.ContentLength = length
			return readBody(r)
		}
		want, wantErr := read(onlyReader{newBody()})
		got, err := read(newBody())
		if !bytes.Equal(got, want) || (got == nil) != (want == nil) || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("case %d (kind %d, %d bytes, length %d, pieces of %d, error %v): got %d bytes, %v; read gives %d bytes, %v",
				i, kind, len(data), length, piece, bodyErr, len(got), err, len(want), wantErr)
		}
		if kind >= 3 && length > 0 && writes != 1 {
			t.Fatalf("case %d: a body of known length that writes itself out was written %d times, want once (WriteTo)", i, writes)
		}
	}
}
