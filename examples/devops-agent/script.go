package main

import (
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// The seed's DevOps agent, played by a scripted OpenAI-compatible server:
// the model asks for check_disk, then clean_logs, then answers.
const (
	diskReport  = "Disk Usage: 95% (CRITICAL). Large folder: /var/log"
	cleanReport = "Logs cleaned. Freed 20GB."
	finalAnswer = "Your disk was 95% full because of old logs in /var/log. I cleaned them and freed 20GB; usage is back to a safe level."
)

// newScriptedServer returns the embedded provider used when no API key is
// set. It needs no network: requests reach it through its in-memory
// transport.
func newScriptedServer() *openaitest.Server {
	srv := openaitest.New()
	withLatency := func(r openaitest.Reply, d time.Duration) openaitest.Reply {
		r.Latency = d
		r.ChunkLatency = d / 20
		return r
	}
	srv.On(openaitest.LastRole("tool"), openaitest.LastContains("Freed")).
		Reply(withLatency(openaitest.Text(finalAnswer), 40*time.Millisecond))
	srv.On(openaitest.LastRole("tool"), openaitest.LastContains("Disk Usage")).
		Reply(withLatency(openaitest.ToolCalls(openaitest.Call("call_clean", "clean_logs", `{"__arg1":"/var/log"}`)), 30*time.Millisecond))
	srv.On(openaitest.LastRole("user")).
		Reply(withLatency(openaitest.ToolCalls(openaitest.Call("call_disk", "check_disk", `{"__arg1":"/"}`)), 30*time.Millisecond))
	return srv
}
