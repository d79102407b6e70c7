// The Vercel AI SDK (`ai` with `@ai-sdk/openai`), a popular TypeScript
// client that parses every answer and chunk against its own schemas,
// driving the gateway (TestGatewayWithVercelAISDK): chat completions
// (argv[2] "chat") or the Responses API ("responses"), each request sent
// twice (the second answered by the gateway's cache: JSON, and a stream
// replayed), a streamed tool call, a budget refusal and an unknown key.
// It prints what the SDK read, as JSON.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool, jsonSchema } from 'ai';

const api = process.argv[2];
const url = process.env.GATEWAY_URL + '/v1';
const provider = (key) => createOpenAI({ baseURL: url, apiKey: key });
const model = (key) => (api === 'chat' ? provider(key).chat('gpt-4o-mini') : provider(key).responses('gpt-4o-mini'));
const usage = (u) => ({ input: u.inputTokens, output: u.outputTokens, total: u.totalTokens });
const calls = (cs) => cs.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input }));
const weather = tool({
  description: 'The weather of a city.',
  inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
});
// The upstream of the Responses test answers with a function call when the
// request's metadata says so.
const toolOptions = { openai: { metadata: { kind: 'tool' } } };

async function generate(opts) {
  try {
    const r = await generateText({ maxRetries: 0, ...opts });
    return { text: r.text, finish: r.finishReason, usage: usage(r.usage), toolCalls: calls(r.toolCalls) };
  } catch (e) {
    return { error: { name: e.name, status: e.statusCode, body: e.responseBody } };
  }
}

async function stream(opts) {
  let error;
  const s = streamText({ maxRetries: 0, ...opts, onError: ({ error: e }) => { error = e; } });
  let text = '';
  const parts = [];
  for await (const p of s.fullStream) {
    if (parts.at(-1) !== p.type) parts.push(p.type);
    if (p.type === 'text-delta') text += p.text;
  }
  if (error) {
    // An APICallError (an answer other than 200), or the error event of
    // a stream that was cut after it began.
    return { parts, text, finish: await s.finishReason.catch(() => undefined),
      error: { name: error.name, status: error.statusCode, body: error.responseBody, message: error.message, code: error.code, type: error.type } };
  }
  return { parts, text, finish: await s.finishReason, usage: usage(await s.usage), toolCalls: calls(await s.toolCalls) };
}

const out = {};
const devops = model(process.env.KEY_DEVOPS);
out.generate = [await generate({ model: devops, prompt: 'Say hello.' }), await generate({ model: devops, prompt: 'Say hello.' })];
out.stream = [await stream({ model: devops, prompt: 'Stream a hello.' }), await stream({ model: devops, prompt: 'Stream a hello.' })];
const toolCall = { model: devops, prompt: 'What is the weather in Paris?', tools: { get_weather: weather }, providerOptions: toolOptions };
out.tool = [await stream(toolCall), await stream(toolCall), await generate(toolCall)];
const payments = model(process.env.KEY_PAYMENTS);
const long = 'long long '.repeat(5000);
out.budget = [await generate({ model: payments, prompt: long }), await stream({ model: payments, prompt: long })];
if (api === 'chat') {
  out.cut = [await stream({ model: devops, prompt: 'Cut me off.' }), await stream({ model: devops, prompt: 'End me early.' })];
}
out.unknownKey = await generate({ model: model('sk-not-a-key'), prompt: 'Say hello.' });
console.log(JSON.stringify(out));
