"""Give the items of a media table written by an earlier release the keys of the current indexes
(``make migrate``; docs/deploy.md, "Migrating to the sharded indexes").

    python scripts/migrate.py [--dry-run] [--outputs outputs.json]

Scans the media table and adds, to each item that lacks them, the ``listing`` index key (items
made through the upload API) and the ``waiting`` index keys (items still waiting for a worker),
derived from what the item already holds (``media_pipeline.migrations``). Safe while the pipeline
runs, and any number of times. It prints progress, then a JSON summary; exit status 0 when every
item had its keys or was given them, 1 when some changed while they were being given (run it
again), 2 for usage errors.

Reads the stack's outputs and talks to the same endpoints as scripts/recover.py: the local stack
by default, a deployment with --outputs (``terraform output -json``) and its AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from media_pipeline.migrations import Backfill, backfill
from recover import stack_session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outputs", type=Path, help="terraform output -json of the stack")
    parser.add_argument("--dry-run", action="store_true", help="count the items, change none")
    args = parser.parse_args(argv)

    outputs, session = stack_session(args.outputs)
    table = outputs["media_table"]

    def progress(run: Backfill) -> None:
        verb = "would add" if run.dry_run else "added"
        added = ", ".join(f"{kind} {count}" for kind, count in sorted(run.added.items()))
        print(f"  scanned {run.scanned} item(s); {verb}: {added or 'nothing'}", file=sys.stderr)

    print(f"{table}: giving items the keys of the current indexes", file=sys.stderr)
    run = backfill(session.client("dynamodb"), table, dry_run=args.dry_run, progress=progress)
    print(json.dumps(run.to_dict(), indent=2))
    return 1 if run.changed_meanwhile else 0


if __name__ == "__main__":
    sys.exit(main())
