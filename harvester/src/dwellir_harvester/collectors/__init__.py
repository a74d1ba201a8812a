"""The runner's built-in collectors, discovered as ``builtin::<name>``.

- ``host``: this machine's facts; the document's top-level ``host`` repeats its data.
- ``null``: a fixed payload, for smoke tests and CI.
- ``juju``: the Juju machine and unit agents on this machine (option ``agents_dir``).
- ``juju-charm``: the Juju context charms leave behind (option ``snapshot_dir``).
- ``substrate`` and ``evm``: a node's identity and state over JSON-RPC (options ``rpc_url``,
  ``process_name``, ``ecosystem``, ``rpc_timeout``).

Each module imports its heavy dependencies (psutil, PyYAML) inside ``collect()``, so discovering
the built-ins stays cheap. Modules starting with ``_`` are helpers.
"""
