"""pgfast command line: policy-gradient jobs from the shell."""
from __future__ import annotations

import argparse
import sys

import numpy as np


def _returns_command(args) -> int:
    """Reward-to-go and GAE advantages for a rollout buffer saved with np.savez."""
    from . import gae, reward_to_go

    with np.load(args.buffer) as data:
        arrays = {k: data[k] for k in data.files}
    if "rewards" not in arrays:
        raise SystemExit(f"pgfast returns: {args.buffer} has no 'rewards' array")
    flags = {k: arrays.get(k) for k in ("terminated", "truncated")}
    out = {"returns": reward_to_go(arrays["rewards"], args.gamma, **flags,
                                   next_values=arrays.get("next_values"))}
    if "values" in arrays and "next_values" in arrays:
        out["advantages"] = gae(arrays["rewards"], arrays["values"], arrays["next_values"],
                                args.gamma, args.lam, **flags)
    np.savez(args.out, **out)
    print(f"wrote {', '.join(out)} of shape {out['returns'].shape} to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pgfast", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pgfast {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    returns = commands.add_parser(
        "returns", help="reward-to-go and GAE advantages of a buffer saved with np.savez")
    returns.add_argument("buffer", help=".npz with rewards [terminated truncated values next_values]")
    returns.add_argument("--gamma", type=float, default=0.99)
    returns.add_argument("--lam", type=float, default=0.95)
    returns.add_argument("--out", default="returns.npz")
    returns.set_defaults(run=_returns_command)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as exc:
        parser.exit(2, f"pgfast {args.command}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
