package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	goopenai "github.com/sashabaranov/go-openai"
)

// countedStore is an objectStore that counts every request it gets.
type countedStore struct {
	*objectStore
	n atomic.Int64
}

func (c *countedStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.objectStore.ServeHTTP(w, r)
}

// bodyIDsEnv is two gateways (a and b: one, or two replicas sharing
// Redis) in front of one counted object store.
func bodyIDsEnv(t *testing.T, redis bool) (up *countedStore, a, b string) {
	up = &countedStore{objectStore: newObjectStore()}
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)
	t.Setenv(upstreamEnv, upstreamKey)
	extra := ""
	if redis {
		_, prefix := testRedis(t)
		extra = "redis: {addr: " + redisAddr() + ", prefix: " + prefix + "}\n"
	}
	cfgPath := writeFiles(t, hs.URL+"/v1", isolatedPolicies, extra)
	a = serveFile(t, cfgPath).url
	b = a
	if redis {
		b = serveFile(t, cfgPath).url
	}
	return up, a, b
}

func goClient(url, key string) *goopenai.Client {
	c := goopenai.DefaultConfig(key)
	c.BaseURL = url + "/v1"
	return goopenai.NewClientWithConfig(c)
}

// refusedNotFound checks that err is the 404 with message want, through
// openai-go or go-openai.
func refusedNotFound(t *testing.T, what, want string, err error) {
	t.Helper()
	var ae *openai.Error
	var ge *goopenai.APIError
	switch {
	case errors.As(err, &ae):
		if ae.StatusCode == http.StatusNotFound && ae.Type == "invalid_request_error" && ae.Message == want {
			return
		}
	case errors.As(err, &ge):
		if ge.HTTPStatusCode == http.StatusNotFound && ge.Type == "invalid_request_error" && ge.Message == want {
			return
		}
	}
	t.Errorf("%s: %v, want a 404 %q", what, err, want)
}

// checkBodyIDsIsolated: devops' objects, made through a, named inside the
// bodies of payments' requests through b — through openai-go and
// go-openai — are refused with their family's 404 before the upstream;
// devops' same requests through b, naming its own, pass.
func checkBodyIDsIsolated(t *testing.T, up *countedStore, a, b string) {
	ctx := context.Background()
	devA, devB, payB := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
	goDev, goPay := goClient(b, devopsKey), goClient(b, paymentsKey)
	file, vs, asst, cntr := devA.create(0), devA.create(3), devA.create(9), devA.create(6)
	payVS, devVS2, payThread, devThread := payB.create(3), devB.create(3), payB.create(10), devB.create(10)
	evals := map[*objectAPI]string{payB: payB.create(8), devB: devB.create(8)}
	cntrs := map[*objectAPI]string{payB: payB.create(6), devB: devB.create(6)}
	fileMsg, vsMsg := fmt.Sprintf("No such File object: %s", file), fmt.Sprintf("No vector store found with id '%s'.", vs)
	asstMsg, cntrMsg := fmt.Sprintf("No assistant found with id '%s'.", asst), fmt.Sprintf("Container with id '%s' not found.", cntr)
	type call struct {
		what, want string
		// do makes the call as team (its client c, its go-openai g), its
		// own vector store and thread given.
		do func(c *objectAPI, g *goopenai.Client, vs, thread string) error
	}
	post := func(path string, body any) func(c *objectAPI, g *goopenai.Client, vs, thread string) error {
		return func(c *objectAPI, _ *goopenai.Client, vs, thread string) error {
			p := strings.NewReplacer("{vs}", vs, "{thread}", thread, "{eval}", evals[c]).Replace(path)
			var out json.RawMessage
			return c.c.Post(ctx, p, body, &out)
		}
	}
	calls := []call{
		{"openai-go adds a file to a vector store", fileMsg, func(c *objectAPI, _ *goopenai.Client, vs, _ string) error {
			_, err := c.c.VectorStores.Files.New(ctx, vs, openai.VectorStoreFileNewParams{FileID: file})
			return err
		}},
		{"go-openai adds a file to a vector store", fileMsg, func(_ *objectAPI, g *goopenai.Client, vs, _ string) error {
			_, err := g.CreateVectorStoreFile(ctx, vs, goopenai.VectorStoreFileRequest{FileID: file})
			return err
		}},
		{"go-openai adds a file batch to a vector store", fileMsg, func(_ *objectAPI, g *goopenai.Client, vs, _ string) error {
			_, err := g.CreateVectorStoreFileBatch(ctx, vs, goopenai.VectorStoreFileBatchRequest{FileIDs: []string{"file-unknown", file}})
			return err
		}},
		{"a vector store made with file_ids", fileMsg, post("vector_stores", map[string]any{"file_ids": []string{file}})},
		{"openai-go makes a batch of a file", fileMsg, func(c *objectAPI, _ *goopenai.Client, _, _ string) error {
			_, err := c.c.Batches.New(ctx, openai.BatchNewParams{InputFileID: file, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
				CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
			return err
		}},
		{"go-openai makes a batch of a file", fileMsg, func(_ *objectAPI, g *goopenai.Client, _, _ string) error {
			_, err := g.CreateBatch(ctx, goopenai.CreateBatchRequest{InputFileID: file, Endpoint: goopenai.BatchEndpointChatCompletions, CompletionWindow: "24h"})
			return err
		}},
		{"openai-go fine-tunes on a file", fileMsg, func(c *objectAPI, _ *goopenai.Client, _, _ string) error {
			_, err := c.c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: "gpt-4o-mini-2024-07-18", TrainingFile: file})
			return err
		}},
		{"go-openai fine-tunes validated on a file", fileMsg, func(_ *objectAPI, g *goopenai.Client, _, _ string) error {
			_, err := g.CreateFineTuningJob(ctx, goopenai.FineTuningJobRequest{Model: "gpt-4o-mini-2024-07-18", TrainingFile: "file-unknown", ValidationFile: file})
			return err
		}},
		{"a Responses call searches a vector store", vsMsg, func(c *objectAPI, _ *goopenai.Client, _, _ string) error {
			_, err := c.c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("search")},
				Tools: []responses.ToolUnionParam{responses.ToolParamOfFileSearch([]string{vs})}})
			return err
		}},
		{"a Responses call reads an input file", fileMsg, func(c *objectAPI, _ *goopenai.Client, _, _ string) error {
			_, err := c.c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfMessage(responses.ResponseInputMessageContentListParam{
						{OfInputFile: &responses.ResponseInputFileParam{FileID: openai.String(file)}},
					}, responses.EasyInputMessageRoleUser)}}})
			return err
		}},
		{"a Responses call's code interpreter in a container", cntrMsg, post("responses", map[string]any{"model": "gpt-4o-mini", "input": "run",
			"tools": []any{map[string]any{"type": "code_interpreter", "container": cntr}}})},
		{"a chat call reads a file part", fileMsg, func(c *objectAPI, _ *goopenai.Client, _, _ string) error {
			_, err := c.c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
					openai.TextContentPart("read it"),
					openai.FileContentPart(openai.ChatCompletionContentPartFileFileParam{FileID: openai.String(file)}),
				})}})
			return err
		}},
		{"an assistant's code interpreter files", fileMsg, post("assistants", map[string]any{"model": "gpt-4o-mini",
			"tool_resources": map[string]any{"code_interpreter": map[string]any{"file_ids": []string{file}}}})},
		{"an assistant's file search", vsMsg, post("assistants", map[string]any{"model": "gpt-4o-mini",
			"tool_resources": map[string]any{"file_search": map[string]any{"vector_store_ids": []string{vs}}}})},
		{"a thread's file search", vsMsg, post("threads", map[string]any{
			"tool_resources": map[string]any{"file_search": map[string]any{"vector_store_ids": []string{vs}}}})},
		{"a message's attachment", fileMsg, post("threads/{thread}/messages", map[string]any{"role": "user", "content": "see",
			"attachments": []any{map[string]any{"file_id": file, "tools": []any{map[string]any{"type": "file_search"}}}}})},
		{"go-openai runs a thread with an assistant", asstMsg, func(_ *objectAPI, g *goopenai.Client, _, thread string) error {
			_, err := g.CreateRun(ctx, thread, goopenai.RunRequest{AssistantID: asst})
			return err
		}},
		{"a run's tool resources", fileMsg, post("threads/runs", map[string]any{"assistant_id": "asst_unknown",
			"tool_resources": map[string]any{"code_interpreter": map[string]any{"file_ids": []string{file}}}})},
		{"a container made of files", fileMsg, post("containers", map[string]any{"name": "c", "file_ids": []string{file}})},
		{"an eval run on a file", fileMsg, post("evals/{eval}/runs", map[string]any{"data_source": map[string]any{"type": "jsonl",
			"source": map[string]any{"type": "file_id", "id": file}}})},
		{"openai-go adds a file to a container by its form's file_id", fileMsg, func(c *objectAPI, _ *goopenai.Client, _, _ string) error {
			_, err := c.c.Containers.Files.New(ctx, cntrs[c], openai.ContainerFileNewParams{FileID: openai.String(file)})
			return err
		}},
		{"a JSON image edit of a file", fileMsg, post("images/edits", map[string]any{"model": "gpt-image-1", "prompt": "a hat",
			"images": []any{map[string]any{"image_url": "https://example.com/a.png"}, map[string]any{"file_id": file}}})},
		{"a JSON image edit's mask", fileMsg, post("images/edits", map[string]any{"model": "gpt-image-1", "prompt": "a hat",
			"images": []any{map[string]any{"image_url": "https://example.com/a.png"}}, "mask": map[string]any{"file_id": file}})},
	}
	for _, c := range calls {
		before := up.n.Load()
		refusedNotFound(t, "payments: "+c.what, c.want, c.do(payB, goPay, payVS, payThread))
		if n := up.n.Load() - before; n != 0 {
			t.Errorf("payments: %s: the upstream got %d requests", c.what, n)
		}
		before = up.n.Load()
		if err := c.do(devB, goDev, devVS2, devThread); err != nil {
			t.Errorf("devops: %s: %v", c.what, err)
		}
		if up.n.Load() == before {
			t.Errorf("devops: %s: the upstream was not asked", c.what)
		}
	}
}

// TestGatewayRefusesAnotherTeamsIDsInBodies: an object another team made,
// named inside a request's body — a file added to a vector store, a
// batch's input file, a fine-tuning job's files, a Responses call's vector
// stores, input file or container, a chat call's file part, an
// assistant's, a thread's or a run's tool resources, a message's
// attachment, a run's assistant, a container's files, an eval run's file
// — is refused with the 404 of its family before the upstream. Before,
// every one of these reached the upstream (payments used devops' file).
func TestGatewayRefusesAnotherTeamsIDsInBodies(t *testing.T) {
	up, a, b := bodyIDsEnv(t, false)
	checkBodyIDsIsolated(t, up, a, b)
}

// TestGatewayRefusesAnotherTeamsIDsInBodiesOverReplicas: the same, the
// objects made through one replica, named through another sharing Redis.
func TestGatewayRefusesAnotherTeamsIDsInBodiesOverReplicas(t *testing.T) {
	up, a, b := bodyIDsEnv(t, true)
	checkBodyIDsIsolated(t, up, a, b)
}

// hostileName writes name as a JSON string's contents with random ASCII
// letters escaped (\u00XX), as a hostile client may.
func hostileName(r *rand.Rand, name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, `\u%04x`, name[i])
		} else {
			b.WriteByte(name[i])
		}
	}
	return b.String()
}

// TestGatewayRefusesBodiesNamingAnotherTeamsIDsExactly: random JSON
// bodies, posted through openai-go to random paths (a vector store's
// files, vector stores, batches, fine-tuning jobs, assistants, threads,
// containers, Responses calls), naming a random mix of payments' own,
// devops' and unknown files, vector stores, assistants and containers —
// at any depth, their members' names escaped at random, given twice,
// as one string or an array — and devops' ids where no id is read (a
// text, metadata, a member of another name), are refused with the 404
// of the first of devops' ids the body names exactly when it names one
// in an id's member, without the upstream asked; else they pass.
func TestGatewayRefusesBodiesNamingAnotherTeamsIDsExactly(t *testing.T) {
	for _, redis := range []bool{false, true} {
		t.Run(fmt.Sprint("redis=", redis), func(t *testing.T) {
			up, a, b := bodyIDsEnv(t, redis)
			ctx := context.Background()
			dev, pay := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
			// ids[family][0]: payments', [1]: devops', [2]: unknown
			type ids [3][]string
			fams := map[string]int{"file": 0, "vs": 3, "asst": 9, "cntr": 6}
			made := map[string]*ids{}
			for name, fam := range fams {
				m := &ids{}
				for range 2 {
					m[0] = append(m[0], pay.create(fam))
					m[1] = append(m[1], dev.create(fam))
					m[2] = append(m[2], fmt.Sprintf("%sunknown%d", objectFamilies[fam].prefix, len(m[2])))
				}
				made[name] = m
			}
			refusals := map[string]bool{} // the 404s of devops' ids
			for name, fam := range fams {
				for _, id := range made[name][1] {
					refusals[fmt.Sprintf(objectFamilies[fam].notFound, id)] = true
				}
			}
			members := map[string]string{"file_id": "file", "file_ids": "file", "input_file_id": "file", "training_file": "file",
				"validation_file": "file", "vector_store_ids": "vs", "assistant_id": "asst", "container": "cntr"}
			var names []string
			for n := range members {
				names = append(names, n)
			}
			slices.Sort(names)
			payVS := made["vs"][0][0]
			paths := []string{"vector_stores/" + payVS + "/files", "vector_stores", "batches", "fine_tuning/jobs", "assistants", "threads", "containers", "responses"}
			seed := rand.Uint64()
			r := rand.New(rand.NewPCG(seed, 7))
			for i := range 150 {
				others := 0 // devops' ids in an id's member
				var value func(depth int) string
				value = func(depth int) string {
					switch k := r.IntN(10); {
					case k < 4 && depth < 4: // an object
						var parts []string
						for range r.IntN(4) {
							switch j := r.IntN(6); {
							case j < 3: // an id's member, maybe twice
								name := names[r.IntN(len(names))]
								fam := made[members[name]]
								for range 1 + r.IntN(2) {
									var vals []string
									for range 1 + r.IntN(3) {
										who := r.IntN(3)
										if who == 1 {
											others++
										}
										vals = append(vals, strconvQuote(fam[who][r.IntN(2)]))
									}
									v := vals[0]
									if len(vals) > 1 || strings.HasSuffix(name, "ids") && r.IntN(2) == 0 {
										v = "[" + strings.Join(vals, ",") + "]"
									}
									parts = append(parts, `"`+hostileName(r, name)+`":`+v)
								}
							case j == 3: // devops' id where no id is read
								decoy := made["file"][1][0]
								parts = append(parts, []string{`"text":` + strconvQuote(decoy), `"metadata":{"file_id":` + strconvQuote(decoy) + `}`,
									`"file_idx":` + strconvQuote(decoy), `"File_Id":` + strconvQuote(decoy)}[r.IntN(4)])
							default:
								parts = append(parts, fmt.Sprintf(`"k%d":%s`, r.IntN(5), value(depth+1)))
							}
						}
						return "{" + strings.Join(parts, ",") + "}"
					case k < 6 && depth < 4: // an array
						var parts []string
						for range r.IntN(3) {
							parts = append(parts, value(depth+1))
						}
						return "[" + strings.Join(parts, ",") + "]"
					case k < 8:
						return strconvQuote(fmt.Sprint("v", r.IntN(100)))
					default:
						return fmt.Sprint(r.IntN(1000))
					}
				}
				path := paths[r.IntN(len(paths))]
				body := `{"model":"gpt-4o-mini","input":"hi","x":` + value(0) + `}`
				before := up.n.Load()
				var out json.RawMessage
				err := pay.c.Post(ctx, path, nil, &out, option.WithRequestBody("application/json", []byte(body)))
				asked := up.n.Load() > before
				var ae *openai.Error
				refused := errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
				if refused != (others > 0) || refused == asked {
					t.Fatalf("seed %d, body %d to %s: %s: %v (upstream asked %v), want refused %v", seed, i, path, body, err, asked, others > 0)
				}
				if !refused && err != nil {
					t.Fatalf("seed %d, body %d to %s: %s: %v", seed, i, path, body, err)
				}
				if refused && !refusals[ae.Message] {
					t.Fatalf("seed %d, body %d to %s: %s: refused %q, not the 404 of one of devops' ids", seed, i, path, body, ae.Message)
				}
			}
		})
	}
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// succeedJob makes the store's fine-tuning job id succeed with model.
func (u *objectStore) succeedJob(id, model string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.objs[id] = strings.TrimSuffix(u.objs[id], "}") + `,"status":"succeeded","fine_tuned_model":` + strconvQuote(model) + "}"
}

// checkFineTunedModelsIsolated: the fine-tuned models of devops' jobs,
// seen through the gateway (one job retrieved, one listed), are refused
// to payments — a chat call (openai-go, go-openai, a stream), a Responses
// call, a legacy completion, a fine-tuning job on top of it, the model's
// retrieval and deletion — with OpenAI's 404 for a model it does not
// know, before the upstream; devops uses them.
func checkFineTunedModelsIsolated(t *testing.T, up *countedStore, a, b string) {
	ctx := context.Background()
	devA, devB, payB := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
	got, listed := devA.create(7), devA.create(7)
	gotModel, listedModel := "ft:gpt-4o-mini-2024-07-18:org::"+got, "ft:gpt-4o-mini-2024-07-18:org:custom:"+listed
	up.succeedJob(got, gotModel)
	up.succeedJob(listed, listedModel)
	if j, err := devA.c.FineTuning.Jobs.Get(ctx, got); err != nil || j.FineTunedModel != gotModel {
		t.Fatalf("devops retrieves its job: %+v %v", j, err)
	}
	if l := devA.list(7, 0, false); !slices.Contains(l, listed) {
		t.Fatalf("devops lists its jobs: %v", l)
	}
	for _, model := range []string{gotModel, listedModel} {
		want := "The model `" + model + "` does not exist or you do not have access to it."
		calls := []struct {
			what string
			do   func(c *objectAPI, g *goopenai.Client) error
		}{
			{"openai-go chat", func(c *objectAPI, _ *goopenai.Client) error {
				_, err := c.c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model,
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
				return err
			}},
			{"go-openai chat stream", func(_ *objectAPI, g *goopenai.Client) error {
				s, err := g.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: model, Stream: true,
					Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
				if err == nil {
					defer s.Close()
					for {
						if _, err = s.Recv(); err != nil {
							break
						}
					}
					if errors.Is(err, io.EOF) {
						err = nil
					}
				}
				return err
			}},
			{"a Responses call", func(c *objectAPI, _ *goopenai.Client) error {
				_, err := c.c.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
				return err
			}},
			{"go-openai legacy completion", func(_ *objectAPI, g *goopenai.Client) error {
				_, err := g.CreateCompletion(ctx, goopenai.CompletionRequest{Model: model, Prompt: "hi"})
				var ae *goopenai.APIError
				if errors.As(err, &ae) && ae.Message == "unknown path" {
					return nil // the scripted upstream has no completions: asked
				}
				return err
			}},
			{"a fine-tuning job on it", func(c *objectAPI, _ *goopenai.Client) error {
				_, err := c.c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: openai.FineTuningJobNewParamsModel(model), TrainingFile: "file-unknown"})
				return err
			}},
			{"its retrieval", func(c *objectAPI, _ *goopenai.Client) error {
				_, err := c.c.Models.Get(ctx, model)
				var ae *openai.Error
				if errors.As(err, &ae) && ae.Message == "unknown path" {
					return nil
				}
				return err
			}},
		}
		for _, c := range calls {
			before := up.n.Load()
			refusedNotFound(t, "payments: "+c.what+" of "+model, want, c.do(payB, goClient(b, paymentsKey)))
			if n := up.n.Load() - before; n != 0 {
				t.Errorf("payments: %s of %s: the upstream got %d requests", c.what, model, n)
			}
			before = up.n.Load()
			if err := c.do(devB, goClient(b, devopsKey)); err != nil || up.n.Load() == before {
				t.Errorf("devops: %s of %s: %v (upstream asked %v)", c.what, model, err, up.n.Load() > before)
			}
		}
		before := up.n.Load()
		_, err := payB.c.Models.Delete(ctx, model)
		refusedNotFound(t, "payments deletes "+model, want, err)
		if n := up.n.Load() - before; n != 0 {
			t.Errorf("payments deletes %s: the upstream got %d requests", model, n)
		}
	}
}

// TestGatewayRefusesAnotherTeamsFineTunedModel: a model a devops
// fine-tuning job made (its fine_tuned_model, seen as devops retrieves or
// lists its job) is not payments' to call, continue or delete. Before,
// payments' chat call to devops' ft: model reached the upstream and was
// answered.
func TestGatewayRefusesAnotherTeamsFineTunedModel(t *testing.T) {
	up, a, b := bodyIDsEnv(t, false)
	checkFineTunedModelsIsolated(t, up, a, b)
}

// TestGatewayRefusesAnotherTeamsFineTunedModelOverReplicas: the same, the
// job seen through one replica, the model named through another.
func TestGatewayRefusesAnotherTeamsFineTunedModelOverReplicas(t *testing.T) {
	up, a, b := bodyIDsEnv(t, true)
	checkFineTunedModelsIsolated(t, up, a, b)
}
