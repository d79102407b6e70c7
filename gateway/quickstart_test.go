package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// readmeCurl is one curl call of README's gateway quick start.
type readmeCurl struct {
	path, auth, body string
}

// quickStartCurls returns the curl commands of README's text blocks that
// call the quick start's gateway (127.0.0.1:8787): path, Authorization and
// -d body, as printed.
func quickStartCurls(t *testing.T) []readmeCurl {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	url := regexp.MustCompile(`curl -s http://127\.0\.0\.1:8787(/\S+)`)
	auth := regexp.MustCompile(`-H 'Authorization: ([^']+)'`)
	body := regexp.MustCompile(`-d '([^']+)'`)
	var out []readmeCurl
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := url.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		c := readmeCurl{path: m[1]}
		if a := auth.FindStringSubmatch(line); a != nil {
			c.auth = a[1]
		}
		if d := body.FindStringSubmatch(line); d != nil {
			c.body = d[1]
		}
		out = append(out, c)
	}
	return out
}

// TestReadmeGatewayQuickStart runs README's gateway quick start as printed
// — its gateway file (gateway/testdata/gateway.yaml, the example policy
// directory), its virtual key and its curl calls — with the one OpenAI
// upstream replaced by the scripted server: the chat call is answered
// with the upstream's key, never the virtual one — by gpt-4o after
// gpt-4o-mini, as README says of the devops policy's regenerate_final —
// and the spend call shows the devops team's budget charged. The quick
// start's key (tw-demo-devops) must be one the file knows, by its SHA-256.
func TestReadmeGatewayQuickStart(t *testing.T) {
	curls := quickStartCurls(t)
	if len(curls) < 2 {
		t.Fatalf("README's quick start shows %d curl calls of the gateway, want the chat call and the spend call", len(curls))
	}
	up := openaitest.NewServer(t)
	up.On().Reply(openaitest.Text("Hi!"))
	const upstreamKey = "sk-quickstart-upstream-0123456789"
	t.Setenv("OPENAI_API_KEY", upstreamKey)
	cfg, err := gateway.LoadConfig(filepath.Join("testdata", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Upstreams) != 1 {
		t.Fatalf("the quick start's file has %d upstreams, want 1", len(cfg.Upstreams))
	}
	cfg.Upstreams[0].BaseURL = up.URL
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	hs := httptest.NewServer(gw.Handler())
	defer hs.Close()

	var chat, spend bool
	for _, c := range curls {
		method := "GET"
		var body io.Reader
		if c.body != "" {
			method, body = "POST", strings.NewReader(c.body)
		}
		req, err := http.NewRequest(method, hs.URL+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", c.auth)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s (%s): status %d, %v\n%s", method, c.path, c.auth, resp.StatusCode, err, b)
		}
		switch c.path {
		case "/v1/chat/completions":
			chat = true
			var a struct {
				Model   string
				Choices []struct {
					Message struct{ Content string }
				}
			}
			if err := json.Unmarshal(b, &a); err != nil || len(a.Choices) == 0 || a.Choices[0].Message.Content != "Hi!" {
				t.Fatalf("the chat call's answer: %v\n%s", err, b)
			}
			// README: the devops policy writes the final answer again
			// with gpt-4o, after gpt-4o-mini's.
			if a.Model != "gpt-4o" {
				t.Errorf("the quick start's answer names %q; README says gpt-4o answers it (regenerate_final)", a.Model)
			}
		case "/v1/spend":
			spend = true
			var s struct {
				Team      string `json:"team"`
				Tracked   bool   `json:"tracked"`
				SpentUSD  string `json:"spent_usd"`
				LimitUSD  string `json:"limit_usd"`
				Remaining string `json:"remaining_usd"`
			}
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			if s.Team != "devops" || !s.Tracked || s.SpentUSD == "" || strings.Trim(s.SpentUSD, "0.") == "" || s.LimitUSD != "500.000000" {
				t.Errorf("spend after the chat call: %s", b)
			}
		}
	}
	if !chat || !spend {
		t.Fatalf("README's quick start calls: chat %v, spend %v", chat, spend)
	}
	reqs := up.Requests()
	var models []string
	for _, r := range reqs {
		if r.Chat != nil {
			models = append(models, r.Chat.Model)
		}
	}
	if strings.Join(models, ",") != "gpt-4o-mini,gpt-4o" {
		t.Errorf("the upstream was called for %v; README says gpt-4o-mini, then gpt-4o", models)
	}
	for _, r := range reqs {
		if got := r.Header.Get("Authorization"); got != "Bearer "+upstreamKey {
			t.Errorf("the upstream got Authorization %q, want the key of OPENAI_API_KEY", got)
		}
	}

	// README: the payments team's key leaves the call on gpt-4o-mini.
	req, err := http.NewRequest("POST", hs.URL+"/v1/chat/completions", strings.NewReader(curls[0].body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tw-demo-payments")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the payments key: status %d\n%s", resp.StatusCode, b)
	}
	after := up.Requests()[len(reqs):]
	if len(after) != 1 || after[0].Chat == nil || after[0].Chat.Model != "gpt-4o-mini" {
		t.Errorf("the payments key's call went upstream %d times; README says once, to gpt-4o-mini", len(after))
	}
}
