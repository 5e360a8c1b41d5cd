"""Pages for learners and staff: the home list, one sandbox (terminal + live log), starting and stopping."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.validators import slug_re
from django.http import Http404, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import selectors, services
from .models import Runtime, Sandbox
from .states import ACTIVE
from .terminals import terminal_preopen_for


@login_required
def home(request):
    sandboxes = selectors.sandboxes_for_user(user=request.user)[:50]
    return render(request, "sandbox/home.html", {"sandboxes": sandboxes, "runtimes": Runtime.choices})


@login_required
def sandbox_list_partial(request):
    sandboxes = selectors.sandboxes_for_user(user=request.user)[:50]
    return render(request, "sandbox/_sandbox_rows.html", {"sandboxes": sandboxes})


@login_required
@require_POST
def sandbox_start(request):
    lab = request.POST.get("lab", "")
    if lab:
        # Only the lab's own start gives a sandbox the lab's environment and setup (and only that one is graded).
        # The form no longer sends this; a page left open from before does, and lands on the lab instead.
        messages.error(request, "A lab's sandbox starts from the lab's page, with the lab's environment and setup: "
                                "press \u201cStart the lab\u201d there.")
        if len(lab) <= 100 and slug_re.match(lab):
            return redirect("labs-detail", slug=lab)
        return redirect("home")
    runtime = request.POST.get("runtime", Runtime.RUNC)
    try:
        sandbox = services.sandbox_request(owner=request.user, runtime=runtime)
    except services.SandboxError as error:
        messages.error(request, str(error))
        return redirect("home")
    terminal_preopen_for(sandbox)
    return redirect("sandbox-detail", sandbox_id=sandbox.pk)


def _visible_or_404(request, sandbox_id: int) -> Sandbox:
    try:
        return selectors.sandbox_for_viewer(user=request.user, sandbox_id=sandbox_id)
    except Sandbox.DoesNotExist as error:
        raise Http404("No such sandbox.") from error


@login_required
def sandbox_detail(request, sandbox_id: int):
    sandbox = _visible_or_404(request, sandbox_id)
    return render(request, "sandbox/detail.html", {
        "sandbox": sandbox, "read_only": sandbox.owner_id != request.user.pk,
    })


@login_required
def sandbox_status_partial(request, sandbox_id: int):
    sandbox = _visible_or_404(request, sandbox_id)
    return render(request, "sandbox/_status.html", {"sandbox": sandbox})


@login_required
@require_POST
def sandbox_stop(request, sandbox_id: int):
    sandbox = _visible_or_404(request, sandbox_id)
    try:
        services.SandboxStopAction(sandbox, request.user).execute()
    except PermissionDenied as error:
        return HttpResponseForbidden(str(error))
    messages.info(request, f"Sandbox {sandbox.pk} is stopping.")
    next_url = request.POST.get("next", "")
    # Only back to a path of this site: a forged form must not turn the stop button into a redirect elsewhere, and
    # redirect() would try a bare word like "foo" as a URL name and fail with a 500.
    if next_url.startswith("/") and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return HttpResponseRedirect(next_url)
    return redirect("home")


@login_required
def staff_sandboxes(request):
    # A plain 403 for signed-in learners; staff_member_required would send them to the admin's login instead.
    if not request.user.is_staff:
        raise PermissionDenied("Only instructors can see their learners' sandboxes.")
    show_all = request.GET.get("all") == "1"
    sandboxes = selectors.sandboxes_watchable(user=request.user)
    if not show_all:
        sandboxes = sandboxes.filter(state__in=ACTIVE)
    return render(request, "sandbox/staff.html", {"sandboxes": sandboxes[:200], "show_all": show_all})
