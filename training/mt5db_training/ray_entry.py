"""RayJob entrypoint: `python -m mt5db_training.ray_entry --run NAME --model informer ...`.

The same options, config and command as `mt5db train`; inside a cluster (RAY_ADDRESS set by KubeRay)
Ray is joined with a plain `ray.init()`, locally a loopback-only Ray is started (see
informer_fit.ray_init).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mt5db_training.cli import add_train_arguments, check_train_arguments, train_config


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the training options and run one training job."""
    parser = argparse.ArgumentParser(
        prog="python -m mt5db_training.ray_entry", description="training run as a RayJob entrypoint"
    )
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    if not args.run:
        parser.error("--run NAME is required for a RayJob")
    error = check_train_arguments(args)
    if error:
        parser.error(error)
    from mt5db_training.train import run_train

    # Exit status: 0; 2 config error; PUBLISH_FAILED_EXIT_CODE (3) when the run's artifacts and
    # registry rows are written but its result could not be published for the operator.
    return run_train(train_config(args))


if __name__ == "__main__":
    sys.exit(main())
