"""The learner's own account page: what they can change, and (with its consequences spelt out) deleting it."""
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from . import services


@login_required
def account_settings(request):
    return render(request, "accounts/settings.html")


@login_required
def account_delete(request):
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            messages.error(request, "Tick the box to confirm that you want your account deleted.")
            return redirect("account-delete")
        try:
            services.account_delete(user=request.user, password=request.POST.get("password", ""))
        except (services.AccountError, PermissionDenied) as refusal:
            messages.error(request, str(refusal))
            return redirect("account-delete")
        logout(request)
        messages.success(request, "Your account is deleted. Your sandboxes are being stopped and removed.")
        return redirect("home")
    return render(request, "accounts/delete.html")
