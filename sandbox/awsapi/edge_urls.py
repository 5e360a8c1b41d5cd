"""The edge endpoint's URLs: everything under /aws/ is an AWS API request (the keys page lives elsewhere)."""
from django.urls import re_path

from . import edge

urlpatterns = [
    re_path(r"^.*$", edge.edge, name="aws_edge"),
]
