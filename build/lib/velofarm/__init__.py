"""velofarm: a self-hosted Buildbot farm that releases Rust binaries for every platform."""

__version__ = "0.1.0"
