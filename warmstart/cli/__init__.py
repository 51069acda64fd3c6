"""The `warmstart` command line (also `kubectl warmstart`): show, verify and pin a lineage.

Layers: ``kube`` is the only module that talks to the Kubernetes API; ``main`` parses
arguments and turns every project error into one line and an exit code; ``commands`` joins
the two. Everything else (``view``, ``tree``, ``textgraph``, ``svg`` with ``layout`` and
``palette``, ``verify``, ``pinning``, ``credentials``, ``progress``) is pure and unit-tested
on in-memory data.
"""
