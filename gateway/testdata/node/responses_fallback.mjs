// Drives a Responses call the tokenwise gateway moves on to its team's
// fallback model (TestGatewayResponsesFallbackWithOfficialNodeClient)
// with the official OpenAI Node client, its own retries off: a call and a
// streamed call to a model that fails, read as the client reads any
// answer. Prints one JSON object of what it saw.
import OpenAI from "openai";

const client = new OpenAI({ apiKey: process.env.KEY_DEVOPS, baseURL: process.env.GATEWAY_URL + "/v1", maxRetries: 0 });
const out = {};

const r = await client.responses.create({ model: "gpt-4o", input: "Check the disks of web-1.", max_output_tokens: 500 });
out.text = r.output_text;
out.model = r.model;
out.usage = r.usage;

const s = await client.responses.create({ model: "gpt-4o", input: "Check the disks of web-2.", max_output_tokens: 500, stream: true });
let text = "";
let final = null;
for await (const ev of s) {
  if (ev.type === "response.output_text.delta") text += ev.delta;
  if (ev.type === "response.completed") final = ev.response;
}
out.streamText = text;
out.streamModel = final ? final.model : null;
out.streamUsage = final ? final.usage : null;
console.log(JSON.stringify(out));
