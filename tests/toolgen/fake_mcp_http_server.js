// A loopback Streamable-HTTP MCP server for the client tests (plain node:http, no SDK): JSON and SSE
// replies, a session id that later requests must echo, 202 for notifications, an oversize reply.
// Usage: node fake_mcp_http_server.js PORT   (prints "listening" on stdout once ready)
const http = require("http");
const port = Number(process.argv[2]);
const SESSION = "sess-42";

function reply(res, obj, headers = {}) {
  res.writeHead(200, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(obj));
}

http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    if (req.method === "DELETE") {
      res.writeHead(req.headers["mcp-session-id"] === SESSION ? 200 : 404);
      return res.end();
    }
    if (req.method !== "POST" || !(req.headers["accept"] || "").includes("text/event-stream")) {
      res.writeHead(406);
      return res.end("need POST with Accept: application/json, text/event-stream");
    }
    let msg;
    try { msg = JSON.parse(body); } catch (e) { res.writeHead(400); return res.end("bad json"); }
    if (msg.method !== "initialize" && req.headers["mcp-session-id"] !== SESSION) {
      res.writeHead(404);
      return res.end("unknown session");
    }
    if (msg.method !== "initialize" && req.headers["mcp-protocol-version"] !== "2025-11-25") {
      res.writeHead(400);
      return res.end("missing MCP-Protocol-Version");
    }
    if (msg.id === undefined) { res.writeHead(202); return res.end(); }  // notification
    const ok = (result) => ({ jsonrpc: "2.0", id: msg.id, result });
    const text = (t) => ok({ content: [{ type: "text", text: t }] });
    if (msg.method === "initialize") {
      return reply(res, ok({ protocolVersion: msg.params.protocolVersion, capabilities: { tools: {} },
                             serverInfo: { name: "fake-http", version: "1" } }), { "Mcp-Session-Id": SESSION });
    }
    if (msg.method === "tools/list") {
      return reply(res, ok({ tools: ["json_echo", "sse_echo", "big"].map((name) => (
        { name, inputSchema: { type: "object", properties: { text: { type: "string" } } } })) }));
    }
    if (msg.method === "tools/call") {
      const name = msg.params.name, args = msg.params.arguments || {};
      if (name === "json_echo") return reply(res, text(args.text || ""));
      if (name === "sse_echo") {
        res.writeHead(200, { "Content-Type": "text/event-stream" });
        // a notification first, then the reply over several data: lines (one event)
        res.write(": comment\n");
        res.write("event: message\ndata: " + JSON.stringify({ jsonrpc: "2.0", method: "notifications/message",
                  params: { level: "info", data: "working" } }) + "\n\n");
        // pretty-printed JSON: one data: line per line, which SSE joins back with newlines
        const lines = JSON.stringify(text("sse:" + (args.text || "")), null, 1).split("\n");
        res.write("id: 1\n" + lines.map((l) => "data: " + l + "\n").join("") + "\n");
        return res.end();
      }
      if (name === "big") return reply(res, text("x".repeat(3 << 20)));
    }
    reply(res, { jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "Method not found" } });
  });
}).listen(port, "127.0.0.1", () => console.log("listening"));
