// Drives the tokenwise gateway with the official OpenAI Node client
// (TestGatewayWithOfficialNodeClient): a streamed tool-calling
// conversation with usage, its run's report, a 429 the client retries, and
// a budget refusal surfaced as the client's APIError. Prints one JSON
// object of what it saw.
import OpenAI from "openai";

const baseURL = process.env.GATEWAY_URL + "/v1";
// The devops agent's calls are one run (X-Run-Id), whose report it reads
// at the end (GET /v1/runs/{id}).
const runId = "node-agent-1";
const devops = new OpenAI({ apiKey: process.env.KEY_DEVOPS, baseURL, defaultHeaders: { "X-Run-Id": runId } });
const payments = new OpenAI({ apiKey: process.env.KEY_PAYMENTS, baseURL, maxRetries: 2 });
const out = {};

const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
}];
const messages = [{ role: "user", content: "What is the weather in Paris?" }];

// 1. A streamed turn that asks for a tool.
const calls = {};
let usage1 = null;
const s1 = await devops.chat.completions.create({
  model: "gpt-4o-mini", messages, tools, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of s1) {
  if (chunk.usage) usage1 = chunk.usage;
  for (const ch of chunk.choices) {
    for (const tc of ch.delta.tool_calls ?? []) {
      const c = (calls[tc.index] ??= { id: "", name: "", arguments: "" });
      if (tc.id) c.id = tc.id;
      if (tc.function?.name) c.name += tc.function.name;
      if (tc.function?.arguments) c.arguments += tc.function.arguments;
    }
  }
}
out.toolCalls = Object.values(calls);
out.usage1 = usage1;

// 2. The tool's result, and the streamed final answer.
messages.push({ role: "assistant", tool_calls: out.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) });
for (const c of out.toolCalls) messages.push({ role: "tool", tool_call_id: c.id, content: "sunny, 21°C" });
let answer = "";
let usage2 = null;
const s2 = await devops.chat.completions.create({
  model: "gpt-4o-mini", messages, tools, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of s2) {
  if (chunk.usage) usage2 = chunk.usage;
  for (const ch of chunk.choices) answer += ch.delta.content ?? "";
}
out.answer = answer;
out.usage2 = usage2;

// The run's report: both streamed turns, their tokens and exact cost.
const rep = await fetch(`${baseURL}/runs/${encodeURIComponent(runId)}`, { headers: { Authorization: `Bearer ${process.env.KEY_DEVOPS}` } });
out.report = { status: rep.status, body: await rep.json() };

// 3. A 429 from the upstream reaches the client, which retries it.
const r = await payments.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "retry me" }] });
out.retried = r.choices[0].message.content;

// 4. A budget refusal is the client's APIError (429, not retried).
try {
  await payments.chat.completions.create({
    model: "gpt-4o", max_tokens: 1000, messages: [{ role: "user", content: "long ".repeat(800) }],
  });
  out.budget = { error: null };
} catch (err) {
  out.budget = { isAPIError: err instanceof OpenAI.APIError, status: err.status, code: err.code, type: err.type, message: err.message };
}

console.log(JSON.stringify(out));
