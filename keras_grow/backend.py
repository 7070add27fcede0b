"""keras_grow runs on Keras' TensorFlow backend: say so before Keras fails.

Growth swaps the body of a compiled model inside `fit`, rebuilds
TensorFlow step functions, exports SavedModels and distributes with
`tf.distribute`; none of that exists on the JAX or torch backends.
Keras picks its backend once, when it is first imported, from
`KERAS_BACKEND` or `~/.keras/keras.json`.
"""

import os

_FIX = (
    "keras_grow needs Keras' TensorFlow backend. Set KERAS_BACKEND=tensorflow "
    '(or unset it, and check "backend" in ~/.keras/keras.json) before '
    "Python imports keras."
)


def require_tensorflow():
    """Raises ImportError naming the fix unless Keras runs on TensorFlow.

    Checked before Keras is imported where possible: with
    `KERAS_BACKEND=jax` and no JAX installed, Keras' own error
    (`No module named 'jax'`) would not say that keras_grow needs
    TensorFlow.
    """
    requested = os.environ.get("KERAS_BACKEND")
    if requested and requested != "tensorflow":
        raise ImportError(f"KERAS_BACKEND is {requested!r}. {_FIX}")
    try:
        import keras
    except ImportError as error:
        raise ImportError(f"Keras failed to import ({error}). {_FIX}") from error
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ImportError(f"Keras runs on its {backend!r} backend. {_FIX}")
