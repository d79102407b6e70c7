package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// randomEmbeddingsAnswer is an embeddings answer as OpenAI-compatible
// servers write it: n vectors of dim floats (or base64), the members in
// one of the orders seen (usage last, as OpenAI, vLLM and Ollama write
// it, or first), with or without a model, spaced or compact.
func randomEmbeddingsAnswer(rng *rand.Rand, n, dim int) (body []byte, model string, prompt, total int64) {
	model = []string{"", "text-embedding-3-small", `BAAI/bge-m3`, `odd "quoted" \ model`}[rng.IntN(4)]
	prompt = rng.Int64N(100000)
	total = prompt + rng.Int64N(2)*rng.Int64N(10)
	b64 := rng.IntN(2) == 0
	var data bytes.Buffer
	data.WriteByte('[')
	for i := range n {
		if i > 0 {
			data.WriteByte(',')
		}
		data.WriteString(`{"object":"embedding","index":` + strconv.Itoa(i) + `,"embedding":`)
		if b64 {
			raw := make([]byte, 4*dim)
			for j := range dim {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(rng.Float32()*2-1))
			}
			data.WriteString(`"` + base64.StdEncoding.EncodeToString(raw) + `"`)
		} else {
			data.WriteByte('[')
			for j := range dim {
				if j > 0 {
					data.WriteByte(',')
				}
				data.WriteString(strconv.FormatFloat(rng.Float64()*2-1, 'g', -1, 32))
			}
			data.WriteByte(']')
		}
		data.WriteByte('}')
	}
	data.WriteByte(']')
	members := []string{
		`"object":"list"`,
		`"data":` + data.String(),
		`"usage":{"prompt_tokens":` + strconv.FormatInt(prompt, 10) + `,"total_tokens":` + strconv.FormatInt(total, 10) + `}`,
	}
	if model != "" {
		m, _ := json.Marshal(model)
		members = append(members[:2], append([]string{`"model":` + string(m)}, members[2:]...)...)
	}
	if rng.IntN(4) == 0 { // usage first
		last := len(members) - 1
		members = append([]string{members[last]}, members[:last]...)
	}
	sep := ","
	if rng.IntN(2) == 0 {
		sep = ",\n  "
	}
	return []byte("{" + strings.Join(members, sep) + "}"), model, prompt, total
}

// TestScannedBodyReadsUsageAsTheWholeAnswer: an embeddings answer passed
// on as it is read gives its bytes unchanged, and its model and usage as
// decoding the whole answer does, whatever its size (under and over what
// the body keeps), its vectors' encoding, its members' order and the
// pieces it is read in; an answer of a known length is charged by the
// read of its last byte (a client that has read it all may ask for its
// team's spend at once).
func TestScannedBodyReadsUsageAsTheWholeAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 400 {
		n, dim := 1+rng.IntN(4), []int{1, 8, 256, 1536, 3072}[rng.IntN(5)]
		body, model, prompt, total := randomEmbeddingsAnswer(rng, n, dim)
		var want embeddingsAnswer
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("the test's answer: %v\n%s", err, body)
		}
		if want.Model != model || int64(want.Usage.PromptTokens) != prompt || int64(want.Usage.TotalTokens) != total {
			t.Fatalf("the test's answer decodes to %+v", want)
		}
		length := int64(-1)
		if rng.IntN(2) == 0 {
			length = int64(len(body)) // (bytes.Reader gives EOF only after its last byte)
		}
		var got *embeddingsAnswer
		calls := 0
		b := &scannedBody{ReadCloser: io.NopCloser(iotest.HalfReader(bytes.NewReader(body))), length: length, end: func(a *embeddingsAnswer, err error) {
			calls++
			if err != nil {
				t.Errorf("answer %d: end with %v", i, err)
			}
			got = a
		}}
		var out []byte
		buf := make([]byte, 1+rng.IntN(40000))
		for {
			k, err := b.Read(buf[:1+rng.IntN(len(buf))])
			out = append(out, buf[:k]...)
			if length >= 0 && len(out) == len(body) && calls != 1 {
				t.Fatalf("answer %d: its last byte read before the call was charged", i)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		_ = b.Close()
		if !bytes.Equal(out, body) {
			t.Fatalf("answer %d: the bytes passed on differ", i)
		}
		if calls != 1 {
			t.Fatalf("answer %d: end called %d times", i, calls)
		}
		if got == nil || got.Model != model || *got.Usage != *want.Usage {
			t.Fatalf("answer %d (%d bytes): read %+v, want model %q and usage %+v", i, len(body), got, model, *want.Usage)
		}
	}
}

// TestScannedBodyReportsACutAnswer: an answer closed before its end, or
// whose read fails, ends with an error (and no usage): the call is
// reported at its estimate, never as a whole answer.
func TestScannedBodyReportsACutAnswer(t *testing.T) {
	body, _, _, _ := randomEmbeddingsAnswer(rand.New(rand.NewPCG(1, 2)), 3, 1536)
	for _, c := range []struct {
		name string
		src  io.Reader
		read int // bytes read before Close (-1: to the error)
	}{
		{"closed early", bytes.NewReader(body), len(body) / 2},
		{"closed before a byte", bytes.NewReader(body), 0},
		{"read error", io.MultiReader(bytes.NewReader(body[:len(body)-10]), iotest.ErrReader(io.ErrUnexpectedEOF)), -1},
		{"shorter than its length", bytes.NewReader(body[:len(body)-10]), -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var gotErr error
			calls := 0
			b := &scannedBody{ReadCloser: io.NopCloser(c.src), length: int64(len(body)), end: func(a *embeddingsAnswer, err error) {
				calls++
				gotErr = err
				if a != nil {
					t.Errorf("usage %+v of a cut answer", a)
				}
			}}
			if c.read >= 0 {
				_, _ = io.CopyN(io.Discard, b, int64(c.read))
			} else {
				_, _ = io.Copy(io.Discard, b)
			}
			_ = b.Close()
			if calls != 1 || gotErr == nil {
				t.Fatalf("end called %d times, with %v; want once with an error", calls, gotErr)
			}
			if c.read < 0 && !errors.Is(gotErr, io.ErrUnexpectedEOF) {
				t.Fatalf("end with %v, want the read's error", gotErr)
			}
		})
	}
}

// TestScannedBodyWithoutUsage: an answer without usable usage (none,
// negative counts, not JSON, a usage that is neither in its first nor
// its last bytes) ends without usage, to be reported at its estimate.
func TestScannedBodyWithoutUsage(t *testing.T) {
	big := strings.Repeat("0.125,", 4000) + "0.5"
	for _, body := range []string{
		`{"object":"list","data":[],"model":"m"}`,
		`{"object":"list","data":[],"usage":{"prompt_tokens":-5,"total_tokens":-5}}`,
		`{"object":"list","data":[{"embedding":[` + big + `]}],"usage":{"prompt_tokens":-5,"total_tokens":3}}`,
		`not json`,
		`{"data":[{"embedding":[` + big + `]}],"usage":{"prompt_tokens":5,"total_tokens":5},"data2":[{"embedding":[` + big + `]}]}`,
		`{"data":[{"embedding":[` + big + `]}],"note":"\"usage\":{\"prompt_tokens\":5}"}`,
		`{"data":[{"embedding":[` + big + `]}],"usage":{"prompt_tokens":5,"total_tokens":"five"}}`,
	} {
		var got *embeddingsAnswer
		ended := false
		b := &scannedBody{ReadCloser: io.NopCloser(strings.NewReader(body)), length: -1, end: func(a *embeddingsAnswer, err error) {
			ended, got = err == nil, a
		}}
		_, _ = io.Copy(io.Discard, b)
		if !ended || got != nil {
			t.Errorf("%.80s…: ended %v with %+v, want no usage", body, ended, got)
		}
	}
}

// FuzzScannedBody: any answer, read in pieces of any size, is passed on
// unchanged and ends once; what it reads is usable usage (never a
// negative count), and for an answer the body keeps whole, exactly what
// decoding it gives.
func FuzzScannedBody(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dim := range []int{1, 64, 1536} {
		body, _, _, _ := randomEmbeddingsAnswer(rng, 2, dim)
		f.Add(body, uint16(512))
	}
	f.Add([]byte(`{"usage":{"prompt_tokens":-1,"total_tokens":2}}`), uint16(1))
	f.Add([]byte(`{"data":[],"usage":{"prompt_tokens":3,"total_tokens":3},"model":"m"}`), uint16(7))
	f.Fuzz(func(t *testing.T, body []byte, piece uint16) {
		var got *embeddingsAnswer
		calls := 0
		b := &scannedBody{ReadCloser: io.NopCloser(bytes.NewReader(body)), length: []int64{-1, int64(len(body))}[piece%2], end: func(a *embeddingsAnswer, err error) {
			calls++
			if err != nil {
				t.Errorf("end with %v for an answer read whole", err)
			}
			got = a
		}}
		var out []byte
		buf := make([]byte, 1+int(piece))
		for {
			k, err := b.Read(buf)
			out = append(out, buf[:k]...)
			if err != nil {
				break
			}
		}
		_ = b.Close()
		if !bytes.Equal(out, body) || calls != 1 {
			t.Fatalf("passed on %d of %d bytes; end called %d times", len(out), len(body), calls)
		}
		if got != nil && (got.Usage == nil || got.Usage.PromptTokens < 0 || got.Usage.TotalTokens < 0 || got.tokens() < 0) {
			t.Fatalf("unusable usage read: %+v", got.Usage)
		}
		if len(body) <= scanKeep {
			want, _ := parseEmbeddingsAnswer(body)
			if (got == nil) != (want == nil) || got != nil && (got.Model != want.Model || *got.Usage != *want.Usage) {
				t.Fatalf("read %+v, decoding gives %+v", got, want)
			}
		}
	})
}
