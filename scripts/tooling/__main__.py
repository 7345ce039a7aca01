"""python -m tooling tf [--data-dir DIR] [--chdir DIR] -- ARGS...
python -m tooling plan-check [--base REF] [--strict]
python -m tooling tf-docs [--check]

``tf`` runs terraform with this machine's provider set-up (mirror discovery): ``make plan`` /
``make deploy`` / ``make lint`` use it, with no local stack involved. Given
``--chdir terraform/envs/local``, it runs in the emulators' root that directory makes with the
production root (``terraform.emulator_root``, staged under .local/). ``plan-check`` shows what
the working tree's production root changes in a deployment of a base git ref
(``make plan-check``; scripts/tooling/plan_check.py). ``tf-docs`` writes (or, with --check,
checks) the READMEs of the Terraform modules (``make tf-docs``, ``make lint``;
scripts/tooling/tf_docs.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tooling import plan_check, terraform, tf_docs


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tf = sub.add_parser(
        "tf",
        help="run terraform in a root (default: terraform/envs/aws) with this machine's provider "
        "set-up (mirror discovery)",
    )
    tf.add_argument("--data-dir", default="terraform-aws", help="TF_DATA_DIR, under .local/")
    tf.add_argument("--chdir", type=Path, default=terraform.AWS_ROOT)
    tf.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("plan-check", add_help=False, help="see scripts/tooling/plan_check.py")
    sub.add_parser("tf-docs", add_help=False, help="see scripts/tooling/tf_docs.py")
    args, rest = parser.parse_known_args()
    if args.command == "plan-check":
        return plan_check.main(rest)
    if args.command == "tf-docs":
        return tf_docs.main(rest)

    terraform.STATE_DIR.mkdir(parents=True, exist_ok=True)
    env = terraform.environment(terraform.STATE_DIR)
    env["TF_DATA_DIR"] = str(terraform.STATE_DIR / args.data_dir)
    chdir = args.chdir
    if chdir.resolve() == terraform.LOCAL_ROOT.resolve():
        chdir = terraform.emulator_root(chdir, terraform.STATE_DIR / f"{args.data_dir}-root")
    try:
        terraform.run([a for a in args.args if a != "--"], env, chdir=chdir)
    except terraform.TerraformError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
