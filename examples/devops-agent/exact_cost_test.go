package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// snapshotServer serves the example's scripted server behind a rewrite of
// every answer, as OpenAI's API answers: the model is named by its dated
// snapshot and half of each prompt (rounded down) is reported as cached.
func snapshotServer(t *testing.T) *httptest.Server {
	srv := newScriptedServer()
	t.Cleanup(srv.Close)
	dated := map[string]string{"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
	rewrite := func(obj map[string]any) {
		if m, ok := obj["model"].(string); ok && dated[m] != "" {
			obj["model"] = dated[m]
		}
		if u, ok := obj["usage"].(map[string]any); ok && u != nil {
			if p, ok := u["prompt_tokens"].(float64); ok {
				u["prompt_tokens_details"] = map[string]any{"cached_tokens": int(p) / 2}
			}
		}
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RequestURI = ""
		resp, err := srv.Transport().RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			var obj map[string]any
			body, _ := io.ReadAll(resp.Body)
			if json.Unmarshal(body, &obj) == nil {
				rewrite(obj)
				body, _ = json.Marshal(obj)
			}
			w.Write(body)
			return
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var obj map[string]any
			if data, ok := strings.CutPrefix(line, "data: "); ok && json.Unmarshal([]byte(data), &obj) == nil {
				rewrite(obj)
				b, _ := json.Marshal(obj)
				line = "data: " + string(b)
			}
			io.WriteString(w, line+"\n")
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}))
	t.Cleanup(proxy.Close)
	return proxy
}

// listPrice holds OpenAI's list prices in USD per 1M tokens (input, cached
// input, output), written out here rather than read from the catalog. (The
// langchaingo agent reports the model it asked for: langchaingo's
// response does not carry the served model's name.)
var listPrice = map[string][3]string{
	"gpt-4o-2024-08-06":      {"2.50", "1.25", "10.00"},
	"gpt-4o-mini-2024-07-18": {"0.15", "0.075", "0.60"},
	"gpt-4o":                 {"2.50", "1.25", "10.00"},
	"gpt-4o-mini":            {"0.15", "0.075", "0.60"},
}

var (
	rowRE   = regexp.MustCompile(`^(\d+)\s+(\S+)\s+\S+\s+(\d+)\s+(\d+)(?: \(\d+%\))?\s+(\d+)\s+(\$[0-9.]+)\s`)
	runRE   = regexp.MustCompile(`^run (\S+): \d+ calls, .*?, (\$[0-9.]+), llm`)
	modelRE = regexp.MustCompile(`^  (gpt-\S+): .*?(\$[0-9.]+)$`)
	// "  call 5: 2 attempts: gpt-4o-mini ok [771 in, 385 cached, 30 out, $0.0001] in 3ms → then gpt-4o ok [...] in 4ms"
	attemptRE = regexp.MustCompile(`(\S+) (?:ok|failed \([^)]*\)) \[(\d+) in, (\d+) cached, (\d+) out, (\$[0-9.]+)\]`)
	storyRE   = regexp.MustCompile(`^  call (\d+): \d+ attempts: `)
	costRE    = regexp.MustCompile(`^  (\S+)\s+routed (\$[0-9.]+)\s+strong-only (\$[0-9.]+)`)
)

// cost is list price × tokens for in input tokens of which c cached, and o
// output tokens, exactly.
func cost(price [3]string, in, c, o int64) *big.Rat {
	want := new(big.Rat)
	for i, n := range []int64{in - c, c, o} {
		p, _ := new(big.Rat).SetString(price[i])
		want.Add(want, p.Mul(p, big.NewRat(n, 1_000_000)))
	}
	return want
}

func dollars(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(strings.TrimPrefix(s, "$"))
	if !ok {
		t.Fatalf("not an amount: %q", s)
	}
	return r
}

// TestPrintedCostsAreListPriceTimesTokens runs the example against an
// OpenAI-compatible server that names dated snapshots and reports cached
// prompt tokens: every printed call cost is list price × tokens, exactly at
// the printed precision; each run's total, its per-model lines and the
// routed side of the strong-only comparison add up to its calls.
func TestPrintedCostsAreListPriceTimesTokens(t *testing.T) {
	proxy := snapshotServer(t)
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{mode: "both", task: "I'm out of disk space. Sort it out.",
		apiKey: "test-key", baseURL: proxy.URL + "/v1"}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	var (
		runID     string
		rows      int
		snapshots int
		cached    int64
		sum       = map[string]*big.Rat{}
		modelSum  = map[string]*big.Rat{}
		totals    = map[string]*big.Rat{}
		multi     = map[string]*big.Rat{} // run/call → printed cost of a call of several attempts
		attempts  int
	)
	for line := range strings.Lines(out.String()) {
		line = strings.TrimRight(line, "\n")
		if m := runRE.FindStringSubmatch(line); m != nil {
			runID = m[1]
			totals[runID], sum[runID], modelSum[runID] = dollars(t, m[2]), new(big.Rat), new(big.Rat)
			continue
		}
		if m := rowRE.FindStringSubmatch(line); m != nil && runID != "" {
			price, ok := listPrice[m[2]]
			if !ok {
				t.Fatalf("call answered by %q: %s", m[2], line)
			}
			if strings.Contains(m[2], "-20") {
				snapshots++
			}
			in, _ := strconv.ParseInt(m[3], 10, 64)
			c, _ := strconv.ParseInt(m[4], 10, 64)
			o, _ := strconv.ParseInt(m[5], 10, 64)
			want := cost(price, in, c, o)
			if strings.Contains(line, "regenerated") {
				// two attempts on two models: checked one by one on the
				// call's story line below
				want = dollars(t, m[6])
				multi[runID+"/"+m[1]] = want
			} else if got := dollars(t, m[6]); got.Cmp(want) != 0 {
				t.Errorf("%s: printed %s, list price × tokens is $%s", line, m[6], want.FloatString(12))
			}
			sum[runID].Add(sum[runID], want)
			rows++
			cached += c
			continue
		}
		if m := storyRE.FindStringSubmatch(line); m != nil && runID != "" {
			key := runID + "/" + m[1]
			want, ok := multi[key]
			if !ok {
				continue
			}
			got := new(big.Rat)
			for _, a := range attemptRE.FindAllStringSubmatch(line, -1) {
				price, ok := listPrice[a[1]]
				if !ok {
					t.Fatalf("attempt on %q: %s", a[1], line)
				}
				in, _ := strconv.ParseInt(a[2], 10, 64)
				c, _ := strconv.ParseInt(a[3], 10, 64)
				o, _ := strconv.ParseInt(a[4], 10, 64)
				if ac := cost(price, in, c, o); dollars(t, a[5]).Cmp(ac) != 0 {
					t.Errorf("%s: attempt on %s printed %s, list price × tokens is $%s", line, a[1], a[5], ac.FloatString(12))
				}
				got.Add(got, dollars(t, a[5]))
				attempts++
			}
			if got.Cmp(want) != 0 {
				t.Errorf("%s: attempts add up to $%s, the call printed $%s", line, got.FloatString(12), want.FloatString(12))
			}
			delete(multi, key)
			continue
		}
		if m := modelRE.FindStringSubmatch(line); m != nil && runID != "" {
			modelSum[runID].Add(modelSum[runID], dollars(t, m[2]))
			continue
		}
		if m := costRE.FindStringSubmatch(line); m != nil {
			if tot := totals[m[1]]; tot == nil || dollars(t, m[2]).Cmp(tot) != 0 {
				t.Errorf("%s: routed %s, the run report's total is %v", m[1], m[2], tot)
			}
			if dollars(t, m[3]).Cmp(dollars(t, m[2])) <= 0 {
				t.Errorf("%s: strong-only %s is not dearer than routed %s", m[1], m[3], m[2])
			}
		}
	}
	for key := range multi {
		t.Errorf("call %s of several attempts has no story line", key)
	}
	if rows < 10 || cached == 0 || snapshots == 0 || len(totals) < 2 || attempts == 0 {
		t.Fatalf("parsed %d call rows (%d cached tokens, %d dated snapshots), %d runs from:\n%s", rows, cached, snapshots, len(totals), out.String())
	}
	for id, tot := range totals {
		if tot.Cmp(sum[id]) != 0 || tot.Cmp(modelSum[id]) != 0 {
			t.Errorf("run %s: total %s, calls add up to $%s, models to $%s", id, tot.FloatString(12), sum[id].FloatString(12), modelSum[id].FloatString(12))
		}
	}
}
