#!/usr/bin/env python3
"""reference.py - the config reference: run `opsconductord --dump-config-reference` and fill a template.

The keys come from the daemon's config tables and from the tables its
bundled plugins bind at init (the plugins in the --plugin-dir directories),
so the commented config file and opsconductord.conf(5) cannot drift from what
the daemon accepts.

    reference.py write --daemon D --format conf|man --template T --output O [-p DIR]... [--var K=V]...
    reference.py check --daemon D --format conf|man --template T --expect FILE [-p DIR]... [--var K=V]...
                       [--hint TEXT]

`check` exits 1 with a diff when FILE differs from what the tables give now.
"""
import argparse
import difflib
import os
import subprocess
import sys


def generate(args):
    """The filled template, as the daemon's tables give it now."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSC_")}
    cmd = [args.daemon, "--dump-config-reference", args.format]
    for d in args.plugin_dir:
        cmd += ["--plugin-dir", d]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"reference.py: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    text = open(args.template, encoding="utf-8").read()
    for var in args.var:
        key, _, value = var.partition("=")
        text = text.replace(f"@{key}@", value)
    return text.replace("@REFERENCE@\n", r.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["write", "check"])
    p.add_argument("--daemon", required=True)
    p.add_argument("--format", choices=["conf", "man"], required=True)
    p.add_argument("--template", required=True)
    p.add_argument("--output")
    p.add_argument("--expect")
    p.add_argument("-p", "--plugin-dir", action="append", default=[])
    p.add_argument("--var", action="append", default=[])
    p.add_argument("--hint", default="")
    args = p.parse_args()
    text = generate(args)
    if args.mode == "write":
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        return 0
    shipped = open(args.expect, encoding="utf-8").read()
    if shipped == text:
        print(f"{args.expect}: up to date with the config tables")
        return 0
    sys.stdout.writelines(difflib.unified_diff(shipped.splitlines(True), text.splitlines(True),
                                               args.expect, "generated from the tables"))
    print(f"\n{args.expect} differs from what the config tables give now. {args.hint}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
