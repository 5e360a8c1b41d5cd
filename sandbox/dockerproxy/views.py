"""The learner's Docker page: what their `docker` holds on the engine, and how much of each quota it uses."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from sandbox.engine.docker import EngineError

from .selectors import docker_overview


@login_required
def docker_page(request):
    try:
        overview = docker_overview(user_id=request.user.pk)
    except EngineError:
        overview = None
    return render(request, "sandbox/docker.html", {"overview": overview, "app": "docker"})
