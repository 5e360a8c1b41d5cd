"""The AWS wire protocols and identity every imitated service shares: routing, SigV4, serialising, errors, accounts."""
