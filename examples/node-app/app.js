// A small HTTP server to try velos with: node's standard library only.
//
//   velos start examples/node-app/app.js      (PORT=3001 velos start ... for another port)
//   curl localhost:3000
//   velos logs app -n 50
//   velos stop app
//
// It logs one line per request and a heartbeat every 5 seconds on stdout, and exits
// cleanly (exit code 0) on SIGTERM, which is what `velos stop` sends, and on SIGINT.

'use strict';

const http = require('node:http');

const port = Number(process.env.PORT || 3000);
const started = Date.now();
let requests = 0;

function log(message) {
  console.log(`${new Date().toISOString()} ${message}`);
}

const server = http.createServer((req, res) => {
  requests += 1;
  const status = req.url === '/' ? 200 : 404;
  const body =
    status === 200
      ? `hello from velos example app (pid ${process.pid})\n`
      : 'not found\n';
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
  log(`${req.method} ${req.url} ${status}`);
});

server.on('error', (err) => {
  console.error(`cannot listen on port ${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, () => {
  log(`listening on http://localhost:${port} (pid ${process.pid})`);
});

const heartbeat = setInterval(() => {
  const uptime = Math.round((Date.now() - started) / 1000);
  log(`heartbeat: up ${uptime}s, ${requests} requests served`);
}, 5000);

function shutdown(signal) {
  log(`${signal} received, shutting down`);
  clearInterval(heartbeat);
  server.close(() => process.exit(0));
  // Keep-alive connections can hold close() open; do not wait for them forever.
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
