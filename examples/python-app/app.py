#!/usr/bin/env python3
"""A small HTTP server to try velos with: Python's standard library only.

    velos start examples/python-app/app.py --listen 127.0.0.1:3000
    curl localhost:3000            # hello from velos example python app (pid 4242)
    velos restart app              # no connection is refused meanwhile
    velos logs app -n 50

Started with --listen, velos holds the listening socket and hands it over as descriptor 3
(systemd's socket activation: LISTEN_FDS, LISTEN_PID), so the app never binds a port
and a restart refuses no connection: they wait in the kernel's backlog. Started without,
it listens on $PORT (default 3000) itself. Once it accepts, it says READY=1 on
$NOTIFY_SOCKET when that is set (systemd's sd_notify protocol), and it answers every
request with its pid, so you can see which run (or instance) answered. On SIGTERM (what
`velos stop` sends) or SIGINT it stops accepting, finishes the requests it has, and exits 0.
"""

import http.server
import os
import signal
import socket
import sys
import threading

SD_LISTEN_FDS_START = 3


def log(message):
    print(message, flush=True)


def inherited_socket():
    """The first socket velos handed over, if it handed one to this process."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    if int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def notify_ready():
    """READY=1 on $NOTIFY_SOCKET, as systemd-notify --ready sends it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.sendto(b"READY=1", address)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if self.path == "/" else 404
        if status == 200:
            body = f"hello from velos example python app (pid {os.getpid()})\n"
        else:
            body = "not found\n"
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self):
        # A unix socket's peer has no address.
        return self.client_address[0] if self.client_address else "-"

    def log_message(self, format, *args):
        log(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}".rstrip())


class Server(http.server.ThreadingHTTPServer):
    # On shutdown, finish the requests already accepted before exiting.
    daemon_threads = False
    block_on_close = True


def main():
    inherited = inherited_socket()
    if inherited is not None:
        server = Server(("", 0), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = inherited
        where = f"the socket velos holds (fd {SD_LISTEN_FDS_START})"
    else:
        port = int(os.environ.get("PORT", "3000"))
        server = Server(("", port), Handler)
        where = f"http://localhost:{server.server_address[1]}"

    def stop(signum, _frame):
        log(f"{signal.Signals(signum).name} received, shutting down")
        # shutdown() waits for serve_forever() to return, so not from this thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"listening on {where} (pid {os.getpid()})")
    notify_ready()
    server.serve_forever()
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
