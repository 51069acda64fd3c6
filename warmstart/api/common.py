"""Models both kinds use: references to objects and evaluation results."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from warmstart.api.base import ApiModel
from warmstart.api.fields import DnsSubdomain


class LocalObjectReference(ApiModel):
    """Reference to an object in the same namespace.

    There is deliberately no namespace field: a namespace is the tenancy boundary, and a
    reference across it would let one team's objects read another team's credentials.
    """

    name: DnsSubdomain
    """Name of the object, in the namespace of the referring object."""


Fraction = Annotated[float, Field(ge=0, le=1)]


class MetricValues(ApiModel):
    """Evaluation of one model on one data set."""

    accuracy: Fraction | None = None
    """Fraction of examples classified correctly, in [0, 1]."""

    f1: Fraction | None = None
    """Macro-averaged F1 score over the labels, in [0, 1]."""

    loss: Annotated[float, Field(ge=0)] | None = None
    """Mean cross-entropy loss; lower is better."""

    samples: Annotated[int, Field(ge=0)] | None = None
    """Number of examples evaluated."""
