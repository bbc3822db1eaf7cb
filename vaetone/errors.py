"""The package's own exceptions: each message says what was wrong, where, and what to do."""


class VaetoneError(Exception):
    """Base class of every error the package raises on purpose."""


class ConfigError(VaetoneError, ValueError):
    """A parameter is unknown, of the wrong type or out of range."""


class DistributedError(ConfigError):
    """torchrun was started in a way this run cannot use (backend, device count, ranks, batch size)."""


class DataError(VaetoneError):
    """A dataset folder, its ``examples.json`` or one of its audio files is unusable."""


class DependencyError(VaetoneError):
    """A system dependency (FluidSynth, a SoundFont) is missing; the message says how to install it."""


class CheckpointError(VaetoneError):
    """A checkpoint is corrupt, or from another configuration or code version."""


class TrainingError(VaetoneError):
    """Training diverged (NaN or infinite loss); the last good checkpoint is kept."""
