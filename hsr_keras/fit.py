"""`python -m hsr_keras.fit`: train the WGAN-GP super-resolution model.

With no arguments it runs end to end on built-in demo data: synthetic ERA5-like files,
TFRecord shards, a small model trained for a few epochs on the CPU, and a comparison
with aligned bicubic interpolation on the validation split. With `--data` it trains on a
`tfrecords_builder` build with the paper's preset (a GPU job).

Everything lands in `--out`: config.json (the resolved config), run.json (the data
build it trained on), generator.keras (the best
generator by validation MSE), history.csv, training_curves.png, samples/ (maps every
`plot_every` epochs), logs/ (TensorBoard) and backup/ (resume state; a killed run started
again with the same command continues where it stopped).
"""

import argparse
import json
import sys
from pathlib import Path

from hsr_keras.config import PRECISIONS, PRESETS, load_config
from hsr_keras.training import STRATEGIES, make_demo_data, train


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hsr_keras.fit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", help="build folder holding manifest.json (default: make the demo data under --out)")
    parser.add_argument("--config", help="YAML or JSON file with any Config fields (see hsr_keras/config.py)")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="starting point for the config: 'paper' (default with --data) or 'demo' (default without)",
    )
    parser.add_argument("--out", help="output folder (default: runs/demo without --data, runs/fit with)")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size (global, over all devices)")
    parser.add_argument("--precision", choices=PRECISIONS, help="override the config's precision policy")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: 'mirrored' uses every visible GPU (or logical CPU device). Default: default",
    )
    parser.add_argument("--eval-split", default="val", help="split evaluated against bicubic at the end. Default: val")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tfrecords_builder.manifest import ManifestError

    try:
        return run(args)
    except (ManifestError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def run(args):
    from hsr_keras.evaluation import compare_with_bicubic
    from hsr_keras.reports import format_comparison

    demo = args.data is None
    out = Path(args.out or ("runs/demo" if demo else "runs/fit"))
    out.mkdir(parents=True, exist_ok=True)
    data = make_demo_data(out / "data", verbose=not args.quiet) if demo else Path(args.data)
    config = load_config(
        args.config,
        preset=args.preset or ("demo" if demo else "paper"),
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision=args.precision,
        seed=args.seed,
    )
    result = train(config, data, out, strategy=args.strategy, verbose=0 if args.quiet else 1)
    report = compare_with_bicubic(result["generator_path"], data, args.eval_split, config.batch_size)
    (out / "evaluation.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(format_comparison(report))
    print(f"\nOutputs in {out}/: generator.keras, config.json, history.csv, training_curves.png, samples/, logs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
