"""Import and export of images without a Docker daemon: OCI image layouts and ``docker save`` archives.

* :mod:`.sources`: read and fully verify what is to be imported (an :class:`~.sources.ImportPlan`)
  before anything is stored.
* :mod:`.importer`: store a verified plan through the registry's own services.
* :mod:`.exporter`: write a repository's image (or whole index) as an OCI layout or a docker-archive.
"""
