"""One module per tab. Tabs only lay out and wire; the work is in ``pipelines.tasks``."""
