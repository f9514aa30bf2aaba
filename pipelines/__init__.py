"""Everything that turns an input image into an output image.

``registry`` (the model zoo as data), ``weights`` (where a card's files are),
``backends`` (runtimes), ``images`` (decoding/encoding), ``tasks`` (the functions the
UI, API, CLI and batch worker all call).
"""
