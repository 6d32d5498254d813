"""Sphinx extension: the build's notebook kernels talk to myst-nb over encrypted sockets.

myst-nb executes every chapter through nbclient, which starts an ipykernel with jupyter_client's
default: ZeroMQ over TCP in plain text. ipykernel 7 then logs, once per chapter,
"Kernel is running over TCP without encryption" (16 warnings in every build log). jupyter_client 8.10
can provision CurveZMQ keys for the kernel it starts (``KernelManager.transport_encryption``), but
nbclient creates its kernel manager without any traitlets configuration a build could pass, so the
policy's default is set here, for the Sphinx process only: "required" makes every kernel of the build
use CurveZMQ (and fails the start loudly if pyzmq lacks CurveZMQ, instead of falling back to plain
text). tests/test_book_build.py checks the build log has none of the warnings.
"""
from jupyter_client.manager import KernelManager

POLICY = "required"


def setup(app):
    # `transport_encryption` is a CaselessStrEnum: its default is read from the trait at each
    # instantiation (traitlets caches defaults only for plain Unicode/Int/... traits).
    KernelManager.class_traits()["transport_encryption"].default_value = POLICY
    return {"parallel_read_safe": True, "parallel_write_safe": True}
