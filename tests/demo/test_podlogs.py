"""Picking trainer log lines to show, and following a pod's log file as it grows."""

from __future__ import annotations

from pathlib import Path

from warmstart.demo.podlogs import LogFollower, pod_log_file, shown_line

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


def write_log(state: Path, pod: str, text: str, uid: str = "abcd1234") -> Path:
    path = state / "pods" / f"ns_{pod}_{uid}" / "logs" / "trainer.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(text)
    return path


def test_follower_hands_out_each_complete_line_once(tmp_path: Path) -> None:
    follower = LogFollower(tmp_path, "ns")
    assert follower.new_lines("p-1") == []  # the pod has not run yet
    write_log(tmp_path, "p-1", "one\ntw")
    assert follower.new_lines("p-1") == ["one"]
    assert follower.new_lines("p-1") == []
    write_log(tmp_path, "p-1", "o\nthree\n")
    assert follower.new_lines("p-1") == ["two", "three"]
    assert follower.tail("p-1", 2) == ["two", "three"]


def test_log_file_of_another_pod_or_namespace_is_not_taken(tmp_path: Path) -> None:
    write_log(tmp_path, "p-10", "x\n")
    assert pod_log_file(tmp_path, "ns", "p-1") is None
    assert pod_log_file(tmp_path, "other", "p-10") is None
    assert pod_log_file(tmp_path, "ns", "p-10") is not None
