package gateway_test

import (
	"context"
	"fmt"
	"math/big"
	"net/http/httptest"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/internal/wiregen"
)

// TestGatewayBillsVendorShapesAsTheProviderBills: for each named server's
// shape that reports a usage (wiregen.Vendors: in every chunk, in Groq's
// x_groq, in a chunk of no choices, of nulls, floats, huge counts...),
// the gateway counts the call the tokens the provider reported — input,
// and output, reasoning included — and the team's spend (GET /v1/spend)
// is the cost it metered, rounded up to a micro-dollar once.
func TestGatewayBillsVendorShapesAsTheProviderBills(t *testing.T) {
	for _, v := range wiregen.Vendors {
		if v.Bill == nil || v.WantErr {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Setenv(upstreamEnv, upstreamKey)
			srv := &wiregen.Server{}
			c := v.Case()
			srv.Set(c.Wire)
			up := httptest.NewServer(srv)
			defer up.Close()
			e := serveFile(t, writeFiles(t, up.URL+"/v1", defaultPolicies, ""))
			cfg := goopenai.DefaultConfig(devopsKey)
			cfg.BaseURL = e.url + "/v1"
			_ = wiregen.Call(context.Background(), goopenai.NewClientWithConfig(cfg), c.Request(v.Name)) // go-openai may fail to decode the shape: the bill stands
			spent := e.spend(t).SpentUSD
			m := e.finalMetrics(t)
			in, _ := metricValue(t, m, "gen_ai_client_token_usage_sum", `gen_ai_operation_name="chat"`, `gen_ai_token_type="input"`)
			out, _ := metricValue(t, m, "gen_ai_client_token_usage_sum", `gen_ai_operation_name="chat"`, `gen_ai_token_type="output"`)
			if in != fmt.Sprint(float64(v.Bill.Prompt)) && in != fmt.Sprint(v.Bill.Prompt) || out != fmt.Sprint(float64(v.Bill.Completion)) && out != fmt.Sprint(v.Bill.Completion) {
				t.Errorf("tokens counted: input %s, output %s; the provider billed %+v", in, out, *v.Bill)
			}
			cost, _ := metricValue(t, m, "tokenwise_cost_total", `tokenwise_team="devops"`)
			pico, ok := new(big.Float).SetString(cost)
			if !ok {
				t.Fatalf("cost metric %q", cost)
			}
			micro := new(big.Float).Quo(pico, big.NewFloat(1e6))
			want, _ := micro.Int(nil)
			if new(big.Float).SetInt(want).Cmp(micro) < 0 {
				want.Add(want, big.NewInt(1))
			}
			if got := fmt.Sprintf("%d.%06d", new(big.Int).Quo(want, big.NewInt(1e6)), new(big.Int).Rem(want, big.NewInt(1e6))); got != spent {
				t.Errorf("/v1/spend $%s, metered %s pico ($%s)", spent, cost, got)
			}
		})
	}
}
