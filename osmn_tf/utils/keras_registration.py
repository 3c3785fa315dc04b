"""Registering osmn_tf's Keras classes when Keras loads, so `import osmn_tf` itself need not load it.

`keras.models.load_model` finds custom classes only once their module has
run (`@keras.saving.register_keras_serializable`); it imports modules of
Keras' own packages, never ours. `import osmn_tf` stays light (tools answer
in a fraction of a second without TensorFlow), so it cannot import the
models; instead it imports them right after Keras is imported, whenever that
happens, and at once if Keras is there already. `import osmn_tf; import
keras; keras.models.load_model("m.keras")` then works as it always did.

When one of our own modules imports Keras first (`import osmn_tf.layers`),
`osmn_tf.models` cannot run yet: it needs that module, still half-imported.
The models are then imported at the next import once ours are all complete.
"""
import importlib
import importlib.abc
import importlib.util
import sys

_MODELS = "osmn_tf.models"


def register_when_keras_loads():
    """Imports `osmn_tf.models` now if Keras is loaded, else right after Keras loads."""
    if "keras" in sys.modules:
        importlib.import_module(_MODELS)
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` with the other finders and has its loader import `osmn_tf.models` after running it."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # once: the real finders locate Keras
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            if _ours_initializing():
                sys.meta_path.insert(0, _WhenOursComplete())
            else:
                importlib.import_module(_MODELS)

        spec.loader.exec_module = exec_module
        return spec


def _ours_initializing():
    """Whether a module of osmn_tf is being imported (its code still running)."""
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items()) if name.split(".")[0] == "osmn_tf")


class _WhenOursComplete(importlib.abc.MetaPathFinder):
    """Finds nothing; at the first import after every osmn_tf module has run, imports `osmn_tf.models`."""

    def find_spec(self, name, path=None, target=None):
        if not _ours_initializing() and self in sys.meta_path:
            sys.meta_path.remove(self)
            importlib.import_module(_MODELS)
        return None
