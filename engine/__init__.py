"""Sojourn's engine: use cases (`service`, `delivery_service`), the lifecycle, planning, dispatch and the daemon.

Submodules are imported where they are used, so the command line pays only for what a command needs.
"""
