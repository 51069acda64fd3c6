"""The demo's command line: what a reader of `scripts/demo.sh --help` may pass."""

from __future__ import annotations

import pytest

from warmstart.demo.cli import _parser


def test_stop_after_takes_a_story_step() -> None:
    assert _parser().parse_args(["--quick", "--stop-after", "2"]).stop_after == 2
    assert _parser().parse_args([]).stop_after is None  # the whole story


@pytest.mark.parametrize("step", ["0", "6", "week1"])
def test_stop_after_refuses_what_is_not_a_step(step: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--stop-after", step])
    assert "--stop-after" in capsys.readouterr().err
