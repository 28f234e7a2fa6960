"""What every command does first: find and load the configuration, set up logging."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from monitor.config import Config, default_config_path, load_config
from monitor.logs import setup_logging


def config_path(args: argparse.Namespace) -> Path:
    """``--config``, else ``$NEWS_MONITOR_CONFIG``, else ``config/monitor.yaml`` (SPEC §2)."""
    return Path(args.config) if args.config else default_config_path(os.environ)


def load(args: argparse.Namespace) -> Config:
    """Load and validate the configuration, then log with its secrets masked."""
    config = load_config(config_path(args))
    setup_logging(args.log_format, config.log_level, config.secrets.mask)
    return config


def on_terminal() -> bool:
    """Whether progress output has a person to show it to."""
    return sys.stderr.isatty()
