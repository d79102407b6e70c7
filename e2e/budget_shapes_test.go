package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// openAIImageTokens is OpenAI's documented vision rule for an image of
// w×h pixels: tile-based families count base + tile per 512-px tile of
// the image fitted into 2048×2048 then scaled to a 768-px shortest side
// (base alone at detail low); patch-based families count 32-px patches,
// at most 1536, times their multiplier.
func openAIImageTokens(model, detail string, w, h int) int64 {
	type tiles struct{ base, tile int64 }
	tiled := map[string]tiles{"gpt-4o": {85, 170}, "gpt-4o-mini": {2833, 5667}, "o3": {75, 150}, "gpt-5": {70, 140}}
	patched := map[string]float64{"gpt-4.1-mini": 1.62, "gpt-4.1-nano": 2.46, "o4-mini": 1.72}
	if mult, ok := patched[model]; ok {
		patches := min(((w+31)/32)*((h+31)/32), 1536)
		return int64(float64(patches)*mult + 0.999999)
	}
	r := tiled[model]
	if detail == "low" {
		return r.base
	}
	fw, fh := float64(w), float64(h)
	if s := 2048 / max(fw, fh); s < 1 {
		fw, fh = fw*s, fh*s
	}
	if s := 768 / min(fw, fh); s < 1 {
		fw, fh = fw*s, fh*s
	}
	n := int64((int(fw)+511)/512) * int64((int(fh)+511)/512)
	return r.base + n*r.tile
}

// billingTransport is a provider that bills per OpenAI's rules: it serves
// the request with openaitest, then rewrites the usage: the prompt is the
// cookbook count of the text plus each image's tokens at its true size
// (imgW×imgH) by the model's vision rule; the completion is every choice
// running to max_tokens (reasoning included, as OpenAI bills it). It
// records the run's reservation while the call is in flight.
type billingTransport struct {
	srv        *openaitest.Server
	b          *budget.Budget
	imgW, imgH int
	reserved   budget.Amount
}

func (bt *billingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	bt.reserved = bt.b.RunBalance(middleware.RunFrom(r.Context())).Reserved
	var req openaitest.ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	var modal struct {
		Modalities []string `json:"modalities"`
	}
	_ = json.Unmarshal(body, &modal)
	est := tokens.New()
	prompt, audioIn := int64(3), int64(0)
	for _, m := range req.Messages {
		prompt += 3 + est.Text("gpt-4o", m.Role) + est.Text("gpt-4o", m.Content.String())
		for _, p := range m.Content.Parts {
			if p.Type == "input_audio" { // 10 tokens a second of 16 kHz 16-bit audio (32,000 bytes)
				var a struct {
					InputAudio struct{ Data string } `json:"input_audio"`
				}
				_ = json.Unmarshal(p.Raw, &a)
				raw, _ := base64.StdEncoding.DecodeString(a.InputAudio.Data)
				audioIn += int64(len(raw)+3199) / 3200
			}
			if p.Type == "image_url" {
				var img struct {
					ImageURL struct{ Detail string } `json:"image_url"`
				}
				_ = json.Unmarshal(p.Raw, &img)
				prompt += openAIImageTokens(req.Model, img.ImageURL.Detail, bt.imgW, bt.imgH)
			}
		}
	}
	if len(req.Tools) > 0 { // tool definitions by the cookbook's rule (OpenAI publishes no other)
		defs := &middleware.Request{}
		for _, t := range req.Tools {
			defs.Tools = append(defs.Tools, middleware.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
		}
		prompt += est.Request("gpt-4o", defs) - 3
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	maxTok := 0
	if req.MaxTokens != nil {
		maxTok = *req.MaxTokens
	}
	if req.MaxCompletionTokens != nil {
		maxTok = *req.MaxCompletionTokens
	}
	resp, err := bt.srv.Transport().RoundTrip(r)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	completion := int64(n * maxTok)
	audioOut := int64(0)
	if slices.Contains(modal.Modalities, "audio") {
		audioOut = completion // a spoken answer: every output token is audio
	}
	prompt += audioIn
	out["usage"] = map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
		"prompt_tokens_details": map[string]any{"audio_tokens": audioIn}, "completion_tokens_details": map[string]any{"audio_tokens": audioOut}}
	raw, _ = json.Marshal(out)
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	resp.ContentLength = int64(len(raw))
	resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	return resp, nil
}

// shape sends req through the budget layer to the billing provider and
// returns what the run reserved for it and what it settled.
func shape(t *testing.T, req goopenai.ChatCompletionRequest) (reserved, settled budget.Amount, costPico int64) {
	t.Helper()
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: 10 * policies.Dollar}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := llmwrap.NewBudget(p, budget.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	srv.On().Reply(openaitest.Text("The rack looks fine."))
	bt := &billingTransport{srv: srv, b: b, imgW: 768, imgH: 2048} // a tall image: the most tiles
	chain := middleware.Chain(instrument.New(llmwrap.Pricer(p), nil), b.Middleware())
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(bt))
	ctx, run := middleware.StartRun(context.Background(), "shape")
	if _, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, req); err != nil {
		t.Fatal(err)
	}
	if bt.reserved.IsZero() {
		t.Fatal("no reservation seen in flight")
	}
	bal := b.RunBalance(run)
	if !bal.Reserved.IsZero() {
		t.Fatalf("reservation left behind: %+v", bal)
	}
	return bt.reserved, bal.Used, run.Totals().CostPico
}

func checkShape(t *testing.T, name string, req goopenai.ChatCompletionRequest) {
	t.Helper()
	reserved, settled, cost := shape(t, req)
	t.Logf("%s: reserved %d tokens %s, settled %d tokens %s (exact %s)", name, reserved.Tokens, middleware.FormatUSD(reserved.USDMicros),
		settled.Tokens, middleware.FormatUSD(settled.USDMicros), middleware.FormatPico(cost))
	if settled.Tokens > reserved.Tokens || settled.USDMicros > reserved.USDMicros || cost > reserved.USDMicros*policies.PicoPerMicro {
		t.Errorf("%s: settled %+v (exact %s) exceeds the reservation %+v", name, settled, middleware.FormatPico(cost), reserved)
	}
}

func userText(s string) goopenai.ChatCompletionMessage {
	return goopenai.ChatCompletionMessage{Role: "user", Content: s}
}

func imageMessage(detail goopenai.ImageURLDetail) goopenai.ChatCompletionMessage {
	return goopenai.ChatCompletionMessage{Role: "user", MultiContent: []goopenai.ChatMessagePart{
		{Type: goopenai.ChatMessagePartTypeText, Text: "Is anything wrong with this rack?"},
		{Type: goopenai.ChatMessagePartTypeImageURL, ImageURL: &goopenai.ChatMessageImageURL{URL: "https://example.com/rack.png", Detail: detail}},
	}}
}

// TestNChoicesAreReserved: n choices are n completions, each up to
// max_tokens, and the reservation covers them all.
func TestNChoicesAreReserved(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 4} {
		checkShape(t, "n="+strconv.Itoa(n), goopenai.ChatCompletionRequest{Model: "gpt-4o", N: n, MaxCompletionTokens: 300,
			Messages: []goopenai.ChatCompletionMessage{userText("Suggest a name for the new disk-cleanup job.")}})
	}
}

// TestImagesOnMiniAreReservedAtMiniRates: an image of unknown size is
// reserved at the worst case of its detail under the called model's own
// vision rule (gpt-4o-mini counts an image at ~33× gpt-4o's tokens).
func TestImagesOnMiniAreReservedAtMiniRates(t *testing.T) {
	t.Parallel()
	for _, model := range []string{"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini"} {
		for _, d := range []goopenai.ImageURLDetail{goopenai.ImageURLDetailHigh, goopenai.ImageURLDetailAuto, goopenai.ImageURLDetailLow} {
			checkShape(t, model+"/"+string(d), goopenai.ChatCompletionRequest{Model: model, MaxCompletionTokens: 200,
				Messages: []goopenai.ChatCompletionMessage{imageMessage(d)}})
		}
	}
	// The mini reservation is at mini's rule, not gpt-4o's.
	mini, _, _ := shape(t, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 1, Messages: []goopenai.ChatCompletionMessage{imageMessage(goopenai.ImageURLDetailHigh)}})
	if want := int64(2833 + 8*5667); mini.Tokens < want {
		t.Errorf("gpt-4o-mini image reserved %d tokens, want at least %d", mini.Tokens, want)
	}
}

// TestToolsAndReasoningAreReserved: tool definitions are input, a
// reasoning model's hidden reasoning is output within max_tokens.
func TestToolsAndReasoningAreReserved(t *testing.T) {
	t.Parallel()
	params := json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","description":"the mount point"},"unit":{"type":"string","enum":["GB","MB"]}}}`)
	checkShape(t, "tools on o4-mini", goopenai.ChatCompletionRequest{Model: "o4-mini", MaxCompletionTokens: 2000,
		Messages: []goopenai.ChatCompletionMessage{userText("How full is /var?")},
		Tools:    []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{Name: "check_disk", Description: "Reports disk usage.", Parameters: params}}}})
}

// TestAudioIsReservedAtAudioRates: audio input and a spoken answer are
// billed at the audio prices ($40 and $80 per 1M on gpt-4o-audio-preview,
// 16× and 8× the text ones); the reservation covers them. go-openai has no
// input_audio part, so the request is raw JSON through the tokenwise
// transport.
func TestAudioIsReservedAtAudioRates(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: 10 * policies.Dollar}}}
	b, err := llmwrap.NewBudget(p, budget.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	srv.On().Reply(openaitest.Text("The disk alarm says /var is full."))
	bt := &billingTransport{srv: srv, b: b}
	chain := middleware.Chain(instrument.New(nil, nil), b.Middleware(), middleware.Meter(llmwrap.Pricer(p), nil))
	client := &http.Client{Transport: oaiadapter.NewTransport(chain, oaiadapter.WithBaseTransport(bt))}
	wav := base64.StdEncoding.EncodeToString(make([]byte, 5*32_000)) // five seconds
	body := `{"model":"gpt-4o-audio-preview","modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"},"max_completion_tokens":300,` +
		`"messages":[{"role":"user","content":[{"type":"text","text":"What does the alarm say?"},{"type":"input_audio","input_audio":{"data":"` + wav + `","format":"wav"}}]}]}`
	ctx, run := middleware.StartRun(context.Background(), "audio")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://openai.test/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	settled, cost := b.RunBalance(run).Used, run.Totals().CostPico
	u := run.Calls()[0].Usage
	if u.AudioInputTokens != 50 || u.AudioOutputTokens != 300 {
		t.Fatalf("usage %+v, want 50 audio input and 300 audio output tokens", u)
	}
	// 50 × $40 + 300 × $80 per 1M, plus the text input at $2.50.
	text := u.InputTokens - u.AudioInputTokens
	if want := 50*40_000_000 + 300*80_000_000 + text*2_500_000; cost != want {
		t.Errorf("cost %s, want %s", middleware.FormatPico(cost), middleware.FormatPico(want))
	}
	if settled.USDMicros > bt.reserved.USDMicros || cost > bt.reserved.USDMicros*policies.PicoPerMicro || settled.Tokens > bt.reserved.Tokens {
		t.Errorf("settled %+v (exact %s) exceeds the reservation %+v", settled, middleware.FormatPico(cost), bt.reserved)
	}
}
