"""python -m devstack up | down | status | localstack up|down|probe

(terraform with this machine's provider set-up: ``python -m tooling tf``.)
"""

from __future__ import annotations

import argparse
import json
import sys

from tooling import terraform

from devstack import localstack, stack

# `localstack probe`'s exit status when no LocalStack stack answers and LOCALSTACK_OPTIONAL asks
# for the run to be skipped (the Makefile runs the tests on 0 only, and fails on any other).
SKIPPED = 3


def _localstack(action: str) -> int:
    url = localstack.endpoint()
    if action == "probe":  # whether make test-localstack can test anything, and if not, why
        problem = localstack.unavailable(url)
        if problem is None:
            return 0
        if localstack.optional():
            print(f"SKIPPED ({localstack.OPTIONAL} is set): {problem}")
            return SKIPPED
        print(
            f"make test-localstack FAILED, nothing was tested: {problem}."
            f" Set {localstack.OPTIONAL}=1 to skip this run instead.",
            file=sys.stderr,
        )
        return 1
    try:
        if action == "down":
            problem = localstack.down()
            if problem is None:
                print("LocalStack stopped, its volume and Terraform state removed")
                return 0
            print(f"the Terraform state of LocalStack is removed; compose did not run: {problem}")
            if localstack.health(url) is not None:
                print(
                    f"LocalStack still answers at {url}: it was not started by compose here,"
                    " stop it where it was started (its resources are still in it)"
                )
            return 0
        outputs = localstack.up()
    except (localstack.LocalStackError, terraform.TerraformError) as error:
        print(f"make localstack-{action} failed: {error}", file=sys.stderr)
        return 1
    print(f"\nThe stack is applied to LocalStack at {url}")
    print(f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test")
    print(f"  uploads bucket     {outputs['uploads_bucket']} (prefix {outputs['upload_prefix']})")
    print(f"  outputs            {localstack.outputs_file()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=stack.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack (or reuse it) and apply Terraform to it")
    up.add_argument("--port", type=int, default=stack.DEFAULT_PORT)
    up.add_argument("--watch-pid", type=int, help="stop the stack when this process exits")
    sub.add_parser("down", help="stop the stack")
    sub.add_parser("status", help="what the local Lambda runtime is running")
    ls = sub.add_parser("localstack", help="the same Terraform on LocalStack (docker-compose.yml)")
    ls.add_argument("action", choices=["up", "down", "probe"])
    args = parser.parse_args()

    if args.command == "localstack":
        return _localstack(args.action)

    if args.command == "up":
        try:
            running = stack.up(port=args.port, watch_pid=args.watch_pid)
        except (stack.StackError, terraform.TerraformError) as error:
            print(f"make up failed: {error}", file=sys.stderr)
            return 1
        outputs = running.outputs()
        print(f"\nThe stack is up on {running.endpoint}")
        print(f"  export AWS_ENDPOINT_URL={running.endpoint} AWS_CA_BUNDLE={running.ca_bundle}")
        print(
            f"  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION={stack.REGION}"
        )
        print(
            f"  uploads bucket     {outputs['uploads_bucket']} (prefix {outputs['upload_prefix']})"
        )
        print(f"  app events queue   {outputs['app_events_queue_url']}")
        print(f"  api_url            {outputs['api_url']}")
        print(f"  api_key            {outputs['api_key']}  (send it as X-Api-Key)")
        print(f"  outputs            {running.outputs_file}")
        print(f"  function logs      {running.state_dir / 'logs'}  (one file per function)")
        return 0
    if args.command == "down":
        if stack.down():
            print(
                "stopped. The embedded stack keeps its state in memory: the images, media items,"
                " queued jobs and DLQ messages are gone, and the next `make up` makes a new API"
                " URL and key (LocalStack with PERSISTENCE, or AWS, keep theirs)."
            )
        else:
            print("no stack was running")
        return 0
    running = stack.running()
    if running is None:
        print("no stack is running", file=sys.stderr)
        return 1
    print(json.dumps(running.control("status"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
