// Drives the tokenwise gateway's Responses API with the official OpenAI
// Node client (TestGatewayResponsesWithOfficialNodeClient): a call, a
// streamed call read event by event, a stream the upstream cuts (which
// the client must raise, not end quietly), and a call the team's budget cannot
// afford (a previous_response_id: reserved at the model's whole context
// window), surfaced as the client's APIError. With the argument
// "fallback" (TestGatewayResponsesFallbackWithOfficialNodeClient), only
// the call and the streamed call, to gpt-4o, the client's own retries
// off: the gateway moves them on to the team's fallback model. Prints one
// JSON object of what it saw.
import OpenAI from "openai";

const fallback = process.argv[2] === "fallback";
const model = fallback ? "gpt-4o" : "gpt-4o-mini";
const client = new OpenAI({ apiKey: process.env.KEY_DEVOPS, baseURL: process.env.GATEWAY_URL + "/v1", maxRetries: fallback ? 0 : 2 });
const out = {};

const r = await client.responses.create({ model, input: "Check the disks of web-1.", max_output_tokens: 500 });
out.text = r.output_text;
out.model = r.model;
out.usage = r.usage;

const s = await client.responses.create({ model, input: "Check the disks of web-2.", max_output_tokens: 500, stream: true });
let text = "";
let final = null;
for await (const ev of s) {
  if (ev.type === "response.output_text.delta") text += ev.delta;
  if (ev.type === "response.completed") final = ev.response;
}
out.streamText = text;
out.streamModel = final ? final.model : null;
out.streamUsage = final ? final.usage : null;
if (fallback) {
  console.log(JSON.stringify(out));
  process.exit(0);
}

// A stream the upstream cuts before its final event.
try {
  const c = await client.responses.create({ model: "gpt-4o-mini", input: "Check web-3.", max_output_tokens: 500, stream: true, metadata: { cut: "yes" } });
  let events = 0;
  for await (const ev of c) events++;
  out.cut = { completed: true, events };
} catch (e) {
  out.cut = { completed: false, isAPIError: e instanceof OpenAI.APIError, code: e.code ?? null, message: e.message };
}

try {
  await client.responses.create({ model: "gpt-4o-mini", input: "Go on.", previous_response_id: r.id });
  out.refused = null;
} catch (e) {
  out.refused = { isAPIError: e instanceof OpenAI.APIError, status: e.status, code: e.code, type: e.type, message: e.message };
}
console.log(JSON.stringify(out));
