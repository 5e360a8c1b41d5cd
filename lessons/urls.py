"""URLs of the lesson pages (mounted at /lessons/)."""
from django.urls import path

from . import views

app_name = "lessons"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("<slug:slug>/", views.lesson_detail, name="detail"),
    path("<slug:slug>/quiz/", views.quiz_submit, name="quiz-submit"),
    path("<slug:slug>/submissions/<int:submission_id>/", views.submission_detail, name="submission"),
]
