"""Running the app: `recsys serve` ends here.

    start     the artifact pair is checked before the port opens (exit 2 with the reason); the
              model loads in the background; if that first load fails, the server stops and
              the command exits 2 with the reason
    SIGHUP    reload in the background (same as POST /admin/reload; the outcome is logged)
    SIGTERM   /readyz turns 503 for drain_seconds while requests are still served, then the
              listener closes, in-flight requests finish (up to shutdown_timeout), exit 0;
              a second SIGTERM skips the rest of the drain
    SIGINT    uvicorn's graceful stop at once (exit 130, the CLI's Ctrl-C code)
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import uvicorn

from artifacts import store
from artifacts.errors import ArtifactError
from service.app import create_app
from service.observability import logging_config
from service.recommender import Recommender
from service.settings import Settings
from service.state import State, load_recommender

log = logging.getLogger("recsys.service")


class Server(uvicorn.Server):
    """uvicorn's server with a readiness drain on SIGTERM."""

    def __init__(self, config: uvicorn.Config, state: State, drain_seconds: float):
        super().__init__(config)
        self.state = state
        self.drain_seconds = drain_seconds
        self._drain: threading.Timer | None = None

    def handle_exit(self, sig: int, frame) -> None:
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


def serve(settings: Settings, load: Callable[[Settings], Recommender] = load_recommender) -> None:
    """Serve until stopped; ArtifactError when the artifacts cannot be served at all."""
    version_dir = store.resolve(settings.artifacts, settings.version, need_index=True)
    store.check_index(version_dir)  # a mismatched pair is refused before the port opens
    app = create_app(settings, load)
    state: State = app.state.recsys
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            log_config=logging_config(settings.log_level, settings.log_format), access_log=False,
                            timeout_graceful_shutdown=settings.shutdown_timeout)
    server = Server(config, state, settings.drain_seconds)
    fatal: list[str] = []

    def on_fatal(reason: str) -> None:
        fatal.append(reason)
        server.should_exit = True

    state.on_fatal = on_fatal
    previous = signal.signal(signal.SIGHUP, lambda *_: state.reload_in_background())
    try:
        server.run()
    finally:
        signal.signal(signal.SIGHUP, previous)
    if fatal:
        raise ArtifactError(f"model failed to load: {fatal[0]}")
