"""Model files: the self-describing checkpoint format, the one loader and the one pack, for every model family.

The layer between `modules/` (the networks) and both `tasks/` (training) and `inference/`: it may
import `config/`, `preprocessor/` and (by class path, at load time) `modules/`, and never `tasks/`
or `inference/`. See docs/ARCHITECTURE.md ("Model files") for the format and how a new model family
registers itself.
"""
