"""What `portal retention` prints: counts per rule, in the operator's language."""

from __future__ import annotations

from portal.i18n import gettext
from portal.retention.rules import Pending, Rule
from portal.retention.service import RuleOutcome, RunReport


def dry_run_lines(rules: tuple[Rule, ...], pending: dict[str, Pending]) -> list[str]:
    lines = [gettext("Dry run: nothing was changed. A run now would remove:")]
    for rule in rules:
        due = pending[rule.code]
        oldest = due.oldest.isoformat(timespec="seconds") if due.oldest else "-"
        lines.append(
            gettext(
                "%(rule)s (%(period)s): %(count)s, oldest %(oldest)s",
                rule=rule.code,
                period=rule.period,
                count=due.count,
                oldest=oldest,
            )
        )
    return lines


def progress_line(outcome: RuleOutcome) -> str:
    return gettext("%(rule)s: %(removed)s removed so far", rule=outcome.code, removed=outcome.removed)


def run_lines(report: RunReport) -> list[str]:
    lines = [
        gettext(
            "%(rule)s: %(removed)s removed, %(held)s kept under legal hold", rule=o.code, removed=o.removed, held=o.held
        )  # fmt: skip
        for o in report.outcomes
    ]
    if report.interrupted:
        lines.append(gettext("Interrupted: what was removed stays removed; run the command again to finish."))
    return lines
