"""Transports run the probe on a target and reach its Docker Engine API.

`LocalTransport` runs on this machine (optionally through an argv prefix such as `nsenter`, which the
tests use to enter a namespaced test host). The SSH transport (asyncssh) implements the same interface.
"""

from bkdoctor.transport.base import CommandResult, Transport, TransportError
from bkdoctor.transport.local import LocalTransport

__all__ = ["CommandResult", "Transport", "TransportError", "LocalTransport"]
