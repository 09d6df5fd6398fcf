"""Team remotes: the store's format on shared object storage (S3 or a shared folder).

A remote holds the same content-addressed objects and run refs as ``.dotnb/``,
plus a push journal that lets a pull find new runs without listing every run.
Nothing here imports Jupyter code; the CLI and the REST API both call
:mod:`dotnb.remote.transfer`.
"""
