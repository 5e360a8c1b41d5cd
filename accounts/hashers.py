"""The hash of one-time passwords an instructor hands out: cheap, so a roster of 1,000 is made in a second.

Cheap is safe here: the password is 60 random bits (not a word a person chose), is replaced at first sign-in (the
learner must choose their own, hashed with the default hasher), and Django re-hashes it on that sign-in anyway because
this hasher is not the preferred one."""
from django.contrib.auth.hashers import PBKDF2PasswordHasher


class OneTimePasswordHasher(PBKDF2PasswordHasher):
    algorithm = "pbkdf2_sha256_onetime"
    iterations = 1000
