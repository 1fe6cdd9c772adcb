"""What `portal retention` prints: counts per rule, in the operator's language."""

from __future__ import annotations

from portal.i18n import gettext
from portal.retention.rules import INACTIVITY_WARNINGS, Pending, Rule
from portal.retention.service import RuleOutcome, RunReport


def dry_run_lines(rules: tuple[Rule, ...], pending: dict[str, Pending]) -> list[str]:
    lines = [gettext("Dry run: nothing was changed. A run now would remove:")]
    for rule in rules:
        due = pending[rule.code]
        values = {
            "rule": rule.code,
            "period": rule.period,
            "count": due.count,
            "oldest": due.oldest.isoformat(timespec="seconds") if due.oldest else "-",
        }
        if rule.warns:
            lines.append(
                gettext("%(rule)s (%(period)s before): %(count)s customers to warn, oldest %(oldest)s", **values)
            )
        else:
            lines.append(gettext("%(rule)s (%(period)s): %(count)s, oldest %(oldest)s", **values))
    return lines


def progress_line(outcome: RuleOutcome) -> str:
    return gettext("%(rule)s: %(removed)s removed so far", rule=outcome.code, removed=outcome.removed)


def run_lines(report: RunReport) -> list[str]:
    lines = [
        gettext("%(rule)s: %(warned)s customers warned", rule=o.code, warned=o.removed)
        if o.code == INACTIVITY_WARNINGS
        else gettext(
            "%(rule)s: %(removed)s removed, %(held)s kept under legal hold", rule=o.code, removed=o.removed, held=o.held
        )  # fmt: skip
        for o in report.outcomes
    ]
    if report.interrupted:
        lines.append(gettext("Interrupted: what was removed stays removed; run the command again to finish."))
    return lines
