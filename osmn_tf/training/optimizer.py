"""Adam with a constant learning-rate multiplier per variable.

Keras has no per-variable learning rates, and scaling gradients does not
help with Adam (its step does not depend on the gradient's scale). Keras'
own optimizers find a variable's slots with `_get_variable_index`; this one
finds its multiplier the same way. Its state is Adam's (the multipliers are
plain Python numbers), so checkpoints keep their layout.
"""
import keras


class MultipliedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose learning rate is multiplied by `multiplier(variable)`.

    Args:
        multiplier: `multiplier(variable) -> float`, called once per variable
            when the optimizer is built (None: 1 for every variable).
        **kwargs: `keras.optimizers.Adam`'s.
    """

    def __init__(self, multiplier=None, **kwargs):
        super().__init__(**kwargs)
        self._multiplier = multiplier
        self._multipliers = None

    def build(self, variables):
        super().build(variables)
        # Aligned with `_get_variable_index`: the position in the built list.
        self._multipliers = [1.0 if self._multiplier is None else float(self._multiplier(v)) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._multipliers[self._get_variable_index(variable)]
        if scale != 1.0:
            learning_rate = learning_rate * scale
        super().update_step(gradient, variable, learning_rate)
