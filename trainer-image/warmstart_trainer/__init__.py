"""warmstart trainer and model server: one image; ``train``, ``publish-base``, ``serve``."""

__version__ = "0.1.0"
