"""The AWS edge listener's URLs: the edge endpoint under /aws (sandbox/awsapi/edge.py) and plain-text refusals."""
from django.http import HttpResponse
from django.urls import include, re_path

urlpatterns = [
    re_path(r"^aws(?=/|$)", include("sandbox.awsapi.edge_urls")),
]


def _refusal(status: int, sentence: str) -> HttpResponse:
    # Plain text, never the site's error pages: nothing of the site is served here.
    return HttpResponse(sentence + "\n", status=status, content_type="text/plain; charset=utf-8")


def bad_request(request, exception):
    return _refusal(400, "Bad request. This address serves the Sandcloud AWS API only, under /aws.")


def forbidden(request, exception):
    return _refusal(403, "Forbidden.")


def not_found(request, exception):
    return _refusal(404, "Not found. This address serves the Sandcloud AWS API only, under /aws.")


def server_error(request):
    return _refusal(500, "Internal error.")


handler400 = bad_request
handler403 = forbidden
handler404 = not_found
handler500 = server_error
