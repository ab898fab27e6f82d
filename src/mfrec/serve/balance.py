"""``mfrec serve --processes N``: one process accepts connections and hands each to the server process
with the fewest open connections, so keep-alive clients spread evenly whatever the timing.

Why not N processes on one shared listening socket (uvicorn's ``workers=N``)? The kernel gives a new
connection to whichever process happens to be waiting in ``accept``, and a keep-alive connection then
stays with that process for good: 8 clients connecting at once landed 6/2 or 7/1 on 2 processes in
half the runs, and one core queued while the other idled (8-client p99 47-69 ms on the ML-25M shape,
3 of 6 runs under 50 ms). SO_REUSEPORT hashes connections to processes at random, which is no better
for 8 connections. Here the dispatcher (this module's ``Dispatcher``, the parent) owns the listening
socket; each server process (``serve_child``) is uvicorn's own ``Server`` on uvicorn's own HTTP
protocol, running the same FastAPI app, except that its connections arrive over a Unix socket
(``socket.send_fds``) instead of from ``accept``. A server process reports each connection it closes,
so the dispatcher always knows how many each holds (least-connections, ties in turn; the same rule as
Envoy's ``exact_balance`` or nginx's ``least_conn``). The dispatcher touches a connection once, when
it opens; requests and answers go straight between the client and its server process.

The parent accepts nothing until every server process has loaded the run and warmed up, so the first
connections spread evenly too. A server process that dies stops the server (exit code 1).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

from mfrec.errors import MfrecError

READY, CLOSED, NEW = b"R", b"-", b"c"
CHANNEL_ENV = "MFREC_SERVE_CHANNEL"


class Dispatcher:
    """The parent: N server processes and the listening socket; each new connection goes to the process
    holding the fewest open connections (ties: the next in turn)."""

    def __init__(self, host: str, port: int, processes: int, settings: dict, log_level: str = "info",
                 backlog: int = 2048, start_timeout: float = 1800.0):
        if processes < 1:
            raise MfrecError(f"--processes must be at least 1, got {processes}")
        self.host, self.port, self.n = host, port, processes
        self.settings, self.log_level, self.backlog = settings, log_level, backlog
        self.start_timeout = start_timeout
        self.children: list[subprocess.Popen] = []
        self.channels: list[socket.socket] = []
        self.open = [0] * processes
        self.ready = [False] * processes
        self.turn = 0
        self.stopping = False
        self.listener: socket.socket | None = None

    # -- start ----------------------------------------------------------------------------------------
    def bind(self) -> socket.socket:
        """The listening socket (bound now, so a taken port fails before any process loads the run)."""
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as e:
            sock.close()
            raise MfrecError(f"cannot listen on {self.host}:{self.port} ({e.strerror})") from None
        sock.listen(self.backlog)
        sock.setblocking(False)  # a connection reset between select and accept must not block the loop
        self.listener = sock
        return sock

    def spawn(self) -> None:
        """Start the server processes, each with its end of a Unix socket pair."""
        from mfrec.serve.app import SETTINGS_ENV

        env = dict(os.environ, **{SETTINGS_ENV: json.dumps(self.settings)})
        for _ in range(self.n):
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            env[CHANNEL_ENV] = str(theirs.fileno())
            cmd = [sys.executable, "-c", "from mfrec.serve.balance import serve_child; serve_child()",
                   self.log_level]
            self.children.append(subprocess.Popen(cmd, env=env, pass_fds=[theirs.fileno()]))
            theirs.close()
            self.channels.append(mine)

    # -- run ------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (exit 0) or until a server process dies (exit 1)."""
        if self.listener is None:
            self.bind()
        self.spawn()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        sel = selectors.DefaultSelector()
        for i, ch in enumerate(self.channels):
            sel.register(ch, selectors.EVENT_READ, i)
        accepting = False
        started = time.monotonic()
        code = 0
        try:
            while not self.stopping:
                if not accepting and all(self.ready):
                    sel.register(self.listener, selectors.EVENT_READ, None)
                    accepting = True
                elif not accepting and time.monotonic() - started > self.start_timeout:
                    print(f"mfrec serve: the server processes did not start within {self.start_timeout:.0f} s",
                          file=sys.stderr)
                    return 1
                dead = [i for i, p in enumerate(self.children) if p.poll() is not None]
                if dead:
                    print(f"mfrec serve: server process {dead[0] + 1} of {self.n} exited "
                          f"(code {self.children[dead[0]].returncode}); stopping", file=sys.stderr)
                    return 1
                for key, _ in sel.select(timeout=0.5):
                    if key.data is None:
                        self._accept()
                    elif not self._read(key.data):
                        sel.unregister(self.channels[key.data])
        except KeyboardInterrupt:
            code = 0
        finally:
            self.stop()
        return code

    def pick(self) -> int:
        """The process to hand the next connection to: fewest open connections, ties in turn."""
        fewest = min(self.open)
        for step in range(self.n):
            i = (self.turn + step) % self.n
            if self.open[i] == fewest:
                self.turn = (i + 1) % self.n
                return i
        raise AssertionError("unreachable: some process holds the fewest connections")

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        with conn:
            i = self.pick()
            try:
                socket.send_fds(self.channels[i], [NEW], [conn.fileno()])
                self.open[i] += 1
            except OSError:  # the process is going away: the client sees the connection close
                pass

    def _read(self, i: int) -> bool:
        try:
            data = self.channels[i].recv(4096)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""
        if not data:
            return False
        self.ready[i] = self.ready[i] or READY in data
        self.open[i] = max(0, self.open[i] - data.count(CLOSED))
        return True

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def stop(self) -> None:
        for p in self.children:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.children:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ch in self.channels:
            ch.close()
        if self.listener is not None:
            self.listener.close()


def serve_child() -> None:
    """One server process: the app of ``$MFREC_SERVE_SETTINGS`` on uvicorn, its connections handed over
    on the Unix socket ``$MFREC_SERVE_CHANNEL`` (one byte per connection, with its descriptor)."""
    import uvicorn
    from uvicorn._compat import asyncio_run  # what uvicorn.Server.run runs its loop with

    from mfrec.serve.app import app_from_environment
    from mfrec.serve.tcp import NoDelayProtocol

    channel = socket.socket(fileno=int(os.environ[CHANNEL_ENV]))
    log_level = sys.argv[1] if len(sys.argv) > 1 else "info"
    config = uvicorn.Config(app_from_environment(), http=_reporting(NoDelayProtocol, channel), log_level=log_level,
                            lifespan="on")
    server = uvicorn.Server(config)
    asyncio_run(_serve(server, channel), loop_factory=config.get_loop_factory())


async def _serve(server, channel: socket.socket) -> None:
    """uvicorn's ``Server.serve`` (lifespan, signals, graceful shutdown) with no listening socket of its
    own: each connection the dispatcher sends is adopted with ``loop.connect_accepted_socket``."""
    import asyncio

    config = server.config
    if not config.loaded:
        config.load()
    server.lifespan = config.lifespan_class(config)
    loop = asyncio.get_running_loop()

    def protocol():
        return config.http_protocol_class(config=config, server_state=server.server_state,
                                          app_state=server.lifespan.state)

    def adopt() -> None:
        try:
            data, fds, _, _ = socket.recv_fds(channel, 64, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        if not data:
            server.should_exit = True  # the dispatcher is gone
            loop.remove_reader(channel.fileno())
            return
        for fd in fds:
            loop.create_task(loop.connect_accepted_socket(protocol, socket.socket(fileno=fd)))

    with server.capture_signals():
        await server.startup(sockets=[])  # the lifespan (load, warm-up), and no listener
        if server.should_exit:
            return
        channel.setblocking(False)
        loop.add_reader(channel.fileno(), adopt)
        channel.send(READY)
        await server.main_loop()
        loop.remove_reader(channel.fileno())
        await server.shutdown(sockets=[])


def _reporting(base, channel: socket.socket):
    """``base`` (uvicorn's HTTP protocol) that tells the dispatcher when a connection closes."""

    class Reporting(base):
        def connection_lost(self, exc) -> None:
            try:
                channel.send(CLOSED)
            except OSError:  # the dispatcher is gone; the process is stopping
                pass
            super().connection_lost(exc)

    return Reporting
