// Drives `k2gym mcp serve` with the official MCP TypeScript SDK client (npm @modelcontextprotocol/sdk).
// Usage: node mcp_sdk_client.cjs NODE_MODULES PLAN.json
// PLAN: {"transport": "stdio", "command": [...]} or {"transport": "http", "url": "..."}, plus
//       "calls": [{"name", "arguments"}] (the episode, in order), "python": "code" (optional).
// Prints one JSON object: pages and tools listed, each call's result, the state resource before/after,
// a second session's state (isolation), a cancelled call's outcome.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');
const req = createRequire(path.join(process.argv[2], 'noop.js'));
const { Client } = req('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = req('@modelcontextprotocol/sdk/client/stdio.js');
const { StreamableHTTPClientTransport } = req('@modelcontextprotocol/sdk/client/streamableHttp.js');
const plan = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));

function transport() {
  if (plan.transport === 'http') return new StreamableHTTPClientTransport(new URL(plan.url));
  return new StdioClientTransport({ command: plan.command[0], args: plan.command.slice(1), stderr: 'ignore' });
}

async function connect() {
  const c = new Client({ name: 'k2gym-test', version: '1.0.0' });
  await c.connect(transport());
  return c;
}

async function state(c) {
  const r = await c.readResource({ uri: 'k2gym://session/state' });
  return JSON.parse(r.contents[0].text);
}

(async () => {
  const out = {};
  const a = await connect();
  out.server = a.getServerVersion();
  out.instructions = (a.getInstructions() || '').slice(0, 200);
  // Paging by hand, to count the pages the server cut.
  let cursor;
  out.pages = 0;
  out.tools = [];
  do {
    const r = await a.listTools(cursor ? { cursor } : {});
    out.pages++;
    for (const t of r.tools) out.tools.push({ name: t.name, hasInput: !!t.inputSchema, hasOutput: !!t.outputSchema });
    cursor = r.nextCursor;
  } while (cursor);
  out.state_before = await state(a);
  out.calls = [];
  for (const call of plan.calls) {
    const r = await a.callTool({ name: call.name, arguments: call.arguments });
    out.calls.push({ name: call.name, isError: !!r.isError, text: r.content.map((x) => x.text || '').join('\n'),
                     structured: r.structuredContent === undefined ? null : r.structuredContent });
  }
  out.state_after = await state(a);
  if (plan.python) {
    const r = await a.callTool({ name: 'python', arguments: { code: plan.python } });
    out.python = { isError: !!r.isError, text: r.content.map((x) => x.text || '').join('\n') };
  }
  const bad = await a.callTool({ name: 'no_such_tool', arguments: {} }).then(
    (r) => ({ isError: !!r.isError, text: JSON.stringify(r.content) }), (e) => ({ error: String(e.message || e) }));
  out.unknown_tool = bad;
  // Cancellation: a request aborted by the client is reported as aborted by the SDK.
  const ac = new AbortController();
  const pending = a.listTools({}, { signal: ac.signal });
  ac.abort('test');
  out.cancelled = await pending.then(() => 'completed', (e) => String(e && (e.name || e.message)));
  // A second session starts its own episode.
  const b = await connect();
  out.other_session_state = await state(b);
  await b.close();
  // The first session is still alive and unchanged after the second one.
  out.state_after_other = await state(a);
  await a.close();
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String((e && e.stack) || e) }) + '\n');
  process.exitCode = 1;
});
