"""One exception root; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class PanoramaError(Exception):
    """A failure the user can act on. `str(err)` is the one line shown."""

    exit_code = 1
    #: Worth retrying as it is (a dropped connection, a deadlock, throttling), as the
    #: adapter that raised it judged from the driver's error code.
    transient = False


class SettingsError(PanoramaError):
    """The settings file is missing, malformed or inconsistent."""

    exit_code = 2


class SourceError(PanoramaError):
    """A datasource could not be reached, read or understood."""


class LakeError(PanoramaError):
    """The lake storage could not be read or written."""


class EngineError(PanoramaError):
    """The query engine or catalog refused a statement."""


class KpiError(PanoramaError):
    """A KPI could not be computed: its query failed or returned something that is not a KPI."""
