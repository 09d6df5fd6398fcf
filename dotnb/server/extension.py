"""Loading the extension: open the store at the server's root, route the handlers,
keep the kernel → notebook map current, and pass settings on to kernels."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyter_server.utils import url_path_join

from dotnb.server.config import Dotnb
from dotnb.server.routes import ROUTES
from dotnb.store.kernels import write_kernel_notebook
from dotnb.store.repo import Store


def load(serverapp: Any) -> None:
    config = Dotnb(parent=serverapp)
    root = Path(config.root or serverapp.root_dir).expanduser().resolve()
    store = Store.init(root)
    _fetch_on_demand(serverapp, store)
    # Kernels inherit the server's environment: they record into this store even
    # when a nested folder holds another .dotnb/, and share the size limit.
    os.environ["DOTNB_ROOT"] = str(root)
    os.environ["DOTNB_MAX_FILE_SIZE"] = str(config.max_file_size)
    if config.ignore:
        os.environ["DOTNB_IGNORE"] = "\n".join(config.ignore)
    os.environ["DOTNB_STATE_MAX_VARIABLE_SIZE"] = str(config.state_max_variable_size)
    os.environ["DOTNB_STATE_MAX_RUN_SIZE"] = str(config.state_max_run_size)
    if config.state_ignore:
        os.environ["DOTNB_STATE_IGNORE"] = "\n".join(config.state_ignore)
    web_app = serverapp.web_app
    web_app.settings["dotnb_store"] = store
    web_app.settings["dotnb_config"] = config
    # POST push / pull run one at a time per server (see handlers._TransferHandler).
    web_app.settings["dotnb_transfer_lock"] = asyncio.Lock()
    base = url_path_join(web_app.settings["base_url"], "dotnb", "api")
    web_app.add_handlers(".*$", [(url_path_join(base, pattern), handler) for pattern, handler in ROUTES])
    _follow_sessions(serverapp, store, root)
    serverapp.log.info("dotnb: serving runs of %s at %s", root, base)


def _fetch_on_demand(serverapp: Any, store: Store) -> None:
    """Let file, restore, diff and show fetch the missing objects of pulled runs
    from their remote.  A broken remotes.json must not take the whole API down:
    the runs recorded here are still served."""
    try:
        from dotnb.remote.ondemand import attach

        attach(store, always=True)  # `dotnb remote add` may come while the server runs
    except Exception as exc:
        serverapp.log.warning("dotnb: objects of pulled runs will not be fetched on demand: %s", exc)


def _follow_sessions(serverapp: Any, store: Store, root: Path) -> None:
    """Write ``.dotnb/kernels/<id>`` whenever a session is created or renamed."""
    sm = serverapp.session_manager
    create, update = sm.create_session, sm.update_session
    server_root = Path(serverapp.root_dir).expanduser().resolve()

    def record(model: dict[str, Any] | None) -> None:
        try:
            kernel = (model or {}).get("kernel") or {}
            path = (model or {}).get("path")
            if not kernel.get("id") or not path or not str(path).endswith(".ipynb"):
                return
            absolute = (server_root / str(path).lstrip("/")).resolve()
            rel = os.path.relpath(absolute, root).replace(os.sep, "/")
            if rel.startswith("../"):
                return
            write_kernel_notebook(store.dir, kernel["id"], rel)
        except Exception as exc:  # never break the sessions API
            serverapp.log.warning("dotnb: could not record the notebook of a session: %s", exc)

    async def create_session(*args: Any, **kwargs: Any) -> Any:
        model = await create(*args, **kwargs)
        record(model)
        return model

    async def update_session(session_id: str, **kwargs: Any) -> Any:
        result = await update(session_id, **kwargs)
        record(await sm.get_session(session_id=session_id))
        return result

    sm.create_session = create_session
    sm.update_session = update_session
