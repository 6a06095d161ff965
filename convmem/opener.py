"""The public path of the downstream consumer's client, as the README's example imports it
(`from convmem.opener import EventOpener`). It lives in convmem.privacy; this name stays so
code copied from the README keeps working."""

from convmem.privacy.opener import EventOpener, KeyUnavailable

__all__ = ["EventOpener", "KeyUnavailable"]
