package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestGatewayRefusesVectorStoreStorageOfABudget: a vector store's storage
// is billed by the GB-day on the upstream's key, which no team budget can
// hold, so a team with a budget gets the 403 unpoliced_endpoint for what
// adds to it — a vector store made, a file or a file batch added — before
// the upstream, as for the other billable endpoints the gateway does not
// police; what adds nothing (a search, a change of its name, a deletion,
// a file batch's cancellation, a list) passes; a team without a budget,
// or pass_unpoliced: true, passes them all. Before, a budgeted team made
// vector stores no budget saw.
func TestGatewayRefusesVectorStoreStorageOfABudget(t *testing.T) {
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n",
		"payments.yaml": "version: 1\nname: payments\n"}
	for _, pass := range []bool{false, true} {
		up := newObjectStore()
		hs := httptest.NewServer(up)
		t.Setenv(upstreamEnv, upstreamKey)
		extra := ""
		if pass {
			extra = "pass_unpoliced: true\n"
		}
		e := serveFile(t, writeFiles(t, hs.URL+"/v1", pols, extra))
		ctx := context.Background()
		dev, pay := ownerClient(e.url, devopsKey), ownerClient(e.url, paymentsKey)
		// payments, without a budget, makes a vector store and adds to it.
		vs, err := pay.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("payments")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pay.VectorStores.Files.New(ctx, vs.ID, openai.VectorStoreFileNewParams{FileID: "file-1"}); err != nil {
			t.Errorf("payments adds a file to its vector store: %v", err)
		}
		devVS, err := dev.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("devops")})
		refusedAt := func(what string, err error) {
			t.Helper()
			var ae *openai.Error
			refused := errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden && ae.Code == "unpoliced_endpoint"
			if !pass && !refused {
				t.Errorf("devops, with a budget, %s: %v, want the 403 unpoliced_endpoint", what, err)
			}
			if pass && err != nil {
				t.Errorf("devops %s with pass_unpoliced: %v", what, err)
			}
		}
		refusedAt("makes a vector store", err)
		if pass {
			vs = devVS // its own, to add to
		} else {
			// One made outside the gateway: adding to it adds storage too.
			up.mu.Lock()
			vs = &openai.VectorStore{ID: up.add(3, "")}
			up.mu.Unlock()
		}
		before := up.uses()
		_, err = dev.VectorStores.Files.New(ctx, vs.ID, openai.VectorStoreFileNewParams{FileID: "file-1"})
		refusedAt("adds a file to a vector store", err)
		_, err = dev.VectorStores.FileBatches.New(ctx, vs.ID, openai.VectorStoreFileBatchNewParams{FileIDs: []string{"file-1"}})
		refusedAt("adds a file batch to a vector store", err)
		if n := up.uses() - before; !pass && n != 0 {
			t.Errorf("the upstream got %d of devops' refused requests", n)
		}
		// What adds no storage passes.
		if _, err := dev.VectorStores.Search(ctx, vs.ID, openai.VectorStoreSearchParams{
			Query: openai.VectorStoreSearchParamsQueryUnion{OfString: openai.String("q")}}); err != nil {
			t.Errorf("devops searches a vector store: %v", err)
		}
		if _, err := dev.VectorStores.Update(ctx, vs.ID, openai.VectorStoreUpdateParams{Name: openai.String("renamed")}); err != nil {
			t.Errorf("devops renames a vector store: %v", err)
		}
		if _, err := dev.VectorStores.FileBatches.Cancel(ctx, vs.ID, "vsfb_1"); err != nil {
			t.Errorf("devops cancels a file batch: %v", err)
		}
		if _, err := dev.VectorStores.List(ctx, openai.VectorStoreListParams{}); err != nil {
			t.Errorf("devops lists its vector stores: %v", err)
		}
		if _, err := dev.VectorStores.Delete(ctx, vs.ID); err != nil {
			t.Errorf("devops deletes a vector store: %v", err)
		}
		hs.Close()
	}
}

// TestGatewayRefusesVectorStoresMadeByAnAssistantOrThreadOfABudget: an
// assistant or a thread made or changed with
// tool_resources.file_search.vector_stores makes those vector stores,
// whose storage is billed by the GB-day on the upstream's key, as POST
// /v1/vector_stores does: a team with a budget gets the 403
// unpoliced_endpoint before the upstream; naming vector stores that exist
// (vector_store_ids), or none, passes; a team without a budget passes.
// Before, all four requests that made vector stores reached the upstream.
func TestGatewayRefusesVectorStoresMadeByAnAssistantOrThreadOfABudget(t *testing.T) {
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n",
		"payments.yaml": "version: 1\nname: payments\n"}
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", pols, ""))
	ctx := context.Background()
	dev, pay := ownerClient(e.url, devopsKey), ownerClient(e.url, paymentsKey)
	makes := map[string]any{"model": "gpt-4o-mini", "tool_resources": map[string]any{"file_search": map[string]any{
		"vector_stores": []any{map[string]any{"file_ids": []string{"file-1"}}}}}}
	names := map[string]any{"model": "gpt-4o-mini", "tool_resources": map[string]any{"file_search": map[string]any{
		"vector_store_ids": []string{"vs_1"}}}}
	var asst, thread struct {
		ID string `json:"id"`
	}
	if err := dev.Post(ctx, "assistants", names, &asst); err != nil {
		t.Fatalf("devops makes an assistant of existing vector stores: %v", err)
	}
	if err := dev.Post(ctx, "threads", map[string]any{}, &thread); err != nil {
		t.Fatalf("devops makes a thread: %v", err)
	}
	before := up.uses()
	for _, path := range []string{"assistants", "assistants/" + asst.ID, "threads", "threads/" + thread.ID} {
		var out json.RawMessage
		err := dev.Post(ctx, path, makes, &out)
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden || ae.Code != "unpoliced_endpoint" {
			t.Errorf("devops, with a budget, POST /v1/%s making a vector store: %s %v, want the 403 unpoliced_endpoint", path, out, err)
		}
		if err := pay.Post(ctx, strings.Split(path, "/")[0], makes, &out); err != nil {
			t.Errorf("payments, without a budget, POST /v1/%s making a vector store: %v", path, err)
		}
	}
	if n := up.uses(); n != before {
		t.Errorf("the upstream got %d of devops' refused requests", n-before)
	}
	if err := dev.Post(ctx, "assistants/"+asst.ID, names, &asst); err != nil {
		t.Errorf("devops changes its assistant to existing vector stores: %v", err)
	}
}
