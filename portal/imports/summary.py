"""What `portal import` tells the operator at the end, in their language."""

from __future__ import annotations

from portal.i18n import format_number, gettext, lazy_gettext, ngettext
from portal.imports.runner import ImportReport, RowProblem

OUTCOMES = {
    "created": lazy_gettext("created"),
    "updated": lazy_gettext("updated"),
    "unchanged": lazy_gettext("unchanged"),
    "merged": lazy_gettext("merged"),
    "rejected": lazy_gettext("rejected"),
    "dropped": lazy_gettext("dropped"),
}
# Why a row was dropped or rejected while writing, by the code a kind counts it under.
REASONS = {
    "erased": lazy_gettext("the customer was erased at their request"),
    "restricted": lazy_gettext("the customer's processing is restricted"),
    "no_consent": lazy_gettext("no browsing-analytics consent at that time"),
    "unknown_customer": lazy_gettext("no such customer"),
    "conflict": lazy_gettext("a conflict a person must settle"),
    "past_retention": lazy_gettext("older than the retention period of the purpose register"),
}


def problem_line(problem: RowProblem) -> str:
    if problem.column:
        return gettext(
            "%(file)s, line %(line)s, column “%(column)s”: %(problem)s",
            file=problem.file,
            line=problem.line,
            column=problem.column,
            problem=problem.message,
        )
    return gettext(
        "%(file)s, line %(line)s: %(problem)s", file=problem.file, line=problem.line, problem=problem.message
    )


def refusal_lines(report: ImportReport) -> list[str]:
    """The problems found when nothing was written because of them."""
    lines = [problem_line(problem) for problem in report.problems]
    hidden = report.problem_count - len(report.problems)
    if hidden > 0:
        lines.append(ngettext("… and %(num)s more problem.", "… and %(num)s more problems.", hidden,
                              num=format_number(hidden)))  # fmt: skip
    lines.append(
        ngettext(
            "Nothing was imported: %(num)s row has errors. Correct it, or import the other rows with"
            " --skip-invalid REJECTS.csv.",
            "Nothing was imported: %(num)s rows have errors. Correct them, or import the other rows with"
            " --skip-invalid REJECTS.csv.",
            report.rejected,
            num=format_number(report.rejected),
        )
    )
    return lines


def summary_lines(report: ImportReport) -> list[str]:
    tally = report.tally
    outcomes = {**tally.outcomes}
    outcomes["rejected"] = outcomes.get("rejected", 0) + report.rejected
    lines = [
        ngettext("%(num)s row read.", "%(num)s rows read.", report.read, num=format_number(report.read)),
        " · ".join(f"{gettext(label)} {format_number(outcomes.get(code, 0))}" for code, label in OUTCOMES.items()),
    ]
    if tally.reasons:
        reasons = ", ".join(
            f"{gettext(REASONS[code]) if code in REASONS else code}: {format_number(n)}"
            for code, n in sorted(tally.reasons.items())
        )
        lines.append(gettext("Dropped or rejected because: %(reasons)s", reasons=reasons))
    lines.extend(tally.notes)
    if report.rejected and report.rejects_file:
        lines.append(gettext("Rejected rows, with the reason, are in %(file)s.", file=report.rejects_file))
    if report.dry_run:
        lines.append(gettext("Dry run: nothing was written; these are the counts a real run would give."))
    elif report.interrupted:
        lines.append(
            gettext(
                "Interrupted: %(done)s of %(batches)s batches were written (%(rows)s rows); the rest was not. Run the"
                " same command again to finish: what is already written will be found unchanged.",
                done=format_number(report.committed_batches),
                batches=format_number(report.batches),
                rows=format_number(report.committed_rows),
            )
        )
    return lines
