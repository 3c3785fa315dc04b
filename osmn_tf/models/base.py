"""The base class of OSMN's functional models, as keras-hub's `Backbone`."""
import inspect

import keras


class Network(keras.Model):
    """A functional `keras.Model` whose config is its constructor's arguments.

    A subclass builds its graph in `__init__` ("Functional Model") and keeps
    each constructor argument as an attribute of the same name ("Config");
    `get_config` reads them back, so saving, copying and `from_config` need
    nothing else. `from_osmn_config` builds a part of OSMN from an
    `OSMNConfig`, taking the fields its constructor names.
    """

    @classmethod
    def config_arguments(cls):
        """The names of `__init__`'s arguments (the config's keys besides `name` and `trainable`)."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in parameters
                if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    @classmethod
    def from_osmn_config(cls, config, **fields):
        """Builds this network from an `OSMNConfig`'s fields that it takes, plus `fields` (e.g. `name`)."""
        values = {**config.to_dict(), **fields}
        names = set(cls.config_arguments())
        return cls(**{k: v for k, v in values.items() if k in names or k in ("name", "dtype", "trainable")})

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                **{name: getattr(self, name) for name in self.config_arguments()}}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
