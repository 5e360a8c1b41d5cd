"""What every page needs to know about accounts: whether to offer "Create an account"."""
from .signup import CLOSED, signup_mode


def signup(request) -> dict:
    return {"signup_open": signup_mode() != CLOSED}
