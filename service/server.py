"""Running the app: `recsys serve` ends here.

    start     the version is opened before the port opens: every checksum verified, model and
              index checked to belong together (exit 2 with the reason); the model loads from
              that opened version in the background; if that first load fails, the server
              stops and the command exits 2 with the reason
    SIGHUP    reload in the background (same as POST /admin/reload; the outcome is logged)
    SIGTERM   /readyz turns 503 for drain_seconds while requests are still served, then the
              listener closes, in-flight requests finish (up to shutdown_timeout), exit 0;
              a second SIGTERM skips the rest of the drain
    SIGINT    uvicorn's graceful stop at once (exit 130, the CLI's Ctrl-C code)

With `workers` > 1 the command is a supervisor: it binds the port, starts that many worker
processes (each one the server above, with its own model copy, accepting on the shared
socket) and forwards SIGTERM and SIGHUP to all of them (Ctrl-C reaches the whole process
group by itself). A worker's successful POST /admin/reload makes the supervisor send SIGHUP
to the other workers, so all of them move to the new version. If a worker exits on its own
(its model failed to load, say), the supervisor stops the others and exits 2: restarting is
left to what runs the service (systemd, Kubernetes, compose), which also sees the failure. If
the supervisor dies (kill -9), its workers get SIGTERM from the kernel and stop too.
Each worker has its own /metrics registry: a scrape reads the worker that answered it.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import multiprocessing
import os
import signal
import socket
import sys
import threading
from multiprocessing.connection import Connection, wait

import uvicorn

from recsys.artifacts.errors import ArtifactError, RecsysError
from recsys.artifacts.version import Version
from recsys.service import shedding
from recsys.service.app import create_app
from recsys.service.observability import logging_config
from recsys.service.settings import Settings
from recsys.service.state import Loader, State, load_recommender

log = logging.getLogger("recsys.service")


class Server(uvicorn.Server):
    """uvicorn's server with a readiness drain on SIGTERM."""

    def __init__(self, config: uvicorn.Config, state: State, drain_seconds: float):
        super().__init__(config)
        self.state = state
        self.drain_seconds = drain_seconds
        self._drain: threading.Timer | None = None

    def handle_exit(self, sig: int, frame) -> None:
        # A signal handler runs inside whatever the main thread was doing, often a request:
        # in a fresh context its log lines carry no request's id.
        contextvars.Context().run(self._handle_exit, sig, frame)

    def _handle_exit(self, sig: int, frame) -> None:
        self.state.draining = True
        if sig != signal.SIGTERM:
            return super().handle_exit(sig, frame)
        # SIGTERM is a request to stop, done once the drain and the graceful stop are over:
        # not recorded for uvicorn to re-raise afterwards, so the process exits 0.
        if self._drain is None and self.drain_seconds > 0 and not self.should_exit:
            log.info("SIGTERM: /readyz answers 503; closing the listener in %gs", self.drain_seconds)
            self._drain = threading.Timer(self.drain_seconds, self._stop)
            self._drain.daemon = True
            self._drain.start()
        else:
            self._stop()

    def _stop(self) -> None:
        self.should_exit = True


def serve(settings: Settings, load: Loader = load_recommender) -> None:
    """Serve until stopped; ArtifactError when the artifacts cannot be served at all."""
    version = Version.open(settings.artifacts, settings.version, need_index=True)  # before the port opens
    if settings.workers > 1:
        supervise(settings, version)
    else:
        serve_one(settings, version, load)


def listening(settings: Settings, version: str, items: int) -> str:
    """The one line a person looks for: where the service answers, and what it serves."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return (f"recsys: serving http://{host}:{settings.port} (model {version}, {items:,} items) "
            f"— docs at /docs, page at /")


def serve_one(settings: Settings, version: Version, load: Loader = load_recommender,
              sock: socket.socket | None = None, supervisor: Connection | None = None) -> None:
    """One server process over the opened `version` (reloads open afresh); on `sock` when given
    (a worker), and telling `supervisor` of admin reloads."""
    app = create_app(settings, load)
    state: State = app.state.recsys
    state.opened = version
    server = Server(uvicorn_config(app, settings), state, settings.drain_seconds)
    fatal: list[str] = []

    def on_fatal(reason: str) -> None:
        fatal.append(reason)
        server.should_exit = True

    state.on_fatal = on_fatal
    if supervisor is None:  # a worker's supervisor speaks for all of them
        state.on_first_load = lambda rec: log.info(listening(settings, rec.version, rec.item_count))
    if supervisor is not None:
        state.after_admin_reload = lambda: supervisor.send("reload-others")
    previous = signal.signal(signal.SIGHUP, lambda *_: state.reload_in_background())
    try:
        server.run(sockets=[sock] if sock is not None else None)
    finally:
        signal.signal(signal.SIGHUP, previous)
    if fatal:
        raise ArtifactError(f"model failed to load: {fatal[0]}")


def uvicorn_config(app, settings: Settings, **overrides) -> uvicorn.Config:
    """uvicorn's configuration of `app`: the HTTP protocol sheds an overloaded /recommend
    itself (service/shedding.py). No limit_concurrency: uvicorn's own limit answers every
    route, probes included, with a plain-text 503 that no metric counts. The accept backlog
    stays uvicorn's 2048, above the connection counts the load benchmark opens at once, so a
    burst of new connections is answered rather than left waiting for a SYN retry."""
    protocol = shedding.protocol(app.state.admission, app.state.recsys.metrics,
                                 close=settings.shed_connection == "close")
    return uvicorn.Config(app, **{"host": settings.host, "port": settings.port, "log_level": settings.log_level,
                                  "log_config": logging_config(settings.log_level, settings.log_format),
                                  "access_log": False, "timeout_graceful_shutdown": settings.shutdown_timeout,
                                  "http": protocol, **overrides})


def _stop_with(supervisor_pid: int) -> None:
    """SIGTERM this worker (the usual drain and stop) when its supervisor dies, even by SIGKILL:
    otherwise it would go on serving the port alone, and a restarted service could not bind it.
    Linux only (prctl); elsewhere what runs the service must stop the process group."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != supervisor_pid:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(settings: Settings, version: Version, sock: socket.socket, supervisor: Connection,
            supervisor_pid: int) -> None:
    """A worker process's entry point; a failure ends it with the CLI's one line and exit 2."""
    _stop_with(supervisor_pid)
    try:
        serve_one(settings, version, sock=sock, supervisor=supervisor)
    except RecsysError as e:
        print(f"recsys: error: worker {os.getpid()}: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def supervise(settings: Settings, version: Version) -> None:
    """Run `settings.workers` worker processes over the opened `version` on one listening socket
    until they stop."""
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    sock = uvicorn.Config(app=None, host=settings.host, port=settings.port).bind_socket()
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter each: no forked locks or threads
    workers, channels = [], []
    for i in range(settings.workers):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(settings, version, sock, send, os.getpid()), name=f"recsys-worker-{i}")
        proc.start()
        send.close()
        workers.append(proc)
        channels.append(receive)
    log.info("supervisor %d: %d workers on %s:%d", os.getpid(), len(workers), settings.host, settings.port)
    stopping: list[int] = []

    def forward(sig: int, _frame=None) -> None:
        if sig == signal.SIGTERM:
            stopping.append(sig)
        for proc in workers:
            if proc.is_alive():
                os.kill(proc.pid, sig)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    failed = None
    try:
        while any(proc.is_alive() for proc in workers):
            ready = wait([proc.sentinel for proc in workers if proc.is_alive()]
                         + [c for c in channels if not c.closed], timeout=1.0)
            for channel in (c for c in channels if c in ready):
                try:
                    channel.recv()
                except EOFError:
                    channel.close()
                    continue
                sender = workers[channels.index(channel)]
                for proc in workers:  # the sender has reloaded already
                    if proc is not sender and proc.is_alive():
                        os.kill(proc.pid, signal.SIGHUP)
            for proc in workers:
                if proc.exitcode is not None and not stopping and failed is None:
                    failed = proc
                    log.error("worker %d exited with code %s; stopping the others", proc.pid, proc.exitcode)
                    forward(signal.SIGTERM)
    except KeyboardInterrupt:
        for proc in workers:
            proc.join(settings.shutdown_timeout + settings.drain_seconds + 5)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if failed is not None:
        raise ArtifactError(f"worker {failed.pid} exited with code {failed.exitcode} (its reason is logged above)")
