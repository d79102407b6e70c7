// Reads Responses answers the tokenwise gateway replays from its cache
// with the official OpenAI Node client
// (TestGatewayReplaysResponsesToTheNodeClient): each request is sent
// first (kept in the cache), then streamed again through the client's
// stream helper, whose accumulator checks every event against the answer
// it builds (output indexes, item identities, content indexes) and
// whose final response is the kept answer. Prints one JSON object of what
// it saw.
import OpenAI from "openai";

const client = new OpenAI({ apiKey: process.env.KEY_DEVOPS, baseURL: process.env.GATEWAY_URL + "/v1", maxRetries: 0 });
const out = {};

async function replay(params) {
  const stream = client.responses.stream(params);
  const seen = { types: [], text: "", args: "" };
  for await (const ev of stream) {
    seen.types.push(ev.type);
    if (ev.type === "response.output_text.delta") seen.text += ev.delta;
    if (ev.type === "response.function_call_arguments.delta") seen.args += ev.delta;
    if (ev.type === "response.reasoning_summary_text.delta") seen.summary = (seen.summary ?? "") + ev.delta;
  }
  const final = await stream.finalResponse();
  seen.final = { id: final.id, status: final.status, outputText: final.output_text, output: final.output.map((o) => [o.type, o.id, o.call_id ?? null, o.arguments ?? null, (o.summary ?? []).map((p) => p.text).join("")]), usage: final.usage };
  return seen;
}

// A streamed answer kept, replayed.
const text = { model: "gpt-4o-mini", input: "Check the disks of web-1.", max_output_tokens: 500 };
const first = await client.responses.create({ ...text, stream: true });
for await (const ev of first) { /* read to its end: kept from its final event */ }
out.text = await replay(text);

// A JSON answer with a reasoning item and a function call, replayed.
const tool = { model: "gpt-4o-mini", input: "Which host is full?", max_output_tokens: 500, metadata: { kind: "tool" } };
const r = await client.responses.create(tool);
out.toolJSON = { id: r.id, output: r.output.map((o) => o.type) };
out.tool = await replay(tool);

console.log(JSON.stringify(out));
