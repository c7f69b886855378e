"""A unix socket in front of the Docker engine's, for tests that take the engine away from a host.

A host given it as DOCKER_HOST loses its engine at `cut` (its open connections too) and has it back
at `restore`; `drop` only breaks the connections open now, as a network blip would, while new ones
still reach the engine."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


class EngineForwarder:
    def __init__(self, path: Path, target: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.target = target
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def restore(self) -> None:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        self.path.unlink(missing_ok=True)
        self.drop()

    def drop(self) -> None:
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                engine.connect(self.target)
            except OSError:
                client.close()
                engine.close()
                continue
            with self._lock:
                # A connection accepted while `cut` ran must not outlive it: the host would still
                # reach its engine through it.
                if self._listener is not listener:
                    client.close()
                    engine.close()
                    return
                self._open.update((client, engine))
            ends = threading.Semaphore(0)
            for source, sink in ((client, engine), (engine, client)):
                threading.Thread(target=self._pipe, args=(source, sink, ends), daemon=True).start()
            threading.Thread(target=self._close_after, args=(client, engine, ends), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, ends: threading.Semaphore) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)  # a half-close (the end of a program's stdin) goes through
        except OSError:
            for end in (source, sink):  # a broken pair: wake the other direction too
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
        finally:
            ends.release()

    def _close_after(self, client: socket.socket, engine: socket.socket, ends: threading.Semaphore) -> None:
        ends.acquire()
        ends.acquire()
        with self._lock:
            self._open.difference_update((client, engine))
        client.close()
        engine.close()


@contextmanager
def engine_forwarder() -> Iterator[EngineForwarder]:
    # A unix socket's path is short (108 bytes): not under pytest's long temporary folders.
    folder = Path(tempfile.mkdtemp(prefix="lr-engine-"))
    forwarder = EngineForwarder(folder / "docker.sock")
    forwarder.restore()
    try:
        yield forwarder
    finally:
        forwarder.cut()
        shutil.rmtree(folder, ignore_errors=True)
