"""Checks of the Docker lab: read the learner's real images and containers (in their own names) on Sandcloud's engine.

What the learner built and ran through their docker CLI is read with the proxy's selectors; what only their docker
CLI shows as they do (the output of their image, a container's log) is read by running that CLI in their sandbox.
"""
from __future__ import annotations

import re
import shlex

from sandbox.dockerproxy.selectors import LearnerContainer, LearnerImage, learner_containers, learner_images

from . import CheckContext, CheckResult

HELLO = "hello:1"
WEB = "web"
# Go's units.HumanSize, which `docker history` prints sizes with: decimal units, 1 kB = 1000 B.
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
UNITS = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3}


def answer_read(ctx: CheckContext, path: str) -> str:
    """An answer file's text, stripped; empty when it is missing or empty."""
    return (ctx.read_file(path) or "").strip()


def image_find(*, user_id: int, reference: str) -> LearnerImage | None:
    wanted = reference if ":" in reference else f"{reference}:latest"
    return next((image for image in learner_images(user_id=user_id, with_history=True) if wanted in image.tags), None)


def copy_layers(image: LearnerImage) -> list[tuple[str, int]]:
    """The history rows of the image's COPY instructions, newest first (the classic builder writes them as
    `/bin/sh -c #(nop) COPY file:<hash> in <dest>`)."""
    return [(created_by, size) for created_by, size in image.history if re.search(r"\bCOPY\b", created_by)]


def size_parse(text: str) -> float | None:
    """Bytes from a size as `docker history` prints it: `312`, `312B`, `1.23kB`, `4.5 MB`."""
    found = SIZE.match(text.splitlines()[0] if text else "")
    if found is None:
        return None
    return float(found.group(1)) * UNITS[(found.group(2) or "b").lower()]


def _no_image(reference: str) -> CheckResult:
    return CheckResult(passed=False, message=(
        f"You have no image called {reference} yet (`docker images` lists yours). Build it from the folder that holds "
        f"your Dockerfile and app.py: `cd ~/hello && docker build -t {reference} .`"))


# --- docker-first-image ---------------------------------------------------------------------------------------------

def hello_built(ctx: CheckContext) -> CheckResult:
    """The learner's image hello:1 exists and has a layer made by a COPY instruction that added their app."""
    image = image_find(user_id=ctx.sandbox.owner_id, reference=HELLO)
    if image is None:
        return _no_image(HELLO)
    if not any(size > 0 for _, size in copy_layers(image)):
        return CheckResult(passed=False, message=(
            f"Your image {HELLO} has no layer made by COPY, so your app is not in it (`docker history {HELLO}` "
            f"shows its steps). Add `COPY app.py .` to the Dockerfile and build again."), fraction=0.5)
    return CheckResult(passed=True, message=(
        f"{HELLO} is built: {len(image.history)} steps, {image.size_bytes / 1e6:.0f} MB with its base image."))


def hello_ran(ctx: CheckContext) -> CheckResult:
    """~/answers/hello-output.txt holds what the image's default command prints (the check runs it to compare)."""
    if image_find(user_id=ctx.sandbox.owner_id, reference=HELLO) is None:
        return _no_image(HELLO)
    answer = answer_read(ctx, "~/answers/hello-output.txt")
    if not answer:
        return CheckResult(passed=False, message=(
            "~/answers/hello-output.txt is missing or empty: run `docker run --rm hello:1 > "
            "~/answers/hello-output.txt`."))
    code, output = ctx.run(f"docker run --rm {HELLO} 2>&1")
    if code != 0:
        return CheckResult(passed=False, message=(
            f"`docker run --rm {HELLO}` failed (exit {code}): {output.strip()[-300:]} Fix the Dockerfile's CMD or "
            f"app.py, and build again."))
    if answer != output.strip():
        return CheckResult(passed=False, message=(
            f"~/answers/hello-output.txt says {answer[:200]!r}, but `docker run --rm {HELLO}` prints "
            f"{output.strip()[:200]!r}. Run it again and save its output (built a new {HELLO} since?)."))
    return CheckResult(passed=True, message="Right: a container ran your image's CMD, printed that, and was removed.")


def hello_layers_read(ctx: CheckContext) -> CheckResult:
    """~/answers/copy-layer-bytes is the size of the COPY layer of hello:1, as docker history shows it."""
    image = image_find(user_id=ctx.sandbox.owner_id, reference=HELLO)
    if image is None:
        return _no_image(HELLO)
    copies = copy_layers(image)
    if not copies:
        return CheckResult(passed=False, message=(
            f"{HELLO} has no COPY layer: add `COPY app.py .` to the Dockerfile and build it again."))
    answer = answer_read(ctx, "~/answers/copy-layer-bytes")
    if not answer:
        return CheckResult(passed=False, message=(
            "~/answers/copy-layer-bytes is missing or empty: write the SIZE of the COPY row of `docker history "
            "--human=false hello:1` into it."))
    claimed = size_parse(answer)
    if claimed is None:
        return CheckResult(passed=False, message=(
            f"~/answers/copy-layer-bytes says {answer[:80]!r}: write only the size, a number of bytes such as 312."))
    # A rounded size (`1.23kB`) is accepted when it is the layer's size rounded as docker history rounds it.
    if not any(abs(claimed - size) <= max(0.5, size * 0.006) for _, size in copies):
        return CheckResult(passed=False, message=(
            f"~/answers/copy-layer-bytes says {answer[:80]!r}, but the COPY layer of {HELLO} is not that size. Read "
            f"the SIZE of the row whose CREATED BY says COPY in `docker history --human=false {HELLO}`."))
    return CheckResult(passed=True, message=(
        "Right: COPY added exactly your file's bytes, while WORKDIR, ENV and CMD changed only the image's "
        "configuration (0B in docker history)."))


def _container(user_id: int, name: str) -> LearnerContainer | None:
    return next((c for c in learner_containers(user_id=user_id) if c.name == name), None)


def web_running(ctx: CheckContext) -> CheckResult:
    """A container named web runs hello:1 in the background, its log shows a request made with docker exec, and
    ~/answers/web-hostname is its host name."""
    user_id = ctx.sandbox.owner_id
    web = _container(user_id, WEB)
    if web is None:
        return CheckResult(passed=False, message=(
            f"You have no container called {WEB} (`docker ps -a` lists yours). Start it with `docker run -d --name "
            f"{WEB} {HELLO} python3 -m http.server 8000`."))
    image = image_find(user_id=user_id, reference=HELLO)
    if web.image != HELLO and (image is None or web.image != image.id):
        return CheckResult(passed=False, message=(
            f"{WEB} runs the image {web.image}, not {HELLO}. Remove it with `docker rm -f {WEB}` and start it again "
            f"from {HELLO}."))
    if web.state != "running":
        return CheckResult(passed=False, message=(
            f"{WEB} is {web.state or 'not running'}. `docker logs {WEB}` says why it stopped; `docker start {WEB}` "
            f"starts it again."), fraction=0.25)
    problems, fraction = [], 0.25
    code, log = ctx.run(f"docker logs {shlex.quote(WEB)} 2>&1 | tail -n 200")
    if code != 0 or '"GET /' not in log:
        problems.append(f"The log of {WEB} shows no request yet: make one from inside with `docker exec {WEB} "
                        f"python3 -c 'import urllib.request; urllib.request.urlopen(\"http://localhost:8000/\")'`, "
                        f"then read `docker logs {WEB}`.")
    else:
        fraction += 0.375
    hostname = answer_read(ctx, "~/answers/web-hostname")
    if not hostname:
        problems.append(f"~/answers/web-hostname is missing or empty: `docker exec {WEB} cat /etc/hostname > "
                        f"~/answers/web-hostname`.")
    elif not web.id.startswith(hostname.lower()) or len(hostname) < 12:
        problems.append(f"~/answers/web-hostname says {hostname[:80]!r}, which is not the host name of {WEB} (a "
                        f"container started again gets a new one). Run the docker exec command again.")
    else:
        fraction += 0.375
    if problems:
        return CheckResult(passed=False, message="\n".join(problems), fraction=fraction)
    return CheckResult(passed=True, message=(
        f"{WEB} is running in the background: docker logs shows what it writes, and docker exec runs commands inside "
        f"it, where its host name is the start of its ID, {web.id[:12]}."))
