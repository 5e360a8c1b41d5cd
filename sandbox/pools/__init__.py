"""Warm pools: pre-started sandboxes per environment profile, sized from demand and from scheduled class sessions."""
