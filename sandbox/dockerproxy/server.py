"""The Docker proxy process: the Docker Engine API on one Unix socket per workstation uid, checked and translated.

Each request is classified and checked by `policy` in the learner's own names, translated to the engine's names
(`names`), and forwarded on a fresh connection to the engine; answers come back with the learner's prefixes taken
out. Streams (logs -f, events, build and push output) are relayed piece by piece; attach and exec are spliced both
ways. Nothing of the engine's own socket reaches a workstation, and nothing the policy does not know is forwarded.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote

import h11

from . import policy, relay
from .builds import context_with_dockerfile
from .volumes import volume_disk_create, volume_disk_remove, volume_disks_tend
from .policy import MB, ProxyRefusal, Route
from .scope import (MEMORY_LABEL, Learner, containers_forget, holdings_read, learner_for_uid, learner_scope, proxy_registries,
                    proxy_settings, registries_refresh, shared_images)

log = logging.getLogger("sandcloud.dockerproxy")

# Answers rewritten whole (their names translated); every other answer is relayed as it comes.
_JSON_ANSWERS = frozenset({"container.list", "container.inspect", "image.list", "image.inspect", "image.history",
                           "volume.list", "volume.inspect", "volume.create", "system.info", "exec.inspect",
                           "container.top", "network.list", "network.inspect", "image.remove", "container.prune",
                           "volume.prune"})
_PROGRESS_STREAMS = frozenset({"image.build", "image.pull", "image.push", "system.events"})
# What each request needs to know of the learner's holdings, so a `docker ps` costs one lookup and a `docker ping`
# none: their containers (ownership, names, quota), their images (all of them, or just whether the named one is
# theirs), and which requests change the names the container lookup caches.
_CONTAINER_LOOKUPS = policy.CONTAINER_KINDS | {"container.create", "exec.start", "exec.resize", "exec.inspect"}
_IMAGE_LISTS = frozenset({"image.list", "image.pull", "image.build", "image.push"})
_IMAGE_REF_KINDS = frozenset({"image.inspect", "image.history", "image.tag", "image.remove"})
_ID_CHANGES = frozenset({"container.create", "container.rename", "container.remove", "container.prune"})
_MAX_ANSWER = 32 * MB
_HEX_ID = re.compile(r"(sha256:)?[0-9a-f]{4,64}")


class DockerProxy:
    def __init__(self, *, directory: str | None = None, engine: str | None = None):
        config = proxy_settings()
        self.directory = Path(directory or config["DIR"])
        self.engine = engine or config["ENGINE_SOCKET"]
        self.servers: dict[int, asyncio.AbstractServer] = {}
        self.connections: dict[int, int] = {}
        self.builds = asyncio.Semaphore(config["BUILDS_AT_ONCE"])
        self.learner_builds: dict[int, asyncio.Lock] = {}
        self.tasks: set[asyncio.Task] = set()

    # -- sockets ----------------------------------------------------------------------------------------------------

    async def serve_forever(self, *, scan_seconds: float = 0.25) -> None:
        """Listens on every `uid-<n>` directory there is, picking up new ones as workstations are created."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _, volumes = await relay.engine_json(self.engine, "GET", "/volumes")
        await asyncio.to_thread(volume_disks_tend, {v["Name"] for v in (volumes or {}).get("Volumes") or []})
        while True:
            await self.scan()
            await asyncio.sleep(scan_seconds)

    async def scan(self) -> None:
        present = set()
        for entry in os.scandir(self.directory):
            if entry.is_dir() and entry.name.startswith("uid-") and entry.name[4:].isdigit():
                present.add(int(entry.name[4:]))
        for uid in present - set(self.servers):
            path = self.directory / f"uid-{uid}" / "docker.sock"
            path.unlink(missing_ok=True)
            self.servers[uid] = await asyncio.start_unix_server(
                lambda r, w, uid=uid: self._connection(uid, r, w), path=str(path), limit=relay.READ_SIZE)
            # The workstation's processes run as the uid itself; the directory is mounted into its container only.
            os.chmod(path, 0o666)
        for uid in set(self.servers) - present:
            self.servers.pop(uid).close()

    def close(self) -> None:
        for server in self.servers.values():
            server.close()

    # -- one connection ---------------------------------------------------------------------------------------------

    async def _connection(self, uid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The event loop holds tasks weakly, and on Python 3.11 a stream's protocol holds its reader weakly too: a
        # connection waiting on the engine (a hijacked attach) could be collected mid-stream without this reference.
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await self._serve_connection(uid, reader, writer)
        finally:
            self.tasks.discard(task)

    async def _serve_connection(self, uid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limit = proxy_settings()["MAX_CONNECTIONS"]
        connection = relay.LearnerConnection(reader=reader, writer=writer)
        if self.connections.get(uid, 0) >= limit:
            await self._refuse(connection, ProxyRefusal(
                f"you have {limit} connections to Docker open (logs -f, attach and events each hold one); close "
                f"some first.", status=429), close=True)
            writer.close()
            return
        self.connections[uid] = self.connections.get(uid, 0) + 1
        try:
            while True:
                try:
                    request = await connection.request_head()
                except h11.RemoteProtocolError as error:
                    if connection.refusal_possible():
                        await self._refuse(connection, ProxyRefusal(f"malformed request: {error}", status=400),
                                           close=True)
                    return
                if request is None:
                    return
                keep_going = await self._request(uid, connection, request)
                if not keep_going or connection.conn.our_state is h11.MUST_CLOSE:
                    return
        except (ConnectionError, relay.ClientGone, asyncio.IncompleteReadError, h11.ProtocolError):
            return
        except Exception:  # noqa: BLE001 - a request must never take the proxy down with it
            log.exception("docker proxy: request failed")
            if connection.refusal_possible():
                await self._refuse(connection, ProxyRefusal("Sandcloud's Docker proxy failed on this request; try "
                                                            "again.", status=500), close=True)
        finally:
            self.connections[uid] -= 1
            writer.close()

    async def _refuse(self, connection: relay.LearnerConnection, refusal: ProxyRefusal, *, close=False) -> None:
        await connection.answer(refusal.status, {"message": refusal.message}, close=close)

    async def _request(self, uid: int, connection: relay.LearnerConnection, request: relay.Request) -> bool:
        """Answers one request; False when the connection is to close (its body unread, or a stream that took it)."""
        config = proxy_settings()
        body_read = False
        try:
            route = policy.route_classify(request.method, request.target)
            limit, spool = config["MAX_JSON_BYTES"], False
            if route.kind == "image.build":
                limit, spool = config["BUILD_CONTEXT_MB"] * MB, True
            elif route.kind == "container.archive_put":
                limit, spool = config["ARCHIVE_MB"] * MB, True
            await connection.read_body(request, limit=limit, spool=spool)
            body_read = True
            learner = await learner_for_uid(uid)
            if learner is None:
                raise ProxyRefusal("this workstation is not yours yet (it is still being handed to you); try again "
                                   "in a moment.", status=503)
            return await self._checked(learner, connection, request, route)
        except relay.BodyTooLarge as error:
            what = "build context" if "build" in request.target else "request body"
            await self._refuse(connection, ProxyRefusal(
                f"the {what} is larger than {error.limit // MB or 1} MB, the most Sandcloud's Docker takes"
                + (". Leave out what the image does not need with a .dockerignore file." if what == "build context"
                   else "."), status=413), close=True)
            await connection.discard_input(limit=error.limit, seconds=10)
            return False
        except h11.RemoteProtocolError as error:
            if connection.refusal_possible():
                await self._refuse(connection, ProxyRefusal(f"malformed request: {error}", status=400), close=True)
            return False
        except ProxyRefusal as refusal:
            if not connection.refusal_possible():
                return False
            # A body still unread would be taken for the next request: such a refusal ends the connection.
            await self._refuse(connection, refusal, close=not body_read)
            return body_read
        except json.JSONDecodeError:
            await self._refuse(connection, ProxyRefusal("the request body is not valid JSON", status=400))
            return True

    async def _checked(self, learner: Learner, connection: relay.LearnerConnection, request: relay.Request,
                       route: Route) -> bool:
        ns = learner.namespace
        kind = route.kind
        await registries_refresh(learner)
        if kind in _ID_CHANGES:
            containers_forget(learner)
        image_refs: tuple[str, ...] = ()
        if kind == "container.create":
            image_refs = (str((request.json() or {}).get("Image") or ""),)
        elif kind == "image.push" and route.param("tag"):
            image_refs = (f"{route.object_id}:{route.param('tag')}",)
        elif kind in _IMAGE_REF_KINDS:
            image_refs = (route.object_id,)
        lookups = dict(shared=shared_images(), containers=kind in _CONTAINER_LOOKUPS,
                       images="all" if kind in _IMAGE_LISTS else "refs" if image_refs else "none",
                       image_refs=image_refs, volumes=kind.startswith("volume.") or kind == "container.create")
        holdings = await holdings_read(self.engine, learner, **lookups)
        try:
            route, execs = await self._object_check(learner, route, holdings)
        except ProxyRefusal as refusal:
            if refusal.status != 404 or not lookups["containers"]:
                raise
            # A name the second-old list does not know yet (created a moment ago by another connection).
            holdings = await holdings_read(self.engine, learner, **lookups, fresh=True)
            route, execs = await self._object_check(learner, route, holdings)
        scope = learner_scope(learner, holdings)
        body, body_size = request.body, request.body_size
        headers = [(k, v) for k, v in request.headers if k.lower() in (b"content-type", b"x-registry-auth",
                                                                       b"x-registry-config")]
        storage_cap = proxy_settings()["IMAGE_STORAGE_MB"] * MB
        if kind in ("image.build", "image.pull") and holdings.image_bytes >= storage_cap:
            raise ProxyRefusal(f"your images take {holdings.image_bytes // MB} MB, the most Sandcloud keeps for you "
                               f"is {storage_cap // MB} MB: remove some (docker images, docker rmi) first.")

        if kind == "container.create":
            checked = policy.container_create_check(request.json(), learner=scope)
            body = json.dumps(self._create_to_engine(learner, checked, holdings)).encode()
            body_size = len(body)
            if route.param("name"):
                route = route.with_query(name=ns.to_engine_object(route.param("name")))
        elif kind == "container.update":
            body = json.dumps(policy.container_update_check(request.json(), learner=scope)).encode()
            body_size = len(body)
        elif kind in ("container.archive_get", "container.archive_stat", "container.archive_put"):
            route = policy.archive_path_check(route)
            if kind == "container.archive_put":
                policy.archive_check(request.body, max_bytes=proxy_settings()["ARCHIVE_MB"] * MB)
                request.body.seek(0)
        elif kind == "container.rename":
            route = route.with_query(name=ns.to_engine_object(route.param("name") or ""))
        elif kind == "volume.create":
            return await self._volume_create(learner, connection, request, scope, holdings)
        elif kind in ("volume.inspect", "volume.remove"):
            route = route.with_object(ns.to_engine_object(route.object_id))
        elif kind == "volume.prune":
            raise ProxyRefusal("remove your volumes one by one (docker volume rm NAME).")
        elif kind in ("image.inspect", "image.history", "image.push", "image.tag", "image.remove"):
            if kind == "image.remove":
                await self._image_remove_check(learner, route.object_id, holdings)
            route = route.with_object(ns.to_engine_image(route.object_id, shared=holdings.shared))
            if kind == "image.tag":
                route = route.with_query(repo=ns.to_engine_repo(route.param("repo") or ""))
        elif kind == "image.pull":
            image = route.param("fromImage") or ""
            if policy.image_in(image + (f":{route.param('tag')}" if route.param("tag") else ""), holdings.shared):
                return await self._answer_local_pull(connection, image, route.param("tag"))
        elif kind == "system.auth":
            body = json.dumps(policy.auth_check(request.json(), learner=scope)).encode()
            body_size = len(body)
        elif kind == "image.list" and route.param("filters"):
            route = route.with_query(filters=_reference_filters(ns, route.param("filters")))
        elif kind == "network.list":
            route = route.with_query(filters=json.dumps({"name": [scope.network]}))
        elif kind == "image.build":
            route = policy.build_query_check(route, learner=scope)
            route = route.with_query(t=[ns.to_engine_image(t, shared=holdings.shared) for t in route.query.get("t", ())])
            policy.build_context_check(request.body, max_bytes=proxy_settings()["BUILD_CONTEXT_MB"] * MB)
            request.body.seek(0)

            def image_for(ref: str) -> str:
                if policy.image_in(ref, holdings.shared):
                    return ref
                if policy.image_in(ref, holdings.images):
                    return ns.to_engine_image(ref, shared=holdings.shared)
                raise ProxyRefusal(f"FROM {ref}: not one of your images or Sandcloud's shared base images "
                                   f"({', '.join(sorted(shared_images()))}). Build it first, or pull it from your "
                                   f"private registry.", status=404)

            body = context_with_dockerfile(request.body, dockerfile=route.param("dockerfile") or "Dockerfile",
                                           image_for=image_for)
            body_size = body.size
            headers = [(b"content-type", b"application/x-tar"),
                       *[(k, v) for k, v in headers if k.lower() == b"x-registry-config"]]
            lock = self.learner_builds.setdefault(learner.user_id, asyncio.Lock())
            async with lock, self.builds:
                return await self._forward(learner, connection, route, body, body_size, headers,
                                           upgrade=False, timeout=3600)
        return await self._forward(learner, connection, route, body, body_size, headers,
                                   upgrade=request.wants_upgrade and kind in ("container.attach", "exec.start"),
                                   timeout=30)

    async def _object_check(self, learner: Learner, route: Route, holdings) -> tuple[Route, tuple[str, ...]]:
        execs = ()
        if route.kind in ("exec.start", "exec.resize", "exec.inspect"):
            status, inspected = await relay.engine_json(self.engine, "GET", f"/exec/{quote(route.object_id)}/json")
            if status == 200 and (inspected or {}).get("ContainerID") in holdings.containers:
                execs = (route.object_id,)
        checked = policy.object_check(route, learner=learner_scope(learner, holdings),
                                      owned_containers=holdings.containers, owned_images=holdings.images,
                                      shared_images=holdings.shared, owned_volumes=holdings.volumes,
                                      owned_execs=execs)
        return checked, execs

    async def _volume_create(self, learner: Learner, connection: relay.LearnerConnection, request: relay.Request,
                             scope, holdings) -> bool:
        checked = policy.volume_create_check(request.json(), learner=scope)
        name = checked.get("Name") or secrets.token_hex(16)
        ns = learner.namespace
        if name in holdings.volumes:
            # Docker answers an existing name with that volume, unchanged.
            status, existing = await relay.engine_json(self.engine, "GET", f"/volumes/{quote(ns.to_engine_object(name))}")
            await connection.answer(status, _volume_answer(ns, existing))
            return True
        if len(holdings.volumes) >= proxy_settings()["MAX_VOLUMES"]:
            raise ProxyRefusal(f"you have {len(holdings.volumes)} volumes, the most Sandcloud keeps for you: remove "
                               f"one first (docker volume rm NAME).")
        engine_name = ns.to_engine_object(name)
        device = await asyncio.to_thread(volume_disk_create, engine_name)
        checked.update(Name=engine_name, DriverOpts={"type": "none", "o": "bind", "device": device})
        status, created = await relay.engine_json(self.engine, "POST", "/volumes/create", body=checked)
        if status != 201:
            await asyncio.to_thread(volume_disk_remove, engine_name)
        await connection.answer(status, _volume_answer(ns, created))
        return True

    def _create_to_engine(self, learner: Learner, body: dict, holdings) -> dict:
        ns = learner.namespace
        host = body.get("HostConfig") or {}
        body["Image"] = ns.to_engine_image(body["Image"], shared=holdings.shared)
        if host.get("Binds"):
            host["Binds"] = [ns.to_engine_object(b.split(":", 1)[0]) + ":" + b.split(":", 1)[1] for b in host["Binds"]]
        for mount in host.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Source"):
                mount["Source"] = ns.to_engine_object(mount["Source"])
        if host.get("Links"):
            host["Links"] = [ns.to_engine_object(link.split(":", 1)[0]) + ":" + link.split(":", 1)[1]
                             for link in host["Links"]]
        memory_mb = int(host.get("Memory") or 0) // MB
        body["Labels"] = {**body.get("Labels", {}), MEMORY_LABEL: str(memory_mb)}
        return body

    async def _image_remove_check(self, learner: Learner, ref: str, holdings) -> None:
        """Removing by id must not take tags that are not the learner's (the engine's force would take them all)."""
        if not _HEX_ID.fullmatch(ref):
            return
        status, inspected = await relay.engine_json(self.engine, "GET", f"/images/{quote(ref)}/json")
        if status != 200:
            return
        ns = learner.namespace
        others = [t for t in inspected.get("RepoTags") or []
                  if not ns.owns_engine_image(t) and not policy.image_in(t, holdings.images)]
        if others:
            raise ProxyRefusal(f"conflict: unable to delete {ref[:12]} - image is referenced in repositories that "
                               f"are not yours; remove your own tags by name (docker rmi <name:tag>).", status=409)

    async def _answer_local_pull(self, connection: relay.LearnerConnection, image: str, tag: str | None) -> bool:
        name = f"{image}:{tag or 'latest'}"
        lines = [{"status": f"Pulling from {image}", "id": tag or "latest"},
                 {"status": f"Status: Image is up to date for {name}"}]
        await connection.answer(200, b"".join(json.dumps(line).encode() + b"\r\n" for line in lines))
        return True

    async def _forward(self, learner: Learner, connection: relay.LearnerConnection, route: Route, body, body_size,
                       headers, *, upgrade: bool, timeout: float) -> bool:
        ns = learner.namespace
        response = await relay.engine_request(self.engine, route.method, route.forward_path(), headers=headers,
                                              body=body, body_size=body_size, upgrade=upgrade, timeout=timeout)
        try:
            if response.status == 101:
                await connection.send(h11.InformationalResponse(status_code=101, headers=[
                    (b"connection", b"Upgrade"), (b"upgrade", b"tcp"),
                    *[(k, v) for k, v in response.headers if k.lower() == b"content-type"]]))
                await relay.splice(connection, response)
                return False
            if route.kind == "volume.remove" and response.status == 204:
                await asyncio.to_thread(volume_disk_remove, route.object_id)
            if route.kind in _JSON_ANSWERS or response.status >= 400:
                data = await response.read_all(limit=_MAX_ANSWER)
                if data.strip() and (response.header("content-type") or "").startswith("application/json"):
                    data = self._answer_json(learner, route, json.loads(data), response.status)
                elif data:
                    data = ns.answer_bytes(data)
                await connection.answer(response.status, data, headers=response.headers)
                return True
            headers_out = [(k, v) for k, v in response.headers if k.lower() not in relay.HOP_BY_HOP]
            length = response.header("content-length")
            rewrite = route.kind in _PROGRESS_STREAMS
            if length is not None and not rewrite:
                headers_out.append((b"content-length", length.encode()))
            await connection.send(h11.Response(status_code=response.status, headers=headers_out))
            if route.method != "HEAD":
                async for chunk in response.chunks():
                    await connection.send(h11.Data(data=ns.answer_bytes(chunk) if rewrite else chunk))
            await connection.send(h11.EndOfMessage())
            return True
        finally:
            response.close()

    def _answer_json(self, learner: Learner, route: Route, value, status: int) -> bytes:
        ns = learner.namespace
        if route.kind == "image.list" and status == 200:
            value = [image for image in value if _image_visible(learner, image)]
            for image in value:
                image["RepoTags"] = [t for t in image.get("RepoTags") or [] if _tag_visible(learner, t)] or None
                image["RepoDigests"] = [d for d in image.get("RepoDigests") or [] if _tag_visible(learner, d)] or None
        elif route.kind in ("image.inspect",) and status == 200:
            value["RepoTags"] = [t for t in value.get("RepoTags") or [] if _tag_visible(learner, t)]
            value["RepoDigests"] = [d for d in value.get("RepoDigests") or [] if _tag_visible(learner, d)]
        elif route.kind == "image.history" and status == 200:
            for layer in value:
                layer["Tags"] = [t for t in layer.get("Tags") or [] if _tag_visible(learner, t)] or None
        elif route.kind == "volume.inspect" and status == 200:
            value = {**value, "Options": None, "Mountpoint": ""}
        elif route.kind == "volume.list" and status == 200:
            value["Volumes"] = [{**v, "Options": None, "Mountpoint": ""} for v in value.get("Volumes") or []]
        elif route.kind == "system.info" and status == 200:
            value = {k: v for k, v in value.items() if k not in ("Name", "ID", "RegistryConfig", "Swarm", "Plugins",
                                                                  "DockerRootDir", "HttpProxy", "HttpsProxy",
                                                                  "NoProxy", "Labels", "SystemStatus")}
            value["Name"] = "sandcloud"
            value["Containers"] = value["ContainersRunning"] = value["ContainersPaused"] = None
            value["ContainersStopped"] = value["Images"] = None
            value = {k: v for k, v in value.items() if v is not None}
        return json.dumps(ns.answer_json(value)).encode() + b"\n"


def _reference_filters(ns, filters: str) -> str:
    """`docker images hello` filters by reference: the learner's name, as the engine stores it."""
    try:
        parsed = json.loads(filters)
    except ValueError:
        raise ProxyRefusal("invalid filter: the filters parameter must be JSON", status=400) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("reference", []), (list, dict)):
        raise ProxyRefusal("invalid filter: the filters parameter must be a JSON object", status=400)
    references = parsed.get("reference") or []
    references = [k for k, on in references.items() if on] if isinstance(references, dict) else references
    shared_repos = {image.rsplit(":", 1)[0] for image in shared_images()}
    parsed["reference"] = [r if str(r).rsplit(":", 1)[0] in shared_repos else ns.to_engine_image(str(r))
                           for r in references]
    if not parsed["reference"]:
        parsed.pop("reference")
    return json.dumps(parsed)


def _tag_visible(learner: Learner, tag: str) -> bool:
    """Whether a tag (or digest reference) in an engine answer is the learner's, a shared image's, or neither."""
    return learner.namespace.owns_engine_image(tag) or tag.split("@", 1)[0] in shared_images() or any(
        tag.startswith(r + "/") for r in proxy_registries(learner))


def _image_visible(learner: Learner, image: dict) -> bool:
    tags = image.get("RepoTags") or []
    return any(_tag_visible(learner, t) for t in tags if t != "<none>:<none>") or \
        (image.get("Labels") or {}).get(policy.OWNER_LABEL) == learner.namespace.tag


def _volume_answer(ns, volume: dict | None) -> bytes:
    """A volume as the learner sees it: their name, and not the host paths of the filesystem behind it."""
    if isinstance(volume, dict) and "Name" in volume:
        volume = {**volume, "Options": None, "Mountpoint": ""}
    return json.dumps(ns.answer_json(volume)).encode()
