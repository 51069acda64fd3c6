"""Picking trainer log lines to show, and following a pod's log through `kubectl logs`."""

from __future__ import annotations

from warmstart.cli.errors import CliError
from warmstart.demo.podlogs import KubectlLogs, shown_line

PREFIX = "2026-11-27 10:16:49,752 INFO warmstart_trainer.train_loop: "


def test_step_lines_are_shown_without_prefix_and_caveat() -> None:
    line = (PREFIX + "step 8/64 epoch 1.00/8 loss 0.7021 lr 2.67e-03 270.2 examples/s "
            "eta 0:00:03 (at most: early stopping may end sooner)\n")
    assert shown_line(line) == ("step 8/64 epoch 1.00/8 loss 0.7021 lr 2.67e-03 "
                                "270.2 examples/s eta 0:00:03")


def test_evaluations_results_and_errors_are_shown() -> None:
    evaluated = PREFIX + "evaluated step 8 (epoch 1): validation loss 0.69 accuracy 0.5"
    assert shown_line(evaluated) == "evaluated step 8 (epoch 1): validation loss 0.69 accuracy 0.5"
    holdout = PREFIX + "evaluated candidate on holdout s3://b/h.jsonl: {'uri': 's3://b/h.jsonl'}"
    assert shown_line(holdout) == "evaluated candidate on holdout s3://b/h.jsonl"
    assert shown_line("error: parent manifest digest mismatch") == (
        "error: parent manifest digest mismatch")


def test_library_noise_and_agent_markers_are_hidden() -> None:
    assert shown_line("--- start 0 at 2026-11-27T10:16:35Z") is None
    assert shown_line(PREFIX + "saved progress checkpoint at step 200 to s3://x") is None
    assert shown_line("Some weights of the model checkpoint were not used") is None


def test_long_lines_are_shortened() -> None:
    shown = shown_line(PREFIX + "committed version v at s3://" + "x" * 300)
    assert shown is not None and len(shown) == 150 and shown.endswith("...")


class FakeKube:
    """What KubectlLogs asks of Kube: `kubectl logs POD -n NS [--tail=N]`."""

    namespace = "ns"

    def __init__(self) -> None:
        self.logs: dict[str, str] = {}
        self.calls: list[tuple[str, ...]] = []

    def kubectl(self, *args: str, timeout: float = 120) -> str:
        self.calls.append(args)
        pod = args[1]
        if pod not in self.logs:
            raise CliError(f'kubectl logs failed:\npods "{pod}" not found')
        lines = self.logs[pod].splitlines(keepends=True)
        tail = [a for a in args if a.startswith("--tail=")]
        return "".join(lines[-int(tail[0].split("=")[1]):] if tail else lines)


def test_follower_hands_out_each_line_once() -> None:
    kube = FakeKube()
    follower = KubectlLogs(kube)  # type: ignore[arg-type]
    assert follower.new_lines("p-1") == []  # the pod has not started yet
    kube.logs["p-1"] = "one\ntwo\n"
    assert follower.new_lines("p-1") == ["one", "two"]
    assert follower.new_lines("p-1") == []
    kube.logs["p-1"] += "three\n"
    assert follower.new_lines("p-1") == ["three"]
    assert follower.tail("p-1", 2) == ["two", "three"]
    assert kube.calls[-1] == ("logs", "p-1", "-n", "ns", "--tail=2")
    assert follower.hint("p-1") == "kubectl logs -n ns p-1"


def test_a_pod_gone_or_restarted_shows_nothing_twice() -> None:
    kube = FakeKube()
    follower = KubectlLogs(kube)  # type: ignore[arg-type]
    kube.logs["p-1"] = "a\nb\nc\n"
    assert follower.new_lines("p-1") == ["a", "b", "c"]
    del kube.logs["p-1"]
    assert follower.new_lines("p-1") == []  # gone: nothing, and no error
    kube.logs["p-1"] = "a\nb\nc\nd\n"
    assert follower.new_lines("p-1") == ["d"]
    assert follower.new_lines("p-2") == []  # another pod is followed on its own
