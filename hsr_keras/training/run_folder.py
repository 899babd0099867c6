"""A training run's folder: what it holds, whether a run may start in it, resuming, the best generator.

    config.json          the resolved config                  (model_files.CONFIG_FILE)
    run.json             the data it trains on, the code      (model_files.RUN_FILE)
    generator.keras      the best generator so far            (model_files.GENERATOR_FILE)
    best.json            what that generator scored, its epoch (BEST_RECORD)
    history.csv          one row per finished epoch
    training_curves.png  the history drawn
    evaluation.json      `fit`'s comparison with bicubic
    samples/, logs/      maps every few epochs, TensorBoard logs
    backup/              the last whole epoch (Keras' BackupAndRestore) and the best generator
                         and best.json as they were then; removed when the run ends
    .lock                the process writing the folder (`files.FolderLock`)

A folder holds one of: nothing (a new run), an unfinished run (backup/ is there: the same
config and data resume it), or a finished run (generator.keras without backup/: refused unless
`overwrite`). Every check happens before the first write (`check`), so a failed start leaves
the folder as it was; every file is published whole (`tfrecords_builder.contract.files`).
"""

import csv
import json
from pathlib import Path

from hsr_keras.models.model_files import CONFIG_FILE, GENERATOR_FILE, RUN_FILE
from hsr_keras.models.provenance import code_version
from hsr_keras.training.config import Config, upgrade
from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError

BEST_RECORD = "best.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "training_curves.png"
EVALUATION_FILE = "evaluation.json"  # written by `python -m hsr_keras.fit` after training
BACKUP_DIR = "backup"
# What a run writes in its folder, all of which `overwrite=True` removes first (the demo data
# that `fit` makes under <out>/data is not among them: it is kept and reused).
RUN_OUTPUTS = (
    CONFIG_FILE,
    RUN_FILE,
    GENERATOR_FILE,
    BEST_RECORD,
    HISTORY_FILE,
    CURVES_FILE,
    EVALUATION_FILE,
    "samples",
    "logs",
    BACKUP_DIR,
)


class TrainingError(InputError):
    """Bad input to a training run (its output folder, data or options): one line, exit status 2."""


def check(config, out, source=None, overwrite=False):
    """Whether a run of `config` on the data `source` (a resolved path) may be written in `out`.

    Returns "new", "resume" (an unfinished run of the same config and data is there: its
    backup/ is used) or "overwrite". Raises `TrainingError` for a file, a folder it cannot
    write in, an unfinished run of another config or data, or a finished run (unless
    `overwrite`). Reads only (a probe file in an existing `out` tests that it is writable).
    """
    out = Path(out)
    _check_writable(out)
    if overwrite:
        return "overwrite"
    if (out / BACKUP_DIR).is_dir():
        _check_same_run(config, out, source)
        return "resume"
    if (out / GENERATOR_FILE).is_file():
        epochs = len(history_epochs(out))
        done = f"{epochs} epoch{'s' if epochs != 1 else ''}, " if epochs else ""
        raise TrainingError(
            f"{out} holds a finished run ({done}{GENERATOR_FILE}): add --overwrite to train it again "
            "(its outputs are removed first), or choose another --out"
        )
    return "new"


def _check_writable(out):
    """`out` must be a folder we may write in, or not exist yet (then it is made when training starts)."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file, not a folder")
    if not out.is_dir():
        parent = next(p for p in out.absolute().parents if p.exists())
        if not parent.is_dir():
            raise TrainingError(f"cannot create --out {out}: {parent} is a file")
        if not files.writable(parent):
            raise TrainingError(f"cannot create --out {out}: {parent} is not writable")
        return  # made when training starts, after every check
    if not files.writable(out):
        raise TrainingError(f"cannot write in --out {out}: the folder is read-only")


def _check_same_run(config, out, source):
    """An unfinished run in `out` resumes only with its own config and data."""
    again = "add --overwrite to start again, or choose another --out"
    saved = out / CONFIG_FILE
    try:
        before = json.loads(saved.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{out} holds {BACKUP_DIR}/ of a run without {CONFIG_FILE}: {again}") from None
    except (OSError, ValueError) as err:
        raise TrainingError(
            f"{out} holds an unfinished run whose {CONFIG_FILE} cannot be read ({err}): {again}"
        ) from None
    changed = config_changes(before, config)
    if changed:
        shown = ", ".join(f"{name} {saved!r} -> {wanted!r}" for name, saved, wanted in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise TrainingError(
            f"{out} holds an unfinished run of another config ({shown}{more}): resume it with --config {saved}, {again}"
        )
    trained_on = read_run(out).get("data")
    if source is not None and trained_on is not None and trained_on != source:
        raise TrainingError(f"{out} holds an unfinished run on other data ({trained_on}): {again}")


def config_changes(saved, config):
    """(field, saved value, value in `config`) where `saved`, a config as config.json holds it, differs.

    Sorted by field. A field `saved` lacks counts as holding its default: a run saved before
    the field existed trained as the default does. `saved` is upgraded first (`config.upgrade`:
    the retired scale is not compared, old loss weights are loss_weights), and loss weights
    compare as the weights trained with, defaults included. Any other field the code no longer
    has is a change.
    """
    wanted = _as_json(config)
    saved = {**_as_json(Config()), **upgrade(saved)[0]}
    for values in (wanted, saved):
        values["loss_weights"] = _effective_weights(values.get("loss_weights"))
    return [
        (name, saved.get(name), wanted.get(name))
        for name in sorted(set(saved) | set(wanted))
        if saved.get(name) != wanted.get(name)
    ]


def _effective_weights(overrides):
    from hsr_keras.models.losses import GENERATOR_TERMS

    overrides = overrides if isinstance(overrides, dict) else {}
    return {**{name: term.weight for name, term in GENERATOR_TERMS.items()}, **overrides}


def _as_json(config):
    return json.loads(json.dumps(config.to_dict()))


def prepare(out, overwrite):
    """Make `out` (removing the old outputs first with `overwrite`) and clear the temporaries of killed runs."""
    if overwrite and out.is_dir():
        for name in RUN_OUTPUTS:
            files.remove(out / name)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrainingError(f"cannot create --out {out}: {err.strerror or err}") from None
    files.remove_stale(out)


def write_run(out, source):
    """run.json: the data the run trains on (a resolved path, or "in memory") and the code that trains it."""
    files.write_text(Path(out) / RUN_FILE, json.dumps({"data": source, "code": code_version()}, indent=1) + "\n")


def read_run(out):
    """run.json of a run folder as a dict ({} when missing or unreadable)."""
    try:
        record = json.loads((Path(out) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def backed_up_epochs(out):
    """The epochs done by the unfinished run in `out`: what Keras' BackupAndRestore recorded (0 if unreadable)."""
    try:
        return int(json.loads((Path(out) / BACKUP_DIR / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def restore_best(out):
    """Put back the best generator and best.json that the backup holds: a resume continues from the last whole epoch.

    An epoch killed after it saved a new best generator but before its backup is done again,
    and its score comes out a little different (the data arrive in another order); without this
    the run would keep a generator from that lost epoch, which its history does not show. A
    backup written before the best generator was kept in it (no `best_epoch`) leaves the folder
    as it is, and so does one whose best files do not match its record (a kill while it was written).
    """
    out = Path(out)
    try:
        metadata = json.loads((out / BACKUP_DIR / "training_metadata.json").read_text())
    except (OSError, ValueError):
        return
    if not isinstance(metadata, dict) or "best_epoch" not in metadata:
        return
    kept = read_best(out / BACKUP_DIR)
    if metadata["best_epoch"] is None:
        files.remove(out / GENERATOR_FILE)
        files.remove(out / BEST_RECORD)
    elif kept is not None and kept.get("epoch") == metadata["best_epoch"]:
        if kept != read_best(out):
            for name in (GENERATOR_FILE, BEST_RECORD):
                files.write_bytes(out / name, (out / BACKUP_DIR / name).read_bytes())


def history_epochs(out):
    """The epochs (from 0) that history.csv has rows for."""
    path = Path(out) / HISTORY_FILE
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row.get("epoch") for row in csv.DictReader(f)]


def read_best(folder):
    """The `best.json` record of a run folder (monitor, mode, value, epoch), or None if there is none."""
    path = Path(folder) / BEST_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "value" in record else None


def kept_after_divergence(out):
    """What a diverged run leaves, for its message."""
    record = read_best(out)
    if record is None or not (Path(out) / GENERATOR_FILE).is_file():
        return "no generator was saved; lower the learning rates or look for NaN in the data"
    return (
        f"the best generator (epoch {record.get('epoch')}, {record.get('monitor')} = {record['value']:.6g}) "
        f"is kept in {Path(out) / GENERATOR_FILE}"
    )


def lock(out, command=None):
    """The lock a training process holds on its folder while it writes it (`files.FolderLock`)."""
    return files.FolderLock(out, command=command)
