"""The site's front door: signed-in learners get their sandboxes, visitors a page saying what Sandcloud is."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from lessons.selectors import lessons_published
from sandbox import views as sandbox_views


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return sandbox_views.home(request)
    return render(request, "front.html", {"lessons": lessons_published()})
