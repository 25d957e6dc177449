"""Score readers: files people write scores in -> a monophonic list of `preprocessor.score.Note`.

This package sits below both the data pipeline (`preprocessor/`) and inference (`inference/`), so
that the CSD readers and the synthesis CLIs share one reader without the data pipeline importing
the layer above it.
"""
