package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzEmbeddingsPolicies: devops has a budget in tokens (restarted when a
// fabulous usage has spent half of it), so that every embeddings call is
// reserved, settled at the answer's usage, and counted in its spend.
var fuzzEmbeddingsPolicies = map[string]string{
	"default.yaml": "version: 1\nname: default\n",
	"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_tokens: 1000000000}\n",
}

// FuzzGatewayEmbeddingsUpstreamAnswer: whatever an upstream answers an
// embeddings call (status, Content-Type, body; cut or not, in pieces or
// not, with a length or not), the caller gets within the timeout, without
// a panic, a 2xx only for the upstream's 2xx, its body as it came (a part
// of it when the upstream cut it), or an error of the upstream's status
// (OpenAI-shaped when the gateway makes it); the team's spend is whole
// after every call, never goes down, and grows by at least the
// prompt_tokens of a whole 2xx answer's usage (the provider's bill).
func FuzzGatewayEmbeddingsUpstreamAnswer(f *testing.F) {
	const (
		js = "application/json"
		ok = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}`
	)
	seeds := []upstreamSeed{
		{200, js, ok, 0},
		{200, js, ok, seedLength},
		{200, js, ok, seedPieces | seedCut},
		{200, js, ok[:40], seedLength | seedCut},
		{200, js, strings.Replace(ok, `"usage":{"prompt_tokens":7,"total_tokens":7}`, `"usage":null`, 1), 0},
		{200, js, strings.Replace(ok, `"prompt_tokens":7`, `"prompt_tokens":7.0`, 1), 0},
		{200, js, strings.Replace(ok, `"prompt_tokens":7`, `"prompt_tokens":0`, 1), 0},
		{200, js, strings.Replace(ok, `"prompt_tokens":7`, `"prompt_tokens":-7`, 1), 0},
		{200, js, strings.Replace(ok, `"prompt_tokens":7`, `"prompt_tokens":1e30`, 1), 0},
		{200, js, strings.Replace(ok, `"prompt_tokens":7`, `"prompt_tokens":"7"`, 1), 0},
		{200, js, strings.Replace(ok, `"prompt_tokens":7,`, ``, 1), 0},
		{200, js, strings.Replace(ok, `"usage":{`, `"usage":{"prompt_tokens":1,`, 1), 0},
		{200, js, ok[:len(ok)-1] + `,"usage":{"prompt_tokens":900,"total_tokens":900}}`, 0},
		{200, js, `{"object":"list","data":[{"embedding":"` + strings.Repeat("AAAA", 30000) + `"}],"usage":{"prompt_tokens":11,"total_tokens":11}}`, seedPieces},
		{200, js, `{"error":{"message":"overloaded","type":"server_error"}}`, 0},
		{200, js, `{"error":"boom"}`, 0},
		{200, js, `{"data":[],"usage":{"prompt_tokens":3,"total_tokens":3},"error":null}`, 0},
		{200, "text/event-stream", "data: " + ok + "\n\n", 0},
		{200, "", "", 0},
		{204, "", "", 0},
		{400, js, `{"error":{"message":"bad","type":"invalid_request_error"}}`, 0},
		{429, js, `{"error":{"message":"slow down","type":"requests"}}`, seedRetryAfter},
		{500, "text/html", "<html>oops</html>", 0},
		{503, "", "", seedCut},
	}
	for _, s := range seeds {
		f.Add(s.status, s.contentType, []byte(s.body), s.flags)
	}
	f.Setenv(upstreamEnv, upstreamKey)
	up := &rawUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.Cleanup(ts.Close)
	g := startFuzzGateway(f, ts.URL+"/v1", fuzzEmbeddingsPolicies, "")
	var last int64 // tokens
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte, flags uint8) {
		if status < 200 || status > 599 {
			status = http.StatusOK
		}
		if strings.ContainsAny(contentType, "\r\n\x00") || len(contentType) > 200 {
			contentType = "application/json"
		}
		ans := upstreamAnswer{status: status, contentType: contentType, body: body,
			retryAfter: flags&seedRetryAfter != 0, cut: flags&seedCut != 0, pieces: flags&seedPieces != 0, length: flags&seedLength != 0}
		up.set(ans)
		g.clearLogs()
		a, cut := g.postMayCut(t, "/v1/embeddings", devopsKey, []byte(`{"model":"text-embedding-3-small","input":"hello world"}`))
		g.checkNoPanic(t)
		if cut && !ans.cut {
			t.Fatalf("the answer was cut though the upstream's was not: %d %q", a.status, a.body)
		}
		upstreamOK := status/100 == 2 && validHeaderValue(contentType)
		if status == http.StatusNoContent {
			body = nil
		}
		switch {
		case a.status == 0:
		case a.status/100 == 2:
			if !upstreamOK || up.served() == 0 {
				t.Fatalf("a %d from the gateway for an upstream answer %d %q", a.status, status, contentType)
			}
			if cut && !bytes.HasPrefix(body, a.body) || !cut && !bytes.Equal(a.body, body) {
				t.Fatalf("the upstream's body (cut %v) was changed:\n%q\ngot (cut %v)\n%q", ans.cut, body, cut, a.body)
			}
		default:
			checkErrorAnswer(t, a)
			if status >= 400 && validHeaderValue(contentType) && up.served() > 0 && a.status != status {
				t.Fatalf("the upstream answered %d, the caller got %d: %s", status, a.status, a.body)
			}
		}
		sp := g.spend(t, devopsKey)
		if sp.tokens < last {
			t.Fatalf("the team's spend went down: %d tokens, then %d", last, sp.tokens)
		}
		if n := billedPromptTokens(body); upstreamOK && !ans.cut && a.status/100 == 2 && n > 0 && sp.tokens-last < n {
			t.Fatalf("the upstream billed %d prompt tokens, the team was charged %d:\n%q", n, sp.tokens-last, body)
		}
		last = sp.tokens
		if sp.tokens > sp.limitTokens/2 {
			g.restart(t)
			last = 0
		}
	})
}

// billedPromptTokens is the prompt_tokens of an embeddings answer's usage
// as a provider bills it: a JSON object with a data array, no error, and
// a usage whose prompt_tokens is a whole number below a billion; 0 when
// the answer says none.
func billedPromptTokens(b []byte) int64 {
	var v struct {
		Data  []json.RawMessage `json:"data"`
		Error json.RawMessage   `json:"error"`
		Usage struct {
			PromptTokens json.Number `json:"prompt_tokens"`
		} `json:"usage"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&v) != nil || v.Data == nil || len(v.Error) > 0 && string(v.Error) != "null" {
		return 0
	}
	if _, err := d.Token(); err != io.EOF {
		return 0 // more after the object
	}
	var raw struct {
		Usage struct {
			PromptTokens json.RawMessage `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(b, &raw) != nil || bytes.HasPrefix(raw.Usage.PromptTokens, []byte(`"`)) {
		return 0 // a count written as a string is no count a provider bills by
	}
	n, err := v.Usage.PromptTokens.Int64()
	if err != nil || n <= 0 || n >= 1e9 {
		return 0
	}
	return n
}
