"""Registering osmn_tf's Keras classes when Keras loads, so `import osmn_tf` itself need not load it.

`keras.models.load_model` finds custom classes only once their module has
run (`@keras.saving.register_keras_serializable`); it imports modules of
Keras' own packages, never ours. `import osmn_tf` stays light (tools answer
in a fraction of a second without TensorFlow), so it cannot import the
models; instead it imports them as soon as Keras is loaded and no osmn_tf
module is half-imported: right after `import keras`, or, when one of our own
modules loads Keras (`import osmn_tf.layers`), right after the outermost of
our modules being imported has finished (`osmn_tf.models` needs them whole).
`import osmn_tf; import keras; keras.models.load_model("m.keras")` then works
as it always did, in any order.
"""
import importlib
import importlib.abc
import sys

_MODELS = "osmn_tf.models"


def register_when_keras_loads():
    """Imports `osmn_tf.models` now if Keras is loaded, else as soon as Keras and our modules are."""
    if "keras" in sys.modules:
        importlib.import_module(_MODELS)
    elif not any(isinstance(finder, _Registrar) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Registrar())


def _ours_initializing(finished=None):
    """Whether a module of osmn_tf other than `finished` is being imported (its code still running)."""
    # importlib clears `_initializing` only once `exec_module` has returned, so `finished` still has it set.
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items())
               if name.split(".")[0] == "osmn_tf" and module is not finished)


class _Registrar(importlib.abc.MetaPathFinder):
    """Locates `keras` and osmn_tf's modules with the other finders; after each one runs, registers if ready.

    Checking after every module (not only Keras) is what makes the order free: the last module to finish
    is the one that finds Keras loaded and nothing of ours half-imported.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras" and not name.startswith("osmn_tf."):
            return None
        spec = self._find_elsewhere(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            self._register_if_ready(finished=module)

        spec.loader.exec_module = exec_module  # a loader serves one module: wrapping it affects nothing else
        return spec

    def _find_elsewhere(self, name, path, target):
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is not self and find is not None:
                spec = find(name, path, target)
                if spec is not None:
                    return spec
        return None

    def _register_if_ready(self, finished):
        if "keras" not in sys.modules or _ours_initializing(finished):
            return
        if _MODELS not in sys.modules:
            importlib.import_module(_MODELS)
        if self in sys.meta_path:  # registered: nothing more to watch
            sys.meta_path.remove(self)
