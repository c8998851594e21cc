"""Errors of the graph store; all are SagewalkErrors, so the CLI prints them
without a traceback and exits 2."""

from __future__ import annotations

from common.errors import SagewalkError


class StoreError(SagewalkError):
    """A store cannot be opened, built or read: the message says why and how to fix it."""


class UnknownIdError(StoreError, KeyError):
    """An external id is not in a node type's id map."""

    def __init__(self, node_type: str, external_id: object):
        self.node_type = node_type
        self.external_id = external_id
        super().__init__(f"unknown {node_type} id {external_id!r}: it is not in the store's "
                         f"{node_type} id map (check the id and the node type)")

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.args[0]


class IngestError(StoreError):
    """Input files or an ingest spec are invalid; nothing was written."""
