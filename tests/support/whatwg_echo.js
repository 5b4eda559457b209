// An upstream that reads the request target as WHATWG URL parsing does (Node, browsers,
// Deno, Bun, most JavaScript routers): `\` is `/`, `%2e` is `.`, dot segments are resolved.
// Answers with the path it read, the target as received and the headers (Node lower-cases
// their names). Usage: node whatwg_echo.js PORT
"use strict";
const http = require("http");

const server = http.createServer((request, response) => {
  const seen = {
    path: new URL(request.url, "http://upstream").pathname,
    target: request.url,
    headers: request.headers,
  };
  response.writeHead(200, { "content-type": "application/json", "x-echo": "whatwg" });
  response.end(JSON.stringify(seen));
});
server.listen(Number(process.argv[2]), "127.0.0.1");
