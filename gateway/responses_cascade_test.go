package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/gateway"
)

// cascadeAnswer is a Responses answer of model with the given status and
// output items, 1,000 input and 100 output tokens.
func cascadeAnswer(model, status, output string) string {
	return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"` + model +
		`","output":[` + output + `],"usage":{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}}`
}

// routingPolicies are the policies of the cascade's and regeneration's
// tests: devops has a team budget and the routing section of the lines
// given; the upstream's key is set.
func routingPolicies(t *testing.T, routing ...string) map[string]string {
	t.Setenv(upstreamEnv, upstreamKey)
	return map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\nrouting:\n  " + strings.Join(routing, "\n  ") + "\n"}
}

// usdOf formats a whole number of micro-dollars, given in pico-dollars, as
// the spend endpoint does.
func usdOf(pico int64) string {
	micro := pico / 1_000_000
	return fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
}

// TestGatewayResponsesCascade: a Responses call goes through its team's
// routing.cascade as a chat call does. With no rule and no default, a call
// of a model the cascade does not list (gpt-4.1) is sent to the cascade's
// first model, gpt-4o-mini; its answer is passed
// on when it passes the checks, and gpt-4o is never asked. An answer that
// fails one — no output (non_empty), cut at max_output_tokens
// (finish_reason), a function call whose arguments are not JSON or miss
// a required parameter (valid_tool_json) — is charged at gpt-4o-mini's
// usage, and the call escalates to gpt-4o, whose answer the client gets:
// the team pays both answers, and the run's report has the call once, at
// both costs, gpt-4o-mini's attempt under its model. The last model's
// answer is passed on whatever it is. A stream is held back until its
// final event and checked the same way: the client reads one stream, of
// the model whose answer passed.
func TestGatewayResponsesCascade(t *testing.T) {
	up := newModelUpstream(t)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", routingPolicies(t, "cascade: {models: [gpt-4o-mini, gpt-4o]}"), ""))
	setBody := func(model, body string) {
		up.mu.Lock()
		defer up.mu.Unlock()
		up.body[model] = body
	}
	const tools = `,"tools":[{"type":"function","name":"check_disk","parameters":{"type":"object","properties":{"host":{"type":"string"}},"required":["host"]}}]`
	call := func(name, extra string) (string, string) {
		t.Helper()
		r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4.1","input":"Check the disks."`+extra+`}`, "X-Run-Id", "run-"+name)
		got, _ := io.ReadAll(r.Body)
		var answer struct {
			Model string `json:"model"`
		}
		if r.StatusCode != 200 || json.Unmarshal(got, &answer) != nil {
			t.Fatalf("%s: %d %s", name, r.StatusCode, got)
		}
		return answer.Model, string(got)
	}
	report := func(name string) gateway.RunReport {
		t.Helper()
		var rep gateway.RunReport
		if err := json.NewDecoder(e.do(t, "GET", "/v1/runs/run-"+name, devopsKey, "").Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// gpt-4o-mini's usage: 1,000 input tokens at $0.15/M, 100 output at
	// $0.60/M; gpt-4o's: at $2.50/M and $10/M.
	const mini, strong = 210_000_000, 3_500_000_000

	// An answer that passes: passed on, gpt-4o never asked.
	n := up.count()
	if model, _ := call("pass", ""); model != "gpt-4o-mini" {
		t.Fatalf("a good answer of gpt-4o-mini: the client got %s's", model)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini" {
		t.Fatalf("the upstream got %v, want gpt-4o-mini alone", s)
	}
	if s := e.spend(t); s.SpentUSD != "0.000210" || s.ReservedUSD != "0.000000" {
		t.Fatalf("spend %+v, want gpt-4o-mini's $0.000210", s)
	}
	spent := int64(mini)

	for _, c := range []struct {
		name, check, answer, extra string
	}{
		{"empty", "non_empty", cascadeAnswer("gpt-4o-mini", "completed", ""), ""},
		{"blank", "non_empty", cascadeAnswer("gpt-4o-mini", "completed", `{"type":"message","id":"m","status":"completed","role":"assistant","content":[{"type":"output_text","text":"  ","annotations":[]}]}`), ""},
		{"cut", "finish_reason", strings.Replace(cascadeAnswer("gpt-4o-mini", "incomplete", `{"type":"message","id":"m","status":"incomplete","role":"assistant","content":[{"type":"output_text","text":"The disk","annotations":[]}]}`),
			`"status":"incomplete",`, `"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},`, 1), ""},
		{"bad_json", "valid_tool_json", cascadeAnswer("gpt-4o-mini", "completed", `{"type":"function_call","id":"fc","call_id":"call_1","name":"check_disk","arguments":"{\"host\":"}`), tools},
		{"missing", "valid_tool_json", cascadeAnswer("gpt-4o-mini", "completed", `{"type":"function_call","id":"fc","call_id":"call_1","name":"check_disk","arguments":"{\"path\":\"/var\"}"}`), tools},
	} {
		setBody("gpt-4o-mini", c.answer)
		n := up.count()
		model, got := call(c.name, c.extra)
		if model != "gpt-4o" || !strings.Contains(got, "from gpt-4o") {
			t.Fatalf("%s: the client got %s", c.name, got)
		}
		if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini,gpt-4o" {
			t.Fatalf("%s: the upstream got %v, want gpt-4o-mini then gpt-4o", c.name, s)
		}
		spent += mini + strong
		if s := e.spend(t); s.SpentUSD != usdOf(spent) || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
			t.Fatalf("%s: spend %+v, want %s: both answers, nothing held", c.name, s, usdOf(spent))
		}
		rep := report(c.name)
		if rep.Calls != 1 || rep.FailedCalls != 0 || rep.CostPico != mini+strong ||
			rep.ByModel["gpt-4o-mini"].CostPico != mini || rep.ByModel["gpt-4o"].CostPico != strong {
			t.Fatalf("%s: run report %+v by model %+v: want one call at both answers' cost, each under its model", c.name, rep.RunFigures, rep.ByModel)
		}
	}

	// A model that fails (a 503; the team has no fallback) escalates too,
	// and costs nothing.
	setBody("gpt-4o-mini", "")
	up.setFail("gpt-4o-mini", http.StatusServiceUnavailable)
	n = up.count()
	if model, _ := call("failed", ""); model != "gpt-4o" {
		t.Fatalf("gpt-4o-mini failing: the client got %s's answer", model)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("gpt-4o-mini failing: the upstream got %v", s)
	}
	spent += strong
	if rep := report("failed"); rep.Calls != 1 || rep.CostPico != strong {
		t.Fatalf("gpt-4o-mini failing: run report %+v", rep.RunFigures)
	}
	up.setFail("gpt-4o-mini", 0)

	// The last model's answer is passed on as it is, checked or not.
	setBody("gpt-4o-mini", cascadeAnswer("gpt-4o-mini", "completed", ""))
	setBody("gpt-4o", cascadeAnswer("gpt-4o", "completed", ""))
	n = up.count()
	if model, _ := call("last", ""); model != "gpt-4o" {
		t.Fatalf("the last model's empty answer: the client got %s's", model)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("the upstream got %v, want gpt-4o-mini then gpt-4o, once each", s)
	}
	spent += mini + strong

	// A stream is held back until its final event, and checked as a JSON
	// answer is: gpt-4o-mini's good stream is passed on whole.
	setBody("gpt-4o-mini", "")
	setBody("gpt-4o", "")
	n = up.count()
	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4.1","input":"Check the disks.","stream":true}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), `"delta":"from gpt-4o-mini"`) ||
		!strings.Contains(string(got), "event: response.completed") {
		t.Fatalf("a stream: %d %s", r.StatusCode, got)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini" {
		t.Fatalf("a stream: the upstream got %v, want gpt-4o-mini alone", s)
	}
	spent += mini
	if s := e.spend(t); s.SpentUSD != usdOf(spent) || s.ReservedUSD != "0.000000" {
		t.Fatalf("spend %+v, want %s", s, usdOf(spent))
	}
	// An empty stream of gpt-4o-mini is not shown: the client, openai-go's
	// streaming reader, reads gpt-4o's stream alone.
	setBody("gpt-4o-mini", "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":"+
		cascadeAnswer("gpt-4o-mini", "in_progress", "")+"}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":"+
		cascadeAnswer("gpt-4o-mini", "completed", "")+"}\n\n")
	n = up.count()
	if text, final, completed, err := streamResponses(t, e, "gpt-4.1", "Check the disks."); err != nil || text != "from gpt-4o" ||
		completed != 1 || final.Model != "gpt-4o" {
		t.Fatalf("an escalated stream: %q, %d response.completed, the last of %q, err %v; want gpt-4o's stream alone", text, completed, final.Model, err)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("an escalated stream: the upstream got %v, want gpt-4o-mini then gpt-4o", s)
	}
	spent += mini + strong
	if s := e.spend(t); s.SpentUSD != usdOf(spent) || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("spend %+v, want %s: both answers, nothing held", s, usdOf(spent))
	}
}

// TestGatewayResponsesCascadePassesACutAnswerCut: an answer of the
// cascade's first model that the upstream cuts (its connection aborted
// before the end of its body) cannot be checked: it is passed on as the
// gateway passes on a cut answer — cut for the client too, or, when the
// cut came before the gateway began to answer, as a 502 error — never as
// a whole answer; and it is not escalated.
func TestGatewayResponsesCascadePassesACutAnswerCut(t *testing.T) {
	up := &rawUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(ts.Close)
	g := startFuzzGateway(t, ts.URL+"/v1", routingPolicies(t, "cascade: {models: [gpt-4o-mini, gpt-4o]}"), "")
	answer := cascadeAnswer("gpt-4o-mini", "completed", "") // would fail non_empty, were it whole
	for _, length := range []bool{false, true} {
		up.set(upstreamAnswer{status: 200, contentType: "application/json", body: []byte(answer[:len(answer)/2]), cut: true, length: length})
		a, cut := g.postMayCut(t, "/v1/responses", devopsKey, []byte(`{"model":"gpt-4o-mini","input":"Check the disks."}`))
		g.checkNoPanic(t)
		if !cut && (a.status < 500 || !strings.Contains(string(a.body), `"error"`)) {
			t.Fatalf("Content-Length %v: a cut answer reached the client neither cut nor as an error: %d %q", length, a.status, a.body)
		}
		if n := up.served(); n != 1 {
			t.Fatalf("Content-Length %v: the upstream was called %d times, want once: a cut answer is not escalated", length, n)
		}
	}
	// A stream cut before its final event: held back, then passed on as
	// the gateway passes a cut stream, ended by its error event.
	stream := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" +
		cascadeAnswer("gpt-4o-mini", "in_progress", "") + "}\n\nevent: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"The"
	up.set(upstreamAnswer{status: 200, contentType: "text/event-stream", body: []byte(stream), cut: true})
	a, cut := g.postMayCut(t, "/v1/responses", devopsKey, []byte(`{"model":"gpt-4o-mini","input":"Check the disks.","stream":true}`))
	g.checkNoPanic(t)
	if !cut && (a.status != 200 || !strings.HasPrefix(string(a.body), stream) || !strings.Contains(string(a.body), "event: error")) {
		t.Fatalf("a cut stream reached the client neither cut nor ended by the error event: %d %q", a.status, a.body)
	}
	if n := up.served(); n != 1 {
		t.Fatalf("a cut stream: the upstream was called %d times, want once", n)
	}
}

// TestGatewayResponsesRegeneratesFinalAnswers: a Responses call goes
// through its team's routing.regenerate_final as a chat call does. Routed
// to gpt-4o-mini (routing.default), a call whose answer is a final answer
// is sent again to gpt-4o without its tools: the client gets gpt-4o's
// answer — a stream, gpt-4o's stream alone —, the team pays both answers,
// and the run's report has the call once at both costs. An answer that
// calls a tool is passed on as it is.
func TestGatewayResponsesRegeneratesFinalAnswers(t *testing.T) {
	up := newModelUpstream(t)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", routingPolicies(t, "default: gpt-4o-mini", "regenerate_final: {enabled: true, model: gpt-4o}"), ""))
	const mini, strong = 210_000_000, 3_500_000_000
	const body = `{"model":"gpt-4.1","input":"Which hosts need cleanup?","tools":[{"type":"function","name":"check_disk","parameters":{"type":"object"}}],"tool_choice":"auto","parallel_tool_calls":false}`

	// A final answer: written again by gpt-4o, which gets no tools.
	n := up.count()
	r := e.do(t, "POST", "/v1/responses", devopsKey, body, "X-Run-Id", "run-regen")
	got, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !strings.Contains(string(got), `"text":"from gpt-4o"`) {
		t.Fatalf("a final answer: %d %s, want gpt-4o's", r.StatusCode, got)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("the upstream got %v, want gpt-4o-mini then gpt-4o", s)
	}
	up.mu.Lock()
	first, again := up.reqs[n].body, up.reqs[n+1].body
	up.mu.Unlock()
	if first["tools"] == nil || again["tools"] != nil || again["tool_choice"] != nil || again["parallel_tool_calls"] != nil ||
		again["input"] != "Which hosts need cleanup?" {
		t.Fatalf("gpt-4o-mini got %v, gpt-4o %v: want the tools offered to the first only, the same input to both", first, again)
	}
	spent := int64(mini + strong)
	if s := e.spend(t); s.SpentUSD != usdOf(spent) || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("spend %+v, want %s: both answers, nothing held", s, usdOf(spent))
	}
	var rep gateway.RunReport
	if err := json.NewDecoder(e.do(t, "GET", "/v1/runs/run-regen", devopsKey, "").Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Calls != 1 || rep.FailedCalls != 0 || rep.CostPico != mini+strong ||
		rep.ByModel["gpt-4o-mini"].CostPico != mini || rep.ByModel["gpt-4o"].CostPico != strong {
		t.Fatalf("run report %+v by model %+v: want one call at both answers' cost", rep.RunFigures, rep.ByModel)
	}

	// A stream: gpt-4o-mini's is held back, the client reads gpt-4o's.
	n = up.count()
	if text, final, completed, err := streamResponses(t, e, "gpt-4.1", "Which hosts need cleanup?"); err != nil || text != "from gpt-4o" ||
		completed != 1 || final.Model != "gpt-4o" {
		t.Fatalf("a stream: %q, %d response.completed, the last of %q, err %v; want gpt-4o's stream alone", text, completed, final.Model, err)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("a stream: the upstream got %v", s)
	}
	spent += mini + strong

	// An answer that calls a tool is gpt-4o-mini's to give.
	up.mu.Lock()
	up.body["gpt-4o-mini"] = cascadeAnswer("gpt-4o-mini", "completed", `{"type":"function_call","id":"fc","call_id":"call_1","name":"check_disk","arguments":"{}"}`)
	up.mu.Unlock()
	n = up.count()
	r = e.do(t, "POST", "/v1/responses", devopsKey, body)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), `"name":"check_disk"`) {
		t.Fatalf("a tool call: %d %s, want gpt-4o-mini's", r.StatusCode, got)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini" {
		t.Fatalf("a tool call: the upstream got %v, want gpt-4o-mini alone", s)
	}
	spent += mini
	if s := e.spend(t); s.SpentUSD != usdOf(spent) || s.ReservedUSD != "0.000000" {
		t.Fatalf("spend %+v, want %s", s, usdOf(spent))
	}
}
