package redact

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

func TestMaskPatterns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, gone string
	}{
		{`Incorrect API key provided: sk-abcdefghijklmnopqrstuvwxyz012345.`, "abcdefghijklmnop"},
		{`key sk-proj-AbC_dEf-0123456789abcdefghij is invalid`, "AbC_dEf-0123456789"},
		{`sk-ant-api03-abcdefghijklmnopqrstuvwx`, "api03-abcdefghijklmnop"},
		{`Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc`, "eyJhbGciOiJIUzI1NiJ9"},
		{`authorization: bearer abcdefgh12345678`, "abcdefgh12345678"},
		{`Basic dXNlcjpwYXNzd29yZA==`, "dXNlcjpwYXNzd29yZA"},
		{`{"api_key": "0123456789abcdef0123456789abcdef"}`, "0123456789abcdef0123"},
		{`token=ZXhhbXBsZS10b2tlbi12YWx1ZQ==`, "ZXhhbXBsZS10b2tlbi12YWx1ZQ"},
		{`access_token: 'a1b2c3d4e5f6a7b8c9d0'`, "a1b2c3d4e5f6a7b8c9d0"},
		{`secret=Zm9vYmFyYmF6cXV4cXV1eA`, "Zm9vYmFyYmF6cXV4cXV1eA"},
		{`key "AIzaSyA-0123456789abcdefghijklmnopqrs"`, "SyA-0123456789abcdef"},
		{`gsk_0123456789abcdefABCDEF and xai-0123456789abcdefABCDEF`, "0123456789abcdefABCDEF"},
		{`hf_abcdefghijklmnopqrstuv ghp_abcdefghijklmnopqrstuv`, "abcdefghijklmnopqrstuv"},
	}
	for _, tt := range tests {
		got := Mask(tt.in)
		if strings.Contains(got, tt.gone) || !strings.Contains(got, Redacted) {
			t.Errorf("Mask(%q) = %q, want %q gone", tt.in, got, tt.gone)
		}
	}
}

// TestMaskLeavesOrdinaryTextAlone: messages providers send without
// secrets come through unchanged.
func TestMaskLeavesOrdinaryTextAlone(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
		`{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM)","type":"tokens","code":"rate_limit_exceeded"}}`,
		"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth",
		"max_tokens: 4096, prompt_tokens=12",
		"the key is missing; the token expired",
		"skip-this-word and task-list",
	} {
		if got := Mask(s); got != s {
			t.Errorf("Mask(%q) = %q, want it unchanged", s, got)
		}
	}
}

// TestMaskRemovesEveryNamedSecret: a random secret of any shape, anywhere
// in any text, is gone after Mask.
func TestMaskRemovesEveryNamedSecret(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+= \"'{}"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 2000 {
		secret := word(minSecret + r.IntN(40))
		if strings.TrimSpace(secret) != secret {
			continue
		}
		text := word(r.IntN(30)) + secret + word(r.IntN(30)) + secret
		if got := Mask(text, secret); strings.Contains(got, secret) {
			t.Fatalf("Mask(%q, %q) = %q", text, secret, got)
		}
	}
}

func TestHeader(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"Authorization": {"Bearer sk-abcdefghijklmnopqrstuvwx"},
		"X-Api-Key":     {"whatever-it-is"},
		"Set-Cookie":    {"session=abc"},
		"X-Echo":        {"your key was sk-abcdefghijklmnopqrstuvwx"},
		"Content-Type":  {"application/json"},
	}
	got := Header(h)
	for _, k := range []string{"Authorization", "X-Api-Key", "Set-Cookie"} {
		if got.Get(k) != Redacted {
			t.Errorf("%s = %q", k, got.Get(k))
		}
	}
	if strings.Contains(got.Get("X-Echo"), "abcdefghijklmnop") || got.Get("Content-Type") != "application/json" {
		t.Errorf("got %v", got)
	}
	if h.Get("X-Api-Key") != "whatever-it-is" {
		t.Error("Header changed its argument")
	}
	if Header(nil) != nil {
		t.Error("Header(nil) != nil")
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	h := http.Header{"Authorization": {"Bearer my-own-key-123"}, "Api-Key": {"azure-key-456"}}
	got := Secrets(h)
	if len(got) != 2 || got[0] != "my-own-key-123" || got[1] != "azure-key-456" {
		t.Errorf("Secrets = %q", got)
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	t.Parallel()
	cause := errors.Join(io.ErrUnexpectedEOF, errors.New("key=0123456789abcdef0123"))
	err := Error(cause)
	if strings.Contains(err.Error(), "0123456789abcdef") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Error = %v", err)
	}
	plain := errors.New("nothing to hide")
	if Error(plain) != plain || Error(nil) != nil {
		t.Error("Error wrapped an error with nothing to mask")
	}
}
