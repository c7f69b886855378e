"""A read-only Docker registry (the v2 API's pull half) on a loopback port, serving images taken from
the engine's own `docker save`: enough for the real engine to `pull` from it, with no registry image
to pull first. The engine treats 127.0.0.0/8 registries as plain HTTP by default."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryStub:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                stub.requests.append(self.path)
                found = stub._lookup(self.path)
                if found is None:
                    self.send_response(404)
                    payload = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if body:
                        self.wfile.write(payload)
                    return
                data, content_type = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Content-Digest", _digest(data))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RegistryStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _lookup(self, path: str) -> tuple[bytes, str] | None:
        if path.rstrip("/") == "/v2":
            return b"{}", "application/json"
        if match := re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path):
            name, reference = match.groups()
            by_name = {tag: m for (n, tag), m in self.manifests.items() if n == name}
            by_digest = {_digest(m): m for m in by_name.values()}
            manifest = by_name.get(reference) or by_digest.get(reference)
            return None if manifest is None else (manifest, MANIFEST_TYPE)
        if match := re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", path):
            blob = self.blobs.get(match.group(2))
            return None if blob is None else (blob, "application/octet-stream")
        return None

    def publish(self, saved: bytes, name: str, tag: str) -> None:
        """Serve the image in `saved` (a `docker save` tar) as `name:tag`."""
        with tarfile.open(fileobj=io.BytesIO(saved)) as archive:

            def member(path: str) -> bytes:
                file = archive.extractfile(path)
                assert file is not None
                return file.read()

            [entry] = json.loads(member("manifest.json"))
            config = member(entry["Config"])
            layers = [gzip.compress(member(path), mtime=0) for path in entry["Layers"]]
        for blob in (config, *layers):
            self.blobs[_digest(blob)] = blob
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": _digest(config),
            },
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(b), "digest": _digest(b)}
                for b in layers
            ],
        }
        self.manifests[(name, tag)] = json.dumps(manifest).encode()
