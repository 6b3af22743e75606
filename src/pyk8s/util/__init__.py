"""Small helpers shared by every layer: clock, backoff, task helpers. Imports nothing of pyk8s."""
