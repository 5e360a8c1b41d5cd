"""The site's error answers: JSON with a sentence in `message` under /api/, Django's own pages everywhere else."""
from django.urls import Resolver404, resolve
from django.views import csrf, defaults

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def api_not_found(request, *args, **kwargs):
    """Any /api/ address no API view answers (mounted last under /api/, so it answers even with DEBUG on)."""
    from sandbox.api import api_refusal

    message = f"There is no API at {request.path}."
    if not request.path.endswith("/"):
        try:
            if resolve(request.path + "/").func is not api_not_found:
                message += f" Did you mean {request.path}/ (with the slash)?"
        except Resolver404:
            pass
    return api_refusal(404, message)


def page_not_found(request, exception):
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        from sandbox.api import api_refusal

        return api_refusal(500, "Something went wrong on our side. It has been logged; please try again in a moment.")
    return defaults.server_error(request)


def csrf_failure(request, reason=""):
    if _is_api(request):
        from sandbox.api import api_refusal

        return api_refusal(403, "The request carries no valid CSRF token. Send the csrftoken cookie's value in an "
                                "X-CSRFToken header, from a page of this site.")
    if "/files/" in request.path and request.path.startswith("/sandboxes/"):
        from django.http import JsonResponse

        # The editor shows this sentence as it is; a page left open past a sign-out or a restart meets it.
        return JsonResponse({"error": "Your session's security token is out of date: reload the page, then try "
                                      "again."}, status=403)
    return csrf.csrf_failure(request, reason=reason)
