"""How ``loopml demo`` shows its progress and its summary in the terminal (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.datasets._demo import DemoResult, DemoStep

__all__ = ["print_step", "print_summary"]


def print_step(console: Console, step: DemoStep) -> None:
    """One line a finished step: its name, what it did, how long it took."""
    from rich.markup import escape

    console.print(
        f"[green]✓[/green] [bold]{step.name:<10}[/bold] {escape(step.message)} "
        f"[dim]({step.seconds:.2f} s)[/dim]",
        highlight=False,
    )


def print_summary(console: Console, result: DemoResult) -> None:
    """The compact summary table: snapshots, labels, validation, where things were written."""
    from rich.table import Table

    table = Table(title="loopml demo: summary", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for name, snapshot in result.snapshots.items():
        state = "new" if result.new_versions.get(name) else "unchanged"
        table.add_row(f"snapshot {name}", f"{snapshot.version} · {snapshot.rows:,} rows · {state}")
    facts = result.facts
    if facts:
        delay = facts["label_delay_days"]
        table.add_row("fraud rate (true)", f"{facts['fraud_rate_true']:.2%}")
        table.add_row(
            "fraud rate (reported)",
            f"{facts['fraud_rate_reported']:.2%} by {facts['as_of'][:10]} "
            f"({facts['fraud_reported']:,} of {facts['fraud_true']:,} frauds known)",
        )
        table.add_row(
            "chargeback delay",
            f"median {delay['median']:.1f} d · p90 {delay['p90']:.1f} d · max {delay['max']:.1f} d",
        )
    for label, report in (
        ("fresh day", result.validation),
        ("corrupted copy", result.corrupted_validation),
    ):
        if report is not None:
            from loopml.datasets._demo import describe_report

            table.add_row(f"validation: {label}", describe_report(report))
    table.add_row("workspace", str(result.directory))
    if result.summary_path is not None:
        table.add_row("summary", str(result.summary_path))
    console.print(table)
