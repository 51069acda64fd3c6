"""The demo: the warm-start story told end to end on the local control plane
(``scripts/demo.sh``, which runs ``python -m warmstart.demo``)."""
