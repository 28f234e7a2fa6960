"""news-monitor: watch news feeds and push alerts when a story you care about appears."""

__version__ = "0.1.0"
