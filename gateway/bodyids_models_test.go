package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// checkpointStore is an object store that also serves a fine-tuning
// job's checkpoints (GET /v1/fine_tuning/jobs/{id}/checkpoints), each
// named ft:…:{job}:ckpt-step-{n}, as OpenAI's.
type checkpointStore struct{ *countedStore }

func checkpointOf(job string, step int) string {
	return fmt.Sprintf("ft:gpt-4o-mini-2024-07-18:org::%s:ckpt-step-%d", job, step)
}

func (c checkpointStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/fine_tuning/jobs/")
	if job, sub, _ := strings.Cut(rest, "/"); ok && r.Method == http.MethodGet && sub == "checkpoints" {
		c.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		var data []string
		for i, step := range []int{10, 20} {
			data = append(data, fmt.Sprintf(`{"object":"fine_tuning.job.checkpoint","id":"ftckpt_%s%d","created_at":1,"fine_tuned_model_checkpoint":%q,"step_number":%d,"metrics":{},"fine_tuning_job_id":%q}`,
				job, i, checkpointOf(job, step), step, job))
		}
		fmt.Fprintf(w, `{"object":"list","data":[%s],"first_id":"ftckpt_%s0","last_id":"ftckpt_%s1","has_more":false}`, strings.Join(data, ","), job, job)
		return
	}
	c.countedStore.ServeHTTP(w, r)
}

// ftModel is the fine-tuned model of team's job in the models test.
func ftModel(team string) string { return "ft:gpt-4o-mini-2024-07-18:org::" + team }

// checkFineTunedModelsListedToTheirTeam (fineTunedModelsEnv): each
// team's GET /v1/models (openai-go) lists its own fine-tuned model and
// the one no team's job made, not the other team's; the other's
// retrieval is refused without the upstream.
func checkFineTunedModelsListedToTheirTeam(t *testing.T, redis bool) {
	up, b, _ := fineTunedModelsEnv(t, redis)
	ctx := context.Background()
	nobody := ftModel("nobody")
	for _, c := range []*objectAPI{newObjectAPI(t, b, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")} {
		other := "payments"
		if c.as == "payments" {
			other = "devops"
		}
		page, err := c.c.Models.List(ctx)
		if err != nil {
			t.Fatalf("%s lists the models: %v", c.as, err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if !slices.Contains(ids, ftModel(c.as)) || !slices.Contains(ids, nobody) || !slices.Contains(ids, "gpt-4o-mini") {
			t.Errorf("%s lists %v: want its own fine-tuned model, the one no team made and gpt-4o-mini", c.as, ids)
		}
		if slices.Contains(ids, ftModel(other)) {
			t.Errorf("%s lists %v: %s's fine-tuned model is in it", c.as, ids, other)
		}
		before := up.n.Load()
		_, err = c.c.Models.Get(ctx, ftModel(other))
		refusedNotFound(t, c.as+" retrieves "+other+"'s model", "The model `"+ftModel(other)+"` does not exist or you do not have access to it.", err)
		if up.n.Load() != before {
			t.Errorf("%s retrieves %s's model: the upstream was asked", c.as, other)
		}
	}
}

// fineTunedModelsEnv: the upstream declares three fine-tuned models (the
// gateway file's models); devops' and payments' jobs made two, seen as
// each team retrieves its job through gateway a, and a third no team's
// job made; devops lists its job's checkpoints through a. b is a, or a
// replica sharing Redis.
func fineTunedModelsEnv(t *testing.T, redis bool) (up checkpointStore, b, devJob string) {
	up = checkpointStore{&countedStore{objectStore: newObjectStore()}}
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)
	t.Setenv(upstreamEnv, upstreamKey)
	extra := ""
	if redis {
		_, prefix := testRedis(t)
		extra = "redis: {addr: " + redisAddr() + ", prefix: " + prefix + "}\n"
	}
	cfgPath := writeFiles(t, hs.URL+"/v1", isolatedPolicies, extra)
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	nobody := ftModel("nobody")
	cfg = []byte(strings.Replace(string(cfg), "models: [gpt-4o-mini, gpt-4o]",
		fmt.Sprintf("models: [gpt-4o-mini, gpt-4o, %q, %q, %q]", ftModel("devops"), ftModel("payments"), nobody), 1))
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	a := serveFile(t, cfgPath).url
	b = a
	if redis {
		b = serveFile(t, cfgPath).url
	}
	ctx := context.Background()
	devA, payA := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, a, paymentsKey, "payments")
	jobs := map[*objectAPI]string{}
	for _, c := range []*objectAPI{devA, payA} {
		job := c.create(7)
		jobs[c] = job
		up.succeedJob(job, ftModel(c.as))
		if j, err := c.c.FineTuning.Jobs.Get(ctx, job); err != nil || j.FineTunedModel != ftModel(c.as) {
			t.Fatalf("%s retrieves its job: %+v %v", c.as, j, err)
		}
	}
	devJob = jobs[devA]
	page, err := devA.c.FineTuning.Jobs.Checkpoints.List(ctx, devJob, openai.FineTuningJobCheckpointListParams{})
	if err != nil || len(page.Data) != 2 || page.Data[0].FineTunedModelCheckpoint != checkpointOf(devJob, 10) {
		t.Fatalf("devops lists its job's checkpoints: %+v %v", page, err)
	}
	return up, b, devJob
}

// checkCheckpointsKeptToTheirTeam: a job's checkpoints, listed by its
// team (GET /v1/fine_tuning/jobs/{id}/checkpoints, openai-go), are its
// team's models: refused to the other team as a chat call's model,
// without the upstream; its team calls them.
func checkCheckpointsKeptToTheirTeam(t *testing.T, redis bool) {
	up, b, devJob := fineTunedModelsEnv(t, redis)
	ctx := context.Background()
	// The checkpoints of devops' job: payments is refused them, devops
	// is not.
	for _, step := range []int{10, 20} {
		ckpt := checkpointOf(devJob, step)
		call := func(c *objectAPI) error {
			_, err := c.c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: ckpt,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			return err
		}
		before := up.n.Load()
		refusedNotFound(t, "payments calls devops' checkpoint "+ckpt, "The model `"+ckpt+"` does not exist or you do not have access to it.",
			call(newObjectAPI(t, b, paymentsKey, "payments")))
		if up.n.Load() != before {
			t.Errorf("payments calls devops' checkpoint %s: the upstream was asked", ckpt)
		}
		before = up.n.Load()
		if err := call(newObjectAPI(t, b, devopsKey, "devops")); err != nil || up.n.Load() == before {
			t.Errorf("devops calls its checkpoint %s: %v (upstream asked %v)", ckpt, err, up.n.Load() > before)
		}
	}
}

// TestGatewayListsFineTunedModelsToTheirTeam: GET /v1/models lists
// another team's fine-tuned model no more than it serves it. Before, payments' list named devops'
// ft:…::devops model.
func TestGatewayListsFineTunedModelsToTheirTeam(t *testing.T) {
	checkFineTunedModelsListedToTheirTeam(t, false)
}

// TestGatewayListsFineTunedModelsToTheirTeamOverReplicas: the same, the
// jobs read through one replica, the models listed through another
// sharing Redis.
func TestGatewayListsFineTunedModelsToTheirTeamOverReplicas(t *testing.T) {
	checkFineTunedModelsListedToTheirTeam(t, true)
}

// TestGatewayKeepsAJobsCheckpointsToItsTeam: the checkpoints of devops'
// job, seen as devops lists them, are refused to payments. Before,
// payments' chat call to devops' ckpt-step-10 reached the upstream.
func TestGatewayKeepsAJobsCheckpointsToItsTeam(t *testing.T) {
	checkCheckpointsKeptToTheirTeam(t, false)
}

// TestGatewayKeepsAJobsCheckpointsToItsTeamOverReplicas: the same over
// two replicas sharing Redis.
func TestGatewayKeepsAJobsCheckpointsToItsTeamOverReplicas(t *testing.T) {
	checkCheckpointsKeptToTheirTeam(t, true)
}
