"""Lab pages: the catalogue, a lab's instructions beside its terminal, and the check, hint and reset actions."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from sandbox.engine.docker import EngineError
from sandbox.services import SandboxError
from sandbox.terminals import terminal_preopen_for

from . import services
from .models import Lab, LabStep
from .selectors import attempt_for_viewer, lab_progress_for, lab_sandbox_for, labs_progress_for


def _lab(slug: str) -> Lab:
    return get_object_or_404(Lab, slug=slug, is_published=True)


def _step(lab: Lab, step_slug: str) -> LabStep:
    return get_object_or_404(LabStep, lab=lab, slug=step_slug, is_active=True)


def _to_step(slug: str, step_slug: str) -> HttpResponse:
    return redirect(f"{reverse('labs-detail', args=[slug])}?step={step_slug}")


def _panel_context(request: HttpRequest, lab: Lab, step_slug: str | None = None) -> dict:
    progress = lab_progress_for(user=request.user, lab=lab)
    shown = next((s for s in progress.steps if s.step.slug == step_slug and s.unlocked), None) or progress.current
    return {"lab": lab, "progress": progress, "shown": shown, "sandbox": lab_sandbox_for(user=request.user, lab=lab)}


@login_required
@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    return render(request, "labs/catalog.html", {"progress_list": labs_progress_for(user=request.user)})


@login_required
@require_GET
def lab_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return render(request, "labs/detail.html", _panel_context(request, _lab(slug), request.GET.get("step")))


@login_required
@require_GET
def step_panel(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    return render(request, "labs/_step_panel.html", _panel_context(request, _lab(slug), step_slug))


@login_required
@require_POST
def lab_start(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        terminal_preopen_for(services.lab_start(user=request.user, lab=_lab(slug)))
    except (services.LabRefused, SandboxError, EngineError) as refusal:
        messages.error(request, str(refusal))
    return redirect("labs-detail", slug=slug)


@login_required
@require_POST
def step_reset(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    lab = _lab(slug)
    try:
        services.step_reset(user=request.user, step=_step(lab, step_slug))
        messages.info(request, "A fresh sandbox is starting with this step set up again.")
    # Each of these carries a sentence for the learner: the page shows it rather than a server error.
    except (services.LabRefused, SandboxError, EngineError) as refusal:
        messages.error(request, str(refusal))
    return _to_step(slug, step_slug)


@login_required
@require_POST
def step_check(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    lab = _lab(slug)
    step = _step(lab, step_slug)
    sandbox = lab_sandbox_for(user=request.user, lab=lab)
    error = ""
    if sandbox is None:
        error = "Start the lab's sandbox first."
    else:
        try:
            services.attempt_request(user=request.user, sandbox=sandbox, step=step)
        except services.LabRefused as refusal:
            error = str(refusal)
    return _panel_response(request, lab, step_slug, check_error=error)


@login_required
@require_POST
def step_hint(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    lab = _lab(slug)
    error = ""
    try:
        services.hint_reveal(user=request.user, step=_step(lab, step_slug))
    except services.LabRefused as refusal:
        error = str(refusal)
    return _panel_response(request, lab, step_slug, hint_error=error)


def _panel_response(request: HttpRequest, lab, step_slug: str, **errors: str) -> HttpResponse:
    """The redrawn step panel for htmx; a redirect with the error as a message for a plain form post."""
    if not request.htmx:
        for error in filter(None, errors.values()):
            messages.error(request, error)
        return _to_step(lab.slug, step_slug)
    return render(request, "labs/_step_panel.html", {**_panel_context(request, lab, step_slug), **errors})


@login_required
@require_GET
def attempt_detail(request: HttpRequest, attempt_id: int) -> HttpResponse:
    """One attempt's result (polled while it is pending); only its learner and staff may see it."""
    try:
        attempt = attempt_for_viewer(user=request.user, attempt_id=attempt_id)
    except ObjectDoesNotExist as missing:
        raise Http404("No such attempt") from missing
    return render(request, "labs/_attempt.html", {"attempt": attempt})
