"""RAW denoising benchmark harness: DNG I/O, competition metrics, datasets, runner, tables, CLI."""
