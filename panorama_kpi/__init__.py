"""panorama-kpi: settings-driven extract-and-load of operational databases to a CSV lake."""

__version__ = "0.1.0"
