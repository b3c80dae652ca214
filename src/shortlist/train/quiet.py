"""Keep transformers' own log lines and progress bars off the console while training.

Loading an encoder into a classifier makes transformers report the new head's weights
(expected here), and every save draws a "Writing model shards" bar that would break
the training progress bar. Both switches are process-wide in transformers, so they are
flipped only for the duration of the call and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
