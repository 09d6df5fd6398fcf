"""Settings of the server extension, as traitlets (``c.Dotnb.… = …``)."""

from __future__ import annotations

from traitlets import Int, List, Unicode
from traitlets.config import Configurable


class Dotnb(Configurable):
    """dotnb's settings, in ``jupyter_server_config.py`` as ``c.Dotnb.<name> = …``.

    Kernels started by the server inherit the ones that matter to them
    (``root``, ``max_file_size``, ``ignore``, ``state_*``) through environment variables.
    """

    root = Unicode(
        "",
        config=True,
        help="Project root whose .dotnb/ store the API serves and kernels record into "
        "(default: the server's root_dir).",
    )
    max_file_size = Int(
        20 * 1024**3,
        config=True,
        help="Inputs and outputs larger than this many bytes are recorded with their size "
        "but not stored (kernel side; DOTNB_MAX_FILE_SIZE).",
    )
    state_max_variable_size = Int(
        4 * 1024**3,
        config=True,
        help="Kernel state: a group of variables (names sharing objects) larger than this many "
        "bytes is recorded as too large, with its size, and not stored "
        "(kernel side; DOTNB_STATE_MAX_VARIABLE_SIZE).",
    )
    state_max_run_size = Int(
        16 * 1024**3,
        config=True,
        help="Kernel state: the most bytes of variables one run stores; variables past it are "
        "recorded as too large, with their size (kernel side; DOTNB_STATE_MAX_RUN_SIZE).",
    )
    state_ignore = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Kernel state: shell-style patterns of variable names never recorded ('!' before "
        "one records again what an earlier one ignored), after those of .dotnbstateignore "
        "(kernel side; DOTNB_STATE_IGNORE).",
    )
    max_preview_bytes = Int(
        64 * 1024**2,
        config=True,
        help="Largest stored file GET runs/{run}/files returns, in bytes.",
    )
    ignore = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Extra gitignore-style patterns never recorded as inputs or outputs, "
        "added to .dotnbignore (kernel side; DOTNB_IGNORE).",
    )
    kernel_checkout_timeout = Int(
        300,
        config=True,
        help="Seconds POST runs/{run}/restore waits for the notebook's kernel to check out "
        "the run's variables (the option kernel) before answering without it.",
    )
    events_timeout = Int(
        25,
        config=True,
        help="Seconds GET events waits for a new run before answering with none.",
    )
    sweep_scheduler = Unicode(
        "",
        config=True,
        help="Address of the Dask scheduler sweeps run on (e.g. tcp://10.0.0.5:8786); empty: a "
        "LocalCluster of worker processes on this machine. `dotnb sweep` reads it too.",
    )
    sweep_workers = Int(
        0,
        config=True,
        help="Worker processes of a sweep's LocalCluster (0: one per core). `dotnb sweep` reads it too.",
    )
    sweep_memory_limit = Unicode(
        "",
        config=True,
        help="Memory limit per LocalCluster worker, e.g. '2GiB' (empty: a share of the RAM). "
        "`dotnb sweep` reads it too.",
    )
