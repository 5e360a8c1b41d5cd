"""The extra field of allauth's sign-up form: a cohort invite code, optional or required as the operator decides."""
from __future__ import annotations

from django import forms

from cohorts.services import CohortError, cohort_join, cohort_joinable

from .signup import INVITE, signup_mode


class SignupForm(forms.Form):
    invite_code = forms.CharField(
        label="Cohort invite code (optional)", max_length=20, required=False,
        help_text="From your instructor; joins you to their cohort at once. Leave it empty if you have none.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
        error_messages={"required": "Sign-up here needs a cohort invite code: ask your instructor for it."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if signup_mode() == INVITE:
            self.fields["invite_code"].required = True
            self.fields["invite_code"].label = "Cohort invite code"
            self.fields["invite_code"].help_text = "From your instructor: accounts here are made with one."

    def clean_invite_code(self) -> str:
        code = self.cleaned_data["invite_code"]
        if code:
            try:
                cohort_joinable(invite_code=code)
            except CohortError as error:
                raise forms.ValidationError(str(error)) from error
        return code

    def signup(self, request, user) -> None:
        """allauth calls this once the account exists; the code was checked in clean, so this joins."""
        code = self.cleaned_data.get("invite_code")
        if code:
            request.sandcloud_joined = cohort_join(learner=user, invite_code=code)
