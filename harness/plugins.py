"""dlm-bench's Hydra plugins (the planning sweeper, the local-gpus launcher) registered from harness/.

Hydra instantiates plugins only from its ``hydra_plugins`` namespace package, and this repository
keeps no top-level folder for it: each plugin module calls `register_plugin` when imported, which
aliases the module under ``hydra_plugins.<name>`` (the path its config's ``_target_`` names) and
registers the class with Hydra. harness.callbacks imports the plugin modules, so every process
Hydra starts, submitit and local-gpus workers included, has them before Hydra's state is unpickled.
"""

from __future__ import annotations

import sys
import types

from hydra.core.plugins import Plugins


def register_plugin(cls: type, alias: str) -> None:
    """Alias `cls`'s module as `alias` in Hydra's plugin namespace and register `cls` with Hydra."""
    module = sys.modules[cls.__module__]
    cls.__module__ = alias  # Hydra names a plugin by its class's module
    if alias in sys.modules:
        return
    try:
        import hydra_plugins  # noqa: F401  (a namespace package, present once any Hydra plugin is installed)
    except ImportError:
        namespace = types.ModuleType("hydra_plugins")
        namespace.__path__ = []
        sys.modules["hydra_plugins"] = namespace
    sys.modules[alias] = module
    Plugins.instance().register(cls)
