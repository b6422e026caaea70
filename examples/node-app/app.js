// A small HTTP server to try velos with: node's standard library only.
//
//   velos start examples/node-app/app.js      (PORT=3001 velos start ... for another port)
//   velos start examples/node-app/app.js --listen 127.0.0.1:3000   (velos holds the socket)
//   curl localhost:3000                       (answers with the pid that served it)
//   velos logs app -n 50
//   velos stop app
//
// Started with --listen, velos holds the listening socket and hands it over as
// descriptor 3 (systemd's socket activation: LISTEN_FDS, LISTEN_PID), so a restart
// refuses no connection; otherwise it listens on $PORT itself. Once it accepts it says
// it is ready with process.send('ready') when it has an IPC channel (PM2's wait_ready).
// Node has no unix datagram sockets built in, so it cannot send sd_notify's READY=1 to
// $NOTIFY_SOCKET without a dependency; see examples/python-app for that protocol.
//
// It logs one line per request and a heartbeat every 5 seconds on stdout, and exits
// cleanly (exit code 0) on SIGTERM, which is what `velos stop` sends, and on SIGINT.

'use strict';

const http = require('node:http');
const net = require('node:net');

const port = Number(process.env.PORT || 3000);
// sd_listen_fds(3): the descriptors are ours only when LISTEN_PID is our pid.
const inherited =
  process.env.LISTEN_PID === String(process.pid) && Number(process.env.LISTEN_FDS) >= 1;
let where = inherited ? 'the socket velos holds (fd 3)' : `port ${port}`;
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
  const headers = { 'content-type': 'text/plain; charset=utf-8' };
  if (closing) {
    // Shutting down: no more requests on this connection.
    headers.connection = 'close';
  }
  res.writeHead(status, headers);
  res.end(body);
  log(`${req.method} ${req.url} ${status}`);
});

server.on('error', (err) => {
  console.error(`cannot listen on ${where}: ${err.message}`);
  process.exit(1);
});

server.listen(inherited ? { fd: 3 } : port, () => {
  if (!inherited) {
    where = `http://localhost:${server.address().port}`;
  }
  log(`listening on ${where} (pid ${process.pid})`);
  if (process.send) {
    process.send('ready');
  }
});

const heartbeat = setInterval(() => {
  const uptime = Math.round((Date.now() - started) / 1000);
  log(`heartbeat: up ${uptime}s, ${requests} requests served`);
}, 5000);

let closing = false;

function shutdown(signal) {
  if (closing) {
    return;
  }
  closing = true;
  log(`${signal} received, shutting down`);
  clearInterval(heartbeat);
  // Stop accepting, and exit once every connection already accepted has been answered.
  // Not http's server.close(): it also drops connections whose request has not arrived
  // yet, and a client just accepted from the backlog would see its connection reset.
  // Connections not yet accepted stay in the kernel's backlog for the next run (with
  // --listen velos holds the socket).
  net.Server.prototype.close.call(server, () => process.exit(0));
  // Keep-alive connections that stay idle would hold the exit open: close them once any
  // request already on its way has had time to arrive, and do not wait for ever.
  setTimeout(() => server.closeIdleConnections?.(), 1000).unref();
  setTimeout(() => process.exit(0), 3000).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
