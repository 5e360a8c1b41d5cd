"""Top-level URLs."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from . import errors, front

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # allauth's own login/logout under the same paths are shadowed by the two above (config/settings.py says why).
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    # The AWS edge endpoint: every path below /aws is an AWS API request (sandbox/awsapi/edge.py), never a page.
    re_path(r"^aws(?=/|$)", include("sandbox.awsapi.edge_urls")),
    path("api/", include("sandbox.api_urls")),
    re_path(r"^api/", errors.api_not_found),
    # The learner's access keys: a page, so outside /aws, which belongs to the edge endpoint.
    path("aws-keys/", include("sandbox.awsapi.urls")),
    path("cohorts/", include("cohorts.urls")),
    path("lessons/", include("lessons.urls")),
    path("labs/", include("labs.urls")),
    path("functions/", include("sandbox.functions.urls")),
    path("docker/", include("sandbox.dockerproxy.urls")),
    # ECR's registry asks here for the bearer tokens it trusts (distribution's token authentication).
    path("registry/", include("sandbox.registry.urls")),
    path("", front.home, name="home"),
    path("", include("sandbox.files.urls")),
    path("", include("sandbox.urls")),
]

handler404 = errors.page_not_found
handler500 = errors.server_error
