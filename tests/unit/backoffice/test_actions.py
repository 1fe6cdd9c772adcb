"""Which back-office actions run on a bare connection: the steps of the state machine alone (issue 17)."""

from __future__ import annotations

import pytest

from portal.backoffice import actions
from portal.db import takes_connection


@pytest.mark.parametrize("name", sorted(actions.ACTIONS))
def test_a_step_of_the_state_machine_runs_on_a_connection_and_every_other_action_on_a_session(name: str) -> None:
    assert takes_connection(actions.performer(name)) is (name in actions.STEPS)


def test_every_step_is_an_action_and_the_others_are_refused_on_a_connection() -> None:
    assert set(actions.ACTIONS) >= actions.STEPS
    assert {"erase", "rectify", "restrict", "objection", "download-link"} <= set(actions.ACTIONS) - actions.STEPS
    with pytest.raises(KeyError):
        actions.perform_step(None, action="erase", acting=None, form={})  # type: ignore[arg-type]
