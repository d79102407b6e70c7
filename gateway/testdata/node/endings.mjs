// How the official OpenAI Node client and the Vercel AI SDK read the
// streams the gateway ends badly (TestGatewayStreamEndingsWithNodeClients):
// with argv[2] "chat", a chat stream the upstream cuts after some chunks
// ("Cut me off.") and one whose chunks carry nothing ("Say nothing.");
// with "responses", a Responses stream the upstream cuts before its final
// event (metadata cut) and one that ends with response.failed (metadata
// failed). Each is read to its end; it prints, for each client, what the
// client reported: an error thrown (or, for the AI SDK, given to onError
// and the finish reason "error"), or the text it took for an answer.
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { streamText } from 'ai';

const api = process.argv[2];
const url = process.env.GATEWAY_URL + '/v1';
const key = process.env.KEY_DEVOPS;
const client = new OpenAI({ apiKey: key, baseURL: url, maxRetries: 0 });
const provider = createOpenAI({ baseURL: url, apiKey: key });

const thrown = (e) => ({ name: e.name, message: e.message, code: e.code ?? e.data?.error?.code ?? null, isAPIError: e instanceof OpenAI.APIError });

async function official(params) {
  let text = '';
  const types = [];
  try {
    if (api === 'chat') {
      const s = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, ...params });
      for await (const c of s) text += c.choices?.[0]?.delta?.content ?? '';
    } else {
      const s = await client.responses.create({ model: 'gpt-4o-mini', stream: true, ...params });
      for await (const ev of s) {
        types.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
      }
    }
  } catch (e) {
    return { text, types, error: thrown(e) };
  }
  return { text, types };
}

async function aisdk(opts) {
  let error;
  const model = api === 'chat' ? provider.chat('gpt-4o-mini') : provider.responses('gpt-4o-mini');
  const s = streamText({ maxRetries: 0, model, ...opts, onError: ({ error: e }) => { error = e; } });
  let text = '';
  for await (const p of s.fullStream) {
    if (p.type === 'text-delta') text += p.text;
  }
  const finish = await s.finishReason.catch(() => undefined);
  return { text, finish, error: error ? thrown(error) : undefined };
}

const out = {};
if (api === 'chat') {
  const msg = (m) => ({ messages: [{ role: 'user', content: m }] });
  out.cut = { official: await official(msg('Cut me off.')), aisdk: await aisdk({ prompt: 'Cut me off.' }) };
  out.nothing = { official: await official(msg('Say nothing.')), aisdk: await aisdk({ prompt: 'Say nothing.' }) };
} else {
  const meta = (k) => ({ input: 'Check web-3.', metadata: { [k]: 'yes' } });
  const opts = (k) => ({ prompt: 'Check web-3.', providerOptions: { openai: { metadata: { [k]: 'yes' } } } });
  out.cut = { official: await official(meta('cut')), aisdk: await aisdk(opts('cut')) };
  out.failed = { official: await official(meta('failed')), aisdk: await aisdk(opts('failed')) };
}
console.log(JSON.stringify(out));
