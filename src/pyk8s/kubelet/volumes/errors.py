"""The one error the volume manager raises: the kubelet core turns it into a pod event."""

from __future__ import annotations


class VolumeError(Exception):
    """`reason` is the event reason (FailedMount; CreateContainerConfigError for a subPath that cannot be
    prepared), `message` what `kubectl describe pod` shows."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
