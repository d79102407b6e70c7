package main

import (
	"fmt"
	"regexp"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// The seed's DevOps agent, played by a scripted OpenAI-compatible server:
// the model asks for check_disk and check_memory in one turn, reads the 2 MB
// syslog (stored as an artifact), greps it with read_artifact, asks for
// clean_logs, then answers.
const (
	diskReport  = "Disk Usage: 95% (CRITICAL). Large folder: /var/log"
	cleanReport = "Logs cleaned. Freed 20GB."
	finalAnswer = "Your disk was 95% full because of old logs in /var/log. I cleaned them and freed 20GB; usage is back to a safe level."
)

// What check_memory reports, and the line of the 2 MB syslog that explains it all.
const (
	memoryReport = "Memory: 41% used (6.6 of 16 GB). Largest process: postgres 2.1 GB"
	logErrorLine = "Nov 26 08:13:37 web-1 kernel: EXT4-fs error: No space left on device (/var/log)"
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
	srv.On(openaitest.LastRole("tool"), openaitest.LastContains("No space left")).
		Reply(withLatency(openaitest.ToolCalls(openaitest.Call("call_clean", "clean_logs", `{"__arg1":"/var/log"}`)), 30*time.Millisecond))
	// The log came back as an artifact excerpt: grep it by the id it names.
	var grep *openaitest.Rule
	grep = srv.On(openaitest.LastRole("tool"), func(r *openaitest.ChatRequest) bool {
		m := artifactRef.FindStringSubmatch(r.LastMessage().Content.String())
		if m == nil {
			return false
		}
		grep.Reply(withLatency(openaitest.ToolCalls(openaitest.Call("call_grep", "read_artifact",
			fmt.Sprintf(`{"id":%q,"grep":"error|No space"}`, m[1]))), 30*time.Millisecond))
		return true
	})
	srv.On(openaitest.LastRole("tool"), openaitest.LastContains("Memory:")).
		Reply(withLatency(openaitest.ToolCalls(openaitest.Call("call_logs", "read_logs", `{"__arg1":"web-1"}`)), 30*time.Millisecond))
	srv.On(openaitest.LastRole("user")).
		Reply(withLatency(openaitest.ToolCalls(
			openaitest.Call("call_disk", "check_disk", `{"__arg1":"/"}`),
			openaitest.Call("call_mem", "check_memory", `{"__arg1":"web-1"}`)), 30*time.Millisecond))
	return srv
}

// artifactRef finds the artifact id in a tool result's excerpt.
var artifactRef = regexp.MustCompile(`stored as artifact (art_[A-Z2-7]+)`)
