"""One module per CLI verb group; each defines `register(subparsers)`.

Shared argument helpers live in `_common.py`.
"""
