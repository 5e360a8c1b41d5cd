"""The Lambda console: a learner's functions, one function's editor, test events, live log, monitoring and schedules;
an instructor opens a learner's the same way, read-only (every path again under /functions/learner/<id>/)."""
from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from sandbox.awsapi.errors import AwsError

from . import console, selectors, services
from .models import LATEST, FunctionVersion


def console_view(*methods: str):
    """A console page: signed in; the viewer's own functions, or a learner's read-only for their instructor (404 for
    anyone else); an instructor's POST is refused with 403 before anything else is looked at, then the methods the
    page answers are checked. The view receives the Console as `seen`."""
    def decorate(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, *args, learner_id: int | None = None, **kwargs):
            seen = console.console_for(viewer=request.user, learner_id=learner_id)
            if seen is None:
                raise Http404("No such learner.")
            if seen.read_only and request.method not in ("GET", "HEAD"):
                raise PermissionDenied("Instructors see a learner's functions read-only.")
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            return view(request, seen, *args, learner_id=learner_id, **kwargs)
        return wrapper
    return decorate


def _url(view: str, learner_id: int | None, *args) -> str:
    if learner_id is None:
        return reverse(f"functions:{view}", args=args)
    return reverse(f"functions:learner-{view}", args=(learner_id, *args))


def _function(seen: console.Console, name: str):
    if seen.account is None:
        raise Http404("No such function.")
    try:
        return selectors.function_get(account=seen.account, name=name)
    except AwsError as error:
        raise Http404("No such function.") from error


@console_view("GET", "HEAD", "POST")
def function_list(request, seen: console.Console, learner_id: int | None = None):
    form = {"name": "", "memory_size": 128, "timeout": 3}
    if request.method == "POST":
        form = {key: request.POST.get(key, default) for key, default in form.items()}
        try:
            version = console.function_create_from_console(account=seen.account, **form)
        except AwsError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Created {version.function.name}. Edit its code, then press Invoke to run it.")
            return redirect("functions:detail", name=version.function.name)
    functions = [] if seen.account is None else list(selectors.functions_overview(account=seen.account))
    latest = {v.function_id: v for v in FunctionVersion.objects.filter(
        function__in=functions, version=LATEST)} if functions else {}
    rows = [{"function": f, "latest": latest.get(f.pk), "url": _url("detail", learner_id, f.name)} for f in functions]
    return render(request, "functions/list.html", {
        "rows": rows, "read_only": seen.read_only, "learner": _learner(seen), "form": form,
        "memory_min": console.MEMORY_MIN, "memory_max": console.MEMORY_MAX,
        "timeout_min": console.TIMEOUT_MIN, "timeout_max": console.TIMEOUT_MAX,
        "cli": console.cli_create(account=seen.account, name=form["name"] or "my-function",
                                  memory_size=form["memory_size"], timeout=form["timeout"]),
        "account_id": seen.account.account_id if seen.account else "",
    }, status=400 if request.method == "POST" else 200)


def _learner(seen: console.Console):
    if not seen.read_only:
        return None
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=seen.owner_id).first()


def _schedules_context(seen: console.Console, function, learner_id: int | None, *, form: dict | None,
                       refusal: AwsError | None) -> dict:
    """The Schedules card: the schedules that invoke the function, and the form to add one (as sent, with why it was
    refused, after a refusal)."""
    if not console.schedules_available():
        return {"schedules": None}
    form = form or {"name": "", "expression": "", "target_input": ""}
    now = timezone.now()
    return {
        # Due: the dispatcher fires it within seconds; "a minute ago" would read as if it had been missed.
        "schedules": [{"schedule": schedule, "due": schedule.next_fire_at is not None and schedule.next_fire_at <= now,
                       "delete_url": _url("schedule-delete", learner_id, function.name, schedule.name)}
                      for schedule in console.schedules_of(account=seen.account, function=function)],
        "schedule_form": form,
        # The console's sentence first; AWS's own words too, which `aws scheduler create-schedule` would print.
        "schedule_refusal": {"plain": getattr(refusal, "plain", "") or refusal.message, "code": refusal.code,
                             "message": refusal.message} if refusal else None,
        "schedule_target": console.cli_schedule_target(account=seen.account, function_name=function.name),
        "schedule_cli": console.cli_schedule_create(account=seen.account, function_name=function.name, **form),
        "schedule_example_name": console.SCHEDULE_EXAMPLE_NAME,
        "schedule_example_expression": console.SCHEDULE_EXAMPLE_EXPRESSION,
    }


def _detail_context(request, seen: console.Console, function, learner_id: int | None, *,
                    schedule_form: dict | None = None, schedule_refusal: AwsError | None = None, **extra) -> dict:
    latest = function.versions.get(version=LATEST)
    package = console.package_of(latest)
    return {
        **_schedules_context(seen, function, learner_id, form=schedule_form, refusal=schedule_refusal),
        "function": function, "latest": latest, "read_only": seen.read_only, "learner": _learner(seen),
        "config": selectors.version_configuration(latest), "package": package,
        "environment_text": console.environment_text(latest.environment),
        "versions": function.versions.exclude(version=LATEST).order_by("-pk"), "aliases": function.aliases.all(),
        "monitoring": console.monitoring(function=function), "cli": console.cli_for(function=function, version=latest),
        "sample_event": console.SAMPLE_EVENT,
        "memory_min": console.MEMORY_MIN, "memory_max": console.MEMORY_MAX,
        "timeout_min": console.TIMEOUT_MIN, "timeout_max": console.TIMEOUT_MAX,
        "urls": {view: _url(view, learner_id, function.name)
                 for view in ("detail", "code", "configuration", "invoke", "logs", "monitoring", "delete",
                              "schedules")},
        "list_url": _url("list", learner_id),
        **extra,
    }


@console_view("GET", "HEAD")
def function_detail(request, seen: console.Console, name: str, learner_id: int | None = None):
    function = _function(seen, name)
    return render(request, "functions/detail.html", _detail_context(request, seen, function, learner_id))


@console_view("POST")
def function_code(request, seen: console.Console, name: str, learner_id: int | None = None):
    function = _function(seen, name)
    files = dict(zip(request.POST.getlist("filename"), request.POST.getlist("content")))
    try:
        console.code_save(account=seen.account, function_name=function.name, files=files)
    except AwsError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Saved. The next invocation runs the new code (in a new execution environment).")
    return redirect("functions:detail", name=function.name)


@console_view("POST")
def function_configuration(request, seen: console.Console, name: str, learner_id: int | None = None):
    function = _function(seen, name)
    try:
        console.configuration_update(
            account=seen.account, function_name=function.name, memory_size=request.POST.get("memory_size"),
            timeout=request.POST.get("timeout"), handler=request.POST.get("handler", ""),
            description=request.POST.get("description", ""), environment=request.POST.get("environment", ""))
    except AwsError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Configuration saved.")
    return redirect("functions:detail", name=function.name)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@console_view("POST")
def function_invoke(request, seen: console.Console, name: str, learner_id: int | None = None):
    """The page's script asks for JSON; without script the form posts here and gets the page with the result."""
    function = _function(seen, name)
    event = request.POST.get("event", "")
    try:
        result = console.invoke_from_console(account=seen.account, function_name=function.name, event=event)
    except AwsError as error:
        if _wants_json(request):
            return JsonResponse({"message": error.message, "code": error.code}, status=400)
        messages.error(request, error.message)
        return redirect("functions:detail", name=function.name)
    if _wants_json(request):
        return JsonResponse(result.as_json())
    return render(request, "functions/detail.html",
                  _detail_context(request, seen, function, learner_id, result=result, event=event))


@console_view("GET", "HEAD")
def function_logs(request, seen: console.Console, name: str, learner_id: int | None = None):
    function = _function(seen, name)
    after = request.GET.get("after", "")
    after_id = int(after) if after.isdigit() else None
    return JsonResponse({"events": console.log_events(account=seen.account, function_name=function.name,
                                                      after_id=after_id)})


@console_view("GET", "HEAD")
def function_monitoring(request, seen: console.Console, name: str, learner_id: int | None = None):
    """The monitoring panel alone, which the page fetches again after each invocation."""
    function = _function(seen, name)
    return render(request, "functions/_monitoring.html", {"monitoring": console.monitoring(function=function),
                                                         "function": function})


@console_view("POST")
def function_delete(request, seen: console.Console, name: str, learner_id: int | None = None):
    function = _function(seen, name)
    try:
        services.function_delete(account=seen.account, function_name=function.name)
    except AwsError as error:
        messages.error(request, error.message)
        return redirect("functions:detail", name=function.name)
    messages.info(request, f"Deleted {function.name}, its versions, aliases and code.")
    return redirect("functions:list")


@console_view("POST")
def function_schedules(request, seen: console.Console, name: str, learner_id: int | None = None):
    """Adds a schedule that invokes the function; a refusal renders the page again with the form as sent."""
    function = _function(seen, name)
    form = {key: request.POST.get(key, "") for key in ("name", "expression", "target_input")}
    try:
        schedule = console.schedule_create_from_console(account=seen.account, function_name=function.name, **form)
    except AwsError as error:
        return render(request, "functions/detail.html", _detail_context(
            request, seen, function, learner_id, schedule_form=form, schedule_refusal=error), status=400)
    if schedule.next_fire_at is not None:
        messages.success(request, f"Created the schedule {schedule.name}: it first invokes {function.name} at "
                                  f"{schedule.next_fire_at:%Y-%m-%d %H:%M:%S} UTC.")
    else:
        messages.warning(request, f"Created the schedule {schedule.name}. {schedule.last_result}")
    return redirect(reverse("functions:detail", args=(function.name,)) + "#schedules")


@console_view("POST")
def function_schedule_delete(request, seen: console.Console, name: str, schedule_name: str,
                             learner_id: int | None = None):
    function = _function(seen, name)
    try:
        console.schedule_delete_from_console(account=seen.account, function_name=function.name, name=schedule_name)
    except AwsError as error:
        messages.error(request, getattr(error, "plain", "") or error.message)
    else:
        messages.info(request, f"Deleted the schedule {schedule_name}: it no longer invokes {function.name}.")
    return redirect(reverse("functions:detail", args=(function.name,)) + "#schedules")
