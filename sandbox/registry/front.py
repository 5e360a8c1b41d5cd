"""The registry's front: an asyncio HTTP reverse proxy on the public registry address, in front of docker-registry on
an internal loopback port. Bodies stream both ways (a layer is never held in memory); it enforces what token
authentication cannot: immutable tags, each learner's storage quota, "name unknown" for a repository of one's own
that does not exist, and garbage collection that loses no push (gate.py). It records every manifest pushed, so
DescribeImages and the console read push times and sizes from the database."""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict, defaultdict

import aiohttp
import jwt
from aiohttp import web
from cryptography import x509
from django.db import close_old_connections
from yarl import URL

from . import collection, selectors, services, tokens
from .gate import WriteGate
from .keys import signing_key_ensure
from .server import garbage_collect_command, storage_bytes

logger = logging.getLogger(__name__)
ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>blobs/uploads|blobs|manifests|tags)(?:/(?P<ref>.*))?$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}
CHUNK = 256 * 1024
READ_BUFFER = 4 * 1024 * 1024  # aiohttp reads 64 KB at a time by default, which halves a blob download's speed
MANIFEST_MAX = 4 * 1024 * 1024  # distribution's own bound on a manifest's body


def registry_error(status: int, code: str, message: str, *, close: bool = False) -> web.Response:
    """The registry's error shape, which docker prints as "<code in words>: <message>" (TAG_INVALID: "tag
    invalid: ...")."""
    response = web.json_response({"errors": [{"code": code, "message": message, "detail": None}]}, status=status,
                                 headers={"Docker-Distribution-API-Version": "registry/2.0"})
    if close:
        response.force_close()
    return response


async def in_thread(function, **kwargs):
    """A database call from the event loop: in a worker thread, with Django's stale connections closed around it."""
    def call():
        close_old_connections()
        try:
            return function(**kwargs)
        finally:
            close_old_connections()
    return await asyncio.to_thread(call)


class QuotaExceeded(Exception):
    pass


class Front:
    def __init__(self, *, upstream: str, config_path, quota_bytes: int, idle_seconds: float, drain_seconds: float):
        self.upstream = upstream.rstrip("/")
        self.config_path = config_path
        self.quota = quota_bytes
        self.drain_seconds = drain_seconds
        self.gate = WriteGate(idle_seconds=idle_seconds)
        self.pending: dict[str, int] = defaultdict(int)  # bytes uploaded per account not yet in a recorded image
        self._claims: OrderedDict[str, dict] = OrderedDict()
        certificate = x509.load_pem_x509_certificate(signing_key_ensure().certificate_path.read_bytes())
        self._public_key = certificate.public_key()
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), auto_decompress=False, read_bufsize=READ_BUFFER,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    # --- who is asking --------------------------------------------------------------------------------------------

    def claims(self, request: web.Request) -> dict | None:
        kind, _, token = request.headers.get("Authorization", "").partition(" ")
        if kind.lower() != "bearer" or not token:
            return None
        claims = self._claims.get(token)
        if claims is None:
            try:
                claims = jwt.decode(token, self._public_key, algorithms=["RS256"], audience=tokens.SERVICE,
                                    issuer=tokens.ISSUER)
            except jwt.PyJWTError:
                return None  # the registry refuses it too, in its own words
            self._claims[token] = claims
            while len(self._claims) > 2048:
                self._claims.popitem(last=False)
        elif claims["exp"] < time.time():
            return None
        return claims

    @staticmethod
    def actions(claims: dict, name: str) -> set[str]:
        return {action for access in claims.get("access") or [] if access.get("type") == "repository"
                and access.get("name") == name for action in access.get("actions") or []}

    # --- the proxy ------------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == collection.CONTROL_PATH:
            return await self.garbage_collect(request)
        route = ROUTE.match(request.path)
        claims = self.claims(request)
        if route is None or claims is None:
            return await self.forward(request)  # the registry's ping, its challenges, its refusals
        name, kind, ref = route["name"], route["kind"], route["ref"] or ""
        actions = self.actions(claims, name)
        subject = str(claims.get("sub", ""))
        account_id, _, repository = name.partition("/")
        if not actions and account_id == subject and not await in_thread(
                selectors.repository_exists, account_id=account_id, name=repository):
            return registry_error(404, "NAME_UNKNOWN", f"The repository with name '{repository}' does not exist in "
                                                       f"the registry with id '{account_id}'")
        if "push" in actions:
            async with self.gate.pushing(name) as ender:
                return await self.push_request(request, name, kind, ref, ender)
        if request.method not in ("GET", "HEAD"):
            async with self.gate.writing():
                return await self.forward(request)
        return await self.forward(request)

    async def push_request(self, request, name: str, kind: str, ref: str, ender: dict) -> web.StreamResponse:
        account_id = name.partition("/")[0]
        if kind == "blobs/uploads" and request.method in ("POST", "PATCH", "PUT"):
            used = await in_thread(selectors.account_storage_bytes, account_id=account_id) + self.pending[account_id]
            if used >= self.quota:
                return self.quota_refusal(used)
            if request.method == "POST" and not request.query.get("mount"):
                return await self.forward(request)
            return await self.forward(request, count_for=account_id, budget=self.quota - used)
        if kind == "manifests" and request.method == "PUT":
            return await self.manifest_put(request, name, ref, ender)
        return await self.forward(request)

    def quota_refusal(self, used: int) -> web.Response:
        mb = 1024 * 1024
        return registry_error(403, "DENIED", (
            f"Your registry storage is full: your repositories may hold {self.quota // mb} MB and this push would "
            f"take them past it ({used / mb:.0f} MB used). Delete images you no longer need (aws ecr "
            f"batch-delete-image) or give a repository a lifecycle policy, then push again."), close=True)

    async def manifest_put(self, request, name: str, reference: str, ender: dict) -> web.StreamResponse:
        received = bytearray()
        async for chunk in request.content.iter_any():
            received += chunk
            if len(received) > MANIFEST_MAX:
                return registry_error(400, "MANIFEST_INVALID", "manifest invalid: larger than 4 MB", close=True)
        body = bytes(received)
        tag = None if ":" in reference else reference
        if tag:
            refusal = await in_thread(services.tag_overwrite_refusal, registry_name=name, tag=tag, manifest=body)
            if refusal:
                return registry_error(400, "TAG_INVALID", refusal)
        return await self.forward(request, body=body, after=lambda upstream: self._manifest_recorded(
            upstream, name=name, tag=tag, body=body, media_type=request.headers.get("Content-Type", ""),
            ender=ender))

    async def _manifest_recorded(self, upstream: aiohttp.ClientResponse, *, name, tag, body, media_type, ender):
        if upstream.status != 201:
            return
        digest = upstream.headers.get("Docker-Content-Digest", "")
        try:
            await in_thread(services.image_record, registry_name=name, digest=digest, media_type=media_type,
                            manifest=body, tag=tag)
        except Exception:  # the push succeeded: the image is in the registry, only missing from DescribeImages
            logger.exception("could not record manifest %s@%s", name, digest)
        self.pending[name.partition("/")[0]] = 0
        ender["finished"] = True

    async def forward(self, request: web.Request, *, body: bytes | None = None, count_for: str | None = None,
                      budget: int | None = None, after=None) -> web.StreamResponse:
        headers = {key: value for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP}
        data = body
        if body is None and request.method not in ("GET", "HEAD") and request.body_exists:
            data = self._stream(request, count_for, budget)
        elif body is None and request.method not in ("GET", "HEAD"):
            data = b""
        try:
            upstream = await self.http.request(
                request.method, URL(self.upstream + request.raw_path, encoded=True), headers=headers, data=data,
                allow_redirects=False, skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"))
        except QuotaExceeded:
            return self.quota_refusal(self.quota)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            if isinstance(error.__cause__, QuotaExceeded) or isinstance(error.__context__, QuotaExceeded):
                return self.quota_refusal(self.quota)
            logger.warning("registry did not answer %s %s: %s", request.method, request.path, error)
            return registry_error(503, "UNAVAILABLE", "The registry is restarting. Please try again in a minute.")
        async with upstream:
            if after is not None:
                await after(upstream)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            await response.write_eof()
            return response

    async def _stream(self, request: web.Request, account_id: str | None, budget: int | None):
        async for chunk in request.content.iter_chunked(CHUNK):
            if account_id is not None:
                self.pending[account_id] += len(chunk)
                budget -= len(chunk)
                if budget < 0:
                    raise QuotaExceeded()
            yield chunk

    # --- garbage collection ---------------------------------------------------------------------------------------

    async def garbage_collect(self, request: web.Request) -> web.Response:
        claims = self.claims(request)
        granted = claims is not None and claims.get("sub") == "sandcloud" and any(
            access == collection.CONTROL_ACCESS.claim() for access in claims.get("access") or [])
        if request.method != "POST" or not granted:
            return registry_error(401, "UNAUTHORIZED", "authentication required")
        try:
            outcome = await self.gate.collect(self._collect, drain_seconds=self.drain_seconds)
        except (OSError, RuntimeError) as error:  # said to the platform, which records it
            outcome = {"status": "FAILED", "detail": str(error)[:500]}
        return web.json_response(outcome)

    async def _collect(self) -> dict:
        before = await asyncio.to_thread(storage_bytes)
        process = await asyncio.create_subprocess_exec(
            *garbage_collect_command(config_path=self.config_path), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        after = await asyncio.to_thread(storage_bytes)
        self.pending.clear()
        lines = output.decode(errors="replace").strip().splitlines()
        if process.returncode != 0:
            raise RuntimeError("garbage-collect failed: " + " / ".join(lines[-3:]))
        return {"bytes_before": before, "bytes_after": after, "detail": (lines[-1] if lines else "")[:500]}


def application(front: Front) -> web.Application:
    app = web.Application(client_max_size=MANIFEST_MAX + 1)

    app.router.add_route("*", "/{tail:.*}", front.handle)
    app.on_startup.append(lambda app: front.start())
    app.on_cleanup.append(lambda app: front.close())
    return app
