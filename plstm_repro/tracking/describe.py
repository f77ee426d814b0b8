"""What a run is described with in the store: the commit, host and hardware it ran on, its
splits as MLflow dataset inputs, and the saved views of the runs table."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .base import ROLE_TAG, VIEW_COLUMNS, VIEW_ID


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> str:
    """One line: CPU model and cores, torch threads, and the GPU if torch sees one."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def environment_tags() -> dict[str, str]:
    """Where and with what a run was made: commit, host, hardware, versions."""
    import platform
    import socket

    import torch

    commit = git_commit()
    return {"git_commit": commit, "mlflow.source.git.commit": commit,
            "plstm.host": socket.gethostname(), "plstm.hardware": hardware(),
            "plstm.torch": torch.__version__, "plstm.python": platform.python_version()}


def describe_split(cfg, split: str, data) -> dict:
    """A split as an MLflow dataset input: name, digest, source (what generated or holds it)
    and profile. ``data.digest`` is used when a loader provides one; a padded split's tensors
    are hashed; a store-backed split (events, GRID) hashes what picks its rows from the store
    (the store's index, the rows, their lengths and labels, and the split's settings)."""
    import hashlib

    digest = data.digest
    if digest is None:
        h = hashlib.blake2b(digest_size=8)
        if hasattr(data, "x"):
            parts = [data.x, data.t, data.lengths, data.y]
        else:
            parts = [getattr(data, k) for k in ("indices", "lengths", "y") if hasattr(data, k)]
            store = getattr(data, "store", None)
            if store is not None and hasattr(store, "names"):
                h.update("\n".join(store.names).encode())
            h.update(repr(sorted((k, v) for k, v in vars(data).items()
                                 if isinstance(v, (bool, int, float, str)))).encode())
        for t in parts:
            t = torch_tensor(t)
            if t.numel() == 0:
                continue
            for chunk in t.reshape(t.shape[0], -1).split(4096):  # bounded memory per step
                h.update(chunk.contiguous().numpy().tobytes())
        digest = h.hexdigest()
    source = {"loader": f"plstm_repro.data ({cfg.data.name})", "split": split, "seed": cfg.seed,
              "config": {k: v for k, v in vars(cfg.data).items()}}
    profile = {"num_rows": len(data), "max_len": int(data.lengths.max()) if len(data) else 0,
               "features": int(data.input_size), "task": data.task,
               "time_unit": data.time_unit}
    return {"name": f"{cfg.data.name}-{split}", "digest": digest,
            "source_type": "plstm_repro", "source": json.dumps(source, default=str),
            "profile": json.dumps(profile),
            "context": "training" if split == "train" else "testing"}


def torch_tensor(value):
    """A CPU tensor of ``value`` (a tensor or a numpy array)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.as_tensor(value)


def runs_view_state(search: str = "", columns: list[str] | None = None,
                    group_by: tuple[str, ...] = ()) -> dict:
    """A runs-table state for a saved view: runs matching ``search``, newest first, with the
    dataset, metric, tag and param columns a comparison needs, grouped by the tags
    ``group_by`` (each group shows the average of its runs: the mean over seeds)."""
    cols = list(columns or VIEW_COLUMNS)
    group = {"aggregateFunction": "average",
             "groupByKeys": [{"mode": "tag", "groupByData": t} for t in group_by]} \
        if group_by else None
    return {"searchFilter": search, "orderByKey": "attributes.start_time",
            "orderByAsc": False, "startTime": "ALL", "lifecycleFilter": "Active",
            "datasetsFilter": [], "modelVersionFilter": "All Runs", "selectedColumns": cols,
            "columnOrder": cols, "runsHiddenMode": "SHOW_ALL", "viewMaximized": False,
            "runListHidden": False, "groupBy": group, "groupsExpanded": {}}


# The saved views of every experiment: id -> (name, state). The first groups the training
# runs by scale, variant and condition (a group's row is the mean over its seeds; a shared
# view cannot open parent runs, and grouping shows the grid points without them); the second
# lists the parents, which hold each grid's summary table, figure and claims.
VIEWS = {
    VIEW_ID: ("plstm: training runs by scale, variant, condition",
              runs_view_state(f"tags.`{ROLE_TAG}` != 'parent'",
                              group_by=("scale", "variant", "condition"))),
    f"{VIEW_ID}-parents": ("plstm: parent runs (summary, figure, claims)",
                           runs_view_state(f"tags.`{ROLE_TAG}` = 'parent'",
                                           ["attributes.`Duration`"] + [
                                               f"tags.`{t}`" for t in
                                               ("scale", "paper_ref", "grid_size",
                                                "git_commit")])),
}


def runs_url(base: str, experiment_id: str) -> str:
    """The runs table of an experiment with the saved view, in the model-training UI."""
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType="
            f"machine_learning&viewStateShareKey={VIEW_ID}")
