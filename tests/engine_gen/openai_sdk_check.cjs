// Drives `k2gym serve` (or the in-process service) with the official OpenAI Node SDK: one JSON line per
// check on stdout ({"check", "ok", "detail"}). Usage: node openai_sdk_check.cjs NODE_MODULES BASE_URL TOKEN_ID
'use strict';
const path = require('path');
const { createRequire } = require('module');
const req = createRequire(path.join(process.argv[2], 'noop.js'));
const OpenAI = req('openai');
const base = process.argv[3];
const tokenId = process.argv[4];

const client = new OpenAI({ apiKey: 'unused', baseURL: base, maxRetries: 0, timeout: 60000 });
const user = [{ role: 'user', content: 'Hello there' }];

function report(check, ok, detail) {
  process.stdout.write(JSON.stringify({ check, ok: !!ok, detail: detail === undefined ? null : detail }) + '\n');
}
async function run(check, fn) {
  try {
    const r = await fn();
    report(check, r === undefined ? true : r.ok, r === undefined ? null : r.detail);
  } catch (e) {
    report(check, false, `threw ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
  }
}
async function expectError(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return e;
  }
}

(async () => {
  await run('models', async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    const one = await client.models.retrieve('k2gym');
    const missing = await expectError(() => client.models.retrieve('gpt-9'));
    return {
      ok: ids.includes('k2gym') && one.id === 'k2gym' && missing instanceof OpenAI.NotFoundError &&
          missing.code === 'model_not_found',
      detail: { ids, one: one.id, missing: missing && missing.code },
    };
  });
  await run('unknown_model_404', async () => {
    const e = await expectError(() => client.chat.completions.create({ model: 'gpt-9', messages: user, max_tokens: 2 }));
    return { ok: e instanceof OpenAI.NotFoundError && e.code === 'model_not_found' && e.param === 'model',
             detail: e && { status: e.status, code: e.code, param: e.param } };
  });
  await run('invalid_utf8_400_names_field', async () => {
    // JSON.stringify writes a lone surrogate as the escape \ud800: text that is not valid Unicode.
    const e = await expectError(() => client.chat.completions.create({
      model: 'k2gym', messages: [{ role: 'user', content: 'bad \ud800 text' }], max_tokens: 2 }));
    return { ok: e instanceof OpenAI.BadRequestError && e.param === 'messages[0].content',
             detail: e && { status: e.status, param: e.param, message: e.message } };
  });
  await run('developer_role', async () => {
    const r = await client.chat.completions.create({
      model: 'k2gym', messages: [{ role: 'developer', content: 'Be brief.' }, ...user], max_tokens: 3 });
    return { ok: r.choices.length === 1 && r.object === 'chat.completion', detail: r.usage };
  });
  await run('fresh_seed_returned', async () => {
    const a = await client.chat.completions.create({ model: 'k2gym', messages: user, max_tokens: 12, temperature: 1.5 });
    const b = await client.chat.completions.create({ model: 'k2gym', messages: user, max_tokens: 12, temperature: 1.5 });
    const again = await client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 12, temperature: 1.5, seed: a.seed });
    return {
      ok: Number.isInteger(a.seed) && a.seed !== b.seed && a.choices[0].message.content !== b.choices[0].message.content &&
          again.choices[0].message.content === a.choices[0].message.content,
      detail: { a: a.seed, b: b.seed },
    };
  });
  await run('logprobs', async () => {
    const r = await client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 20 });
    const c = r.choices[0].logprobs.content;
    const ok = c.length > 0 && c.every((e) => e.logprob < 0 && e.top_logprobs.length === 20 &&
                                              e.top_logprobs[0].token === e.token);
    const tooMany = await expectError(() => client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 2, logprobs: true, top_logprobs: 21 }));
    return { ok: ok && tooMany instanceof OpenAI.BadRequestError && tooMany.param === 'top_logprobs',
             detail: { n: c.length, first: c[0] && c[0].logprob } };
  });
  await run('logprobs_stream', async () => {
    const stream = await client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
    let entries = [];
    let text = '';
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        if (ch.delta && ch.delta.content) text += ch.delta.content;
        if (ch.logprobs && ch.logprobs.content) entries = entries.concat(ch.logprobs.content);
      }
    }
    return { ok: entries.length > 0 && entries.every((e) => e.top_logprobs.length === 3 && e.logprob < 0),
             detail: { entries: entries.length, text } };
  });
  await run('logit_bias', async () => {
    const r = await client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 6, temperature: 1, logprobs: true, logit_bias: { [tokenId]: 100 } });
    const toks = r.choices[0].logprobs.content.map((e) => e.token);
    return { ok: toks.length === 6 && toks.every((t) => t === toks[0]), detail: toks };
  });
  await run('penalties', async () => {
    const r = await client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 12, temperature: 0, logprobs: true, presence_penalty: 2 });
    const toks = r.choices[0].logprobs.content.map((e) => JSON.stringify(e.bytes));  // byte tokens: exact
    const bad = await expectError(() => client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 2, frequency_penalty: 3 }));
    return { ok: new Set(toks).size === toks.length && bad instanceof OpenAI.BadRequestError &&
                 bad.param === 'frequency_penalty', detail: toks };
  });
  await run('http_layer_error_object', async () => {
    const e = await expectError(() => client.chat.completions.create({
      model: 'k2gym', messages: [{ role: 'user', content: 'x'.repeat(70000) }], max_tokens: 2 }));
    return { ok: e instanceof OpenAI.APIError && e.status === 413 && e.code === 'request_too_large' &&
                 typeof e.type === 'string', detail: e && { status: e.status, code: e.code, type: e.type } };
  });
  await run('keep_alive_sequential', async () => {
    for (let i = 0; i < 5; i++) await client.models.list();
    return { ok: true };
  });
  await run('abort_cancels', async () => {
    const ac = new AbortController();
    const stream = await client.chat.completions.create({
      model: 'k2gym', messages: user, max_tokens: 1000, n: 8, stream: true,
      logit_bias: { [process.argv[5]]: -100 } }, { signal: ac.signal });
    // The SDK ends the iteration quietly on abort; the server must notice the closed connection (the
    // caller checks that the generator stopped well short of the 8000 tokens asked for).
    let chunks = 0;
    let aborted = false;
    try {
      for await (const chunk of stream) {
        if (chunk.choices.length) chunks++;
        if (chunks === 3 && !aborted) {
          aborted = true;
          ac.abort();
        }
      }
    } catch (e) {
      return { ok: aborted, detail: { chunks, error: e.constructor.name } };
    }
    return { ok: aborted, detail: { chunks } };
  });
})();
