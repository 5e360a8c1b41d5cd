"""What a learner holds on the engine through their docker CLI, in their own names: for lab checks and the console."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from sandbox.engine.docker import engine

from .names import Namespace
from .policy import OWNER_LABEL


@dataclass(frozen=True)
class LearnerImage:
    id: str
    tags: tuple[str, ...]
    size_bytes: int
    created: int
    # Each layer as `docker history` shows it, newest first: (created_by, size in bytes).
    history: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class LearnerContainer:
    id: str
    name: str
    image: str
    state: str
    labels: dict


def namespace_for(user_id: int) -> Namespace:
    return Namespace(instance=settings.SANDCLOUD["INSTANCE"], owner=str(user_id))


def learner_images(*, user_id: int, with_history: bool = False) -> list[LearnerImage]:
    """The learner's images under their own tags (built, tagged or pulled through the proxy), newest first."""
    ns = namespace_for(user_id)
    api = engine().api
    found = []
    for image in api.images():
        tags = tuple(ns.to_learner_image(t) for t in image.get("RepoTags") or [] if ns.owns_engine_image(t))
        if not tags and (image.get("Labels") or {}).get(OWNER_LABEL) != ns.tag:
            continue
        history = ()
        if with_history:
            history = tuple((layer.get("CreatedBy") or "", int(layer.get("Size") or 0))
                            for layer in api.history(image["Id"]))
        found.append(LearnerImage(id=image["Id"], tags=tags, size_bytes=int(image.get("Size") or 0),
                                  created=int(image.get("Created") or 0), history=history))
    return sorted(found, key=lambda i: i.created, reverse=True)


def learner_containers(*, user_id: int) -> list[LearnerContainer]:
    """The learner's containers (running or not) under their own names."""
    ns = namespace_for(user_id)
    listed = engine().api.containers(all=True, filters={"label": f"{OWNER_LABEL}={ns.tag}"})
    return [LearnerContainer(id=c["Id"], name=ns.to_learner_object((c.get("Names") or ["/"])[0]).removeprefix("/"),
                             image=ns.to_learner_image(c.get("Image") or ""), state=c.get("State") or "",
                             labels=c.get("Labels") or {}) for c in listed]


@dataclass(frozen=True)
class QuotaUse:
    """One row of the learner's Docker quota: what they use of what they may."""
    label: str
    used: int
    limit: int
    unit: str = ""

    @property
    def percent(self) -> int:
        return min(100, round(self.used * 100 / self.limit)) if self.limit else 0


def learner_volumes(*, user_id: int) -> list[str]:
    ns = namespace_for(user_id)
    answer = engine().api.volumes(filters={"label": f"{OWNER_LABEL}={ns.tag}"})
    return sorted(ns.to_learner_object(v["Name"]) for v in (answer or {}).get("Volumes") or [])


def docker_overview(*, user_id: int) -> dict:
    """Everything the Docker page shows: the learner's containers, images, volumes, and each quota's use."""
    config = settings.SANDCLOUD_DOCKER_PROXY
    containers = learner_containers(user_id=user_id)
    images = learner_images(user_id=user_id)
    volumes = learner_volumes(user_id=user_id)
    memory = sum(int(c.labels.get("sandcloud.memory-mb") or 0) for c in containers)
    return {
        "containers": containers, "images": images, "volumes": volumes,
        "quota": [
            QuotaUse("Containers", len(containers), config["MAX_CONTAINERS"]),
            QuotaUse("Memory of your containers", memory, config["MEMORY_MB"], "MB"),
            QuotaUse("Disk of your images", sum(i.size_bytes for i in images) // (1024 * 1024),
                     config["IMAGE_STORAGE_MB"], "MB"),
            QuotaUse("Volumes", len(volumes), config["MAX_VOLUMES"]),
        ],
        "volume_mb": config["VOLUME_MB"], "container_memory_mb": config["CONTAINER_MEMORY_MB"],
        "shared_images": config["SHARED_IMAGES"],
    }
