"""Who is on a proxy socket, and what they hold on the engine right now: the LearnerScope each request is checked in.

A socket is per workstation uid (`<DIR>/uid-<uid>/docker.sock`), because a warm workstation is created, socket and
all, before anyone owns it; the uid is unique among live sandboxes (a database constraint), so it names one learner
from the moment their sandbox claims the container. What a learner holds is read from the engine on each request
(their labelled containers and volumes, the images under their names): nothing to drift, no table to reconcile.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.conf import settings

from sandbox.engine.cgroups import ParentCgroup
from sandbox.policy import Limits, learner_network_name

from . import relay
from .names import Namespace
from .policy import OWNER_LABEL, DockerQuota, LearnerScope, owner_filters

MEMORY_LABEL = "sandcloud.memory-mb"


@dataclass(frozen=True)
class Learner:
    user_id: int
    uid: int
    namespace: Namespace


@dataclass
class Holdings:
    """The learner's objects, in the learner's names: container id -> name, image refs and ids, volume names."""
    containers: dict[str, str]
    memory_mb: int
    images: set[str]
    image_bytes: int
    volumes: set[str]
    # The shared base images' references and ids: visible and usable, never removable.
    shared: set[str]


def proxy_settings() -> dict:
    return settings.SANDCLOUD_DOCKER_PROXY


_owners: dict[int, tuple[float, Learner | None]] = {}


def _active_owner(uid: int) -> int | None:
    from sandbox.models import Sandbox
    from sandbox.states import ACTIVE
    return (Sandbox.objects.filter(uid=uid, state__in=sorted(ACTIVE)).values_list("owner_id", flat=True).first())


async def learner_for_uid(uid: int) -> Learner | None:
    """The learner whose live sandbox runs as `uid`, cached for two seconds (a sandbox's owner never changes)."""
    cached = _owners.get(uid)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    user_id = await sync_to_async(_active_owner, thread_sensitive=False)(uid)
    instance = settings.SANDCLOUD["INSTANCE"]
    learner = None if user_id is None else Learner(user_id=user_id, uid=uid,
                                                   namespace=Namespace(instance=instance, owner=str(user_id)))
    _owners[uid] = (time.monotonic() + 2.0, learner)
    return learner


def shared_images() -> frozenset[str]:
    return frozenset(proxy_settings()["SHARED_IMAGES"])


def registries_for(user_id: int) -> tuple[str, ...]:
    """The learner's private registry prefix (host:port/account), where their pushes and pulls may go."""
    registry = getattr(settings, "SANDCLOUD_REGISTRY", None)
    if not registry or not registry.get("ENABLED"):
        return ()
    from sandbox.awsapi import identity
    from django.contrib.auth import get_user_model
    user = get_user_model().objects.get(pk=user_id)
    account = identity.aws_account_for(user=user)
    return (f"127.0.0.1:{registry['PORT']}/{account.account_id}",)


_containers: dict[int, tuple[float, list[dict]]] = {}
_HEX_REF = re.compile(r"(sha256:)?[0-9a-f]{4,64}")


def containers_forget(learner: Learner) -> None:
    """After a request that changes which containers the learner has or what they are called."""
    _containers.pop(learner.user_id, None)


async def _containers_listed(engine: str, learner: Learner, filters: str, *, fresh: bool) -> list[dict]:
    # A second at most: ids never change owner, and a name the cache misses is looked up afresh (server.py).
    cached = _containers.get(learner.user_id)
    if cached and not fresh and cached[0] > time.monotonic():
        return cached[1]
    _, listed = await relay.engine_json(engine, "GET", f"/containers/json?all=1&filters={quote(filters)}")
    _containers[learner.user_id] = (time.monotonic() + 1.0, listed or [])
    return listed or []


async def holdings_read(engine: str, learner: Learner, *, shared: frozenset[str], containers: bool = True,
                        images: str = "none", image_refs: tuple[str, ...] = (), volumes: bool = False,
                        fresh: bool = False) -> Holdings:
    """What the learner holds, read only as far as the request needs: `images` is "none", "refs" (just whether each
    of `image_refs` is theirs, one inspect each) or "all" (every image on the engine, for lists, ids and sizes)."""
    ns = learner.namespace
    filters = owner_filters(None, f"{OWNER_LABEL}={ns.tag}")
    listed = await _containers_listed(engine, learner, filters, fresh=fresh) if containers else []
    held = {c["Id"]: ns.to_learner_object((c.get("Names") or [""])[0]) for c in listed}
    memory = sum(int((c.get("Labels") or {}).get(MEMORY_LABEL, 0) or 0) for c in listed)
    owned_images: set[str] = set()
    shared_found: set[str] = set(shared)
    image_bytes = 0
    registries = tuple(proxy_registries(learner))
    if images == "refs" and any(_HEX_REF.fullmatch(ref) for ref in image_refs):
        images = "all"
    if images == "refs":
        for ref in image_refs:
            if ref in shared or not ref:
                continue
            engine_ref = ns.to_engine_image(ref, shared=shared)
            registry_ref = engine_ref == ref
            if registry_ref and not any(ref.startswith(r + "/") for r in registries):
                continue
            status, _ = await relay.engine_json(engine, "GET", f"/images/{quote(engine_ref, safe='/:@')}/json")
            if status == 200:
                owned_images.add(ref)
    elif images == "all":
        _, summaries = await relay.engine_json(engine, "GET", "/images/json")
        for image in summaries or []:
            tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
            if any(t in shared for t in tags):
                shared_found.add(image["Id"])
            mine = [ns.to_learner_image(t) for t in tags if ns.owns_engine_image(t)]
            mine += [t for t in tags if any(t.startswith(r + "/") for r in registries)]
            labelled = (image.get("Labels") or {}).get(OWNER_LABEL) == ns.tag
            if mine or labelled:
                owned_images.update(mine)
                owned_images.add(image["Id"])
                image_bytes += int(image.get("Size") or 0)
    owned_volumes: set[str] = set()
    if volumes:
        _, answer = await relay.engine_json(engine, "GET", f"/volumes?filters={quote(filters)}")
        owned_volumes = {ns.to_learner_object(v["Name"]) for v in (answer or {}).get("Volumes") or []}
    return Holdings(containers=held, memory_mb=memory, images=owned_images, image_bytes=image_bytes,
                    volumes=owned_volumes, shared=shared_found)


_registries: dict[int, tuple[float, tuple[str, ...]]] = {}


def proxy_registries(learner: Learner) -> tuple[str, ...]:
    cached = _registries.get(learner.user_id)
    return cached[1] if cached else ()


async def registries_refresh(learner: Learner) -> tuple[str, ...]:
    cached = _registries.get(learner.user_id)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    found = await sync_to_async(registries_for, thread_sensitive=False)(learner.user_id)
    _registries[learner.user_id] = (time.monotonic() + 60.0, found)
    return found


def learner_scope(learner: Learner, holdings: Holdings) -> LearnerScope:
    """The policy's view of the learner: limits and what is left of their quota, in the learner's own names."""
    config = proxy_settings()
    engine_config = settings.SANDCLOUD
    limits = Limits.from_settings(engine_config["DEFAULT_LIMITS"])
    limits = replace(limits, memory_mb=min(limits.memory_mb, config["CONTAINER_MEMORY_MB"]))
    parent = engine_config.get("SANDBOXES_CGROUP") or {}
    cgroup_parent = ParentCgroup.from_settings(parent).docker_path if parent.get("name") else None
    return LearnerScope(
        owner=learner.namespace.tag, instance=engine_config["INSTANCE"], uid=learner.uid,
        gid=config["GID"], network=learner_network_name(engine_config["INSTANCE"], learner.user_id),
        quota=DockerQuota(containers_left=config["MAX_CONTAINERS"] - len(holdings.containers),
                          memory_mb_left=config["MEMORY_MB"] - holdings.memory_mb,
                          cpus=config["CPUS"], pids=limits.pids),
        limits=limits, containers=holdings.containers, volumes=frozenset(holdings.volumes),
        images=frozenset(holdings.images), shared_images=frozenset(holdings.shared),
        registries=proxy_registries(learner), runtimes=frozenset({"runc"}), offline_runtimes=frozenset(),
        cgroup_parent=cgroup_parent,
    )
