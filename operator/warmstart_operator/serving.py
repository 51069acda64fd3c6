"""The serving state machine of a ModelLineage, as ONE pure transition function.

States (read from the lineage status and the Deployment; nothing else is remembered, so an
operator restarted at any point continues from the same state):

- Serving     no Progressing=True condition; the Deployment runs `serving`.
- RollingOut  Progressing=True, reason RollingOut: the Deployment was told to run a new
              version; `serving` still names what served when this rollout began (it is the
              rollback target) and the deadline counts from the condition's transition time.
- RollingBack Progressing=True, reason RollingBack: a rollout failed; the Deployment was told
              to run `serving` again. A failed rollback is not rolled back again.
- RolledBack  Degraded=True, reason RolledBack, on top of Serving: the failed version is
              marked RolledBack in the record and is never chosen again automatically, and a
              pin naming it is not retried: serving stays where the rollback put it until a
              person changes the pin or a passing candidate is promoted and rolls out.

What the lineage should serve (`wanted`): the pin if set and servable; a pinned version that
failed its rollout keeps what serves now; otherwise the newest promoted version (`desired`),
unless that one failed its rollout. The table in docs/serving-state-machine.md lists every
(state, input) -> (next state, action); `transition` is that table.

Ordering against crashes: the caller writes the returned status FIRST and applies `apply`
to the Deployment afterwards, so a version is marked RolledBack before the Deployment is
moved off it; a crash in between only repeats the apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from warmstart.api.constants import VersionPhase

ROLLING_OUT = "RollingOut"
ROLLING_BACK = "RollingBack"
ROLLOUT_COMPLETE = "RolloutComplete"
ROLLBACK_COMPLETE = "RollbackComplete"
ROLLOUT_TIMED_OUT = "RolloutTimedOut"
ROLLBACK_FAILED = "RollbackFailed"
ROLLED_BACK = "RolledBack"
SERVING = "Serving"
SERVING_UNAVAILABLE = "ServingUnavailable"
NO_VERSION_SERVING = "NoVersionServing"
PINNED_VERSION_NOT_FOUND = "PinnedVersionNotFound"
RECONCILED = "Reconciled"

# How soon to look again while a rollout is under way, and when nothing is.
ROLLOUT_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Rollout:
    started: dt.datetime
    rollback: bool


@dataclass(frozen=True)
class ServingState:
    """The part of a lineage's status the machine reads and writes."""

    serving: str | None = None
    previous: str | None = None
    desired: str | None = None  # the newest promoted version (the automatic choice)
    rollout: Rollout | None = None
    # Set while Degraded=True with reason RolledBack / RolloutTimedOut / RollbackFailed: the
    # metadata.generation it was set at (a spec change after it can clear it).
    rolled_back_at_generation: int | None = None


@dataclass(frozen=True)
class Observed:
    """The serving Deployment as read: the version its template names, and its rollout."""

    applied: str | None
    rollout: str  # complete | progressing | failed


@dataclass(frozen=True)
class Inputs:
    pinned: str | None
    # Every recorded version and its phase (Candidate, Promoted, Rejected, RolledBack, ...).
    record: Mapping[str, VersionPhase]
    deployment: Observed | None  # None: no usable Deployment (missing, no such container)
    deadline_seconds: int
    generation: int | None
    now: dt.datetime


@dataclass
class Decision:
    state: ServingState
    apply: str | None = None  # version to put on the Deployment after the status is written
    ready: tuple[bool, str, str] | None = None  # (ok, reason, message)
    progressing: tuple[bool, str, str] | None = None  # None: leave the condition as it is
    degraded: tuple[bool, str, str] | None = None
    marks: dict[str, tuple[VersionPhase, str]] = field(default_factory=dict)
    events: list[tuple[str, str, bool]] = field(default_factory=list)  # reason, msg, warning
    requeue_after: float | None = None
    rolled_back: bool = False  # for the rollbacks metric
    now_serving: str | None = None  # set when what serves changed: the one place it does


def wanted(state: ServingState, inputs: Inputs) -> tuple[str | None, str | None]:
    """(version to serve, None) or (None, why the pin cannot be served)."""
    record = inputs.record
    if inputs.pinned:
        phase = record.get(inputs.pinned)
        if phase is None or phase == VersionPhase.RETIRED:
            return None, (f'spec.pinnedVersion "{inputs.pinned}" is not a servable version of '
                          "this lineage; serving is left as it is")
        if phase == VersionPhase.ROLLED_BACK:
            return state.serving, None
        return inputs.pinned, None
    desired = state.desired
    if desired and record.get(desired) in (VersionPhase.ROLLED_BACK, VersionPhase.RETIRED,
                                           None):
        return state.serving, None
    return desired, None


def transition(state: ServingState, inputs: Inputs) -> Decision:
    target, problem = wanted(state, inputs)
    if problem is not None:
        return Decision(state, ready=(False, PINNED_VERSION_NOT_FOUND, problem),
                        degraded=(True, PINNED_VERSION_NOT_FOUND, problem),
                        events=[(PINNED_VERSION_NOT_FOUND, problem, True)])
    observed = inputs.deployment
    if observed is None:
        return Decision(state)  # the caller says which part of the Deployment is missing
    if target is None:
        return Decision(state, ready=(False, NO_VERSION_SERVING, "no version to serve yet"))
    if observed.applied != target:
        return _apply(state, inputs, target, observed.applied)
    rollout = state.rollout
    if rollout is None:
        return _steady(state, inputs, target, observed)
    if observed.rollout == "complete":
        return _complete(state, inputs, target, rollout)
    elapsed = (inputs.now - rollout.started).total_seconds()
    if observed.rollout == "failed" or elapsed > inputs.deadline_seconds:
        return _failed(state, inputs, target, rollout, elapsed)
    left = inputs.deadline_seconds - elapsed
    return Decision(state, requeue_after=max(0.5, min(ROLLOUT_POLL_SECONDS, left + 0.5)))


def _apply(state: ServingState, inputs: Inputs, target: str, applied: str | None) -> Decision:
    """The Deployment does not run the target: a new rollout (promotion, pin, unpin, someone
    else's edit or a re-created Deployment), or a rollback resumed after a crash."""
    if state.rollout is not None and state.rollout.rollback and target == state.serving:
        return Decision(state, apply=target, requeue_after=ROLLOUT_POLL_SECONDS)
    new = replace(state, rollout=Rollout(inputs.now, rollback=False),
                  previous=state.serving if state.serving != target else state.previous)
    message = f"rolling out {target} (was {applied or 'none'})"
    return Decision(new, apply=target, progressing=(True, ROLLING_OUT, message),
                    events=[(ROLLING_OUT, f"Rolling out version {target} "
                             f"(was {applied or 'none'})", False)],
                    requeue_after=ROLLOUT_POLL_SECONDS)


def _steady(state: ServingState, inputs: Inputs, target: str, observed: Observed) -> Decision:
    if observed.rollout == "complete":
        decision = Decision(state, ready=(True, SERVING, f"version {target} is serving"))
        if state.serving != target:
            # Applied before a crash, or adopted: it serves now.
            decision.state = replace(state, serving=target, previous=state.serving)
            decision.now_serving = target
            decision.events.append((ROLLOUT_COMPLETE, f"Version {target} is serving", False))
        if state.rolled_back_at_generation is not None and \
                state.rolled_back_at_generation != inputs.generation:
            # A person changed the spec since the rollback and nothing else needs to move.
            decision.state = replace(decision.state, rolled_back_at_generation=None)
            decision.degraded = (False, RECONCILED, "nothing is degraded")
        return decision
    if state.serving != target:
        # Our apply landed but its record did not (a crash): this is a rollout from now.
        new = replace(state, rollout=Rollout(inputs.now, rollback=False),
                      previous=state.serving)
        return Decision(new, progressing=(True, ROLLING_OUT, f"rolling out {target}"),
                        requeue_after=ROLLOUT_POLL_SECONDS)
    return Decision(state, ready=(False, SERVING_UNAVAILABLE,
                                  f"version {target} is applied but not available"),
                    requeue_after=ROLLOUT_POLL_SECONDS * 5)


def _complete(state: ServingState, inputs: Inputs, target: str, rollout: Rollout) -> Decision:
    if rollout.rollback:
        message = f"version {target} is serving again after the rollback"
        return Decision(replace(state, rollout=None), ready=(True, SERVING, message),
                        progressing=(False, ROLLBACK_COMPLETE, message),
                        events=[(ROLLBACK_COMPLETE, f"Version {target} is serving again",
                                 False)])
    new = replace(state, rollout=None, serving=target, rolled_back_at_generation=None,
                  previous=state.serving if state.serving != target else state.previous)
    decision = Decision(new, ready=(True, SERVING, f"version {target} is serving"),
                        progressing=(False, ROLLOUT_COMPLETE, f"version {target} is available"))
    if state.serving != target:
        decision.now_serving = target
        decision.events.append((ROLLOUT_COMPLETE, f"Version {target} is serving", False))
    if state.rolled_back_at_generation is not None:
        decision.degraded = (False, RECONCILED, "nothing is degraded")
    return decision


def _failed(state: ServingState, inputs: Inputs, failed: str, rollout: Rollout,
            elapsed: float) -> Decision:
    why = (f"version {failed} was not available after {elapsed:.0f}s "
           f"(progressDeadlineSeconds {inputs.deadline_seconds})")
    if rollout.rollback:
        message = f"{why}; the rollback did not become available either: left as it is"
        return Decision(replace(state, rollout=None, rolled_back_at_generation=inputs.generation),
                        ready=(False, ROLLBACK_FAILED, message),
                        progressing=(False, ROLLBACK_FAILED, message),
                        degraded=(True, ROLLBACK_FAILED, message),
                        events=[(ROLLBACK_FAILED, message, True)], requeue_after=None)
    if failed == state.serving:
        # Putting back what serves (after someone else's edit, or a re-created Deployment)
        # did not become available: nothing to roll back to, and the version itself is not
        # to blame for it; said, and left as it is.
        message = f"{why}; it serves and was being put back on the Deployment"
        return Decision(replace(state, rollout=None),
                        ready=(False, SERVING_UNAVAILABLE, message),
                        progressing=(False, ROLLOUT_TIMED_OUT, message),
                        events=[(ROLLOUT_TIMED_OUT, message, True)])
    back_to = state.serving
    marks = {failed: (VersionPhase.ROLLED_BACK, f"{ROLLOUT_TIMED_OUT}: {why}")}
    desired = back_to if state.desired == failed else state.desired
    if back_to is None:
        message = why + "; there is no earlier version to roll back to"
        return Decision(replace(state, rollout=None, desired=desired,
                                rolled_back_at_generation=inputs.generation),
                        ready=(False, ROLLOUT_TIMED_OUT, message),
                        progressing=(False, ROLLOUT_TIMED_OUT, message),
                        degraded=(True, ROLLOUT_TIMED_OUT, message), marks=marks,
                        events=[(ROLLOUT_TIMED_OUT, message, True)])
    message = f"{why}; rolled back to {back_to}"
    new = replace(state, desired=desired, rollout=Rollout(inputs.now, rollback=True),
                  rolled_back_at_generation=inputs.generation)
    return Decision(new, apply=back_to, marks=marks, rolled_back=True,
                    ready=(False, ROLLED_BACK, message),
                    progressing=(True, ROLLING_BACK, f"rolling back to {back_to}"),
                    degraded=(True, ROLLED_BACK, message),
                    events=[(ROLLED_BACK, f"{why}; rolling back to {back_to}", True)],
                    requeue_after=ROLLOUT_POLL_SECONDS)
